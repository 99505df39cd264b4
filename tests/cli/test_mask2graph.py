from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from linegraph2road import RoadGraph
from linegraph2road.io import read_graph
from linegraph2road.io.raster import read_georef, write_raster
from linegraph2road.rasterize import render_road_mask
from tests.cli.conftest import one_line_error

VEGAS_TIF = "spacenet_vegas/RGB-PanSharpen_AOI_2_Vegas_img0.tif"
VEGAS_GT = "spacenet_vegas/AOI_2_Vegas_img0_gt.geojson"


def _spurs(g: RoadGraph) -> list[float]:
    """Lengths of chains from a dead end to a junction (degree >= 3), in pixels."""
    adj = g.neighbors()
    deg = g.degrees()
    out = []
    for start in np.flatnonzero(deg == 1):
        prev, cur, length = -1, int(start), 0.0
        while True:
            nxt = [n for n in adj[cur] if n != prev]
            if len(nxt) != 1:
                break
            length += float(np.hypot(*(g.nodes[nxt[0]] - g.nodes[cur])))
            prev, cur = cur, nxt[0]
            if deg[cur] != 2:
                break
        if deg[cur] >= 3:
            out.append(length)
    return out


def test_vegas_ground_truth_mask_to_geojson(l2r, tmp_path: Path, fixtures_dir: Path) -> None:
    """The issue's real-data check, through the real CLI, on the SpaceNet Vegas tile."""
    tif = fixtures_dir / VEGAS_TIF
    georef = read_georef(tif)
    gt = read_graph(fixtures_dir / VEGAS_GT, like=georef)
    with rasterio.open(tif) as ds:
        shape = (ds.height, ds.width)
        bounds = ds.bounds
    # 0.3 m/px: draw roads about 6 m wide.
    mask = render_road_mask(gt, shape, width=21).astype(np.uint8) * 255
    mask_path = tmp_path / "mask.tif"
    write_raster(mask_path, mask, georef=georef)

    out = tmp_path / "roads.geojson"
    spur = 40.0  # pixels, 12 m
    res = l2r("mask2graph", mask_path, "-o", out, "--min-spur-length", spur)
    assert res.exit_code == 0, res.output

    doc = json.loads(out.read_text())
    lonlat = np.array([c for f in doc["features"] for c in f["geometry"]["coordinates"]])
    assert len(lonlat) > 0
    assert np.all((lonlat[:, 0] >= bounds.left) & (lonlat[:, 0] <= bounds.right))
    assert np.all((lonlat[:, 1] >= bounds.bottom) & (lonlat[:, 1] <= bounds.top))

    graph = read_graph(out)
    assert graph.georef == georef  # restored on the mask's own pixel grid
    # Ground truth clipped to the tile, measured on the same grid.
    from shapely.geometry import LineString, box

    tile = box(0, 0, shape[1], shape[0])
    gt_len = sum(LineString(gt.nodes[e]).intersection(tile).length for e in gt.edges.tolist())
    ratio = graph.total_length() / gt_len
    assert 0.9 <= ratio <= 1.1, ratio
    assert min(_spurs(graph), default=np.inf) >= spur


def test_empty_mask_gives_empty_graph(l2r, tmp_path: Path) -> None:
    mask = tmp_path / "empty.png"
    write_raster(mask, np.zeros((32, 32), dtype=np.uint8))
    out = tmp_path / "g.geojson"
    res = l2r("mask2graph", mask, "-o", out)
    assert res.exit_code == 0, res.output
    assert "0 nodes, 0 edges" in res.stderr
    assert json.loads(out.read_text())["features"] == []


def test_png_mask_with_like(l2r, tmp_path: Path, fixtures_dir: Path) -> None:
    tif = fixtures_dir / VEGAS_TIF
    mask = np.zeros((1300, 1300), dtype=np.uint8)
    mask[640:660, 100:1200] = 255
    png = tmp_path / "m.png"
    write_raster(png, mask)
    out = tmp_path / "g.graphml"
    assert l2r("mask2graph", png, "-o", out, "--like", tif).exit_code == 0
    g = read_graph(out)
    assert g.georef == read_georef(tif)
    assert g.num_edges >= 1
    assert g.total_length() == pytest.approx(1100, rel=0.05)


@pytest.mark.parametrize("kind", ["missing", "text", "directory"])
def test_bad_mask_inputs(l2r, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "mask.tif"
    if kind == "text":
        path.write_text("not an image")
    elif kind == "directory":
        path.mkdir()
    out = tmp_path / "g.geojson"
    line = one_line_error(l2r("mask2graph", path, "-o", out))
    assert "mask.tif" in line
    assert not out.exists()


def test_bad_band(l2r, tmp_path: Path) -> None:
    mask = tmp_path / "m.png"
    write_raster(mask, np.zeros((8, 8), dtype=np.uint8))
    line = one_line_error(l2r("mask2graph", mask, "-o", tmp_path / "g.geojson", "--band", "3"))
    assert "band" in line
