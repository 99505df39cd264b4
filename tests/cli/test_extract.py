from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from click.testing import Result

from linegraph2road.georef import Georeference
from linegraph2road.model import LineGraph2Road, build_model, save_checkpoint
from tests.cli.conftest import one_line_error

L2R = Callable[..., Result]
ORIGIN = (500000.0, 4000000.0)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_checkpoint(
        build_model("tiny", window_size=64), path, {"sam_checkpoint": "sam_vit_b_01ec64.pth"}
    )
    return path


def geotiff(path: Path, data: np.ndarray, *, gsd: float = 1.0, **extra: Any) -> Path:
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "crs": "EPSG:32611",
        "transform": Affine(gsd, 0, ORIGIN[0], 0, -gsd, ORIGIN[1]),
        **extra,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def scene(height: int = 96, width: int = 112) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (3, height, width), dtype=np.uint8)


# Random tiny weights: low thresholds make sure there are vertices and candidate edges to score.
LOW = (
    "--t-k",
    "0.509",
    "--t-r",
    "0.511",
    "--t-topo",
    "0.0",
    "--no-progress",
    "--precision",
    "fp32",
)


def test_without_checkpoint_explains_which_weights_are_needed(l2r: L2R, tmp_path: Path) -> None:
    image = geotiff(tmp_path / "a.tif", scene())
    line = one_line_error(l2r("extract", image, "-o", tmp_path / "g.geojson"))
    assert "--checkpoint" in line and "l2r train" in line and "l2r prep" in line
    assert "sam_vit_b_01ec64.pth" in line
    assert not (tmp_path / "g.geojson").exists()


def test_tiny_checkpoint_end_to_end(l2r: L2R, tiny_ckpt: Path, tmp_path: Path) -> None:
    image = geotiff(tmp_path / "a.tif", scene())
    out, masks = tmp_path / "g.geojson", tmp_path / "masks"
    res = l2r("extract", image, "-o", out, "--checkpoint", tiny_ckpt, "--save-masks", masks, *LOW)
    assert res.exit_code == 0, res.output
    assert "weights: l2r checkpoint tiny.safetensors (sam/tiny, window 64, overpass variant)" in (
        res.stderr
    )
    assert "sam_vit_b_01ec64.pth" in res.stderr
    features = json.loads(out.read_text())["features"]
    assert features and all("prob" in f["properties"] for f in features)
    georef = Georeference("EPSG:32611", Affine(1, 0, ORIGIN[0], 0, -1, ORIGIN[1]))
    corners = georef.pixel_to_lonlat([[0, 0], [112, 96]])
    lon = np.array([c for f in features for c in f["geometry"]["coordinates"]])
    assert lon[:, 0].min() >= corners[:, 0].min() and lon[:, 0].max() <= corners[:, 0].max()
    assert lon[:, 1].min() >= corners[:, 1].min() and lon[:, 1].max() <= corners[:, 1].max()
    for name in ("keypoint", "road", "overpass"):
        with rasterio.open(masks / f"a_{name}.tif") as ds:
            assert ds.shape == (96, 112) and ds.dtypes[0] == "float32"
            assert ds.transform == Affine(1, 0, ORIGIN[0], 0, -1, ORIGIN[1])


def test_sam_road_layout_by_name(l2r: L2R, tiny_ckpt: Path, tmp_path: Path) -> None:
    image = geotiff(tmp_path / "a.tif", scene(200, 208))
    out = tmp_path / "g.geojson"
    res = l2r("extract", image, "-o", out, "--checkpoint", tiny_ckpt, "--layout", "sam-road",
              "--windows", "3", *LOW)  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "sam-road window layout (3 windows per axis)" in res.stderr
    assert res.stderr.splitlines()[-2].startswith("9 windows")
    res = l2r("extract", image, "-o", out, "--checkpoint", tiny_ckpt, "--nms", "plain", *LOW)
    assert res.exit_code == 0, res.output
    assert "auto window layout (default windows per axis), plain NMS" in res.stderr
    small = geotiff(tmp_path / "small.tif", scene())  # 96 x 112 < 64 + 2 x 64
    line = one_line_error(
        l2r("extract", small, "-o", out, "--checkpoint", tiny_ckpt, "--layout", "sam-road", *LOW)
    )
    assert "192 px" in line and "auto layout" in line


