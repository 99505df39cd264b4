from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import rasterio
from click.testing import Result

from tests.cli.conftest import one_line_error
from tests.training import VEGAS, VEGAS_GT, VEGAS_TIF, make_synthetic_labels, make_vegas_labels

L2R = Callable[..., Result]
needs_vegas = pytest.mark.skipif(
    not VEGAS.is_dir(), reason="real fixtures not found (set L2R_FIXTURES)"
)
TINY64 = ("--set", "model.window_size=64", "--set", "data.crop=64",
          "--set", "data.samples_per_tile=2", "--set", "model.head.hidden_dim=8")  # fmt: skip


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_labels(tmp_path_factory.mktemp("syn"))


def _coords(doc: dict) -> list[tuple[float, float]]:
    out = []
    for f in doc["features"]:
        g = f["geometry"]
        lines = [g["coordinates"]] if g["type"] == "LineString" else g["coordinates"]
        out += [(float(x), float(y)) for line in lines for x, y in line]
    return out


def _sparse_thresholds(ckpt: Path, labels: Path) -> tuple[str, str]:
    """Mask thresholds that only the top 0.1 % (keypoint, overpass) and 0.5 % (road) of the
    barely trained model's probabilities pass: a small vertex set whatever the weights (low
    thresholds on near-uniform masks make a vertex every few pixels and a huge line graph)."""
    import numpy as np
    import torch

    from linegraph2road.model import load_checkpoint
    from linegraph2road.training import find_tiles, load_tile

    model, _ = load_checkpoint(ckpt)
    image = load_tile(find_tiles(labels)[0]).image
    w = model.window_size
    probs = model.predict_window(torch.from_numpy(image[:, :w, :w].copy())).mask_probs[0].numpy()
    t_k = max(np.quantile(probs[0], 0.999), np.quantile(probs[2], 0.999))
    return f"{t_k:.6f}", f"{np.quantile(probs[1], 0.995):.6f}"


@needs_vegas
def test_train_extract_eval_end_to_end(l2r: L2R, tmp_path: Path) -> None:
    """labels (library prep of the real Vegas tile at 1 m/px) -> l2r train tiny_cpu -> checkpoint
    -> l2r extract on the original GeoTIFF -> GeoJSON inside the tile -> l2r eval scores it.

    Thresholds at the top quantiles of the barely trained model's masks and t_topo = 0 make it
    output a small graph; this checks the plumbing (georeference, formats, checkpoint round
    trip), not accuracy."""
    labels = make_vegas_labels(tmp_path / "vegas")
    run = tmp_path / "run"
    r = l2r("train", "tiny_cpu", "-o", run, "--max-steps", "3",
            "--set", f"data.train={labels}", "--set", "data.samples_per_tile=8")  # fmt: skip
    assert r.exit_code == 0, r.output
    ckpt = run / "checkpoints" / "last.safetensors"
    assert ckpt.is_file() and (run / "config.yaml").is_file() and (run / "log.csv").is_file()

    t_k, t_r = _sparse_thresholds(ckpt, labels)
    out = tmp_path / "pred.geojson"
    r = l2r("extract", VEGAS_TIF, "-o", out, "--checkpoint", ckpt, "--device", "cpu",
            "--precision", "fp32", "--no-progress", "--t-k", t_k, "--t-r", t_r,
            "--t-topo", "0.0")  # fmt: skip
    assert r.exit_code == 0, r.output
    coords = _coords(json.loads(out.read_text()))
    assert coords, "the extracted graph is empty"
    with rasterio.open(VEGAS_TIF) as ds:
        b = ds.bounds
    eps = 1e-9
    assert all(b.left - eps <= x <= b.right + eps and b.bottom - eps <= y <= b.top + eps
               for x, y in coords)  # fmt: skip

    report = tmp_path / "eval.json"
    r = l2r("eval", "--gt", VEGAS_GT, "--pred", out, "--json", report)
    assert r.exit_code == 0, r.output
    s = json.loads(report.read_text())["summary"]
    for v in (s["topo"]["precision"], s["topo"]["recall"], s["topo"]["f1"], s["apls"]["score"]):
        assert v is None or 0.0 <= v <= 1.0


def test_unknown_config_key_is_one_line(l2r: L2R, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("optim:\n  lr: 1.0e-3\n  lr_decay: 0.5\n", encoding="utf-8")
    line = one_line_error(l2r("train", cfg, "-o", tmp_path / "run"))
    assert "optim.lr_decay" in line
    line = one_line_error(l2r("train", "tiny_cpu", "--set", "model.hed.x=1", "-o", tmp_path))
    assert "model.hed" in line


def test_missing_data_dir_is_one_line(l2r: L2R, tmp_path: Path) -> None:
    r = l2r("train", "tiny_cpu", "--set", f"data.train={tmp_path / 'nope'}", "-o", tmp_path / "r")
    assert "nope" in one_line_error(r)
    assert not (tmp_path / "r" / "checkpoints").exists()
    assert "data.train" in one_line_error(l2r("train", "tiny_cpu", "-o", tmp_path / "r"))


def test_resume_with_another_architecture_is_one_line(
    l2r: L2R, synthetic: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    base = ("train", "tiny_cpu", "-o", run, "--set", f"data.train={synthetic}", *TINY64)
    assert l2r(*base, "--max-steps", "1").exit_code == 0
    line = one_line_error(l2r(*base, "--set", "model.size=small", "--max-steps", "2", "--resume"))
    assert "checkpoint" in line and "small" in line
    assert "--resume" in one_line_error(l2r(*base, "--max-steps", "2"))
    assert l2r(*base, "--max-steps", "2", "--resume").exit_code == 0


def test_non_overpass_checkpoint_trains_and_extracts(
    l2r: L2R, synthetic: Path, tmp_path: Path
) -> None:
    """model.overpass=false: the paper's "Ours" trains a few steps, its checkpoint says which
    variant it is, and l2r extract runs it (no overpass mask written: the model has none)."""
    from linegraph2road.frontends.checkpoint import checkpoint_variant

    run = tmp_path / "run"
    r = l2r("train", "tiny_cpu", "-o", run, "--set", f"data.train={synthetic}", *TINY64,
            "--set", "model.overpass=false", "--max-steps", "2")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "no-overpass" in r.stderr
    ckpt = run / "checkpoints" / "last.safetensors"
    assert checkpoint_variant(ckpt) == "no-overpass"
    t_k, t_r = _sparse_thresholds(ckpt, synthetic)
    out, masks = tmp_path / "g.geojson", tmp_path / "masks"
    r = l2r("extract", synthetic / "img.png", "-o", out, "--checkpoint", ckpt, "--no-progress",
            "--t-k", t_k, "--t-r", t_r, "--t-topo", "0", "--save-masks", masks)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "no-overpass variant" in r.stderr and out.is_file()
    assert sorted(p.name for p in masks.iterdir()) == ["img_keypoint.tif", "img_road.tif"]


def test_help_and_missing_config(l2r: L2R, tmp_path: Path) -> None:
    r = l2r("train", "--help")
    assert r.exit_code == 0 and "--resume" in r.output and "tiny_cpu" in r.output
    # the help says how often validation runs, as the packaged tiny_cpu config does it
    from linegraph2road.training.config import load_config

    every = load_config("tiny_cpu").validation.every
    assert "validation.every" in r.output
    assert f"tiny_cpu: every {every}" in " ".join(r.output.split())
    assert "packaged configs" in one_line_error(l2r("train", tmp_path / "none.yaml"))
