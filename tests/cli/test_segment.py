"""``l2r segment`` and ``l2r extract`` with segmentation-only front-end checkpoints."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from click.testing import Result
from safetensors import safe_open
from safetensors.torch import save_file

from linegraph2road.frontends.checkpoint import save_frontend
from linegraph2road.frontends.experts import build_experts
from linegraph2road.frontends.fctl import FCTL_SIZES, FCtLFrontend, RefinementNet
from linegraph2road.frontends.nl_linknet import build_nl_linknet
from linegraph2road.model import build_model, save_checkpoint
from tests.cli.conftest import one_line_error
from tests.cli.test_extract import geotiff, scene

L2R = Callable[..., Result]
QUIET = ("--no-progress", "--device", "cpu")


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("ckpts")
    fctl = FCtLFrontend(spec=replace(FCTL_SIZES["tiny"], num_classes=1), window_size=32)
    return {
        "nl-linknet": save_frontend(
            build_nl_linknet("tiny", 64, mask_channels=1), d / "nl.safetensors"
        ),
        "fctl": save_frontend(fctl, d / "fctl.safetensors", refiner=RefinementNet(widths=(4, 8))),
        "experts": save_frontend(build_experts("tiny-k2-road", 64, None), d / "ex.safetensors"),
        "model": save_checkpoint(build_model("tiny", window_size=64), d / "model.safetensors"),
    }


@pytest.mark.parametrize("name", ["nl-linknet", "fctl", "experts", "model"])
def test_segment_writes_a_georeferenced_probability_mask(
    l2r: L2R, ckpts: dict[str, Path], tmp_path: Path, name: str
) -> None:
    image = geotiff(tmp_path / "a.tif", scene(256, 224), gsd=0.5)  # at 1 m/px: 128 x 112
    out = tmp_path / "road.tif"
    res = l2r("segment", image, "-o", out, "--checkpoint", ckpts[name], *QUIET)
    assert res.exit_code == 0, res.output
    assert "weights:" in res.stderr and ckpts[name].name in res.stderr
    with rasterio.open(out) as ds, rasterio.open(image) as src:
        assert (ds.count, ds.height, ds.width, ds.dtypes[0]) == (1, 128, 112, "float32")
        assert ds.crs == src.crs and ds.bounds == pytest.approx(src.bounds)
        prob = ds.read(1)
    assert np.all((prob >= 0) & (prob <= 1)) and prob.std() > 0


def test_segment_options(l2r: L2R, ckpts: dict[str, Path], tmp_path: Path) -> None:
    image = geotiff(tmp_path / "a.tif", scene(64, 64))
    nl = ckpts["nl-linknet"]
    both = tmp_path / "all.tif"
    assert (
        l2r("segment", image, "-o", both, "--checkpoint", nl, "--all-masks", *QUIET).exit_code == 0
    )
    plain, flipped = tmp_path / "p.tif", tmp_path / "f.tif"
    assert l2r("segment", image, "-o", plain, "--checkpoint", nl, *QUIET).exit_code == 0
    r = l2r("segment", image, "-o", flipped, "--checkpoint", nl, "--tta", "--tta-scales", *QUIET)
    assert r.exit_code == 0, r.output
    binary = tmp_path / "b.tif"
    r = l2r("segment", image, "-o", binary, "--checkpoint", nl, "--threshold", "0.5", *QUIET)
    assert r.exit_code == 0, r.output
    with rasterio.open(both) as a, rasterio.open(plain) as p, rasterio.open(flipped) as f:
        assert a.count == 3 and np.array_equal(a.read(2), p.read(1))
        assert not a.read(1).any()  # road-only model: no keypoint mask
        assert not np.array_equal(p.read(1), f.read(1))
    with rasterio.open(binary) as b:
        assert b.dtypes[0] == "uint8" and set(np.unique(b.read(1))) <= {0, 1}


def test_extract_with_a_segmentation_checkpoint_uses_mask2graph(
    l2r: L2R, ckpts: dict[str, Path], tmp_path: Path
) -> None:
    image = geotiff(tmp_path / "a.tif", scene(128, 128))
    out = tmp_path / "g.geojson"
    masks = tmp_path / "masks"
    r = l2r("extract", image, "-o", out, "--checkpoint", ckpts["nl-linknet"], "--frontend",
            "nl-linknet", "--road-threshold", "0.45", "--save-masks", masks, *QUIET)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "mask2graph" in r.stderr
    doc = json.loads(out.read_text())
    assert doc["type"] == "FeatureCollection"
    assert sorted(p.name for p in masks.iterdir()) == ["a_road.tif"]
    probs = [f["properties"]["prob"] for f in doc["features"] if "prob" in f["properties"]]
    assert all(0.0 <= p <= 1.0 for p in probs)


def test_bad_input_is_one_line(l2r: L2R, ckpts: dict[str, Path], tmp_path: Path) -> None:
    image = geotiff(tmp_path / "a.tif", scene(64, 64))
    out, out_g = tmp_path / "o.tif", tmp_path / "g.geojson"
    line = one_line_error(l2r("segment", image, "-o", out, *QUIET))
    assert "--checkpoint" in line and "l2r train" in line
    line = one_line_error(
        l2r("segment", image, "-o", out, "--checkpoint", ckpts["fctl"], "--frontend", "nl-linknet")
    )
    assert "holds a fctl front-end, not nl-linknet" in line
    line = one_line_error(
        l2r("extract", image, "-o", out_g, "--checkpoint", ckpts["model"], "--frontend", "experts")
    )
    assert "holds a sam front-end, not experts" in line
    small = geotiff(tmp_path / "small.tif", scene(80, 80))
    line = one_line_error(l2r("segment", small, "-o", out, "--checkpoint", ckpts["fctl"], *QUIET))
    assert "largest context is 96 px" in line
    line = one_line_error(
        l2r("extract", image, "-o", out_g, "--checkpoint", ckpts["model"], "--tta", *QUIET)
    )
    assert "--tta" in line
    # an experts checkpoint with one expert's tensors missing
    with safe_open(str(ckpts["experts"]), framework="pt") as f:
        meta = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    broken = tmp_path / "broken.safetensors"
    save_file({k: v for k, v in state.items() if not k.startswith("experts.1.")}, str(broken),
              metadata=meta)  # fmt: skip
    line = one_line_error(l2r("segment", image, "-o", out, "--checkpoint", broken, *QUIET))
    assert "expert 1 is missing" in line
    assert "expert 1 is missing" in one_line_error(
        l2r("extract", image, "-o", tmp_path / "g.geojson", "--checkpoint", broken, *QUIET)
    )
    assert "GeoTIFF" in one_line_error(
        l2r("segment", image, "-o", tmp_path / "o.jpg", "--checkpoint", ckpts["nl-linknet"])
    )
    assert not out.exists() and not out_g.exists()


def test_frontend_choices_are_the_registry() -> None:
    from linegraph2road.cli.options import FRONTEND_CHOICES
    from linegraph2road.frontends import FRONTENDS
    from linegraph2road.pipelines.segment import FRONTEND_NAMES

    assert sorted(FRONTEND_CHOICES) == sorted(FRONTENDS) == sorted(FRONTEND_NAMES)
