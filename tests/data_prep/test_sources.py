"""Road sources: format dispatch, SpaceNet GeoJSON tags, benchmark pickles, roads_on_grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from linegraph2road.data_prep.grid import TileGrid
from linegraph2road.data_prep.osm import LONLAT
from linegraph2road.data_prep.sources import (
    guess_source_format,
    load_roads,
    read_spacenet_geojson,
    roads_on_grid,
)
from linegraph2road.errors import FormatError, GeoreferenceError
from linegraph2road.graph import RoadGraph
from linegraph2road.io import write_graph


def _feature(coords: list, **props: object) -> dict:
    return {
        "type": "Feature",
        "properties": props,
        "geometry": {"type": "LineString", "coordinates": coords},
    }


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.osm.pbf", "osm"),
        ("a.OSM", "osm"),
        ("a.osm.bz2", "osm"),
        ("a.geojson", "geojson"),
        ("region_1_graph_gt.pickle", "cityscale"),
        ("x__gt_graph.p", "cityscale"),
        ("g.graphml", "graphml"),
    ],
)
def test_guess_source_format(name: str, fmt: str) -> None:
    assert guess_source_format(name) == fmt


def test_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="unknown road source format"):
        load_roads(tmp_path / "a.p", format="shapefile")
    with pytest.raises(FormatError, match="extension"):
        load_roads(tmp_path / "a.xyz")


def test_spacenet_geojson_tags(tmp_path: Path) -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            _feature(
                [[-115.0, 36.0], [-115.001, 36.0], [-115.002, 36.001]],
                bridge_type="2",
                road_type="5",
            ),
            # shares the vertex (-115.001, 36.0): joined; a bridge (int form, old key name)
            _feature([[-115.001, 36.0], [-115.001, 36.002]], bridge_typ=1, road_type=1),
            _feature([[-115.003, 36.0], [-115.003, 36.0], [-115.004, 36.0]], bridge_type="3"),
        ],
    }
    path = tmp_path / "roads.geojson"
    path.write_text(json.dumps(doc))
    t = load_roads(path)
    g = t.graph
    assert t.tagged and g.georef == LONLAT
    np.testing.assert_array_equal(
        g.nodes,
        [
            [-115.0, 36.0],
            [-115.001, 36.0],
            [-115.002, 36.001],
            [-115.001, 36.002],
            [-115.003, 36.0],
            [-115.004, 36.0],
        ],
    )
    np.testing.assert_array_equal(g.edges, [[0, 1], [1, 2], [1, 3], [4, 5]])
    np.testing.assert_array_equal(t.bridge, [False, False, True, False])  # 3 = unknown: no
    assert t.highway.tolist() == ["residential", "residential", "motorway", ""]
    assert not t.tunnel.any() and not t.layer.any()


def test_geojson_without_bridge_attribute_is_untagged(tmp_path: Path) -> None:
    path = tmp_path / "plain.geojson"
    path.write_text(
        json.dumps(
            {"type": "FeatureCollection", "features": [_feature([[0.0, 0.0], [0.001, 0.0]])]}
        )
    )
    assert not read_spacenet_geojson(path).tagged


def test_spacenet_vegas_on_its_raster(fixtures_dir: Path) -> None:
    d = fixtures_dir / "spacenet_vegas"
    grid = TileGrid.from_raster(d / "RGB-PanSharpen_AOI_2_Vegas_img0.tif")
    t = roads_on_grid(d / "AOI_2_Vegas_img0_gt.geojson", grid)
    assert t.tagged and not t.bridge.any()  # every feature says bridge_type "2"
    assert set(t.highway.tolist()) == {"primary", "unclassified"}
    n = t.graph.nodes
    assert t.graph.num_edges > 100
    assert ((n >= 0) & (n <= 1300)).all()
    assert t.graph.georef == grid.georef


def test_pickles_are_untagged_pixel_graphs(fixtures_dir: Path, tmp_path: Path) -> None:
    gt = load_roads(fixtures_dir / "cityscale_example" / "gt.p")
    assert not gt.tagged and gt.graph.georef is None and gt.graph.num_nodes == 3696
    assert gt.graph.meta["source"].endswith("gt.p")
    g = RoadGraph(np.array([[10.5, 20.5], [30.5, 20.5]]), np.array([[0, 1]]))
    write_graph(g, tmp_path / "x__gt_graph.p", "samroad-spacenet")
    sn = load_roads(tmp_path / "x__gt_graph.p", format="samroad-spacenet")
    np.testing.assert_allclose(sn.graph.nodes, g.nodes)
    assert not sn.tagged


def test_roads_on_grid_no_overlap(fixtures_dir: Path) -> None:
    far = TileGrid.from_bounds((-115.2, 36.2, -115.19, 36.21), crs="EPSG:4326", gsd=1.0)
    with pytest.raises(GeoreferenceError, match="do not overlap"):
        roads_on_grid(fixtures_dir / "osm" / "finland_motorway_test.osm.pbf", far)
