from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from linegraph2road.io import read_graph
from tests.cli.conftest import one_line_error


def _write_cityscale(path: Path) -> None:
    adj = {(10, 10): [(10, 50)], (10, 50): [(10, 10), (40, 50)], (40, 50): [(10, 50)]}
    path.write_bytes(pickle.dumps(adj, protocol=2))


def test_convert_pickle_to_geojson_pixel_and_back(l2r, tmp_path: Path) -> None:
    src = tmp_path / "g.p"
    _write_cityscale(src)
    out = tmp_path / "g.geojson"
    res = l2r("convert", src, "-o", out)
    assert res.exit_code == 0, res.output
    assert "3 nodes, 2 edges" in res.stderr
    doc = json.loads(out.read_text())
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 2
    back = tmp_path / "back.p"
    assert l2r("convert", out, "-o", back).exit_code == 0
    np.testing.assert_allclose(read_graph(back).nodes, read_graph(src).nodes)


def test_convert_with_like_makes_lonlat_geojson(l2r, tmp_path: Path, fixtures_dir: Path) -> None:
    tif = fixtures_dir / "spacenet_vegas" / "RGB-PanSharpen_AOI_2_Vegas_img0.tif"
    src = tmp_path / "g.p"
    _write_cityscale(src)
    out = tmp_path / "g.geojson"
    assert l2r("convert", src, "-o", out, "--like", tif).exit_code == 0
    coords = np.array(
        [c for f in json.loads(out.read_text())["features"] for c in f["geometry"]["coordinates"]]
    )
    # inside the Vegas tile's bounds (lon, lat)
    assert np.all((coords[:, 0] > -115.1707) & (coords[:, 0] < -115.1671))
    assert np.all((coords[:, 1] > 36.2371) & (coords[:, 1] < 36.2407))


def test_convert_real_gpickle_to_graphml(l2r, tmp_path: Path, fixtures_dir: Path) -> None:
    import networkx as nx

    out = tmp_path / "vegas.graphml"
    res = l2r("convert", fixtures_dir / "spacenet_vegas" / "AOI_2_Vegas_img0_gt.gpickle", "-o", out)
    assert res.exit_code == 0, res.output
    g = nx.read_graphml(out)
    assert g.number_of_nodes() >= 71
    assert "crs" in g.graph


def test_missing_input(l2r, tmp_path: Path) -> None:
    out = tmp_path / "o.geojson"
    line = one_line_error(l2r("convert", tmp_path / "nope.p", "-o", out))
    assert "nope.p" in line
    assert not out.exists()


def test_malicious_pickle_is_refused_and_nothing_runs(l2r, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (subprocess.call, (["touch", str(marker)],))

    src = tmp_path / "evil.p"
    src.write_bytes(pickle.dumps({(1, 1): [Evil()]}, protocol=2))
    out = tmp_path / "o.geojson"
    line = one_line_error(l2r("convert", src, "-o", out))
    assert "refusing to load" in line
    assert not marker.exists() and not out.exists()


def test_non_linestring_geojson_is_refused(l2r, tmp_path: Path) -> None:
    src = tmp_path / "pts.geojson"
    src.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {"type": "Point", "coordinates": [1, 2]},
                    }
                ],
            }
        )
    )
    out = tmp_path / "o.p"
    line = one_line_error(l2r("convert", src, "-o", out))
    assert "Point" in line
    assert not out.exists()


def test_failed_conversion_keeps_previous_output(l2r, tmp_path: Path) -> None:
    out = tmp_path / "o.geojson"
    out.write_text("previous")
    bad = tmp_path / "bad.p"
    bad.write_bytes(b"\x80\x02}q\x00(K\x01")  # truncated
    one_line_error(l2r("convert", bad, "-o", out))
    assert out.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_like_raster_without_crs(l2r, tmp_path: Path) -> None:
    from linegraph2road.io.raster import write_raster

    png = tmp_path / "plain.png"
    write_raster(png, np.zeros((4, 4), dtype=np.uint8))
    src = tmp_path / "g.p"
    _write_cityscale(src)
    line = one_line_error(l2r("convert", src, "-o", tmp_path / "o.geojson", "--like", png))
    assert "no CRS" in line


@pytest.mark.parametrize(
    "entry", [["-m", "linegraph2road"], ["-c", "from linegraph2road.cli.main import main; main()"]]
)
def test_real_entry_points(entry: list[str], tmp_path: Path) -> None:
    src = tmp_path / "g.p"
    _write_cityscale(src)
    out = tmp_path / "g.graphml"
    proc = subprocess.run(
        [sys.executable, *entry, "convert", str(src), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.exists()
    bad = subprocess.run(
        [sys.executable, *entry, "convert", str(tmp_path / "missing.p"), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1


def test_graphml_outputs_load_in_osmnx(l2r, tmp_path: Path, fixtures_dir: Path) -> None:
    """The README's GraphML examples (a City-scale pixel pickle, a georeferenced gpickle) load
    with osmnx.load_graphml and convert with osmnx.graph_to_gdfs."""
    ox = pytest.importorskip("osmnx", reason="osmnx is a dev/test dependency")
    for src in (
        fixtures_dir / "cityscale_example" / "gt.p",
        fixtures_dir / "spacenet_vegas" / "AOI_2_Vegas_img0_gt.gpickle",
    ):
        out = tmp_path / f"{src.stem}.graphml"
        assert l2r("convert", src, "-o", out).exit_code == 0
        nodes, edges = ox.graph_to_gdfs(ox.load_graphml(out))
        assert len(nodes) == read_graph(out).num_nodes and len(edges) > 0
