"""RoadGIE's expert uncertainty (eq. 4): the formula, and ``l2r prep uncertainty`` writing the
cache beside the labels that ``l2r train roadgie`` then uses."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import Result

from linegraph2road.errors import ParameterError
from linegraph2road.frontends import build_frontend
from linegraph2road.frontends.checkpoint import save_frontend
from linegraph2road.frontends.roadgie.uncertainty import expert_uncertainty
from linegraph2road.io.raster import read_mask
from tests.cli.conftest import one_line_error
from tests.training import make_synthetic_labels


def test_expert_uncertainty_is_the_mean_absolute_error() -> None:
    road = np.array([[True, False], [True, False]])
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    b = np.array([[0.5, 0.5], [0.0, 0.0]])
    u = expert_uncertainty([a, b], road)
    np.testing.assert_allclose(u, [[0.25, 0.25], [1.0, 0.5]])
    assert u.dtype == np.float32
    with pytest.raises(ParameterError):
        expert_uncertainty([], road)
    with pytest.raises(ParameterError):
        expert_uncertainty([a[:1]], road)


def test_prep_uncertainty_cli(l2r: Callable[..., Result], tmp_path: Path) -> None:
    labels = make_synthetic_labels(tmp_path / "labels", size=64)
    torch.manual_seed(0)
    ckpts = []
    for name in ("roadgie", "nl-linknet"):
        fe = build_frontend(name, "tiny", window_size=64)
        ckpts.append(save_frontend(fe, tmp_path / f"{name}.safetensors"))
    r = l2r("prep", "uncertainty", labels, "--checkpoint", ckpts[0], "--checkpoint", ckpts[1],
            "--device", "cpu", "--no-progress")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "wrote 1 uncertainty map(s)" in r.stderr
    u, _ = read_mask(labels / "plus_uncertainty.png")
    assert u.shape == (64, 64) and u.min() >= 0.0 and u.max() <= 1.0 and u.std() > 0
    doc = json.loads((labels / "uncertainty.json").read_text())
    assert len(doc["checkpoints"]) == 2 and doc["tiles"][0]["tile_id"] == "plus"
    run = tmp_path / "run"
    r = l2r("train", "roadgie_tiny_cpu", "-o", run, "--max-steps", "1", "--set",
            f"data.train={labels}", "--set", "data.samples_per_tile=1")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "(1 with expert uncertainty)" in r.stderr


def test_prep_uncertainty_bad_input(l2r: Callable[..., Result], tmp_path: Path) -> None:
    labels = make_synthetic_labels(tmp_path / "labels", size=64)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    assert "not a safetensors" in one_line_error(
        l2r("prep", "uncertainty", labels, "--checkpoint", bad, "--no-progress")
    )
    assert not (labels / "plus_uncertainty.png").exists()
    assert "training data folder not found" in one_line_error(
        l2r("prep", "uncertainty", tmp_path / "nowhere", "--checkpoint", bad)
    )
