from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linegraph2road.errors import ParameterError
from linegraph2road.inference import (
    WINDOW_LAYOUTS,
    axis_offsets,
    layout_grid,
    margin_offsets,
    n_windows_for,
    window_grid,
)
from linegraph2road.pipelines import options


def test_2048_gets_the_papers_5x5_layout() -> None:
    """Appendix G: 5 x 5 is the fewest 512 px windows covering 2048 px with overlap > 64."""
    grid = window_grid(2048, 2048, window=512)
    assert len(grid) == 25 and layout_grid(2048, 2048, window=512) == grid
    assert sorted({r for r, _ in grid}) == [0, 384, 768, 1152, 1536]
    assert grid[:2] == [(0, 0), (0, 384)]  # row-major
    assert n_windows_for(2048, window=512, min_overlap=65) == 5
    assert n_windows_for(2048, window=512, min_overlap=129) == 6  # 4 would not overlap > 64


def test_sam_road_layout_tiles_2048_as_the_paper() -> None:
    """Section 4.3: 16 x 16 windows on a 2048 tile, placed as SAM-Road's inferencer does
    (get_patch_info_one_img with SAMPLE_MARGIN 64, INFER_PATCHES_PER_EDGE 16, PATCH_SIZE 512)."""
    grid = layout_grid(2048, 2048, window=512, layout="sam-road")
    assert len(grid) == 256
    rows = sorted({r for r, _ in grid})
    assert rows == [64, 158, 252, 346, 439, 533, 627, 721, 815, 909, 1003, 1097, 1190, 1284,
                    1378, 1472]  # fmt: skip
    assert rows == [round(x) for x in np.linspace(64, 2048 - 512 - 64, 16)]  # SAM-Road's formula
    assert grid[:2] == [(64, 64), (64, 158)] and grid[-1] == (1472, 1472)
    cover = np.zeros(2048, int)
    for o in rows:
        cover[o : o + 512] += 1
    assert not cover[:64].any() and not cover[1984:].any()  # the 64 px margin: no window
    assert cover[64:1984].min() >= 1 and cover.max() == 6  # ~5.4 windows deep inside
    assert min(512 - (b - a) for a, b in itertools.pairwise(rows)) == 418  # overlap >> d_nei
    assert margin_offsets(2048, window=512, n=8) == [64, 265, 466, 667, 869, 1070, 1271, 1472]


def test_sam_road_layout_refusals() -> None:
    assert WINDOW_LAYOUTS == options.WINDOW_LAYOUTS == ("auto", "sam-road")
    with pytest.raises(ParameterError, match="640"):
        layout_grid(600, 2048, window=512, layout="sam-road")
    with pytest.raises(ParameterError, match="repeat"):
        margin_offsets(650, window=512, n=16)
    with pytest.raises(ParameterError, match="gaps"):
        margin_offsets(4096, window=512, n=3)
    with pytest.raises(ParameterError, match="cannot cover"):
        margin_offsets(1000, window=512, n=1)
    assert margin_offsets(640, window=512, n=1) == [64]
    with pytest.raises(ParameterError, match="layout"):
        layout_grid(2048, 2048, layout="16x16")
    with pytest.raises(ParameterError, match="layout"):
        options.ExtractOptions(layout="16x16")


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
