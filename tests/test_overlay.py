from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from linegraph2road import GraphError, RoadGraph
from linegraph2road.io.raster import read_mask
from linegraph2road.overlay import (
    COLORS,
    blend_mask,
    draw_graph,
    draw_points,
    make_canvas,
    save_png,
)


def test_draw_graph_colours_only_the_edge_pixels() -> None:
    g = RoadGraph([[1.5, 4.5], [8.5, 4.5]], [[0, 1]])
    canvas = make_canvas((10, 10))
    out = draw_graph(canvas, g, COLORS["gt"], width=1)
    assert canvas.sum() == 0  # the input canvas is not modified
    painted = np.all(out == COLORS["gt"], axis=2)
    expected = np.zeros((10, 10), dtype=bool)
    expected[4, 1:9] = True
    np.testing.assert_array_equal(painted, expected)


def test_subset_points_and_mask() -> None:
    g = RoadGraph([[1.5, 1.5], [8.5, 1.5], [8.5, 8.5]], [[0, 1], [1, 2]])
    out = draw_graph(make_canvas((10, 10)), g, (255, 0, 0), width=1, edges=[False, True])
    assert np.all(out[2:8, 8] == (255, 0, 0)) and not out[1, 3].any()
    out = draw_points(out, [[4.5, 4.5]], (0, 255, 0), radius=1)
    assert tuple(out[4, 4]) == (0, 255, 0)
    tinted = blend_mask(make_canvas((10, 10)), np.eye(10, dtype=bool), (200, 200, 200), alpha=0.5)
    assert tuple(tinted[3, 3]) == (100, 100, 100) and not tinted[3, 4].any()


def test_canvas_from_image_and_png(tmp_path: Path) -> None:
    img = np.full((6, 7, 4), 200, dtype=np.uint8)
    c = make_canvas((6, 7), img)
    assert c.shape == (6, 7, 3) and c[0, 0, 0] == 120
    save_png(tmp_path / "o.png", c)
    assert read_mask(tmp_path / "o.png")[0].shape == (6, 7)
    with pytest.raises(GraphError):
        make_canvas((5, 5), img)
