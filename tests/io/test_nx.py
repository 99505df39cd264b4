"""networkx conversion and networkx graph pickles (CosmiQ APLS gpickles)."""

from __future__ import annotations

import pickle
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine

from linegraph2road.errors import FormatError, GeoreferenceError, GraphError, UnsafePickleError
from linegraph2road.georef import Georeference, geodesic_length
from linegraph2road.graph import RoadGraph
from linegraph2road.io import from_networkx, to_networkx
from linegraph2road.io._unpickle import GPICKLE_ALLOW, safe_load_pickle
from linegraph2road.io.nx import metric_edge_lengths, read_gpickle, write_gpickle

UTM = Georeference("EPSG:32611", Affine(0.5, 0.0, 660000.0, 0.0, -0.5, 4010000.0))
LONLAT = Georeference("EPSG:4326", Affine(1e-5, 0.0, -115.0, 0.0, -1e-5, 36.0))


def _square() -> RoadGraph:
    return RoadGraph.from_edges(
        [[0.0, 0.0], [10.0, 0.0], [10.0, 20.0], [50.0, 50.0]], [[0, 1], [1, 2]], [0.5, 1.0]
    )


def test_to_networkx_pixel() -> None:
    G = to_networkx(_square())
    assert type(G) is nx.Graph
    assert list(G.nodes(data=True))[1] == (1, {"x": 10.0, "y": 0.0})
    assert G.edges[1, 2] == {"length": 20.0, "prob": 1.0}
    assert G.graph == {"l2r_coordinates": "pixel", "l2r_length_unit": "px"}
    assert G.degree(3) == 0


def test_to_networkx_crs_needs_a_georef() -> None:
    with pytest.raises(GeoreferenceError, match="needs a georeferenced graph"):
        to_networkx(_square(), coords="crs")


def test_to_networkx_projected_crs() -> None:
    G = to_networkx(_square().with_georef(UTM), coords="crs")
    assert G.graph["crs"] == "EPSG:32611"
    assert G.graph["l2r_transform"] == [0.5, 0.0, 660000.0, 0.0, -0.5, 4010000.0]
    assert G.nodes[2] == {"x": 660005.0, "y": 4009990.0}
    assert G.edges[0, 1]["length"] == 5.0  # metres
    pixel = to_networkx(_square().with_georef(UTM))
    assert "crs" not in pixel.graph and pixel.graph["l2r_crs"] == "EPSG:32611"
    assert pixel.nodes[2] == {"x": 10.0, "y": 20.0} and pixel.edges[0, 1]["length"] == 5.0


def test_geographic_lengths_are_geodesic() -> None:
    g = _square().with_georef(LONLAT)
    lengths = metric_edge_lengths(g)
    ll = LONLAT.pixel_to_lonlat(g.nodes)
    assert lengths[1] == pytest.approx(geodesic_length(ll[[1, 2]]), rel=1e-9)
    assert 8.5 < lengths[0] < 9.5  # 10 px of 1e-5 deg of longitude at 36 N: ~9 m


@pytest.mark.parametrize("georef", [None, UTM, LONLAT])
@pytest.mark.parametrize("coords", ["pixel", "crs"])
def test_round_trip(georef: Georeference | None, coords: str) -> None:
    if georef is None and coords == "crs":
        return
    g = _square().with_georef(georef)
    back = from_networkx(to_networkx(g, coords=coords))  # type: ignore[arg-type]
    assert back.equals(g, atol=1e-6)
    assert back.georef == georef


@pytest.mark.parametrize("cls", [nx.DiGraph, nx.MultiGraph, nx.MultiDiGraph])
def test_directed_and_parallel_edges_collapse(cls: type[nx.Graph]) -> None:
    G = cls()
    G.add_node("a", x=0.0, y=0.0)
    G.add_node("b", x=3.0, y=4.0)
    G.add_edge("a", "b", prob=0.25)
    G.add_edge("b", "a", prob=0.5)
    g = from_networkx(G)
    np.testing.assert_array_equal(g.edges, [[0, 1]])
    assert g.edge_prob is not None and g.edge_prob.tolist() == [0.5]


