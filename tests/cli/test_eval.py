"""``l2r eval`` end to end: City-scale and SpaceNet folder layouts, reports, plots, bad input."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from affine import Affine
from click.testing import Result
from pyproj import CRS

from linegraph2road.georef import Georeference
from linegraph2road.graph import RoadGraph
from linegraph2road.io import read_graph, write_graph
from linegraph2road.io.raster import write_raster
from linegraph2road.metrics.apls_sat2graph import apls_sat2graph
from tests.cli.conftest import one_line_error

Run = Callable[..., Result]


def crop(graph: RoadGraph, x0: float, y0: float, size: float = 512.0) -> RoadGraph:
    """Edges with both ends in the window, shifted so that the window starts at (0, 0)."""
    inside = np.all((graph.nodes >= (x0, y0)) & (graph.nodes < (x0 + size, y0 + size)), axis=1)
    keep = inside[graph.edges].all(axis=1)
    g = graph.subgraph_edges(keep).drop_isolated_nodes()
    return RoadGraph(g.nodes - (x0, y0), g.edges)


@pytest.fixture(scope="module")
def cityscale(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A City-scale-like layout: 20cities/ with four GT tiles (three in the test split) and a
    prediction folder with an exact copy, a real proposal named SAM-Road style ("9.p"), a
    prediction of a non-test tile, one without ground truth, and none for region_19."""
    gt = read_graph(fixtures_dir / "cityscale_example" / "gt.p")
    prop = read_graph(fixtures_dir / "cityscale_example" / "prop.p")
    root = tmp_path_factory.mktemp("cityscale")
    gt_dir, pred_dir = root / "20cities", root / "graph"
    gt_dir.mkdir()
    pred_dir.mkdir()
    windows = {"region_8": (512, 512), "region_9": (1024, 512), "region_19": (512, 1024)}
    windows["region_0"] = (1024, 1024)
    for tile, (x0, y0) in windows.items():
        write_graph(crop(gt, x0, y0), gt_dir / f"{tile}_graph_gt.pickle")
    # a training graph beside the evaluation one: the _graph_gt file must win
    write_graph(crop(gt, 0, 0), gt_dir / "region_9_refine_gt_graph.p")
    write_raster(gt_dir / "region_9_sat.png", np.full((3, 512, 512), 90, dtype=np.uint8))
    write_graph(crop(gt, 512, 512), pred_dir / "region_8.p")
    write_graph(crop(prop, 1024, 512), pred_dir / "9.p")
    write_graph(crop(prop, 1024, 1024), pred_dir / "region_0.p")
    write_graph(crop(prop, 0, 0), pred_dir / "region_77.p")
    return {"gt": gt_dir, "pred": pred_dir, "root": root}


