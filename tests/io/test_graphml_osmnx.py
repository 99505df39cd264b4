"""Every GraphML l2r writes loads with osmnx itself (``load_graphml``) and converts with
``graph_to_gdfs`` -- georeferenced and pixel graphs, files from ``l2r convert`` and from the
writer -- and what osmnx saves back reads again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from linegraph2road.georef import Georeference, is_pixel_crs
from linegraph2road.graph import RoadGraph
from linegraph2road.io import read_graph, write_graph

ox = pytest.importorskip("osmnx", reason="osmnx is a dev/test dependency (pip install -e .[dev])")

UTM = Georeference("EPSG:32611", Affine(0.5, 0.0, 660000.0, 0.0, -0.5, 4010000.0))


def _graph(georef: Georeference | None = None) -> RoadGraph:
    nodes = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 20.0], [30.5, 20.25]])
    edges = np.array([[0, 1], [1, 2], [2, 3]])
    return RoadGraph(nodes, edges, np.array([0.9, 0.5, 0.25], np.float32), georef)


@pytest.mark.parametrize("georef", [UTM, None], ids=["georeferenced", "pixel"])
def test_osmnx_loads_and_converts(tmp_path: Path, georef: Georeference | None) -> None:
    g = _graph(georef)
    path = tmp_path / "g.graphml"
    write_graph(g, path)
    G = ox.load_graphml(path)
    assert G.number_of_nodes() == 4 and G.number_of_edges() == 6  # both directions
    nodes, edges = ox.graph_to_gdfs(G)
    assert len(nodes) == 4 and len(edges) == 6
    if georef is None:
        assert is_pixel_crs(G.graph["crs"])
        np.testing.assert_allclose(nodes[["x", "y"]].to_numpy(), g.nodes)
        expect = np.repeat([10.0, 20.0, np.hypot(20.5, 0.25)], 2)
        np.testing.assert_allclose(sorted(edges["length"]), expect)
    else:
        assert nodes.crs.to_epsg() == 32611
        np.testing.assert_allclose(nodes[["x", "y"]].to_numpy(), georef.pixel_to_crs(g.nodes))
        # edge lengths in metres (0.5 m pixels), equal to the geometries' lengths
        np.testing.assert_allclose(edges["length"], edges.geometry.length, rtol=1e-9)
    assert sorted(edges["prob"].astype(float).round(6)) == sorted([0.25, 0.5, 0.9] * 2)
    assert not edges["oneway"].any() and edges["reversed"].sum() == 3
    # what osmnx saves back reads again as the same graph
    again = tmp_path / "again.graphml"
    ox.save_graphml(G, again)
    back = read_graph(again)
    assert back.equals(g, atol=1e-6)
    assert (back.georef is None) == (georef is None)


def test_reprojected_by_osmnx_reads_at_the_right_place(tmp_path: Path) -> None:
    """osmnx.project_graph changes ``crs`` but keeps our grid attributes: the grid is dropped."""
    path = tmp_path / "g.graphml"
    write_graph(_graph(UTM), path)
    lonlat = ox.project_graph(ox.load_graphml(path), to_crs="EPSG:4326")
    moved = tmp_path / "lonlat.graphml"
    ox.save_graphml(lonlat, moved)
    back = read_graph(moved)
    ours = UTM.pixel_to_lonlat(_graph(UTM).nodes)
    np.testing.assert_allclose(back.georef.pixel_to_lonlat(back.nodes), ours, atol=1e-7)
