"""Outputs of a map diff: GeoPackage layers, the JOSM file, the overlay, the summary text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from affine import Affine

from linegraph2road.data_prep import load_roads
from linegraph2road.georef import Georeference, transform_points
from linegraph2road.graph import RoadGraph
from linegraph2road.io.raster import write_raster
from linegraph2road.mapdiff import (
    CLASSES,
    JOSM_SOURCE,
    DiffOptions,
    MapDiff,
    diff_graphs,
    draw_changes,
    raster_footprint,
    read_overlay_image,
    summary_text,
    write_changes_gpkg,
    write_josm,
)
from linegraph2road.overlay import COLORS
from tests.mapdiff.grid import GRID, X0, Y0, on_grid
from tests.mapdiff.scenario import Scenario, build_scenario


@pytest.fixture(scope="module")
def scenario(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return build_scenario(fixtures_dir, tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def changes(scenario: Scenario) -> MapDiff:
    return diff_graphs(scenario.pred, scenario.ref)


def _read_osm(path: Path) -> tuple[dict[int, tuple[float, float]], list[tuple[int, list, dict]]]:
    import osmium

    nodes: dict[int, tuple[float, float]] = {}
    ways: list[tuple[int, list, dict]] = []
    for obj in osmium.FileProcessor(str(path)):
        if isinstance(obj, osmium.osm.Node):
            nodes[obj.id] = (obj.location.lon, obj.location.lat)
        elif isinstance(obj, osmium.osm.Way):
            ways.append((obj.id, [n.ref for n in obj.nodes], dict(obj.tags)))
    return nodes, ways


def test_geopackage_layers(changes: MapDiff, tmp_path: Path) -> None:
    import pyogrio
    from pyogrio import raw

    path = tmp_path / "changes.gpkg"
    write_changes_gpkg(changes, path)
    layers = {str(n): str(t) for n, t in pyogrio.list_layers(path).tolist()}
    assert layers == {k: "LineString" for k in CLASSES}
    area = changes.area.buffer(1e-3)
    for kind in CLASSES:
        meta, _, wkb, values = raw.read(path, layer=kind)
        assert meta["crs"] == "EPSG:32635"
        geoms = shapely.from_wkb(wkb)
        fields = dict(zip(meta["fields"].tolist(), values, strict=True))
        assert len(geoms) == len(changes.layers()[kind]["geometry"])
        assert shapely.covers(area, geoms).all(), kind  # inside the compared area
        np.testing.assert_allclose(fields["length_m"], shapely.length(geoms), rtol=1e-9)
        assert float(fields["length_m"].sum()) / 1000 == pytest.approx(changes.km(kind))
    meta, _, _, values = raw.read(path, layer="not_seen")
    fields = dict(zip(meta["fields"].tolist(), values, strict=True))
    assert (fields["osm_way_id"] >= 9_000_000_000).all()
    assert set(fields["highway"].tolist()) == {"residential"}
    meta, _, _, values = raw.read(path, layer="missing_from_ref")
    fields = dict(zip(meta["fields"].tolist(), values, strict=True))
    assert set(fields["connection"].tolist()) <= {"both_ends", "one_end", "isolated"}
    assert np.isnan(fields["confidence"]).all()  # OSM has no probabilities: null
    info = pyogrio.read_info(path, layer="missing_from_ref")
    assert '"missing_roads"' in info["layer_metadata"]["l2r_summary"]


def test_unknown_way_ids_are_null(tmp_path: Path) -> None:
    from pyogrio import raw

    pred = on_grid([[0.0, 50], [100, 50]], [[0, 1]], [0.8])
    ref = on_grid([[0.0, 52], [100, 52], [0, 90], [100, 90]], [[0, 1], [2, 3]])
    d = diff_graphs(pred, ref)
    write_changes_gpkg(d, tmp_path / "c.gpkg")
    meta, _, _, values = raw.read(tmp_path / "c.gpkg", layer="confirmed")
    fields = dict(zip(meta["fields"].tolist(), values, strict=True))
    assert len(fields["osm_way_id"]) == 5 and np.isnan(fields["osm_way_id"].astype(float)).all()
    meta, _, _, values = raw.read(tmp_path / "c.gpkg", layer="matched")
    fields = dict(zip(meta["fields"].tolist(), values, strict=True))
    np.testing.assert_allclose(fields["confidence"], 0.8, rtol=1e-6)


def test_josm_file(changes: MapDiff, tmp_path: Path) -> None:
    path = tmp_path / "changes.osm"
    write_josm(changes, path)
    head = path.read_text(encoding="utf-8")[:300]
    assert 'upload="false"' in head and "<bounds" in head
    nodes, ways = _read_osm(path)
    assert len(ways) == len(changes.missing) > 0
    assert all(i < 0 for i in nodes) and all(w < 0 for w, _, _ in ways)
    for _, refs, tags in ways:
        assert tags == {"highway": "road", "source": JOSM_SOURCE}
        assert all(r in nodes for r in refs) and len(refs) >= 2
    # roads that meet share their node: fewer nodes than way ends + interiors counted apart
    assert len(nodes) < sum(len(r) for _, r, _ in ways)
    lonlat = np.array(list(nodes.values()))
    xy = transform_points(lonlat, "EPSG:4326", changes.crs)
    assert shapely.covers(changes.area.buffer(0.01), shapely.points(xy)).all()
    # the ways lie on the missing roads
    length = sum(
        shapely.length(
            shapely.linestrings(
                transform_points([nodes[r] for r in refs], "EPSG:4326", changes.crs)
            )
        )
        for _, refs, _ in ways
    )
    assert length / 1000 == pytest.approx(changes.km("missing_from_ref"), rel=1e-6)


def test_josm_splits_ways_of_more_than_2000_nodes(tmp_path: Path) -> None:
    x = np.arange(2501, dtype=float)
    pred = RoadGraph(
        np.stack([x, np.full_like(x, 50)], axis=1),
        np.stack([x[:-1], x[1:]], 1).astype(int),
        None,
        GRID,
    )
    ref = on_grid([[0.0, 300], [2500, 300]], [[0, 1]], extent=(-50, -50, 2550, 350))
    d = diff_graphs(pred, ref, options=DiffOptions(allow_empty=True))  # no map in its box
    assert len(d.missing) == 1
    write_josm(d, tmp_path / "long.osm")
    _, ways = _read_osm(tmp_path / "long.osm")
    assert [len(r) for _, r, _ in ways] == [2000, len(d.missing.nodes[0]) - 1999]
    assert ways[0][1][-1] == ways[1][1][0]  # consecutive ways share their node


def test_overlay_draws_the_classes(tmp_path: Path) -> None:
    pred = on_grid([[0.0, 50], [100, 50], [50, 100], [50, 190]], [[0, 1], [2, 3]])
    ref = on_grid(
        [[0.0, 52], [100, 52], [150, 0], [150, 190]], [[0, 1], [2, 3]], extent=(-20, -20, 180, 210)
    )
    image_grid = Georeference("EPSG:32635", Affine(0.5, 0.0, X0 - 10, 0.0, -0.5, Y0 + 10))
    d = diff_graphs(pred, ref, footprint=raster_footprint(image_grid, (420, 360)))
    tif = tmp_path / "tile.tif"
    write_raster(tif, np.full((3, 420, 360), 200, np.uint8), georef=image_grid)
    image, grid = read_overlay_image(tif, max_side=210)  # shrunk to 1 m/px
    assert image.shape == (210, 180, 3) and grid.gsd() == pytest.approx(1.0)
    canvas = draw_changes(d, image, grid)
    # pixel (col, row) of a point (x, y) of GRID: (x + 10, y + 10)
    assert tuple(canvas[150, 60]) == COLORS["positive"]  # the missing road at x = 50
    assert tuple(canvas[100, 160]) == COLORS["missed"]  # the unseen road at x = 150
    assert tuple(canvas[20, 5]) != COLORS["positive"]
    assert canvas[61, 40].tolist() in (list(COLORS["gt"]), list(COLORS["pred"]))


def test_summary_text(changes: MapDiff) -> None:
    text = summary_text(changes.summary())
    assert "missing_from_ref" in text and "share of the reference confirmed: 98." in text


def test_fixture_reference_extent_and_tags(fixtures_dir: Path) -> None:
    osm = load_roads(fixtures_dir / "osm" / "finland_motorway_test.osm.pbf")
    d = diff_graphs(osm.graph, osm)
    s = d.summary()
    assert s["area_lonlat_bounds"] == pytest.approx([26.93, 60.52, 26.97, 60.54], abs=2e-5)
    assert s["reference_km_by_highway"]["motorway"]["not_seen"] == 0.0
