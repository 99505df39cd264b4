from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from linegraph2road.errors import FormatError
from linegraph2road.georef import Georeference
from linegraph2road.graph import RoadGraph
from linegraph2road.io import read_graph, write_graph

UTM = Georeference("EPSG:32611", Affine(0.5, 0, 500000, 0, -0.5, 4000000))


def _graph(georef: Georeference | None) -> RoadGraph:
    nodes = np.array([[0.5, 0.5], [10.0, 3.0], [20.0, 20.0], [4.0, 30.0]])
    edges = np.array([[0, 1], [1, 2], [1, 3]])
    return RoadGraph.from_edges(nodes, edges, np.array([0.7, 0.9, 0.6], np.float32), georef)


@pytest.mark.parametrize("georef", [UTM, None])
def test_round_trip(tmp_path: Path, georef: Georeference | None) -> None:
    g = _graph(georef)
    write_graph(g, tmp_path / "g.parquet")
    back = read_graph(tmp_path / "g.parquet")
    np.testing.assert_allclose(back.nodes, g.nodes, atol=1e-9)
    assert back.edges.tolist() == g.edges.tolist()
    assert back.edge_prob is not None and np.allclose(back.edge_prob, g.edge_prob)
    assert back.georef == georef


def test_geopandas_reads_it_in_the_raster_crs(tmp_path: Path) -> None:
    gpd = pytest.importorskip("geopandas")
    write_graph(_graph(UTM), tmp_path / "g.parquet")
    df = gpd.read_parquet(tmp_path / "g.parquet")
    assert df.crs.to_epsg() == 32611 and len(df) == 3
    assert list(df.columns) == ["u", "v", "prob", "length", "geometry"]
    assert df.geometry.iloc[0].coords[0] == pytest.approx((500000.25, 3999999.75))
    assert df["length"].iloc[0] == pytest.approx(np.hypot(9.5, 2.5) * 0.5)
    df.to_parquet(tmp_path / "foreign.parquet")  # a GeoParquet file we did not write
    g = read_graph(tmp_path / "foreign.parquet")
    assert g.num_edges == 3 and g.num_nodes == 4 and g.georef is not None


def test_plain_parquet_is_refused(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1, 2]}), tmp_path / "t.parquet")
    with pytest.raises(FormatError, match="GeoParquet"):
        read_graph(tmp_path / "t.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"junk")
    with pytest.raises(FormatError, match="Parquet"):
        read_graph(tmp_path / "junk.parquet")
