"""Sat2Graph Go-APLS JSON graphs: the pseudo lat/lon formula, the real files, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from linegraph2road.errors import FormatError, InputFileError
from linegraph2road.graph import RoadGraph
from linegraph2road.io.sat2graph_json import (
    latlon_to_rowcol,
    read_sat2graph_json,
    rowcol_to_latlon,
    write_sat2graph_json,
)


def test_formula_matches_sat2graph_convert(tmp_path: Path) -> None:
    # Pixel centre (x, y) = (10.5, 20.5) is (row, col) = (20, 10).
    g = RoadGraph.from_edges([[10.5, 20.5], [0.5, 0.5]], [[0, 1]])
    path = tmp_path / "g.json"
    write_sat2graph_json(g, path)
    nodes, edges = json.loads(path.read_text())
    lat = 41.0 - 20 * 1.0 / 111111.0
    lon = -71.0 + (10 * 1.0 / 111111.0) / math.cos(math.radians(41.0))
    assert nodes[0] == pytest.approx([lat, lon], abs=1e-13)
    assert nodes[1] == [41.0, -71.0]
    assert edges == [[0, 1]]
    back = read_sat2graph_json(path)
    np.testing.assert_array_equal(back.nodes, g.nodes)  # snapped to exact pixel centres
    np.testing.assert_array_equal(back.edges, g.edges)


def test_latlon_rowcol_inverse() -> None:
    rc = np.array([[0.0, 0.0], [399.0, 17.0], [12.25, 1999.5]])
    np.testing.assert_allclose(latlon_to_rowcol(rowcol_to_latlon(rc)), rc, atol=1e-9)


def test_flip_tile_size(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps([rowcol_to_latlon(np.array([[390.0, 20.0]])).tolist(), []]))
    g = read_sat2graph_json(path, flip_tile_size=400)
    np.testing.assert_array_equal(g.nodes, [[20.5, 10.5]])
    write_sat2graph_json(g, tmp_path / "h.json", flip_tile_size=400)
    assert json.loads((tmp_path / "h.json").read_text()) == json.loads(path.read_text())


@pytest.mark.parametrize(("name", "nodes", "edges"), [("gt.json", 42, 42), ("prop.json", 53, 49)])
def test_real_files(fixtures_dir: Path, tmp_path: Path, name: str, nodes: int, edges: int) -> None:
    path = fixtures_dir / "spacenet_small_json" / name
    g = read_sat2graph_json(path)
    assert (g.num_nodes, g.num_edges) == (nodes, edges)
    np.testing.assert_array_equal(g.nodes % 1.0, 0.5)  # integer pixel indices -> centres
    assert np.all(g.nodes > 0) and np.all(g.nodes < 400)
    # Writing reproduces the file's numbers.
    out = tmp_path / name
    write_sat2graph_json(g, out)
    original, written = json.loads(path.read_text()), json.loads(out.read_text())
    np.testing.assert_allclose(written[0], original[0], rtol=0, atol=1e-12)
    assert {tuple(sorted(e)) for e in written[1]} == {tuple(sorted(e)) for e in original[1]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"a": 1}', r"expected a list \[nodes, edges\], got dict"),
        ("[[], [], []]", r"got a list of 3 items"),
        ("[[[41.0]], []]", r"nodes\[0\] must be a pair of numbers"),
        ("[[[41.0, -71.0]], [[0, 1]]]", r"an edge refers to a node outside 0..0"),
        ("[[[41.0, -71.0], [41.0, -71.0]], [[0, 0.5]]]", r"edges must hold integer node indices"),
        ("[[", r"invalid JSON"),
    ],
)
def test_bad_content(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(FormatError, match=message) as info:
        read_sat2graph_json(path)
    assert str(info.value).startswith(f"{path}: not a Sat2Graph APLS JSON graph")


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputFileError):
        read_sat2graph_json(tmp_path / "nope.json")
    with pytest.raises(InputFileError):
        read_sat2graph_json(tmp_path)
