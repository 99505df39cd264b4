"""Benchmark protocols: split membership, tile ids from file names, aggregation rules."""

from __future__ import annotations

import math

import pytest

from linegraph2road.metrics.protocols import (
    SPACENET_TOPO_RADIUS,
    EvaluationError,
    cityscale_test_indices,
    get_protocol,
    globalscale_test_indices,
    gt_preference,
    match_key,
    mean_skip_nan,
    pooled_f1,
    split_from_json,
    tile_id,
    tile_index,
)

NAN = math.nan


def test_cityscale_test_split_is_the_27_tiles_of_sam_road() -> None:
    # i % 10 == 9: 9, 19, ..., 179 (18 tiles); i % 20 == 8: 8, 28, ..., 168 (9 tiles)
    expected = sorted([*range(9, 180, 10), *range(8, 180, 20)])
    assert cityscale_test_indices() == expected
    assert len(expected) == 27
    assert expected[:6] == [8, 9, 19, 28, 29, 39]


def test_globalscale_in_domain_test_is_2714_to_3337() -> None:
    idx = globalscale_test_indices()
    assert len(idx) == 624
    assert (idx[0], idx[-1]) == (2714, 3337)
    assert get_protocol("globalscale").expected_indices() == idx


def test_cityscale_protocol_selects_test_tiles_in_given_order() -> None:
    p = get_protocol("cityscale")
    ids = ["region_0", "region_9", "region_8", "region_10", "19", "region_019", "AOI_1"]
    assert p.select(ids) == ["region_9", "region_8", "19", "region_019"]
    assert (p.tile_size, p.small_tiles, p.topo_radius, p.aggregation) == (2048, False, None, "mean")


def test_globalscale_ood_takes_every_tile() -> None:
    p = get_protocol("globalscale", "ood")
    assert p.expected_indices() is None
    assert p.select(["region_0", "region_129", "x"]) == ["region_0", "region_129", "x"]


def test_spacenet_protocol_uses_the_split_list_and_small_tiles() -> None:
    p = get_protocol("spacenet")
    assert (p.tile_size, p.small_tiles, p.aggregation) == (400, True, "pooled")
    assert p.topo_radius == pytest.approx(166.6665)
    assert pytest.approx(0.0015 * 111111) == SPACENET_TOPO_RADIUS
    ids = ["AOI_2_Vegas_1", "AOI_2_Vegas_2", "AOI_3_Paris_7"]
    assert p.select(ids, split_ids=["AOI_3_Paris_7", "AOI_2_Vegas_1"]) == [
        "AOI_2_Vegas_1",
        "AOI_3_Paris_7",
    ]
    with pytest.raises(EvaluationError, match=r"data_split\.json"):
        p.select(ids)


def test_no_dataset_keeps_everything_with_per_tile_means() -> None:
    p = get_protocol(None)
    assert p.select(["a", "b"]) == ["a", "b"]
    assert p.aggregation == "mean"
    assert p.to_dict()["dataset"] is None


@pytest.mark.parametrize(
    ("dataset", "split", "message"),
    [
        ("deepglobe", None, "unknown dataset 'deepglobe'"),
        ("cityscale", "ood", "cityscale has no split 'ood'"),
        (None, "ood", "--split ood needs --dataset"),
    ],
)
def test_bad_protocol_requests(dataset: str | None, split: str | None, message: str) -> None:
    with pytest.raises(EvaluationError, match=message):
        get_protocol(dataset, split)


@pytest.mark.parametrize(
    ("name", "tile"),
    [
        ("region_9_graph_gt.pickle", "region_9"),
        ("region_9_refine_gt_graph.p", "region_9"),
        ("region_9.p", "region_9"),
        ("region_9_graph.geojson", "region_9"),
        ("region_9_graph_pred.json", "region_9"),
        ("AOI_2_Vegas_img0__gt_graph.p", "AOI_2_Vegas_img0"),
        ("AOI_2_Vegas_img0_gt.gpickle", "AOI_2_Vegas_img0"),
        ("AOI_2_Vegas_505_prop.graphml", "AOI_2_Vegas_505"),
        ("9.p", "9"),
        ("gt.p", "gt"),  # never stripped to nothing
        ("_graph.p", "_graph"),
        ("region_9_sat.png", "region_9_sat.png"),  # not a graph file: left alone
    ],
)
def test_tile_id_from_file_name(name: str, tile: str) -> None:
    assert tile_id(name) == tile


def test_match_key_unifies_region_numbers() -> None:
    assert match_key("9") == match_key("region_9") == match_key("region_009") == "region_9"
    assert match_key("AOI_2_Vegas_505") == "AOI_2_Vegas_505"
    assert tile_index("region_12") == 12
    assert tile_index("AOI_2_Vegas_505") is None


def test_gt_preference_order() -> None:
    names = [
        "region_9.p",
        "region_9_gt.p",
        "region_9_refine_gt_graph.p",
        "region_9_gt_graph.p",
        "region_9__gt_graph.p",
        "region_9_graph_gt.pickle",
    ]
    assert sorted(names, key=gt_preference) == names[::-1]


def test_split_from_json() -> None:
    data = {"test": ["a", "b"], "train": ["c"]}
    assert split_from_json(data) == ["a", "b"]
    assert split_from_json(data, "train") == ["c"]
    with pytest.raises(EvaluationError, match="no 'validation' list"):
        split_from_json(data, "validation")
    with pytest.raises(EvaluationError, match="JSON object"):
        split_from_json(["a"])
    with pytest.raises(EvaluationError, match="list of tile names"):
        split_from_json({"test": [1, 2]})


def test_mean_skip_nan() -> None:
    assert mean_skip_nan([0.5, NAN, 1.0, None]) == (0.75, 2)
    value, n = mean_skip_nan([NAN, None])
    assert math.isnan(value)
    assert n == 0


def test_pooled_f1_skips_tiles_with_zero_or_nan() -> None:
    # tiles 3 (P + R = 0) and 4 (NaN precision) are left out: mean P 0.7, mean R 0.6
    p, r, f, n = pooled_f1([0.8, 0.6, 0.0, NAN], [0.4, 0.8, 0.0, 0.5])
    assert (p, r, n) == (pytest.approx(0.7), pytest.approx(0.6), 2)
    assert f == pytest.approx(2 * 0.7 * 0.6 / 1.3)
    # differs from the mean of per-tile F1 (0.5333 and 0.6857 -> 0.6095)
    assert f != pytest.approx((2 * 0.8 * 0.4 / 1.2 + 2 * 0.6 * 0.8 / 1.4) / 2, abs=1e-3)
    assert all(math.isnan(v) for v in pooled_f1([0.0], [0.0])[:3])
