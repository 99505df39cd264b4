"""``l2r diff`` end to end: the real OSM fixture with known changes, a raster, and bad input."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from linegraph2road.io import write_graph
from linegraph2road.io.raster import read_mask
from tests.cli.conftest import one_line_error
from tests.mapdiff.scenario import Scenario, build_scenario, shifted


@pytest.fixture(scope="module")
def scenario(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return build_scenario(fixtures_dir, tmp_path_factory.mktemp("cli_diff"))


@pytest.fixture(scope="module")
def pred_file(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pred") / "pred.geojson"
    write_graph(scenario.pred, path)
    return path


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_diff_osm_reference(l2r, scenario: Scenario, pred_file: Path, tmp_path: Path) -> None:
    import osmium
    import pyogrio

    out = tmp_path / "changes.gpkg"
    res = l2r(
        "diff", "--pred", pred_file, "--ref", scenario.ref_path, "-o", out, "--tolerance", "8m"
    )
    assert res.exit_code == 0, res.output
    assert "missing_from_ref" in res.stdout and "share of the reference confirmed" in res.stdout
    assert _files(tmp_path) == {"changes.gpkg", "changes.json", "changes.osm"}
    summary = json.loads((tmp_path / "changes.json").read_text())
    assert 3.9 < summary["km"]["missing_from_ref"] < 4.1  # 4.08 km of roads were removed
    assert summary["km"]["not_seen"] == pytest.approx(0.79, abs=0.01)  # the fake roads
    assert summary["options"]["tolerance"] == 8.0 and summary["crs"] == "EPSG:32635"
    assert summary["inputs"]["ref"] == str(scenario.ref_path)
    assert len(pyogrio.list_layers(out)) == 4
    ways = [
        (w.id, w.tags["highway"])
        for w in osmium.FileProcessor(str(tmp_path / "changes.osm"))
        if w.is_way()
    ]
    assert len(ways) == summary["counts"]["missing_roads"] > 0
    assert all(i < 0 and highway == "road" for i, highway in ways)


def test_diff_with_raster_writes_the_overlay(l2r, fixtures_dir: Path, tmp_path: Path) -> None:
    import rasterio

    vegas = fixtures_dir / "spacenet_vegas"
    tif = vegas / "RGB-PanSharpen_AOI_2_Vegas_img0.tif"
    res = l2r(
        "diff",
        "--pred", vegas / "AOI_2_Vegas_img0_prop.gpickle",
        "--ref", vegas / "AOI_2_Vegas_img0_gt.geojson",
        "--raster", tif,
        "-o", tmp_path / "vegas.gpkg",
        "--json", tmp_path / "summary.json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert _files(tmp_path) == {"vegas.gpkg", "summary.json", "vegas.osm", "vegas.png"}
    blue, _ = read_mask(tmp_path / "vegas.png", band=3)  # an RGB picture the raster's size
    with rasterio.open(tif) as src:
        assert blue.shape == (src.height, src.width)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["crs"] == "EPSG:32611"
    assert summary["share_of_reference_confirmed"] > 0.9  # a good proposal for this tile
    assert summary["outputs"]["overlay"] == str(tmp_path / "vegas.png")


# -- bad input: one line, exit code 2, nothing written -------------------------------------------
def _fails(l2r, folder: Path, *args: object, match: str) -> None:  # type: ignore[no-untyped-def]
    before = _files(folder)
    line = one_line_error(l2r("diff", *args, "-o", folder / "changes.gpkg"))
    assert match in line, line
    assert _files(folder) == before  # no output, no temporary file left


def test_graphs_without_overlap(l2r, scenario: Scenario, tmp_path: Path) -> None:
    far = tmp_path / "far.geojson"
    write_graph(shifted(scenario.pred, dx=30_000.0, dy=0.0), far)
    _fails(l2r, tmp_path, "--pred", far, "--ref", scenario.ref_path, match="do not overlap")


def test_reference_without_roads_in_the_area(l2r, pred_file: Path, tmp_path: Path) -> None:
    osm = tmp_path / "footways.osm"
    osm.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="test">\n'
        '<bounds minlat="60.52" minlon="26.93" maxlat="60.54" maxlon="26.97"/>\n'
        '<node id="1" lat="60.53" lon="26.94"/><node id="2" lat="60.531" lon="26.941"/>\n'
        '<way id="1"><nd ref="1"/><nd ref="2"/><tag k="highway" v="footway"/></way>\n</osm>\n',
        encoding="utf-8",
    )
    _fails(l2r, tmp_path, "--pred", pred_file, "--ref", osm, match="reference has no roads")
    res = l2r("diff", "--pred", pred_file, "--ref", osm, "-o", tmp_path / "c.gpkg", "--allow-empty")
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "c.json").read_text())
    assert summary["km"]["matched"] == 0 and summary["km"]["missing_from_ref"] > 40


def test_unknown_crs(l2r, scenario: Scenario, tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::999999"}},
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {"type": "LineString", "coordinates": [[0, 0], [100, 0]]},
                    }
                ],
            }
        )
    )
    _fails(l2r, tmp_path, "--pred", bad, "--ref", scenario.ref_path, match="coordinate reference")
    pixels = tmp_path / "pixels.p"  # a City-scale pickle: pixel coordinates, no CRS at all
    pixels.write_bytes(pickle.dumps({(10, 10): [(10, 50)], (10, 50): [(10, 10)]}, protocol=2))
    _fails(l2r, tmp_path, "--pred", pixels, "--ref", scenario.ref_path, match="pixel coordinates")


def test_bad_outputs_and_an_existing_file_is_kept(
    l2r, scenario: Scenario, pred_file: Path, tmp_path: Path
) -> None:
    line = one_line_error(
        l2r("diff", "--pred", pred_file, "--ref", scenario.ref_path, "-o", tmp_path / "c.txt")
    )
    assert "GeoPackage" in line
    old = tmp_path / "changes.gpkg"
    old.write_bytes(b"previous result")
    far = tmp_path / "far.geojson"
    write_graph(shifted(scenario.pred, dx=0.0, dy=-40_000.0), far)
    _fails(l2r, tmp_path, "--pred", far, "--ref", scenario.ref_path, match="do not overlap")
    assert old.read_bytes() == b"previous result"
    args = ("--pred", pred_file, "--ref", scenario.ref_path, "-o", tmp_path / "c.gpkg")
    assert "overwrite an input" in one_line_error(l2r("diff", *args, "--osm", scenario.ref_path))


def test_osm_fixture_against_itself(l2r, fixtures_dir: Path, tmp_path: Path) -> None:
    import osmium

    osm = fixtures_dir / "osm" / "finland_motorway_test.osm.pbf"
    res = l2r("diff", "--pred", osm, "--ref", osm, "-o", tmp_path / "self.gpkg")
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "self.json").read_text())
    assert summary["km"]["missing_from_ref"] == 0 and summary["km"]["not_seen"] == 0
    assert summary["share_of_reference_confirmed"] == 1.0
    assert not [o for o in osmium.FileProcessor(str(tmp_path / "self.osm")) if o.is_way()]
