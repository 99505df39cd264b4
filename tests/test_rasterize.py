from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from linegraph2road import RoadGraph
from linegraph2road.rasterize import disk_footprint, draw_discs, draw_segments, render_road_mask


def test_horizontal_segment_covers_exactly_its_pixels() -> None:
    m = draw_segments([[1.5, 2.5]], [[5.5, 2.5]], (5, 8))
    expected = np.zeros((5, 8), dtype=bool)
    expected[2, 1:6] = True
    np.testing.assert_array_equal(m, expected)


def test_width_three_adds_one_pixel_each_side() -> None:
    m = draw_segments([[1.5, 2.5]], [[5.5, 2.5]], (5, 8), width=3)
    # A radius-1 disc is a cross: three rows over the segment plus one pixel beyond each end.
    assert m[1:4, 1:6].all() and m[2, 0] and m[2, 6]
    assert m.sum() == 17


def test_disc_radius_three() -> None:
    assert disk_footprint(3).sum() == 29
    m = draw_discs([[4.5, 4.5]], (9, 9), radius=3)
    assert m.sum() == 29 and m[4, 4]


def test_outside_points_are_clipped() -> None:
    assert not draw_discs([[-10.0, -10.0]], (5, 5), radius=2).any()
    m = draw_segments([[-5.0, 2.5]], [[2.5, 2.5]], (5, 5))
    assert m[2, :3].all() and m.sum() == 3


@given(
    x0=st.floats(0, 31.99), y0=st.floats(0, 31.99), x1=st.floats(0, 31.99), y1=st.floats(0, 31.99)
)
def test_segments_are_8_connected(x0: float, y0: float, x1: float, y1: float) -> None:
    from scipy import ndimage

    m = render_road_mask(RoadGraph([[x0, y0], [x1, y1]], [[0, 1]]), (32, 32), width=1)
    _, n = ndimage.label(m, structure=np.ones((3, 3)))
    assert n == 1
    assert m[int(y0), int(x0)] and m[int(y1), int(x1)]


@given(
    pts=st.lists(st.tuples(st.floats(-5, 45), st.floats(-5, 35)), max_size=12),
    radius=st.sampled_from([0.0, 1.0, 2.0, 2.5, 3.0]),
)
def test_draw_discs_equals_brute_force(pts: list[tuple[float, float]], radius: float) -> None:
    p = np.array(pts, dtype=np.float64).reshape(-1, 2)
    rows, cols = np.mgrid[0:30, 0:40]
    expected = np.zeros((30, 40), dtype=bool)
    for x, y in p:
        cx, cy = np.floor(x), np.floor(y)
        if 0 <= cx < 40 and 0 <= cy < 30:
            expected |= (cols - cx) ** 2 + (rows - cy) ** 2 <= radius * radius + 1e-9
    np.testing.assert_array_equal(draw_discs(p, (30, 40), radius=radius), expected)


@given(radius=st.sampled_from([0.0, 1.0, 1.5, 3.0]), seed=st.integers(0, 1000))
def test_dilate_equals_scipy(radius: float, seed: int) -> None:
    from scipy import ndimage

    from linegraph2road.rasterize import dilate

    m = np.random.default_rng(seed).random((20, 25)) > 0.9
    expected = ndimage.binary_dilation(m, structure=disk_footprint(radius)) if radius else m
    np.testing.assert_array_equal(dilate(m, radius), expected)
