"""osmnx-style GraphML: the written structure and reading osmnx-like files."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from affine import Affine

from linegraph2road.errors import FormatError, InputFileError
from linegraph2road.georef import Georeference, is_pixel_crs
from linegraph2road.graph import RoadGraph
from linegraph2road.io.graphml import read_graphml, write_graphml

UTM = Georeference("EPSG:32611", Affine(0.5, 0.0, 660000.0, 0.0, -0.5, 4010000.0))


def _graph(georef: Georeference | None = None) -> RoadGraph:
    return RoadGraph.from_edges(
        [[0.0, 0.0], [10.0, 0.0], [10.0, 20.0], [3.0, 3.0]], [[0, 1], [1, 2]], [0.5, 1.0], georef
    )


def test_written_file_is_an_osmnx_two_way_multidigraph(tmp_path: Path) -> None:
    path = tmp_path / "g.graphml"
    write_graphml(_graph(UTM), path)
    # osmnx.load_graphml reads with force_multigraph=True, as here; like osmnx.save_graphml, every
    # value is a string (osmnx's loader converts them by attribute name).
    G = nx.read_graphml(path, node_type=int, force_multigraph=True)
    assert isinstance(G, nx.MultiDiGraph)
    assert G.number_of_nodes() == 4 and G.number_of_edges() == 4
    assert G.graph["crs"] == "EPSG:32611" and G.graph["l2r_transform_crs"] == "EPSG:32611"
    assert G.graph["l2r_coordinates"] == "crs" and G.graph["l2r_length_unit"] == "m"
    assert json.loads(G.graph["l2r_transform"]) == [0.5, 0.0, 660000.0, 0.0, -0.5, 4010000.0]
    assert G.nodes[2] == {"x": "660005.0", "y": "4009990.0", "street_count": "1"}
    forward = next(iter(G.get_edge_data(1, 2).values()))
    backward = next(iter(G.get_edge_data(2, 1).values()))
    assert forward == {"oneway": "False", "reversed": "False", "length": "10.0", "prob": "1.0"}
    assert backward == {"oneway": "False", "reversed": "True", "length": "10.0", "prob": "1.0"}
    back = read_graphml(path)
    assert back.georef == UTM and back.equals(_graph(UTM), atol=1e-6)


def test_pixel_graph(tmp_path: Path) -> None:
    path = tmp_path / "p.graphml"
    write_graphml(_graph(), path)
    G = nx.read_graphml(path)
    assert is_pixel_crs(G.graph["crs"]) and G.graph["l2r_length_unit"] == "px"
    assert read_graphml(path).equals(_graph())


def test_osmnx_style_string_attributes_and_wkt(tmp_path: Path) -> None:
    G = nx.MultiDiGraph(crs="epsg:32611")
    G.add_node(101, x="660000.0", y="4010000.0", street_count="1")
    G.add_node(102, x="660010.0", y="4010000.0", street_count="1")
    geometry = "LINESTRING (660000 4010000, 660005 4010005, 660010 4010000)"
    G.add_edge(101, 102, osmid="7", length="14.142", oneway="False", geometry=geometry)
    G.add_edge(
        102,
        101,
        osmid="7",
        length="14.142",
        oneway="False",
        geometry="LINESTRING (660010 4010000, 660005 4010005, 660000 4010000)",
    )
    path = tmp_path / "osmnx.graphml"
    nx.write_graphml(G, path)
    g = read_graphml(path)
    assert g.georef is not None and g.georef.crs.to_epsg() == 32611
    np.testing.assert_allclose(g.nodes, [[0, 5], [10, 5], [5, 0]])
    np.testing.assert_array_equal(g.edges, [[0, 2], [1, 2]])
    on_like = read_graphml(path, like=UTM)
    np.testing.assert_allclose(on_like.nodes, [[0, 0], [20, 0], [10, -10]], atol=1e-9)
    assert read_graphml(path, expand_geometry=False).num_edges == 1


def test_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.graphml"
    path.write_text("<graphml><graph")
    with pytest.raises(FormatError, match=r"bad\.graphml: not a GraphML file"):
        read_graphml(path)
    nx.write_graphml(nx.Graph([(0, 1)]), path)
    with pytest.raises(FormatError, match="has no 'x'/'y' attributes"):
        read_graphml(path)
    with pytest.raises(InputFileError):
        read_graphml(tmp_path)
