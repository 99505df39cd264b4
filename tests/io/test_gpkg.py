"""GeoPackage: written layers and metadata, exact round trips, foreign files, errors, atomicity."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from affine import Affine
from pyogrio import raw
from pyproj import CRS

from linegraph2road.errors import FormatError, InputFileError
from linegraph2road.georef import Georeference
from linegraph2road.graph import RoadGraph
from linegraph2road.io import read_graph, write_graph
from linegraph2road.io.gpkg import read_gpkg, write_gpkg

UTM = Georeference("EPSG:32611", Affine(0.5, 0.0, 660000.0, 0.0, -0.5, 4010000.0))
LONLAT = Georeference("EPSG:4326", Affine(1e-5, 0.0, -115.3, 0.0, -1e-5, 36.2))
CUSTOM = Georeference(  # no EPSG code: stored as WKT
    CRS.from_proj4("+proj=tmerc +lon_0=10.3 +k=0.9996 +x_0=500000 +ellps=GRS80 +units=m"),
    Affine(0.3, 0.0, 500100.0, 0.0, -0.3, 5000000.0),
)


def _graph(georef: Georeference | None = None, prob: bool = True) -> RoadGraph:
    """4 nodes, node 3 isolated; edges deliberately not in sorted order."""
    return RoadGraph.from_edges(
        [[0.0, 0.0], [10.0, 0.0], [10.0, 20.0], [3.0, 3.0]],
        [[1, 2], [0, 1]],
        [0.5, 1.0] if prob else None,
        georef,
    )


def _write_layer(
    path: Path,
    layer: str,
    geoms: list[Any],
    fields: dict[str, list[Any]] | None = None,
    *,
    geometry_type: str = "LineString",
    crs: str | None = "EPSG:32611",
    append: bool = False,
) -> None:
    """A layer written straight through pyogrio, as a foreign tool would."""
    fields = fields or {}
    raw.write(
        path,
        shapely.to_wkb(np.array(geoms, dtype=object)),
        [np.asarray(v) for v in fields.values()],
        list(fields),
        layer=layer,
        driver="GPKG",
        geometry_type=geometry_type,
        crs=crs,
        append=append,
    )


# -- what is written ------------------------------------------------------------------------------
def test_written_layers_fields_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "g.gpkg"
    write_gpkg(_graph(UTM), path)
    assert pyogrio.list_layers(path).tolist() == [["edges", "LineString"], ["nodes", "Point"]]

    info = pyogrio.read_info(path, layer="edges")
    assert info["crs"] == "EPSG:32611"
    assert info["fields"].tolist() == ["u", "v", "prob", "length"]
    assert info["dtypes"].tolist() == ["int64", "int64", "float32", "float64"]
    assert info["layer_metadata"] == {
        "l2r_coordinates": "crs",
        "crs": "EPSG:32611",
        "l2r_transform": json.dumps([0.5, 0.0, 660000.0, 0.0, -0.5, 4010000.0]),
        "l2r_length_unit": "m",
    }
    _, fids, wkb, (u, v, prob, length) = raw.read(path, layer="edges", return_fids=True)
    assert fids.tolist() == [1, 2]
    assert u.tolist() == [1, 0] and v.tolist() == [2, 1]
    assert prob.tolist() == [0.5, 1.0]
    assert length.tolist() == [10.0, 5.0]  # metres at 0.5 m/px
    assert shapely.get_coordinates(shapely.from_wkb(wkb)).tolist() == [
        [660005.0, 4010000.0],
        [660005.0, 4009990.0],
        [660000.0, 4010000.0],
        [660005.0, 4010000.0],
    ]

    meta, _, wkb, (node_id, x, y) = raw.read(path, layer="nodes")
    assert meta["crs"] == "EPSG:32611" and meta["fields"].tolist() == ["node_id", "x", "y"]
    assert node_id.tolist() == [0, 1, 2, 3]  # the isolated node 3 too
    xy = shapely.get_coordinates(shapely.from_wkb(wkb))
    assert xy.tolist() == [
        [660000.0, 4010000.0],
        [660005.0, 4010000.0],
        [660005.0, 4009990.0],
        [660001.5, 4009998.5],
    ]
    assert np.array_equal(xy, np.column_stack([x, y]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.gpkg"]


def test_pixel_graph_is_written_in_pixels_without_crs(tmp_path: Path) -> None:
    path = tmp_path / "p.gpkg"
    write_gpkg(_graph(prob=False), path)  # no "crs was not provided" warning (warnings are errors)
    info = pyogrio.read_info(path, layer="edges")
    assert info["crs"] is None
    assert info["fields"].tolist() == ["u", "v", "length"]
    assert info["layer_metadata"] == {"l2r_coordinates": "pixel", "l2r_length_unit": "px"}
    _, _, wkb, (_, _, length) = raw.read(path, layer="edges")
    assert length.tolist() == [20.0, 10.0]
    assert shapely.get_coordinates(shapely.from_wkb(wkb))[:2].tolist() == [
        [10.0, 0.0],
        [10.0, 20.0],
    ]


# -- round trips --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "georef", [None, UTM, LONLAT, CUSTOM], ids=["pixel", "utm", "lonlat", "wkt"]
)
@pytest.mark.parametrize("prob", [True, False], ids=["prob", "noprob"])
def test_round_trip_is_exact(tmp_path: Path, georef: Georeference | None, prob: bool) -> None:
    g = _graph(georef, prob)
    path = tmp_path / "g.gpkg"
    write_gpkg(g, path)
    back = read_gpkg(path)
    np.testing.assert_allclose(back.nodes, g.nodes, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(back.edges, g.edges)  # same order: [[1, 2], [0, 1]]
    if prob:
        assert back.edge_prob is not None and back.edge_prob.tolist() == [0.5, 1.0]
    else:
        assert back.edge_prob is None
    assert back.georef == georef


@pytest.mark.parametrize("prob", [None, []])
def test_graphs_without_edges(tmp_path: Path, prob: list[float] | None) -> None:
    """No edges: empty edge layer. Unlike GeoJSON, the ``prob`` field tells 'no probabilities'
    from 'probabilities of no edges', and both read back as written."""
    path = tmp_path / "g.gpkg"
    nodes_only = RoadGraph([[1.5, 2.5], [3.0, 4.0]], np.zeros((0, 2), np.int64), prob, UTM)
    write_gpkg(nodes_only, path)
    back = read_gpkg(path)
    assert back.nodes.tolist() == [[1.5, 2.5], [3.0, 4.0]] and back.num_edges == 0
    assert back.georef == UTM
    assert (back.edge_prob is None) == (prob is None)
    write_gpkg(RoadGraph.empty(), path)  # replaces the file
    empty = read_gpkg(path)
    assert (empty.num_nodes, empty.num_edges, empty.georef) == (0, 0, None)


def test_read_graph_and_write_graph_dispatch_on_extension(tmp_path: Path) -> None:
    path = tmp_path / "g.gpkg"
    write_graph(_graph(UTM), path)
    back = read_graph(path, layer="edges")
    assert back.equals(_graph(UTM), atol=1e-6) and back.georef == UTM


def test_like_places_the_graph_on_another_grid(tmp_path: Path) -> None:
    path = tmp_path / "g.gpkg"
    write_gpkg(_graph(UTM), path)
    coarse = Georeference("EPSG:32611", Affine(1.0, 0.0, 660000.0, 0.0, -1.0, 4010000.0))
    back = read_gpkg(path, like=coarse)
    assert back.georef == coarse
    np.testing.assert_allclose(back.nodes, _graph().nodes / 2.0, atol=1e-9)
    pixel = tmp_path / "p.gpkg"
    write_gpkg(_graph(), pixel)
    attached = read_gpkg(pixel, like=coarse)  # pixel files just get the grid
    assert attached.georef == coarse and attached.nodes.tolist() == _graph().nodes.tolist()


def test_on_a_rasterio_grid_in_the_same_process(tmp_path: Path) -> None:
    """rasterio and pyogrio each bundle a GDAL; both work side by side."""
    tif = tmp_path / "r.tif"
    profile = {"driver": "GTiff", "width": 8, "height": 8, "count": 1, "dtype": "uint8"}
    with rasterio.open(tif, "w", crs="EPSG:32611", transform=UTM.transform, **profile) as ds:
        ds.write(np.zeros((1, 8, 8), np.uint8))
    with rasterio.open(tif) as ds:
        like = Georeference.from_dataset(ds)
    assert like == UTM
    path = tmp_path / "g.gpkg"
    write_gpkg(_graph(like), path)
    back = read_gpkg(path, like=like)
    assert back.georef == UTM and back.equals(_graph(), atol=1e-9)


def test_edited_file_is_read_from_its_geometries(tmp_path: Path) -> None:
    """When u/v no longer match the lines (an edge moved in a GIS), the lines win."""
    path = tmp_path / "g.gpkg"
    write_gpkg(_graph(UTM, prob=False), path)
    _, _, wkb, fields = raw.read(path, layer="edges")
    lines = shapely.from_wkb(wkb)
    lines[1] = shapely.LineString([(660000.0, 4010000.0), (660000.0, 4009995.0)])
    edited = tmp_path / "edited.gpkg"
    info = pyogrio.read_info(path, layer="edges")
    raw.write(
        edited,
        shapely.to_wkb(lines),
        fields,
        info["fields"],
        layer="edges",
        driver="GPKG",
        geometry_type="LineString",
        crs="EPSG:32611",
        layer_metadata=info["layer_metadata"],
    )
    _, _, node_wkb, node_fields = raw.read(path, layer="nodes")
    raw.write(
        edited,
        node_wkb,
        node_fields,
        ["node_id", "x", "y"],
        layer="nodes",
        driver="GPKG",
        geometry_type="Point",
        crs="EPSG:32611",
        append=True,
    )
    back = read_gpkg(edited)
    assert back.georef == UTM
    assert back.nodes.tolist() == [[10.0, 0.0], [10.0, 20.0], [0.0, 0.0], [0.0, 10.0]]
    assert back.edges.tolist() == [[0, 1], [2, 3]]


# -- foreign files ------------------------------------------------------------------------------
def test_foreign_line_layer(tmp_path: Path) -> None:
    """One LineString/MultiLineString layer (z dropped, null geometry skipped) and a point layer."""
    path = tmp_path / "roads.gpkg"
    _write_layer(
        path,
        "pois",
        [shapely.Point(600001.0, 4000001.0)],
        geometry_type="Point",
    )
    _write_layer(
        path,
        "roads",
        [
            shapely.LineString([(600000, 4000010, 5), (600010, 4000010, 6), (600010, 4000000, 7)]),
            None,
            shapely.MultiLineString(
                [
                    [(600010, 4000000, 0), (600020, 4000000, 0)],
                    [(600000, 4000000, 0), (600000, 4000005, 0)],
                ]
            ),
        ],
        {"name": ["a", "b", "c"], "prob": [0.75, np.nan, 0.25]},
        geometry_type="MultiLineString Z",
        append=True,
    )
    g = read_gpkg(path)
    # Projected CRS without a recorded grid: 1 m/px, origin at (min x, max y).
    assert g.georef == Georeference("EPSG:32611", Affine(1.0, 0.0, 600000.0, 0.0, -1.0, 4000010.0))
    assert g.nodes.tolist() == [[0, 0], [10, 0], [10, 10], [20, 10], [0, 10], [0, 5]]
    assert g.edges.tolist() == [[0, 1], [1, 2], [2, 3], [4, 5]]
    assert g.edge_prob is not None and g.edge_prob.tolist() == [0.75, 0.75, 0.25, 0.25]


def test_foreign_lonlat_layer_goes_to_local_utm(tmp_path: Path) -> None:
    path = tmp_path / "ll.gpkg"
    _write_layer(
        path, "lines", [shapely.LineString([(-115.3, 36.2), (-115.3, 36.201)])], crs="EPSG:4326"
    )
    g = read_gpkg(path)
    assert g.georef is not None and g.georef.crs.to_epsg() == 32611  # 1 m/px UTM grid
    assert g.edge_prob is None
    assert g.total_length() == pytest.approx(111.0, abs=0.5)


def test_foreign_layer_without_crs_is_pixels(tmp_path: Path) -> None:
    path = tmp_path / "px.gpkg"
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        _write_layer(path, "lines", [shapely.LineString([(0.5, 0.5), (3.5, 0.5)])], crs=None)
    g = read_gpkg(path)
    assert g.georef is None and g.nodes.tolist() == [[0.5, 0.5], [3.5, 0.5]]


def test_layer_choice(tmp_path: Path) -> None:
    path = tmp_path / "two.gpkg"
    _write_layer(path, "a", [shapely.LineString([(0, 0), (1, 0)])])
    _write_layer(path, "b", [shapely.LineString([(0, 0), (0, 2), (2, 2)])], append=True)
    with pytest.raises(FormatError, match=r"several line layers \(a, b\); pass layer="):
        read_gpkg(path)
    assert read_gpkg(path, layer="b").num_edges == 2
    assert read_graph(path, layer="a").num_edges == 1
    with pytest.raises(FormatError, match=r"no layer 'c' in this GeoPackage \(layers: a \(Line"):
        read_gpkg(path, layer="c")


def test_no_line_layer(tmp_path: Path) -> None:
    path = tmp_path / "pts.gpkg"
    _write_layer(path, "pois", [shapely.Point(0, 0)], geometry_type="Point")
    with pytest.raises(FormatError) as info:
        read_gpkg(path)
    assert str(info.value) == (
        f"{path}: no LineString layer to read road centerlines from (layers: pois (Point))"
    )
    with pytest.raises(FormatError, match="layer 'pois' holds Point geometries; only LineString"):
        read_gpkg(path, layer="pois")


def test_wrong_geometry_in_a_generic_layer(tmp_path: Path) -> None:
    path = tmp_path / "mixed.gpkg"
    square = shapely.Polygon([(0, 0), (1, 0), (1, 1)])
    _write_layer(
        path, "mixed", [shapely.LineString([(0, 0), (1, 0)]), square], geometry_type="Unknown"
    )
    with pytest.raises(FormatError) as info:
        read_gpkg(path)
    assert str(info.value) == (
        f"{path}: feature fid=2 of layer 'mixed' is a Polygon geometry; only LineString and "
        "MultiLineString road centerlines can be read as a graph"
    )


def test_reading_writes_nothing_beside_the_input(tmp_path: Path) -> None:
    """GDAL would save dataset metadata to ``x.gpkg.aux.xml`` when it closes a read-only file."""
    path = tmp_path / "x.gpkg"
    line = shapely.to_wkb(np.array([shapely.LineString([(0, 0), (1, 0)])]))
    raw.write(
        path,
        line,
        [],
        [],
        layer="l",
        driver="GPKG",
        geometry_type="LineString",
        crs="EPSG:32611",
        dataset_metadata={"k": "v"},
    )
    read_gpkg(path)
    assert [p.name for p in tmp_path.iterdir()] == ["x.gpkg"]
    assert pyogrio.get_gdal_config_option("GDAL_PAM_ENABLED") is None  # restored


# -- bad input ----------------------------------------------------------------------------------
def test_not_a_geopackage(tmp_path: Path) -> None:
    text = tmp_path / "t.gpkg"
    text.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(FormatError) as info:
        read_gpkg(text)
    assert str(info.value) == f"{text}: not a GeoPackage (no SQLite header); is it another format?"
    db = tmp_path / "plain.gpkg"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (a INTEGER)")
    con.close()
    with pytest.raises(
        FormatError, match=r"plain\.gpkg: not a readable GeoPackage .*gpkg_contents"
    ):
        read_gpkg(db)


def test_truncated_file(tmp_path: Path) -> None:
    good = tmp_path / "good.gpkg"
    write_gpkg(_graph(UTM), good)
    bad = tmp_path / "bad.gpkg"
    bad.write_bytes(good.read_bytes()[:4096])
    with pytest.raises(FormatError, match=r"^\S+bad\.gpkg: not a readable GeoPackage \(") as info:
        read_gpkg(bad)
    assert "\n" not in str(info.value)


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        read_gpkg(tmp_path / "nope.gpkg")
    with pytest.raises(InputFileError, match="is a directory"):
        read_gpkg(tmp_path)


# -- atomic writes ------------------------------------------------------------------------------
def test_failed_write_keeps_the_old_file_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "g.gpkg"
    path.write_bytes(b"previous")
    real_write = raw.write

    def fail_on_nodes(*args: Any, **kwargs: Any) -> None:
        if kwargs.get("layer") == "nodes":  # after the edges layer is already in the file
            raise OSError("disk full")
        real_write(*args, **kwargs)

    monkeypatch.setattr(raw, "write", fail_on_nodes)
    with pytest.raises(OSError, match="disk full"):
        write_gpkg(_graph(UTM), path)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["g.gpkg"]


# -- real data ----------------------------------------------------------------------------------
def test_real_spacenet_labels_on_the_tile_grid(fixtures_dir: Path, tmp_path: Path) -> None:
    folder = fixtures_dir / "spacenet_vegas"
    with rasterio.open(folder / "RGB-PanSharpen_AOI_2_Vegas_img0.tif") as ds:
        like = Georeference.from_dataset(ds)
    assert like is not None
    g = read_graph(folder / "AOI_2_Vegas_img0_gt.geojson", like=like)
    path = tmp_path / "vegas.gpkg"
    write_graph(g, path)
    assert pyogrio.read_info(path, layer="edges")["crs"] == "EPSG:4326"
    back = read_graph(path)
    assert (back.num_nodes, back.num_edges) == (94, 114)
    assert back.georef == like
    np.testing.assert_allclose(back.nodes, g.nodes, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(back.edges, g.edges)


def test_write_layers_nulls_empty_layers_and_strings(tmp_path: Path) -> None:
    from linegraph2road.io.gpkg import GpkgLayer, write_layers

    lines = shapely.linestrings([[[0, 0], [1, 1]], [[2, 2], [3, 3]]])
    layers = [
        GpkgLayer(
            "roads",
            "LineString",
            lines,
            {
                "way": np.array([7, -1], dtype=np.int64),
                "kind": np.array(["residential", ""], dtype=object),
                "score": np.array([0.5, np.nan]),
            },
            nulls={"way": np.array([False, True])},
            metadata={"note": "x"},
        ),
        GpkgLayer("none", "LineString", lines[:0], {"way": np.zeros(0, dtype=np.int64)}),
    ]
    path = tmp_path / "layers.gpkg"
    write_layers(path, layers, crs="EPSG:32635")
    assert [list(x) for x in pyogrio.list_layers(path)] == [
        ["roads", "LineString"],
        ["none", "LineString"],
    ]
    meta, _, wkb, (way, kind, score) = raw.read(path, layer="roads")
    assert meta["crs"] == "EPSG:32635"
    assert shapely.equals(shapely.from_wkb(wkb), lines).all()
    assert way[0] == 7 and np.isnan(float(way[1]))  # null
    assert kind.tolist() == ["residential", ""] and np.isnan(score[1])
    assert pyogrio.read_info(path, layer="roads")["layer_metadata"] == {"note": "x"}
    assert len(raw.read(path, layer="none")[2]) == 0
