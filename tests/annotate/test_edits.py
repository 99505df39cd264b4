from __future__ import annotations

import numpy as np
import pytest

from linegraph2road.annotate.chunks import Rect
from linegraph2road.annotate.edits import edge_pixels, polyline_rect, road_stroke
from linegraph2road.errors import ParameterError
from linegraph2road.graph import RoadGraph
from linegraph2road.rasterize import draw_segments


def test_deleting_one_edge_of_a_t_keeps_the_others() -> None:
    # a T: horizontal road y = 30 from x = 10 to 90, branch down from (50, 30) to (50, 80)
    g = RoadGraph(np.array([[10.5, 30.5], [50.5, 30.5], [90.5, 30.5], [50.5, 80.5]]),
                  np.array([[0, 1], [1, 2], [1, 3]]))  # fmt: skip
    shape = (100, 100)
    road = draw_segments(g.nodes[g.edges[:, 0]], g.nodes[g.edges[:, 1]], shape, width=5)
    rect = Rect(0, 0, 100, 100)
    clear = edge_pixels(g, 2, road, rect, radius=12)
    assert clear.any() and not (clear & ~road).any()
    assert clear[60, 48:53].all() and clear[78, 50]  # the branch
    assert not clear[30, :45].any() and not clear[30, 56:].any()  # the horizontal road stays
    # at the junction the horizontal road keeps its centre line and upper half: still connected
    assert not clear[28:31, 10:91].any() and (road & ~clear)[28:31, 10:91].all()
    with pytest.raises(ParameterError):
        edge_pixels(g, 3, road, rect)


def test_road_stroke_and_rect() -> None:
    rect = polyline_rect([[10, 10], [40, 10]], 5, (50, 60))
    assert rect == Rect(5, 5, 41, 11)
    stroke = road_stroke([[10.5, 10.5], [40.5, 10.5]], rect, width=5)
    assert stroke.shape == (11, 41) and stroke[5, 5:36].all()
    assert stroke[3, 20] and not stroke[0, 20]
    with pytest.raises(ParameterError):
        road_stroke([[1.0, 1.0]], rect)
    assert polyline_rect([[100, 100], [120, 110]], 2, (50, 60)) is None