@pytest.mark.parametrize(
    "kind", ["grey", "uint16", "rgba", "nodata", "half-metre", "smaller-than-window"]
)
def test_image_variants_are_handled(l2r: L2R, tiny_ckpt: Path, tmp_path: Path, kind: str) -> None:
    data, extra, gsd = scene(), {}, 1.0
    if kind == "grey":
        data = data[:1]
    elif kind == "uint16":
        data = data.astype(np.uint16) * 40
    elif kind == "rgba":
        data = np.concatenate([data, np.full((1, 96, 112), 255, np.uint8)])
        data[3, :, :30] = 0
    elif kind == "nodata":
        data[:, 40:60] = 0
        extra = {"nodata": 0}
    elif kind == "half-metre":
        gsd = 0.5
    elif kind == "smaller-than-window":
        data = data[:, :40, :50]
    image = geotiff(tmp_path / "in.tif", data, gsd=gsd, **extra)
    out = tmp_path / "g.graphml"
    res = l2r("extract", image, "-o", out, "--checkpoint", tiny_ckpt, *LOW)
    assert res.exit_code == 0, res.output
    assert out.exists()
    if kind == "half-metre":
        assert "resampled from 0.5 m/px (112 x 96) to 1 m/px (56 x 48)" in res.stderr


def test_bad_checkpoints_and_formats(l2r: L2R, tiny_ckpt: Path, tmp_path: Path) -> None:
    image = geotiff(tmp_path / "a.tif", scene())
    out = tmp_path / "g.geojson"
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00garbage" * 10)
    assert "cannot read checkpoint" in one_line_error(
        l2r("extract", image, "-o", out, "--checkpoint", corrupt)
    )
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    assert "not a linegraph2road checkpoint" in one_line_error(
        l2r("extract", image, "-o", out, "--checkpoint", foreign)
    )
    vit_l = tmp_path / "sam_vit_l.pth"
    torch.save(
        {
            "image_encoder.patch_embed.proj.weight": torch.zeros(1024, 3, 16, 16),
            "image_encoder.blocks.0.attn.rel_pos_h": torch.zeros(27, 64),
        },
        vit_l,
    )
    line = one_line_error(
        l2r("extract", image, "-o", out, "--checkpoint", tiny_ckpt, "--sam-checkpoint", vit_l)
    )
    assert "ViT-L" in line
    assert "cannot tell the graph format" in one_line_error(
        l2r("extract", image, "-o", tmp_path / "g.xyz", "--checkpoint", tiny_ckpt)
    )
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not an image")
    assert "not an image" in one_line_error(
        l2r("extract", junk, "-o", out, "--checkpoint", tiny_ckpt)
    )
    assert not out.exists()


def test_interrupted_run_leaves_no_partial_output(
    l2r: L2R, tiny_ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = geotiff(tmp_path / "a.tif", scene())
    out = tmp_path / "out" / "g.geojson"
    out.parent.mkdir()
    out.write_text("previous result")
    calls = []

    def interrupt(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(LineGraph2Road, "score_edges", interrupt)
    try:
        res = l2r(
            "extract",
            image,
            "-o",
            out,
            "--checkpoint",
            tiny_ckpt,
            "--save-masks",
            tmp_path / "out" / "masks",
            *LOW,
        )
        assert res.exit_code != 0
    except KeyboardInterrupt:
        pass
    assert calls  # interrupted inside the scoring loop
    assert out.read_text() == "previous result"
    assert sorted(p.name for p in out.parent.iterdir()) == ["g.geojson"]


def test_geopackage_output_reads_back(l2r: L2R, tiny_ckpt: Path, tmp_path: Path) -> None:
    from linegraph2road.io import read_graph

    image = geotiff(tmp_path / "a.tif", scene())
    out = tmp_path / "g.gpkg"
    res = l2r("extract", image, "-o", out, "--checkpoint", tiny_ckpt, *LOW)
    assert res.exit_code == 0, res.output
    graph = read_graph(out)
    assert graph.num_edges > 0 and graph.edge_prob is not None
    assert graph.georef is not None and graph.georef.crs.to_epsg() == 32611