@pytest.fixture(scope="module")
def cityscale_run(cityscale: dict[str, Path], l2r: Run) -> dict[str, Any]:
    out = cityscale["root"] / "out"
    result = l2r(
        "eval", "--gt", cityscale["gt"], "--pred", cityscale["pred"], "--dataset", "cityscale",
        "--json", out / "eval.json", "--csv", out / "eval.csv", "--plots", out / "plots",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return {"result": result, "out": out, "report": json.loads((out / "eval.json").read_text())}


def test_cityscale_protocol_scores_only_test_tiles(cityscale_run: dict[str, Any]) -> None:
    report = cityscale_run["report"]
    assert set(report) >= {"summary", "images", "params"}
    assert [im["id"] for im in report["images"]] == ["region_8", "region_9", "region_19"]
    assert report["params"]["dataset"] == "cityscale"
    assert report["params"]["split"] == "test"
    assert report["split"]["expected"] == 27
    assert report["split"]["found"] == 3
    assert "region_28" in report["split"]["absent"]
    assert report["unmatched_predictions"] == ["region_77"]


def test_cityscale_report_values(cityscale_run: dict[str, Any], cityscale: dict[str, Path]) -> None:
    summary, images = cityscale_run["report"]["summary"], cityscale_run["report"]["images"]
    by_id = {im["id"]: im for im in images}
    same, real, missing = by_id["region_8"], by_id["region_9"], by_id["region_19"]
    assert same["topo"]["precision"] == 1.0
    assert same["topo"]["f1"] == pytest.approx(1.0, abs=2e-3)
    assert same["apls"]["score"] == pytest.approx(1.0)
    assert real["pred_path"].endswith("9.p")
    assert real["gt_path"].endswith("region_9_graph_gt.pickle")
    assert 0.0 < real["topo"]["f1"] < 1.0 and 0.0 < real["apls"]["score"] < 1.0
    assert missing["missing_prediction"] is True and missing["pred_path"] is None
    assert missing["topo"]["f1"] == 0.0 and missing["apls"]["score"] == 0.0
    for im in images:
        for metric, key in (("topo", "precision"), ("topo", "recall"), ("apls", "score")):
            assert 0.0 <= im[metric][key] <= 1.0
    # City-scale: means of per-tile values
    assert summary["topo"]["f1"] == pytest.approx(np.mean([im["topo"]["f1"] for im in images]))
    assert summary["apls"]["score"] == pytest.approx(
        np.mean([im["apls"]["score"] for im in images])
    )
    assert summary["apls"]["variant"] == "sat2graph"
    assert (summary["n_images"], summary["n_missing_predictions"]) == (3, 1)
    params = cityscale_run["report"]["params"]
    assert params["apls_params"]["small_tiles"] is False
    assert params["apls_params"]["snap_distance"] == 10.0
    assert params["topo_params"]["match_distance"] == pytest.approx(11.1111)
    assert params["seed"] == 0 and "numpy" in params["versions"]


def test_cityscale_csv_table_and_warnings(cityscale_run: dict[str, Any]) -> None:
    result, out = cityscale_run["result"], cityscale_run["out"]
    rows = list(csv.DictReader((out / "eval.csv").read_text().splitlines()))
    assert [r["id"] for r in rows] == ["region_8", "region_9", "region_19", "summary"]
    summary = cityscale_run["report"]["summary"]
    assert float(rows[-1]["topo_f1"]) == pytest.approx(summary["topo"]["f1"])
    assert float(rows[-1]["apls_score"]) == pytest.approx(summary["apls"]["score"])
    assert rows[2]["missing_prediction"] == "True"
    assert {"topo_precision", "topo_recall", "apls_gt_to_prop", "apls_prop_to_gt"} <= set(rows[0])
    assert f"F1 {summary['topo']['f1']:.4f}" in result.stdout
    assert f"APLS     {summary['apls']['score']:.4f}" in result.stdout
    assert "1 without prediction" in result.stdout
    assert "without prediction, scored as empty: region_19" in result.stderr
    assert "without ground truth ignored: region_77" in result.stderr


def test_cityscale_plots(cityscale_run: dict[str, Any]) -> None:
    from linegraph2road.io.raster import read_mask

    plots = cityscale_run["out"] / "plots"
    assert sorted(p.name for p in plots.iterdir()) == [
        "region_19.png",
        "region_8.png",
        "region_9.png",
    ]
    red, _ = read_mask(plots / "region_19.png", band=1)  # all of region_19 is missed: red
    assert red.shape == (2048, 2048) and red.max() == pytest.approx(230 / 255)
    grey, _ = read_mask(plots / "region_9.png", band=3)  # drawn over region_9_sat.png
    assert grey.shape == (512, 512)
    assert np.isclose(grey, 54 / 255, atol=1e-3).mean() > 0.5  # the dimmed image


def test_parallel_workers_give_the_same_rows(
    cityscale: dict[str, Path], cityscale_run: dict[str, Any], l2r: Run, tmp_path: Path
) -> None:
    result = l2r(
        "eval", "--gt", cityscale["gt"], "--pred", cityscale["pred"], "--dataset", "cityscale",
        "--workers", "2", "--json", tmp_path / "w2.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "w2.json").read_text())
    first = cityscale_run["report"]
    assert again["images"] == first["images"]
    assert again["summary"] == first["summary"]


def test_no_dataset_scores_every_tile(cityscale: dict[str, Path], l2r: Run, tmp_path: Path) -> None:
    result = l2r(
        "eval", "--gt", cityscale["gt"], "--pred", cityscale["pred"], "--metrics", "topo",
        "--json", tmp_path / "all.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "all.json").read_text())
    ids = [im["id"] for im in report["images"]]
    assert ids == ["region_0", "region_8", "region_9", "region_19"]
    assert "apls" not in report["summary"] and "apls" not in report["images"][0]
    assert "all ground-truth tiles" in result.stdout


def test_full_fixture_pair(fixtures_dir: Path, l2r: Run, tmp_path: Path) -> None:
    pair = fixtures_dir / "cityscale_example"
    result = l2r(
        "eval", "--gt", pair / "gt.p", "--pred", pair / "prop.p", "--json", tmp_path / "r.json"
    )
    assert result.exit_code == 0, result.output
    s = json.loads((tmp_path / "r.json").read_text())["summary"]
    assert s["topo"]["f1"] == pytest.approx(0.8657, abs=0.005)  # fixtures/README.md
    assert s["apls"]["score"] == pytest.approx(0.8155, abs=0.01)


# -- SpaceNet --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spacenet(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """SAM-Road layout: spacenet/RGB_1.0_meter/{name}__gt_graph.p, spacenet/data_split.json."""
    small = fixtures_dir / "spacenet_small_json"
    gt, prop = read_graph(small / "gt.json"), read_graph(small / "prop.json")
    root = tmp_path_factory.mktemp("spacenet")
    data, pred = root / "spacenet" / "RGB_1.0_meter", root / "graph"
    data.mkdir(parents=True)
    pred.mkdir()
    north = RoadGraph.from_edges(np.array([[20.5, 50.5], [380.5, 50.5]]), [[0, 1]])
    south = RoadGraph(north.nodes + np.array([0.0, 250.0]), north.edges)  # P + R = 0 against north
    tiles = {
        "AOI_2_Vegas_1": (gt, prop),
        "AOI_2_Vegas_2": (gt, gt),
        "AOI_3_Paris_4": (north, south),
    }
    tiles["AOI_5_Khartoum_9"] = (gt, gt)  # not in the test split
    # The JSON fixture holds SAM-Road's stored key frame (it was made from the pickles), so the
    # graphs go back into pickles unchanged: keys = (row, col) of that frame.
    for name, (g, p) in tiles.items():
        write_graph(g, data / f"{name}__gt_graph.p")
        write_graph(p, pred / f"{name}.p")
    split = {"test": ["AOI_2_Vegas_1", "AOI_2_Vegas_2", "AOI_3_Paris_4"], "train": []}
    (root / "spacenet" / "data_split.json").write_text(json.dumps(split))
    return {"gt": data, "pred": pred, "root": root}


def test_spacenet_protocol(
    spacenet: dict[str, Path], fixtures_dir: Path, l2r: Run, tmp_path: Path
) -> None:
    result = l2r(
        "eval", "--gt", spacenet["gt"], "--pred", spacenet["pred"], "--dataset", "spacenet",
        "--json", tmp_path / "sn.json", "--plots", tmp_path / "plots",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "sn.json").read_text())
    images = report["images"]
    assert [im["id"] for im in images] == ["AOI_2_Vegas_1", "AOI_2_Vegas_2", "AOI_3_Paris_4"]
    assert report["params"]["split_file"].endswith("data_split.json")
    assert report["params"]["apls_params"]["small_tiles"] is True
    assert report["params"]["topo_radius"] == pytest.approx(166.6665)
    assert images[2]["topo"]["precision"] + images[2]["topo"]["recall"] == 0.0
    # TOPO: F1 of the mean P and mean R over the two tiles with P + R > 0
    p = np.mean([im["topo"]["precision"] for im in images[:2]])
    r = np.mean([im["topo"]["recall"] for im in images[:2]])
    topo = report["summary"]["topo"]
    assert (topo["precision"], topo["recall"]) == (pytest.approx(p), pytest.approx(r))
    assert topo["f1"] == pytest.approx(2 * p * r / (p + r))
    assert topo["n_images"] == 2
    # the real pair gets exactly the metric's small-tile Sat2Graph APLS on the same files (the
    # reference's score depends on edge order, which the pickles' adjacency order sets)
    direct = apls_sat2graph(
        read_graph(spacenet["gt"] / "AOI_2_Vegas_1__gt_graph.p"),
        read_graph(spacenet["pred"] / "AOI_2_Vegas_1.p"),
        small_tiles=True,
    )
    assert images[0]["apls"]["score"] == pytest.approx(direct.score, abs=1e-12)
    assert images[1]["apls"]["score"] == pytest.approx(1.0)
    assert report["summary"]["apls"]["n_images"] == 3
    assert len(list((tmp_path / "plots").iterdir())) == 3


def test_spacenet_without_split_file(spacenet: dict[str, Path], l2r: Run, tmp_path: Path) -> None:
    lone = tmp_path / "lone"
    lone.mkdir()
    for f in spacenet["gt"].iterdir():
        (lone / f.name).write_bytes(f.read_bytes())
    result = l2r("eval", "--gt", lone, "--pred", spacenet["pred"], "--dataset", "spacenet")
    assert "data_split.json" in one_line_error(result)
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"test": ["AOI_2_Vegas_2"]}))
    result = l2r(
        "eval", "--gt", lone, "--pred", spacenet["pred"], "--dataset", "spacenet",
        "--split-file", split, "--metrics", "apls",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "images   1 (spacenet test split" in result.stdout


# -- bad input -------------------------------------------------------------------------------
ROAD = RoadGraph.from_edges(
    np.array([[10.5, 10.5], [300.5, 10.5], [300.5, 300.5]]), [[0, 1], [1, 2]]
)


@pytest.fixture
def pair_dirs(tmp_path: Path) -> tuple[Path, Path]:
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    write_graph(ROAD, gt / "region_9_graph_gt.pickle")
    write_graph(ROAD, pred / "region_9.p")
    return gt, pred


def _nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "r.json").exists()
    assert not (tmp_path / "plots").exists()


