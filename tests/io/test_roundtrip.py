"""Property tests: every format that can round-trip gives back the same graph.

Random graphs (distinct node positions, random edges, optional probabilities) on random
georeferences (UTM zones at 0.1-5 m/px, and EPSG:4326 grids). Writers and readers work through
temporary directories because hypothesis re-runs a test body many times.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from linegraph2road.georef import Georeference
from linegraph2road.graph import RoadGraph
from linegraph2road.io import from_networkx, read_graph, to_networkx, write_graph

SETTINGS = settings(max_examples=25, deadline=None)


@st.composite
def road_graphs(draw: st.DrawFn, *, integral: bool = False) -> RoadGraph:
    n = draw(st.integers(0, 10))
    if integral:
        coord = st.integers(0, 2047).map(lambda v: v + 0.5)
    else:
        # Sub-pixel positions on a 1/1024 px lattice: exact in binary, so the pickle formats'
        # half-pixel shift is exact too (arbitrary floats like 1e-120 collapse onto 0 there).
        coord = st.integers(0, 2048 * 1024).map(lambda v: v / 1024.0)
    points = draw(st.lists(st.tuples(coord, coord), min_size=n, max_size=n, unique=True))
    pairs = (
        draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=2 * n))
        if n >= 2
        else []
    )
    prob = None
    if draw(st.booleans()):
        prob = draw(
            st.lists(st.floats(0.0, 1.0, width=32), min_size=len(pairs), max_size=len(pairs))
        )
    graph = RoadGraph.from_edges(np.array(points).reshape(-1, 2), pairs, prob)
    # No format can tell "no edges, with probabilities" from "no edges": they read back as None.
    return graph.replace(edge_prob=None) if graph.num_edges == 0 else graph


@st.composite
def georefs(draw: st.DrawFn) -> Georeference:
    if draw(st.booleans()):
        zone = draw(st.integers(1, 60))
        epsg = draw(st.sampled_from([32600, 32700])) + zone
        gsd = draw(st.floats(0.1, 5.0))
        x0 = draw(st.floats(250_000.0, 700_000.0))
        y0 = draw(st.floats(1_000_000.0, 8_000_000.0))
        return Georeference(f"EPSG:{epsg}", Affine(gsd, 0.0, x0, 0.0, -gsd, y0))
    deg = draw(st.floats(1e-6, 1e-4))
    lon0 = draw(st.floats(-170.0, 170.0))
    lat0 = draw(st.floats(-60.0, 70.0))
    return Georeference("EPSG:4326", Affine(deg, 0.0, lon0, 0.0, -deg, lat0))


def _round_trip(graph: RoadGraph, fmt: str, suffix: str) -> RoadGraph:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"graph{suffix}"
        write_graph(graph, path, fmt)
        return read_graph(path, fmt)


def _same(a: RoadGraph, b: RoadGraph, *, atol: float, prob: bool = True) -> None:
    """Same nodes in order; the same edges (formats like adjacency dicts reorder them)."""
    np.testing.assert_allclose(b.nodes, a.nodes, rtol=0, atol=atol)
    oa = np.lexsort((a.edges[:, 1], a.edges[:, 0]))
    ob = np.lexsort((b.edges[:, 1], b.edges[:, 0]))
    np.testing.assert_array_equal(b.edges[ob], a.edges[oa])
    if prob:
        assert (a.edge_prob is None) == (b.edge_prob is None)
        if a.edge_prob is not None and b.edge_prob is not None:
            np.testing.assert_array_equal(b.edge_prob[ob], a.edge_prob[oa])


@SETTINGS
@given(road_graphs())
def test_cityscale_pickle(graph: RoadGraph) -> None:
    _same(graph, _round_trip(graph, "cityscale", ".p"), atol=0.0, prob=False)


@SETTINGS
@given(road_graphs(integral=True) | road_graphs(), st.integers(100, 5000))
def test_samroad_pickle(graph: RoadGraph, tile_size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.p"
        write_graph(graph, path, "samroad-spacenet", tile_size=tile_size)
        back = read_graph(path, "samroad-spacenet", tile_size=tile_size)
    _same(graph, back, atol=0.0, prob=False)


@SETTINGS
@given(road_graphs())
def test_sat2graph_json(graph: RoadGraph) -> None:
    # Pseudo lat/lon loses a little: 1 px ~ 9e-6 degrees in float64.
    _same(graph, _round_trip(graph, "sat2graph-json", ".json"), atol=1e-6, prob=False)


@SETTINGS
@given(road_graphs(), st.none() | georefs())
def test_geojson(graph: RoadGraph, georef: Georeference | None) -> None:
    g = graph.with_georef(georef)
    back = _round_trip(g, "geojson", ".geojson")
    _same(g, back, atol=1e-6)
    assert back.georef == georef


@SETTINGS
@given(road_graphs(), st.none() | georefs())
def test_graphml(graph: RoadGraph, georef: Georeference | None) -> None:
    g = graph.with_georef(georef)
    back = _round_trip(g, "graphml", ".graphml")
    _same(g, back, atol=1e-6)
    assert back.georef == georef


@SETTINGS
@given(road_graphs(), st.none() | georefs())
def test_gpickle(graph: RoadGraph, georef: Georeference | None) -> None:
    g = graph.with_georef(georef)
    back = _round_trip(g, "gpickle", ".gpickle")
    _same(g, back, atol=1e-6)
    assert back.georef == georef


@SETTINGS
@given(road_graphs(), st.none() | georefs())
def test_gpkg(graph: RoadGraph, georef: Georeference | None) -> None:
    g = graph.with_georef(georef)
    back = _round_trip(g, "gpkg", ".gpkg")
    _same(g, back, atol=1e-6)
    np.testing.assert_array_equal(back.edges, g.edges)  # edge order is kept too
    assert back.georef == georef


@SETTINGS
@given(road_graphs(), georefs(), st.sampled_from(["pixel", "crs"]))
def test_networkx(graph: RoadGraph, georef: Georeference, coords: str) -> None:
    g = graph.with_georef(georef)
    convert: Callable[..., object] = to_networkx
    back = from_networkx(convert(g, coords=coords))  # type: ignore[arg-type]
    _same(g, back, atol=1e-6)
    assert back.georef == georef


@SETTINGS
@given(road_graphs(), georefs())
def test_geojson_onto_like_is_identity_for_the_same_grid(
    graph: RoadGraph, georef: Georeference
) -> None:
    g = graph.with_georef(georef)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.geojson"
        write_graph(g, path)
        back = read_graph(path, like=georef)
    _same(g, back, atol=1e-6)
