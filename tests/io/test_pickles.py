"""City-scale and SAM-Road SpaceNet adjacency pickles: exact small cases and the real files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from linegraph2road.errors import FormatError, GraphError, UnsafePickleError
from linegraph2road.georef import Georeference
from linegraph2road.graph import RoadGraph
from linegraph2road.io.pickles import (
    graph_from_adjacency,
    graph_to_adjacency,
    read_cityscale_pickle,
    read_samroad_spacenet_pickle,
    write_cityscale_pickle,
    write_samroad_spacenet_pickle,
)


def _dump(path: Path, obj: object, protocol: int = 2) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def test_three_node_dict_gives_exact_nodes_and_edges(tmp_path: Path) -> None:
    adj = {(0, 0): [(0, 5)], (0, 5): [(0, 0), (3, 5)], (3, 5): [(0, 5)]}
    g = read_cityscale_pickle(_dump(tmp_path / "g.p", adj))
    np.testing.assert_array_equal(g.nodes, [[0.5, 0.5], [5.5, 0.5], [5.5, 3.5]])
    np.testing.assert_array_equal(g.edges, [[0, 1], [1, 2]])
    assert g.edge_prob is None and g.georef is None


def test_asymmetric_adjacency_is_united_and_isolated_and_loops_handled() -> None:
    adj = {(10, 20): [(30, 40)], (7, 7): [], (1, 1): [(1, 1), (10, 20)]}
    g = graph_from_adjacency(adj)
    # Order of first appearance: keys first, then neighbours that are not keys.
    np.testing.assert_array_equal(g.nodes, [[20.5, 10.5], [7.5, 7.5], [1.5, 1.5], [40.5, 30.5]])
    np.testing.assert_array_equal(g.edges, [[0, 3], [0, 2]])  # order of appearance
    assert g.degrees().tolist() == [2, 0, 1, 1]


def test_numpy_and_float_keys(tmp_path: Path) -> None:
    adj = {(np.int64(2), np.int64(3)): [(np.float64(4.25), 5.0)]}
    g = read_cityscale_pickle(_dump(tmp_path / "g.p", adj, protocol=0))
    np.testing.assert_array_equal(g.nodes, [[3.5, 2.5], [5.5, 4.75]])


def test_samroad_keys_are_flipped(tmp_path: Path) -> None:
    # SAM-Road SpaceNet: key = (400 - row, col).
    path = _dump(tmp_path / "s.p", {(390, 20): [(370, 40)], (370, 40): [(390, 20)]})
    g = read_samroad_spacenet_pickle(path)
    np.testing.assert_array_equal(g.nodes, [[20.5, 10.5], [40.5, 30.5]])
    g256 = read_samroad_spacenet_pickle(path, tile_size=256)
    np.testing.assert_array_equal(g256.nodes, [[20.5, -133.5], [40.5, -113.5]])
    out = tmp_path / "out.p"
    write_samroad_spacenet_pickle(g, out)
    assert pickle.loads(out.read_bytes()) == {(390, 20): [(370, 40)], (370, 40): [(390, 20)]}


def test_writer_uses_ints_when_integral_and_protocol_2(tmp_path: Path) -> None:
    g = RoadGraph.from_edges([[0.5, 0.5], [5.5, 0.5], [9.5, 9.5]], [[1, 0]])
    path = tmp_path / "g.p"
    write_cityscale_pickle(g, path)
    data = path.read_bytes()
    assert data[:2] == b"\x80\x02"
    adj = pickle.loads(data)
    assert adj == {(0, 0): [(0, 5)], (0, 5): [(0, 0)], (9, 9): []}
    assert all(type(v) is int for key in adj for v in key)


def test_writer_keeps_floats_when_not_integral() -> None:
    g = RoadGraph.from_edges([[0.5, 0.5], [5.75, 1.0]], [[0, 1]])
    adj = graph_to_adjacency(g)
    assert adj == {(0.0, 0.0): [(0.5, 5.25)], (0.5, 5.25): [(0.0, 0.0)]}
    assert all(type(v) is float for key in adj for v in key)


def test_shared_positions_cannot_be_written(tmp_path: Path) -> None:
    g = RoadGraph.from_edges([[1.5, 1.5], [2.5, 2.5], [1.5, 1.5]], [[0, 1], [1, 2]])
    path = tmp_path / "dup.p"
    with pytest.raises(GraphError, match="nodes 0 and 2 share the position"):
        write_cityscale_pickle(g, path)
    assert list(tmp_path.iterdir()) == []


def test_georeference_is_attached_from_like(tmp_path: Path) -> None:
    like = Georeference("EPSG:32611", Affine(1.0, 0.0, 600000.0, 0.0, -1.0, 4000000.0))
    g = read_cityscale_pickle(_dump(tmp_path / "g.p", {(1, 1): []}), like=like)
    assert g.georef == like


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            [1, 2],
            r"x\.p: not a City-scale graph pickle \(expected a dict "
            r"\{\(row, col\): \[neighbours\]\}, got list\)",
        ),
        ({(1, 2, 3): []}, r"a key must be a \(row, col\) pair of numbers, got \(1, 2, 3\)"),
        ({(1, 2): 5}, r"neighbours of \(1, 2\) must be a list, got int"),
        ({(1, 2): [(1, "a")]}, r"a neighbour must be a \(row, col\) pair"),
        ({(1, True): []}, r"a key must be a \(row, col\) pair"),
    ],
)
def test_wrong_content_is_a_one_line_format_error(
    tmp_path: Path, obj: object, message: str
) -> None:
    path = _dump(tmp_path / "x.p", obj)
    with pytest.raises(FormatError, match=message) as info:
        read_cityscale_pickle(path)
    assert "\n" not in str(info.value)


def test_truncated_and_unsafe_files(tmp_path: Path) -> None:
    good = pickle.dumps({(1, 2): [(3, 4)]}, protocol=2)
    path = tmp_path / "t.p"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(FormatError, match=r"t\.p: truncated or corrupt pickle"):
        read_cityscale_pickle(path)
    path.write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    with pytest.raises(UnsafePickleError, match=r"refers to os\.system"):
        read_cityscale_pickle(path)


@pytest.mark.parametrize(("name", "nodes", "edges"), [("gt.p", 3696, 3975), ("prop.p", 4518, 4845)])
def test_real_cityscale_files(
    fixtures_dir: Path, tmp_path: Path, name: str, nodes: int, edges: int
) -> None:
    path = fixtures_dir / "cityscale_example" / name
    g = read_cityscale_pickle(path)
    assert (g.num_nodes, g.num_edges) == (nodes, edges)
    assert np.all(g.nodes >= 0.5) and np.all(g.nodes <= 2047.5)
    np.testing.assert_array_equal(g.nodes % 1.0, 0.5)
    # Writing it back gives the same adjacency (as sets) as the original file.
    out = tmp_path / name
    write_cityscale_pickle(g, out)
    with path.open("rb") as fh:
        original = pickle.load(fh, encoding="latin1")
    written = pickle.loads(out.read_bytes())
    assert {tuple(map(int, k)): {tuple(map(int, n)) for n in v} for k, v in original.items()} == {
        k: set(v) for k, v in written.items()
    }
    assert read_cityscale_pickle(out).equals(g)