def test_positions_from_keys() -> None:
    G = nx.Graph([((2, 3), (4, 5))])
    np.testing.assert_array_equal(
        from_networkx(G, positions="rowcol").nodes, [[3.5, 2.5], [5.5, 4.5]]
    )
    np.testing.assert_array_equal(from_networkx(G, positions="xy").nodes, [[2, 3], [4, 5]])
    with pytest.raises(GraphError, match="has no 'x'/'y' attributes"):
        from_networkx(G)
    with pytest.raises(GraphError, match="not a coordinate pair"):
        from_networkx(nx.Graph([(1, 2)]), positions="xy")


def _curved(geometry: object) -> nx.MultiGraph:
    G = nx.MultiGraph()
    G.add_node(0, x=0.0, y=0.0)
    G.add_node(1, x=10.0, y=0.0)
    G.add_edge(0, 1, geometry=geometry, length=14.142)
    return G


@pytest.mark.parametrize(
    "geometry",
    [
        shapely.LineString([(0, 0), (5, 5), (10, 0)]),
        shapely.LineString([(10, 0), (5, 5), (0, 0)]),  # stored against the edge direction
        "LINESTRING (0 0, 5 5, 10 0)",
        "LINESTRING Z (0 0 1, 5 5 1, 10 0 1)",
    ],
)
def test_geometry_vertices_become_nodes(geometry: object) -> None:
    g = from_networkx(_curved(geometry))
    np.testing.assert_array_equal(g.nodes, [[0, 0], [10, 0], [5, 5]])
    np.testing.assert_array_equal(g.edges, [[0, 2], [1, 2]])
    flat = from_networkx(_curved(geometry), expand_geometry=False)
    np.testing.assert_array_equal(flat.edges, [[0, 1]])


def test_parallel_roads_with_different_courses_stay_distinct() -> None:
    G = _curved(shapely.LineString([(0, 0), (5, 5), (10, 0)]))
    G.add_edge(1, 0, geometry=shapely.LineString([(10, 0), (5, 5), (0, 0)]))  # same road
    G.add_edge(0, 1)  # a straight road between the same nodes
    g = from_networkx(G)
    assert (g.num_nodes, g.num_edges) == (3, 3)


def test_bad_geometry() -> None:
    with pytest.raises(GraphError, match="invalid WKT"):
        from_networkx(_curved("LINESTRING (0 0,"))
    with pytest.raises(GraphError, match="geometry must be a LineString, got Point"):
        from_networkx(_curved(shapely.Point(1, 1)))


def test_crs_without_transform() -> None:
    G = nx.Graph(crs={"proj": "utm", "zone": 11, "datum": "WGS84", "units": "m"})
    G.add_node(0, x=660010.0, y=4010000.0)
    G.add_node(1, x=660000.0, y=4010030.0)
    G.add_edge(0, 1)
    g = from_networkx(G)
    assert g.georef is not None and g.georef.transform == Affine(1, 0, 660000, 0, -1, 4010030)
    np.testing.assert_allclose(g.nodes, [[10.0, 30.0], [0.0, 0.0]])
    on_like = from_networkx(G, like=UTM)
    np.testing.assert_allclose(on_like.nodes, [[20.0, 0.0], [0.0, -60.0]], atol=1e-9)
    assert on_like.georef == UTM
    G.graph["crs"] = "EPSG:4326"
    nx.set_node_attributes(G, {0: -115.0, 1: -115.001}, "x")
    nx.set_node_attributes(G, {0: 36.0, 1: 36.001}, "y")
    geo = from_networkx(G)
    assert geo.georef is not None and geo.georef.crs.to_epsg() == 32611
    assert geo.total_length() == pytest.approx(metric_edge_lengths(geo)[0], rel=1e-12)


