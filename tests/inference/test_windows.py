from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linegraph2road.errors import ParameterError
from linegraph2road.inference import axis_offsets, n_windows_for, window_grid


def test_2048_gets_sam_road_5x5_layout() -> None:
    grid = window_grid(2048, 2048, window=512)
    assert len(grid) == 25
    assert sorted({r for r, _ in grid}) == [0, 384, 768, 1152, 1536]
    assert grid[:2] == [(0, 0), (0, 384)]  # row-major


def test_small_image_gets_one_window_reaching_past_it() -> None:
    assert window_grid(100, 300, window=512) == [(0, 0)]


def test_explicit_n_and_refusals() -> None:
    assert axis_offsets(1024, window=512, n=3) == [0, 256, 512]
    assert len(window_grid(1024, 1024, window=512, n=3)) == 9
    with pytest.raises(ParameterError, match="cannot cover"):
        window_grid(1024, 1024, window=512, n=1)
    with pytest.raises(ParameterError, match="min_overlap"):
        n_windows_for(1024, window=512, min_overlap=512)


@settings(max_examples=200, deadline=None)
@given(
    length=st.integers(1, 5000),
    window=st.sampled_from([64, 128, 512]),
    overlap_frac=st.floats(0.0, 0.9),
)
def test_windows_cover_stay_inside_and_overlap(
    length: int, window: int, overlap_frac: float
) -> None:
    min_overlap = int(overlap_frac * window)
    n = n_windows_for(length, window=window, min_overlap=min_overlap)
    offsets = axis_offsets(length, window=window, n=n)
    assert offsets[0] == 0
    assert offsets[-1] + window >= length  # the last window is flush with the border
    assert all(o >= 0 and o + window <= max(length, window) for o in offsets)  # all inside
    steps = [b - a for a, b in itertools.pairwise(offsets)]
    assert all(window - s >= min_overlap for s in steps)  # overlap >= min_overlap (> d_nei)
    assert all(s > 0 for s in steps)
    # every segment of length <= min_overlap - 1 (a candidate edge) fits in one window
    for a in range(0, max(length - min_overlap + 1, 1), max(1, length // 50)):
        b = min(a + max(min_overlap - 1, 0), length - 1)
        assert any(o <= a and b < o + window for o in offsets)
