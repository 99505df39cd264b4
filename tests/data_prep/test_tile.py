"""Tile labels end to end: real data, rotation/flip invariance, files and determinism."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from linegraph2road.data_prep.labels import dihedral_points
from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.data_prep.tile import TileLabels, build_tile_labels, write_tile_labels
from linegraph2road.errors import FormatError, GraphError
from linegraph2road.georef import Georeference
from linegraph2road.graph import RoadGraph
from linegraph2road.io import read_graph
from linegraph2road.rasterize import draw_discs

from .test_overpass import finland_tile


@pytest.fixture(scope="module")
def cityscale(fixtures_dir: Path) -> TaggedGraph:
    return TaggedGraph.untagged(read_graph(fixtures_dir / "cityscale_example" / "gt.p"))


def _forward_mask(mask: np.ndarray, code: int) -> np.ndarray:
    flip, k = divmod(code, 4)
    return np.rot90(np.fliplr(mask) if flip else mask, -k)


def _transformed(t: TaggedGraph, shape: tuple[int, int], code: int) -> TaggedGraph:
    g = t.graph.replace(nodes=dihedral_points(t.graph.nodes, shape, code))
    return TaggedGraph(g, t.bridge, t.tunnel, t.layer, t.tagged, t.highway)


def _assert_equivariant(a: TileLabels, b: TileLabels, code: int) -> None:
    """``b`` (labels of the transformed tile) is ``a`` transformed."""
    for name in ("road", "keypoint", "overpass"):
        np.testing.assert_array_equal(getattr(b, name), _forward_mask(getattr(a, name), code))
    fwd = dihedral_points(a.vertices, a.shape, code)
    np.testing.assert_allclose(b.vertices, fwd, atol=1e-9, rtol=0)
    np.testing.assert_array_equal(b.vertex_kind, a.vertex_kind)
    np.testing.assert_array_equal(b.candidate_edges, a.candidate_edges)
    np.testing.assert_array_equal(b.candidate_labels, a.candidate_labels)
    np.testing.assert_array_equal(b.crossing_pairs, a.crossing_pairs)
    np.testing.assert_allclose(
        b.graph.graph.nodes, dihedral_points(a.graph.graph.nodes, a.shape, code), atol=1e-9
    )


# -- real data ------------------------------------------------------------------------------------
def test_cityscale_keypoints_masks_and_counts(cityscale: TaggedGraph) -> None:
    build_tile_labels(cityscale, (2048, 2048))  # warm-up
    t0 = time.perf_counter()
    lab = build_tile_labels(cityscale, (2048, 2048), seed=0)
    elapsed = time.perf_counter() - t0
    g = cityscale.graph
    odd = g.nodes[g.degrees() != 2]
    rows, cols = np.floor(odd[:, 1]).astype(int), np.floor(odd[:, 0]).astype(int)
    assert lab.keypoint[rows, cols].all()  # every degree != 2 node is inside the keypoint mask
    rows, cols = np.floor(g.nodes[:, 1]).astype(int), np.floor(g.nodes[:, 0]).astype(int)
    assert lab.road[rows, cols].all()
    ov = lab.overpass_points
    assert lab.overpass[np.floor(ov[:, 1]).astype(int), np.floor(ov[:, 0]).astype(int)].all()
    s = lab.stats()
    print(f"City-scale tile labels in {elapsed:.3f} s: {s}, crossings by {lab.crossing_method}")
    assert lab.crossing_method == "algorithm3" and s["crossings"] == 13
    assert s["positives"] > 2000 and s["negatives"] > s["positives"]
    assert set(np.unique(lab.vertex_kind).tolist()) == {0, 1, 2}


@pytest.mark.parametrize("code", [1, 2, 5])
def test_cityscale_labels_rotate_with_the_tile(cityscale: TaggedGraph, code: int) -> None:
    a = build_tile_labels(cityscale, (2048, 2048), seed=3)
    b = build_tile_labels(_transformed(cityscale, (2048, 2048), code), (2048, 2048), seed=3)
    _assert_equivariant(a, b, code)


def test_finland_overpass_mask_marks_the_osm_bridges(fixtures_dir: Path) -> None:
    tile, shape = finland_tile(fixtures_dir)
    lab = build_tile_labels(tile, shape)
    assert lab.crossing_method == "tags"
    # the overpass mask is exactly the discs at the crossing edges' endpoints
    np.testing.assert_array_equal(lab.overpass, draw_discs(lab.overpass_points, shape, radius=3))
    g, refined = tile.graph, lab.graph.graph
    # each crossing edge pair of the refined graph is a bridge over a non-bridge road, and every
    # endpoint of the original bridge/road edges there has an overpass disc within tau + 1 px
    on_bridge = lab.graph.bridge[lab.crossing_pairs]
    assert (on_bridge.sum(axis=1) == 1).all()
    for ea, eb in lab.crossing_pairs.tolist():
        for v in refined.edges[[ea, eb]].reshape(-1):
            x, y = refined.nodes[v]
            assert lab.overpass[int(y), int(x)]
    # and every tagged bridge crossing of the input is one of them (within 2 px: refinement
    # slid one motorway-link node off a crossing)
    lines = shapely.linestrings(np.stack([g.nodes[g.edges[:, 0]], g.nodes[g.edges[:, 1]]], 1))
    a, b = shapely.STRtree(lines).query(lines, predicate="intersects")
    keep = (a < b) & (tile.bridge[a] != tile.bridge[b])
    for i, j in zip(a[keep], b[keep], strict=True):
        if set(g.edges[i].tolist()) & set(g.edges[j].tolist()):
            continue
        p = shapely.get_coordinates(shapely.intersection(lines[i], lines[j]))[0]
        assert np.hypot(*(lab.crossing_points - p).T).min() < 2.0
    s = lab.stats()
    print(f"Finland tile {shape}: {s}")
    assert s["crossings"] == 12 and s["overpass_points"] == 20


# -- invariance under the tile's symmetries -------------------------------------------------------
def _geometry(nodes: np.ndarray, edges: np.ndarray) -> tuple[set, set]:
    segs = {tuple(sorted((tuple(nodes[i]), tuple(nodes[j])))) for i, j in edges.tolist()}
    return segs, set(map(tuple, nodes.tolist()))


def _symmetric(t: TaggedGraph, shape: tuple[int, int]) -> bool:
    """Whether a rotation/flip maps the tile's graph onto itself (no labelling can follow)."""
    ref = _geometry(t.graph.nodes, t.graph.edges)
    for code in range(1, 8):
        if (shape if code % 2 == 0 else shape[::-1]) != shape:
            continue
        if _geometry(dihedral_points(t.graph.nodes, shape, code), t.graph.edges) == ref:
            return True
    return False


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 25), st.integers(0, 2**31 - 1), st.integers(1, 7))
def test_labels_are_equivariant_under_rotations_and_flips(n: int, seed: int, code: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (96, 128)
    nodes = np.round(rng.uniform(0, 1, size=(n, 2)) * [128, 96] * 4) / 4
    g = RoadGraph.from_edges(nodes, rng.integers(0, n, size=(n + 3, 2)))
    t = TaggedGraph(g, layer=rng.integers(0, 2, size=g.num_edges), tagged=bool(seed % 2))
    assume(not _symmetric(t, shape))
    a = build_tile_labels(t, shape, seed=seed % 100, d_r=6.0, d_k=3.0, d_nei=24.0)
    b = build_tile_labels(
        _transformed(t, shape, code),
        shape if code % 2 == 0 else shape[::-1],
        seed=seed % 100,
        d_r=6.0,
        d_k=3.0,
        d_nei=24.0,
    )
    _assert_equivariant(a, b, code)


# -- files ----------------------------------------------------------------------------------------
def _small() -> TaggedGraph:
    nodes = np.array([[10.0, 60.0], [110.0, 60.0], [60.0, 5.0], [60.0, 115.0], [110.0, 110.0]])
    g = RoadGraph(nodes, np.array([[0, 1], [2, 3], [1, 4]]))
    return TaggedGraph(g, bridge=[False, True, False], tagged=True, highway=["a", "b", "a"])


def test_write_tile_labels_layout_and_contents(tmp_path: Path) -> None:
    lab = build_tile_labels(_small(), (120, 128), seed=5)
    geo = Georeference("EPSG:32635", Affine(1.0, 0.0, 500000.0, 0.0, -1.0, 6700000.0))
    files = write_tile_labels(
        lab, tmp_path, "t1", georef=geo, source={"osm": "x.pbf"}, preview=True
    )
    names = sorted(p.name for p in files)
    assert names == sorted(
        [f"t1_{m}.{ext}" for m in ("road", "keypoint", "overpass") for ext in ("png", "tif")]
        + ["t1_labels.npz", "t1_graph.geojson", "t1_preview.png", "t1_labels.json"]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # no temporary leftovers
    with rasterio.open(tmp_path / "t1_road.tif") as ds:
        assert ds.crs.to_epsg() == 32635 and ds.transform == geo.transform
        np.testing.assert_array_equal(ds.read(1), lab.road.astype(np.uint8) * 255)
    with np.load(tmp_path / "t1_labels.npz") as z:
        assert list(z.keys())[:4] == [
            "vertices",
            "vertex_kind",
            "candidate_edges",
            "candidate_labels",
        ]
        np.testing.assert_array_equal(z["candidate_labels"], lab.candidate_labels)
        assert z["candidate_labels"].dtype == np.uint8 and z["vertex_kind"].dtype == np.int8
        np.testing.assert_array_equal(z["overpass_points"], lab.overpass_points)
    doc = json.loads((tmp_path / "t1_labels.json").read_text())
    assert doc["seed"] == 5 and doc["source"] == {"osm": "x.pbf"}
    assert set(doc["params"]) >= {"tau", "gamma", "alpha", "T", "P", "epsilon", "d_r", "d_nei"}
    assert doc["crossing_method"] == "tags" and doc["counts"]["crossings"] == 1
    gj = json.loads((tmp_path / "t1_graph.geojson").read_text())
    assert gj["l2r"]["coordinates"] == "lonlat"


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    outs = []
    for run, seed in enumerate([7, 7, 8]):
        lab = build_tile_labels(_small(), (120, 128), seed=seed)
        geo = Georeference("EPSG:32635", Affine(1.0, 0.0, 500000.0, 0.0, -1.0, 6700000.0))
        files = write_tile_labels(lab, tmp_path / str(run), "t", georef=geo, preview=True)
        outs.append({p.name: p.read_bytes() for p in files})
        time.sleep(1.0 if run == 0 else 0.0)  # a timestamp in any file would now differ
    assert outs[0] == outs[1]
    assert outs[0]["t_labels.npz"] != outs[2]["t_labels.npz"]


def test_bad_tile_id_writes_nothing(tmp_path: Path) -> None:
    lab = build_tile_labels(_small(), (120, 128))
    with pytest.raises(FormatError, match="tile id"):
        write_tile_labels(lab, tmp_path / "out", "../evil")
    assert not (tmp_path / "out").exists()


def test_empty_graph_gives_empty_labels(tmp_path: Path) -> None:
    lab = build_tile_labels(TaggedGraph.untagged(RoadGraph.empty()), (32, 32))
    assert not lab.road.any() and len(lab.vertices) == 0 and len(lab.candidate_edges) == 0
    assert len(write_tile_labels(lab, tmp_path, "e")) == 6


def test_bad_inputs_raise() -> None:
    with pytest.raises(GraphError, match="TaggedGraph"):
        build_tile_labels(_small().graph, (10, 10))  # type: ignore[arg-type]
    with pytest.raises(GraphError, match="shape"):
        build_tile_labels(_small(), (0, 10))