def test_not_a_graph() -> None:
    with pytest.raises(GraphError, match="expected a networkx graph, got dict"):
        from_networkx({})  # type: ignore[arg-type]


def _vegas(fixtures_dir: Path) -> tuple[Path, Georeference]:
    folder = fixtures_dir / "spacenet_vegas"
    with rasterio.open(folder / "RGB-PanSharpen_AOI_2_Vegas_img0.tif") as ds:
        like = Georeference.from_dataset(ds)
    assert like is not None
    return folder, like


@pytest.mark.parametrize(
    ("name", "nodes", "edges", "expanded_nodes", "expanded_edges"),
    [("gt", 71, 89, 94, 113), ("prop", 83, 107, 160, 185)],
)
def test_real_gpickles(
    fixtures_dir: Path, name: str, nodes: int, edges: int, expanded_nodes: int, expanded_edges: int
) -> None:
    folder, like = _vegas(fixtures_dir)
    path = folder / f"AOI_2_Vegas_img0_{name}.gpickle"
    flat = read_gpickle(path, expand_geometry=False)
    assert (flat.num_nodes, flat.num_edges) == (nodes, edges)  # one parallel pair collapses
    g = read_gpickle(path)
    assert (g.num_nodes, g.num_edges) == (expanded_nodes, expanded_edges)
    assert g.georef is not None and g.georef.crs.to_epsg() == 32611  # proj dict, UTM 11
    with pytest.warns(UserWarning, match="shapely <2.0"):  # why the reader silences it
        G = safe_load_pickle(path, allow=GPICKLE_ALLOW)
    total = sum(d["length"] for _, _, d in G.edges(data=True))
    assert g.total_length() == pytest.approx(total, rel=5e-3)  # UTM metres vs CosmiQ lengths
    on_tile = read_gpickle(path, like=like)
    assert on_tile.georef == like
    assert on_tile.nodes.min() >= 0.0
    assert on_tile.nodes[:, 1].max() <= 1300.0
    limit = 1300.0 if name == "prop" else 1305.0  # gt overhangs the east edge by 4.07 px
    assert on_tile.nodes[:, 0].max() <= limit
    # CosmiQ's own pixel geometries agree with our placement on the tile.
    index = {key: i for i, key in enumerate(G.nodes)}
    for u, v, data in G.edges(data=True):
        pix = np.asarray(shapely.get_coordinates(data["geometry_pix"]))
        ends = on_tile.nodes[[index[u], index[v]]]
        assert min(np.hypot(*(pix[0] - ends[0])), np.hypot(*(pix[0] - ends[1]))) < 1e-6


def test_write_gpickle(tmp_path: Path) -> None:
    g = _square().with_georef(UTM)
    path = tmp_path / "g.gpickle"
    write_gpickle(g, path)
    assert path.read_bytes()[:2] == b"\x80\x04"
    G = safe_load_pickle(path, allow=GPICKLE_ALLOW)
    assert type(G) is nx.MultiGraph
    assert G.graph["crs"] == "EPSG:32611"
    assert G.nodes[1]["x"] == 660005.0 and -116 < G.nodes[1]["lon"] < -114
    data = G.edges[1, 2, 0]
    assert data["length"] == 10.0
    assert data["geometry"].equals(shapely.LineString([(660005, 4010000), (660005, 4009990)]))
    assert read_gpickle(path).equals(g, atol=1e-6)


def test_gpickle_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.gpickle"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(FormatError, match="not a networkx graph pickle \\(got dict\\)"):
        read_gpickle(path)
    path.write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    with pytest.raises(UnsafePickleError):
        read_gpickle(path)
    G = nx.Graph([(0, 1)])
    path.write_bytes(pickle.dumps(G))
    with pytest.raises(FormatError, match=r"x\.gpickle: node 0 has no 'x'/'y'"):
        read_gpickle(path)
