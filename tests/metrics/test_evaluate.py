"""Scoring one pair, pooling rows, and the comparison picture."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from affine import Affine
from pyproj import CRS

from linegraph2road.errors import GeoreferenceError
from linegraph2road.georef import Georeference
from linegraph2road.graph import RoadGraph
from linegraph2road.metrics.evaluate import (
    EvalSettings,
    comparison_canvas,
    evaluate_pair,
    json_safe,
    parse_metrics,
    summarize,
    unmatched_segments,
)
from linegraph2road.metrics.protocols import EvaluationError, get_protocol
from linegraph2road.overlay import COLORS

NAN = math.nan
# An L-shaped road with a spur: long enough for TOPO start points and APLS pairs.
ROADS = RoadGraph.from_edges(
    np.array([[10.5, 10.5], [300.5, 10.5], [300.5, 350.5], [10.5, 350.5], [150.5, 10.5]]),
    [[0, 4], [4, 1], [1, 2], [2, 3]],
)


def test_parse_metrics() -> None:
    assert parse_metrics("apls, TOPO") == ("topo", "apls")
    assert parse_metrics(["topo", "topo"]) == ("topo",)
    with pytest.raises(EvaluationError, match="unknown metric 'f1'"):
        parse_metrics("topo,f1")
    with pytest.raises(EvaluationError, match="no metric"):
        parse_metrics(" , ")


def test_settings_validation() -> None:
    with pytest.raises(EvaluationError, match="unknown APLS variant 'go'"):
        EvalSettings(apls_variant="go")
    with pytest.raises(EvaluationError, match="gsd must be a positive number"):
        EvalSettings(gsd=-1.0)
    assert EvalSettings(metrics=("apls",)).to_dict()["metrics"] == ["apls"]


@pytest.mark.parametrize("variant", ["sat2graph", "cosmiq"])
def test_graph_against_itself_scores_one_and_against_empty_zero(variant: str) -> None:
    settings = EvalSettings(apls_variant=variant)
    same = evaluate_pair(ROADS, ROADS, settings=settings)
    assert same.scores["topo"]["precision"] == 1.0
    assert same.scores["topo"]["f1"] == pytest.approx(1.0, abs=5e-3)
    assert same.scores["apls"]["score"] == pytest.approx(1.0)
    assert same.scores["apls"]["variant"] == variant
    assert "params" not in same.scores["apls"]
    assert same.params["apls"]  # every APLS parameter, for the report
    assert same.params["topo"]["match_distance"] == pytest.approx(11.1111)
    empty = evaluate_pair(ROADS, RoadGraph.empty(), settings=settings)
    assert empty.scores["topo"]["f1"] == 0.0
    assert empty.scores["apls"]["score"] == 0.0


def test_only_the_chosen_metrics_run() -> None:
    out = evaluate_pair(ROADS, ROADS, settings=EvalSettings(metrics=("topo",), topo_radius=50.0))
    assert set(out.scores) == {"topo"}
    assert out.scores["topo"]["propagation_radius"] == 50.0


def test_mixed_coordinate_systems_are_refused() -> None:
    geo = ROADS.with_georef(
        Georeference(CRS.from_epsg(32611), Affine(1, 0, 500000, 0, -1, 4000000))
    )
    with pytest.raises(GeoreferenceError, match="georeferenced and the other is in pixels"):
        evaluate_pair(geo, ROADS, settings=EvalSettings())
    with pytest.raises(GeoreferenceError):
        comparison_canvas(geo, ROADS)


def _row(p: float, r: float, f: float, apls: float, *, missing: bool = False) -> dict[str, Any]:
    return {
        "missing_prediction": missing,
        "topo": {"precision": p, "recall": r, "f1": f},
        "apls": {"score": apls, "gt_to_prop": apls + 0.1, "prop_to_gt": apls - 0.1},
    }


ROWS = [
    _row(0.8, 0.4, 0.6, 0.5),
    _row(0.6, 0.8, 0.7, NAN),
    _row(0.0, 0.0, 0.0, 0.2, missing=True),
]


def test_summarize_per_tile_means() -> None:
    s = summarize(ROWS, protocol=get_protocol("cityscale"), settings=EvalSettings())
    assert s["topo"]["precision"] == pytest.approx((0.8 + 0.6) / 3)
    assert s["topo"]["recall"] == pytest.approx(0.4)
    assert s["topo"]["f1"] == pytest.approx(1.3 / 3)
    assert s["topo"]["n_images"] == 3
    # APLS: the NaN tile is skipped
    assert s["apls"]["score"] == pytest.approx(0.35)
    assert s["apls"]["gt_to_prop"] == pytest.approx(0.45)
    assert s["apls"]["prop_to_gt"] == pytest.approx(0.25)
    assert (s["apls"]["n_images"], s["apls"]["variant"]) == (2, "sat2graph")
    assert (s["n_images"], s["n_missing_predictions"]) == (3, 1)


def test_summarize_spacenet_pools_precision_and_recall() -> None:
    s = summarize(ROWS, protocol=get_protocol("spacenet"), settings=EvalSettings())
    assert s["topo"]["precision"] == pytest.approx(0.7)
    assert s["topo"]["recall"] == pytest.approx(0.6)
    assert s["topo"]["f1"] == pytest.approx(2 * 0.7 * 0.6 / 1.3)
    assert s["topo"]["n_images"] == 2
    only = summarize(ROWS, protocol=get_protocol(None), settings=EvalSettings(metrics=("apls",)))
    assert "topo" not in only


def test_json_safe() -> None:
    out = json_safe({"a": NAN, "b": [np.float64(0.5), np.int64(3), (math.inf,)], 1: None})
    assert out == {"a": None, "b": [0.5, 3, [None]], "1": None}
    assert type(out["b"][0]) is float


def test_unmatched_segments_of_a_road_with_a_gap() -> None:
    # ground truth 200 px long, prediction covers its first 80 px: pieces of 2 px have midpoints
    # at x = 1, 3, ..., 199; those with x <= 80 + 11.1111 are matched (46), the other 54 are not
    gt_nodes, pred_nodes = np.array([[0.0, 50.0], [200.0, 50.0]]), np.array([[0.0, 50], [80, 50]])
    pieces, missed = unmatched_segments(gt_nodes, [[0, 1]], pred_nodes, [[0, 1]], distance=11.1111)
    assert pieces.num_edges == 100
    assert int((~missed).sum()) == 46
    assert not missed[:46].any() and missed[46:].all()
    _, false = unmatched_segments(pred_nodes, [[0, 1]], gt_nodes, [[0, 1]], distance=11.1111)
    assert not false.any()
    _, alone = unmatched_segments(gt_nodes, [[0, 1]], np.zeros((0, 2)), [], distance=5.0)
    assert alone.all()


def _has(canvas: np.ndarray[Any, Any], color: tuple[int, int, int]) -> bool:
    return bool(np.all(canvas == np.array(color, dtype=np.uint8), axis=-1).any())


def test_comparison_canvas_colours_missed_and_false_parts() -> None:
    gt = RoadGraph.from_edges(np.array([[5.0, 20.0], [95.0, 20.0]]), [[0, 1]])
    pred = RoadGraph.from_edges(
        np.array([[5.0, 22.0], [50.0, 22.0], [50.0, 90.0]]), [[0, 1], [1, 2]]
    )
    canvas = comparison_canvas(gt, pred, shape=(100, 120))
    assert canvas.shape == (100, 120, 3)
    assert canvas.dtype == np.uint8
    for name in ("gt", "missed", "false"):
        assert _has(canvas, COLORS[name]), name
    # the missed part is the right half of the ground truth, the false part the vertical spur
    red = np.all(canvas == COLORS["missed"], axis=-1)
    assert red[:, 70:].any() and not red[:, :55].any()
    magenta = np.all(canvas == COLORS["false"], axis=-1)
    assert magenta[50:, :].any() and not magenta[:30, :].any()
    flipped = comparison_canvas(gt, pred, shape=(100, 120), flip_y=100.0)  # y -> 100 - y
    red = np.all(flipped == COLORS["missed"], axis=-1)
    assert red[75:85, 70:].any() and not red[:50].any()


def test_comparison_canvas_on_an_image() -> None:
    image = np.full((64, 80, 3), 200, dtype=np.uint8)
    canvas = comparison_canvas(ROADS, ROADS, image=image)
    assert canvas.shape == (64, 80, 3)
    assert canvas[0, 79].tolist() == [120, 120, 120]  # the image, dimmed
    auto = comparison_canvas(ROADS, RoadGraph.empty())
    assert auto.shape == (352, 302, 3)  # extent of the graphs
    assert _has(auto, COLORS["missed"]) and not _has(auto, COLORS["gt"])
