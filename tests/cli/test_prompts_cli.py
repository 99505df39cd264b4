"""``l2r segment/extract --frontend roadgie --prompts F [--rounds N]``: a person's clicks and
scribbles (GeoJSON in the raster's CRS, lon/lat or pixels) turn into a mask and a graph; bad
prompts are one line, exit 2, no output."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from click.testing import Result
from rasterio.transform import Affine

from linegraph2road.frontends import build_frontend
from linegraph2road.frontends.checkpoint import save_frontend
from linegraph2road.io import read_graph
from tests.cli.conftest import one_line_error

pytestmark = pytest.mark.usefixtures("one_torch_thread")

L2R = Callable[..., Result]
X0, Y0 = 500_000.0, 4_000_000.0  # UTM 11N corner of the test raster, 1 m pixels
SIZE = 96


@pytest.fixture(scope="module")
def roadgie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "roadgie.safetensors"
    return save_frontend(build_frontend("roadgie", "tiny", window_size=64), path)


@pytest.fixture(scope="module")
def nl_linknet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "nl.safetensors"
    return save_frontend(build_frontend("nl-linknet", "tiny", window_size=64), path)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 96 x 96 px georeferenced RGB raster with a bright horizontal road at row 48."""
    data = np.full((3, SIZE, SIZE), 60, np.uint8)
    data[:, 45:51, :] = 200
    path = tmp_path_factory.mktemp("scene") / "scene.tif"
    profile = {"driver": "GTiff", "width": SIZE, "height": SIZE, "count": 3, "dtype": "uint8",
               "crs": "EPSG:32611", "transform": Affine(1, 0, X0, 0, -1, Y0)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def _feature(kind: str, coords: Any, positive: bool = True) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"positive": positive},
            "geometry": {"type": kind, "coordinates": coords}}  # fmt: skip


def _write(path: Path, features: list[dict[str, Any]], **extra: Any) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features, **extra}))
    return path


def _utm(col: float, row: float) -> list[float]:
    return [X0 + col, Y0 - row]


UTM_CRS = {"type": "name", "properties": {"name": "EPSG:32611"}}


@pytest.fixture
def utm_prompts(tmp_path: Path) -> Path:
    """A positive scribble along the road and a negative click off it, in the raster's CRS."""
    return _write(
        tmp_path / "prompts.geojson",
        [
            _feature("LineString", [_utm(5, 48), _utm(90, 48)]),
            _feature("Point", _utm(48, 15), positive=False),
        ],
        crs=UTM_CRS,
    )


