"""GeoJSON: written structure, foreign files, CRS handling and the real SpaceNet labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine

from linegraph2road.errors import FormatError, InputFileError
from linegraph2road.georef import Georeference, geodesic_length
from linegraph2road.graph import RoadGraph
from linegraph2road.io.geojson import read_geojson, write_geojson

UTM = Georeference("EPSG:32611", Affine(0.5, 0.0, 660000.0, 0.0, -0.5, 4010000.0))


def _write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


def _fc(*geometries: dict[str, Any], props: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    props = props or [{} for _ in geometries]
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": p, "geometry": g}
            for g, p in zip(geometries, props, strict=True)
        ],
    }


def _line(*coords: list[float]) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": list(coords)}


def test_pixel_graph_is_written_in_pixels(tmp_path: Path) -> None:
    g = RoadGraph.from_edges([[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]], [[0, 1]], edge_prob=[0.25])
    path = tmp_path / "g.geojson"
    write_geojson(g, path)
    doc = json.loads(path.read_text())
    assert "crs" not in doc
    assert doc["l2r"]["coordinates"] == "pixel"
    assert doc["l2r"]["isolated_nodes"] == {"index": [2], "coordinates": [[9.0, 9.0]]}
    [feature] = doc["features"]
    assert feature["properties"] == {"u": 0, "v": 1, "prob": 0.25}
    assert feature["geometry"] == _line([1.0, 2.0], [3.0, 4.0])
    assert read_geojson(path).equals(g)


def test_georeferenced_graph_is_rfc7946_lonlat(tmp_path: Path) -> None:
    g = RoadGraph.from_edges([[0.0, 0.0], [200.0, 0.0]], [[0, 1]], georef=UTM)
    path = tmp_path / "g.geojson"
    write_geojson(g, path)
    doc = json.loads(path.read_text())
    assert "crs" not in doc
    assert doc["l2r"]["coordinates"] == "lonlat"
    assert doc["l2r"]["georef"] == UTM.to_dict()
    coords = np.array(doc["features"][0]["geometry"]["coordinates"])
    np.testing.assert_allclose(coords, UTM.pixel_to_lonlat(g.nodes), rtol=0, atol=1e-12)
    assert -118 < coords[0, 0] < -114 and 36 < coords[0, 1] < 37
    length = doc["features"][0]["properties"]["length_m"]
    # Projected CRS: grid distance in metres (200 px at 0.5 m/px), close to the geodesic one.
    assert length == pytest.approx(100.0, rel=1e-12)
    assert length == pytest.approx(geodesic_length(coords), rel=1e-3)
    back = read_geojson(path)
    assert back.georef == UTM
    assert back.equals(g, atol=1e-6)


def test_foreign_lines_share_identical_vertices_in_first_appearance_order(tmp_path: Path) -> None:
    doc = _fc(
        _line([0, 0, 5.0], [10, 0, 5.0], [10, 10, 7.0]),
        {"type": "MultiLineString", "coordinates": [[[10, 10], [0, 10]], [[20, 20], [10, 0]]]},
    )
    g = read_geojson(_write(tmp_path / "f.geojson", doc), coordinates="pixel")
    np.testing.assert_array_equal(g.nodes, [[0, 0], [10, 0], [10, 10], [0, 10], [20, 20]])
    np.testing.assert_array_equal(g.edges, [[0, 1], [1, 2], [2, 3], [1, 4]])  # file order
    assert g.georef is None


def test_feature_and_bare_geometry(tmp_path: Path) -> None:
    line = _line([1, 1], [2, 2])
    feature = {"type": "Feature", "properties": None, "geometry": line}
    for doc in (feature, line):
        g = read_geojson(_write(tmp_path / "x.geojson", doc), coordinates="pixel")
        np.testing.assert_array_equal(g.nodes, [[1, 1], [2, 2]])
        assert g.num_edges == 1


@pytest.mark.parametrize(
    ("geometry", "kind"),
    [
        ({"type": "Point", "coordinates": [1, 2]}, "Point"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}, "Polygon"),
    ],
)
def test_other_geometries_are_refused(tmp_path: Path, geometry: Any, kind: str) -> None:
    path = _write(tmp_path / "p.geojson", _fc(_line([0, 0], [1, 1]), geometry))
    with pytest.raises(FormatError, match=f"feature 1 is a {kind} geometry"):
        read_geojson(path)


def test_empty_collection_and_null_geometry(tmp_path: Path) -> None:
    assert read_geojson(_write(tmp_path / "e.geojson", _fc())).num_nodes == 0
    doc = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": None}]}
    assert read_geojson(_write(tmp_path / "n.geojson", doc)).num_edges == 0


def test_prob_only_when_every_feature_has_one(tmp_path: Path) -> None:
    lines = (_line([0, 0], [1, 0], [2, 0]), _line([5, 5], [6, 6]))
    both = _fc(*lines, props=[{"prob": 0.5}, {"prob": 0.75}])
    g = read_geojson(_write(tmp_path / "a.geojson", both), coordinates="pixel")
    np.testing.assert_array_equal(g.edge_prob, np.array([0.5, 0.5, 0.75], dtype=np.float32))
    one = _fc(*lines, props=[{"prob": 0.5}, {}])
    assert read_geojson(_write(tmp_path / "b.geojson", one), coordinates="pixel").edge_prob is None


def test_lonlat_without_grid_goes_to_local_utm(tmp_path: Path) -> None:
    doc = _fc(_line([-115.17, 36.24], [-115.169, 36.24]))
    g = read_geojson(_write(tmp_path / "ll.geojson", doc))
    assert g.georef is not None and g.georef.crs.to_epsg() == 32611
    assert g.georef.transform.a == 1.0 and g.georef.transform.e == -1.0
    expected = geodesic_length([[-115.17, 36.24], [-115.169, 36.24]])
    assert g.total_length() == pytest.approx(expected, rel=2e-3)  # UTM scale factor


def test_legacy_crs_members(tmp_path: Path) -> None:
    projected = _fc(_line([660010.0, 4010000.0], [660000.0, 4010020.0]))
    projected["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32611"}}
    g = read_geojson(_write(tmp_path / "p.geojson", projected))
    assert g.georef is not None and g.georef.crs.to_epsg() == 32611
    np.testing.assert_allclose(g.nodes, [[10.0, 20.0], [0.0, 0.0]])  # origin (min x, max y)
    g2 = read_geojson(tmp_path / "p.geojson", like=UTM)
    np.testing.assert_allclose(g2.nodes, [[20.0, 0.0], [0.0, -40.0]], atol=1e-9)
    crs84 = _fc(_line([-115.17, 36.24], [-115.169, 36.24]))
    crs84["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    g3 = read_geojson(_write(tmp_path / "c.geojson", crs84))
    assert g3.georef is not None and g3.georef.crs.to_epsg() == 32611


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "invalid JSON"),
        ("[1, 2]", "expected an object with a 'type' member"),
        ('{"type": "Topology"}', "unknown type 'Topology'"),
        ('{"type": "FeatureCollection"}', "without a 'features' list"),
        ('{"type": "LineString", "coordinates": [[0, "a"]]}', "invalid position"),
        ('{"type": "LineString", "coordinates": [[0, 0]]}', None),
    ],
)
def test_bad_documents(tmp_path: Path, content: str, message: str | None) -> None:
    path = tmp_path / "bad.geojson"
    path.write_text(content)
    if message is None:  # a one-vertex line is a lone node, not an error
        assert read_geojson(path, coordinates="pixel").num_nodes == 1
        return
    with pytest.raises(FormatError, match=message):
        read_geojson(path)


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputFileError):
        read_geojson(tmp_path / "nope.geojson")
    with pytest.raises(InputFileError):
        read_geojson(tmp_path)


def test_real_spacenet_labels_on_the_tile_grid(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "spacenet_vegas"
    with rasterio.open(folder / "RGB-PanSharpen_AOI_2_Vegas_img0.tif") as ds:
        like = Georeference.from_dataset(ds)
        width, height = ds.width, ds.height
    assert like is not None
    g = read_geojson(folder / "AOI_2_Vegas_img0_gt.geojson", like=like)
    assert (g.num_nodes, g.num_edges) == (94, 114)
    assert g.georef == like
    # The labels overhang the tile's east edge by 4.07 px (1.1 m); everything else is inside.
    assert g.nodes.min() >= 0.0
    assert g.nodes[:, 0].max() < width + 5 and g.nodes[:, 1].max() <= height
    assert np.mean(g.nodes[:, 0] <= width) > 0.9
    own = read_geojson(folder / "AOI_2_Vegas_img0_gt.geojson")
    assert own.georef is not None and own.georef.crs.to_epsg() == 32611
    assert own.total_length() == pytest.approx(4461.2, rel=1e-3)  # metres