def _fails(l2r: Run, tmp_path: Path, *args: Any) -> str:
    result = l2r("eval", *args, "--json", tmp_path / "r.json", "--plots", tmp_path / "plots")
    line = one_line_error(result)
    _nothing_written(tmp_path)
    return line


def test_unreadable_file(pair_dirs: tuple[Path, Path], l2r: Run, tmp_path: Path) -> None:
    gt, pred = pair_dirs
    write_graph(ROAD, gt / "region_19_graph_gt.pickle")
    (pred / "region_19.p").write_bytes(b"not a pickle at all")
    assert "region_19" in _fails(l2r, tmp_path, "--gt", gt, "--pred", pred, "--workers", "2")


def test_empty_directory(pair_dirs: tuple[Path, Path], l2r: Run, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no graph files" in _fails(l2r, tmp_path, "--gt", empty, "--pred", pair_dirs[1])
    assert "no graph files" in _fails(l2r, tmp_path, "--gt", pair_dirs[0], "--pred", empty)
    line = _fails(l2r, tmp_path, "--gt", tmp_path / "nope", "--pred", pair_dirs[1])
    assert "no such ground truth" in line


def test_tile_ids_that_do_not_match(pair_dirs: tuple[Path, Path], l2r: Run, tmp_path: Path) -> None:
    gt, _ = pair_dirs
    other = tmp_path / "other"
    other.mkdir()
    write_graph(ROAD, other / "AOI_2_Vegas_1.geojson")
    line = _fails(l2r, tmp_path, "--gt", gt, "--pred", other)
    assert "no ground-truth tile has a prediction" in line and "AOI_2_Vegas_1" in line
    line = _fails(l2r, tmp_path, "--gt", gt, "--pred", other, "--dataset", "globalscale")
    assert "none of the 1 ground-truth tiles (region_9) is in the globalscale test split" in line


def test_mixed_coordinate_systems(pair_dirs: tuple[Path, Path], l2r: Run, tmp_path: Path) -> None:
    gt, pred = pair_dirs
    geo = ROAD.with_georef(Georeference(CRS.from_epsg(32611), Affine(1, 0, 500000, 0, -1, 4000000)))
    write_graph(geo, gt / "region_9_graph_gt.geojson")
    line = _fails(l2r, tmp_path, "--gt", gt / "region_9_graph_gt.geojson", "--pred", pred)
    assert "tile region_9" in line and "georeferenced and the other is in pixels" in line


def test_bad_options(pair_dirs: tuple[Path, Path], l2r: Run, tmp_path: Path) -> None:
    gt, pred = pair_dirs
    base = ("--gt", gt, "--pred", pred)
    assert "unknown metric 'f1'" in _fails(l2r, tmp_path, *base, "--metrics", "topo,f1")
    assert "has no split 'ood'" in _fails(
        l2r, tmp_path, *base, "--dataset", "cityscale", "--split", "ood"
    )
    assert "give a directory of predictions" in _fails(
        l2r, tmp_path, "--gt", gt, "--pred", pred / "region_9.p"
    )
    assert "workers must be at least 1" in _fails(l2r, tmp_path, *base, "--workers", "0")
    write_graph(ROAD, pred / "region_9_graph.geojson")
    assert "--pred-glob" in _fails(l2r, tmp_path, *base)


def test_file_pairs_and_globs(pair_dirs: tuple[Path, Path], l2r: Run, tmp_path: Path) -> None:
    gt, pred = pair_dirs
    write_graph(ROAD, pred / "region_9_graph.geojson")
    result = l2r("eval", "--gt", gt / "region_9_graph_gt.pickle", "--pred", pred / "region_9.p")
    assert result.exit_code == 0, result.output
    assert "TOPO     P 1.0000" in result.stdout
    result = l2r(
        "eval", "--gt", gt, "--pred", pred, "--pred-glob", "*.geojson", "--metrics", "apls"
    )
    assert result.exit_code == 0, result.output
    assert "APLS     1.0000" in result.stdout
    result = l2r(
        "eval", "--gt", gt / "region_9_graph_gt.pickle", "--pred", pred, "--pred-glob", "*.p",
        "--metrics", "topo",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