def _road_band(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32611 and src.transform.c == X0
        return src.read(1)


def test_segment_with_prompts_in_the_raster_crs(
    l2r: L2R, roadgie: Path, scene: Path, utm_prompts: Path, tmp_path: Path
) -> None:
    free = tmp_path / "free.tif"
    r = l2r("segment", scene, "-o", free, "--checkpoint", roadgie, "--frontend", "roadgie",
            "--device", "cpu", "--no-progress")  # fmt: skip
    assert r.exit_code == 0, r.output
    out = tmp_path / "prompted.tif"
    r = l2r("segment", scene, "-o", out, "--checkpoint", roadgie, "--frontend", "roadgie",
            "--prompts", utm_prompts, "--rounds", "2", "--device", "cpu",
            "--no-progress")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "with 2 prompt(s), 2 round(s)" in r.stderr
    prompted, plain = _road_band(out), _road_band(free)
    assert prompted.shape == plain.shape == (SIZE, SIZE)
    assert prompted.min() >= 0.0 and prompted.max() <= 1.0
    assert np.abs(prompted - plain).max() > 1e-3  # the prompts reach the network


def test_lonlat_and_pixel_prompts_give_the_same_mask(
    l2r: L2R, roadgie: Path, scene: Path, utm_prompts: Path, tmp_path: Path
) -> None:
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs(32611, 4326, always_xy=True)

    def lonlat(col: float, row: float) -> list[float]:
        return list(to_lonlat.transform(*_utm(col, row)))

    lon = _write(tmp_path / "lonlat.geojson",
                 [_feature("LineString", [lonlat(5, 48), lonlat(90, 48)]),
                  _feature("Point", lonlat(48, 15), positive=False)])  # fmt: skip
    pix = _write(tmp_path / "pixels.geojson",
                 [_feature("LineString", [[5, 48], [90, 48]]),
                  _feature("Point", [48, 15], positive=False)],
                 l2r={"coordinates": "pixel"})  # fmt: skip
    masks = []
    for name, prompts in (("utm", utm_prompts), ("lonlat", lon), ("pixel", pix)):
        out = tmp_path / f"{name}.tif"
        r = l2r("segment", scene, "-o", out, "--checkpoint", roadgie, "--prompts", prompts,
                "--device", "cpu", "--no-progress")  # fmt: skip
        assert r.exit_code == 0, r.output
        masks.append(_road_band(out))
    # lon/lat -> UTM round trip moves the scribble by well under a pixel
    assert np.abs(masks[0] - masks[1]).max() < 1e-2
    assert np.abs(masks[0] - masks[2]).max() < 1e-3


def test_extract_with_prompts_writes_a_graph(
    l2r: L2R, roadgie: Path, scene: Path, utm_prompts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "roads.geojson"
    r = l2r("extract", scene, "-o", out, "--checkpoint", roadgie, "--frontend", "roadgie",
            "--prompts", utm_prompts, "--rounds", "3", "--instantiate", "--road-threshold",
            "0.3", "--device", "cpu", "--no-progress")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "graph by mask2graph" in r.stderr and "topo-semantic instantiation" in r.stderr
    graph = read_graph(out)
    assert graph.georef is not None  # lon/lat GeoJSON of the raster's area


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("not-json", "invalid JSON"),
        ("empty", "no prompt"),
        ("outside", "outside the image"),
        ("polygon", "Polygon"),
        ("bad-crs", "EPSG:999999"),
        ("no-positive", "positive"),
        ("missing", "no such file"),
    ],
)
def test_bad_prompts_are_one_line(
    l2r: L2R, roadgie: Path, scene: Path, tmp_path: Path, case: str, expected: str
) -> None:
    path = tmp_path / "p.geojson"
    if case == "not-json":
        path.write_text("this is not geojson {")
    elif case == "empty":
        _write(path, [])
    elif case == "outside":
        _write(path, [_feature("Point", _utm(SIZE + 40, 10))], crs=UTM_CRS)
    elif case == "polygon":
        ring = [_utm(1, 1), _utm(9, 1), _utm(9, 9), _utm(1, 1)]
        _write(path, [_feature("Polygon", [ring])], crs=UTM_CRS)
    elif case == "bad-crs":
        _write(path, [_feature("Point", _utm(10, 10))],
               crs={"type": "name", "properties": {"name": "EPSG:999999"}})  # fmt: skip
    elif case == "no-positive":
        _write(path, [{"type": "Feature", "properties": {},
                       "geometry": {"type": "Point", "coordinates": _utm(10, 10)}}],
               crs=UTM_CRS)  # fmt: skip
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for command, out in (("segment", out_dir / "m.tif"), ("extract", out_dir / "g.geojson")):
        args = ("-o", out, "--checkpoint", roadgie, "--prompts", path, "--no-progress")
        line = one_line_error(l2r(command, scene, *args))
        assert expected.lower() in line.lower(), line
    assert list(out_dir.iterdir()) == []


def test_prompts_need_roadgie_and_one_image(
    l2r: L2R, nl_linknet: Path, roadgie: Path, scene: Path, utm_prompts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "m.tif"
    line = one_line_error(l2r("segment", scene, "-o", out, "--checkpoint", nl_linknet,
                              "--prompts", utm_prompts, "--no-progress"))  # fmt: skip
    assert "--prompts needs a RoadGIE checkpoint" in line and "nl-linknet" in line
    line = one_line_error(l2r("segment", scene, "-o", out, "--checkpoint", roadgie,
                              "--frontend", "nl-linknet", "--no-progress"))  # fmt: skip
    assert "roadgie" in line
    line = one_line_error(l2r("segment", scene, "-o", out, "--checkpoint", roadgie,
                              "--rounds", "3", "--no-progress"))  # fmt: skip
    assert "--rounds needs --prompts" in line
    line = one_line_error(l2r("segment", scene, "-o", out, "--checkpoint", roadgie,
                              "--prompts", utm_prompts, "--rounds", "0"))  # fmt: skip
    assert "rounds must be an integer >= 1" in line
    line = one_line_error(l2r("extract", scene.parent, "-o", tmp_path / "graphs",
                              "--checkpoint", roadgie, "--prompts", utm_prompts))  # fmt: skip
    assert "--prompts belong to one image" in line
    from linegraph2road.model import build_model, save_checkpoint

    model = save_checkpoint(build_model("tiny", window_size=64), tmp_path / "l2r.safetensors", {})
    line = one_line_error(l2r("extract", scene, "-o", tmp_path / "g.geojson", "--checkpoint",
                              model, "--prompts", utm_prompts))  # fmt: skip
    assert "--prompts needs a RoadGIE checkpoint" in line and "LineGraph2Road model" in line
    assert not (tmp_path / "g.geojson").exists()
    assert not out.exists() and not (tmp_path / "graphs").exists()
