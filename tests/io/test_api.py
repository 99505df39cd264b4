"""The package API: format names, guessing, read_graph / write_graph, errors, atomic writes."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

import linegraph2road.io as l2rio
from linegraph2road.errors import FormatError, GraphError, InputFileError
from linegraph2road.georef import Georeference
from linegraph2road.graph import RoadGraph
from linegraph2road.io import GRAPH_FORMATS, guess_format, read_graph, write_graph

EXTENSION = {
    "geojson": ".geojson",
    "graphml": ".graphml",
    "cityscale": ".p",
    "samroad-spacenet": ".p",
    "sat2graph-json": ".json",
    "gpickle": ".gpickle",
    "gpkg": ".gpkg",
    "geoparquet": ".parquet",
}


def test_public_names() -> None:
    assert GRAPH_FORMATS == (
        "geojson",
        "graphml",
        "cityscale",
        "samroad-spacenet",
        "sat2graph-json",
        "gpickle",
        "gpkg",
        "geoparquet",
    )
    for name in l2rio.__all__:
        assert hasattr(l2rio, name)
    assert "read_raster" not in l2rio.__all__


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.geojson", "geojson"),
        ("a.GraphML", "graphml"),
        ("a.p", "cityscale"),
        ("a.pickle", "cityscale"),
        ("a.pkl", "cityscale"),
        ("a.gpickle", "gpickle"),
        ("a.GPKG", "gpkg"),
    ],
)
def test_guess_by_extension(name: str, fmt: str) -> None:
    assert guess_format(name) == fmt  # no file needed


def test_guess_json_by_content(tmp_path: Path) -> None:
    geo = tmp_path / "a.json"
    geo.write_text('{"type": "FeatureCollection", "features": []}')
    assert guess_format(geo) == "geojson"
    s2g = tmp_path / "b.json"
    s2g.write_text("[[[41.0, -71.0]], []]")
    assert guess_format(s2g) == "sat2graph-json"
    other = tmp_path / "c.json"
    other.write_text('{"nodes": []}')
    with pytest.raises(FormatError, match="pass format= one of: geojson, graphml"):
        guess_format(other)
    with pytest.raises(InputFileError):
        guess_format(tmp_path / "missing.json")


def test_unknown_extension_lists_formats() -> None:
    with pytest.raises(FormatError, match=r"extension '\.txt'.*geojson, graphml, cityscale"):
        guess_format("graph.txt")


def test_read_errors(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        read_graph(tmp_path / "missing.geojson")
    folder = tmp_path / "dir.geojson"
    folder.mkdir()
    with pytest.raises(InputFileError, match="is a directory"):
        read_graph(folder)
    path = tmp_path / "x.p"
    path.write_bytes(pickle.dumps([1, 2], protocol=2))
    with pytest.raises(FormatError) as info:
        read_graph(path)
    assert str(info.value) == (
        f"{path}: not a City-scale graph pickle "
        "(expected a dict {(row, col): [neighbours]}, got list)"
    )
    with pytest.raises(FormatError, match="unknown graph format 'shapefile'"):
        read_graph(path, "shapefile")


@pytest.mark.parametrize("fmt", GRAPH_FORMATS)
def test_write_then_read_each_format(tmp_path: Path, fmt: str) -> None:
    g = RoadGraph.from_edges([[0.5, 0.5], [10.5, 0.5], [10.5, 20.5]], [[0, 1], [1, 2]])
    path = tmp_path / f"g{EXTENSION[fmt]}"
    write_graph(g, path, fmt)
    back = read_graph(path, fmt if fmt in ("samroad-spacenet", "sat2graph-json") else None)
    assert back.equals(g, atol=1e-9)


def test_write_json_needs_a_format(tmp_path: Path) -> None:
    g = RoadGraph.empty()
    with pytest.raises(FormatError, match="pass format='geojson' or format='sat2graph-json'"):
        write_graph(g, tmp_path / "g.json")
    write_graph(g, tmp_path / "g.json", "geojson")
    assert json.loads((tmp_path / "g.json").read_text())["features"] == []


def test_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    shared = RoadGraph.from_edges([[1.5, 1.5], [1.5, 1.5]], [[0, 1]])
    path = tmp_path / "g.p"
    with pytest.raises(GraphError):
        write_graph(shared, path)
    assert list(tmp_path.iterdir()) == []
    path.write_bytes(b"previous")
    with pytest.raises(GraphError):
        write_graph(shared, path)
    assert path.read_bytes() == b"previous"
    assert list(tmp_path.iterdir()) == [path]


def test_like_is_passed_to_readers(tmp_path: Path) -> None:
    like = Georeference("EPSG:32611", Affine(1, 0, 600000, 0, -1, 4000000))
    path = tmp_path / "g.p"
    write_graph(RoadGraph.from_edges([[0.5, 0.5], [1.5, 0.5]], [[0, 1]]), path)
    g = read_graph(path, like=like)
    assert g.georef == like
    np.testing.assert_array_equal(g.nodes, [[0.5, 0.5], [1.5, 0.5]])
    s = read_graph(path, "samroad-spacenet", tile_size=10)
    np.testing.assert_array_equal(s.nodes, [[0.5, 10.5], [1.5, 10.5]])


def test_outputs_get_ordinary_permissions(tmp_path: Path) -> None:
    import os
    import stat

    from linegraph2road.io._atomic import atomic_path

    with atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o666 & ~mask
