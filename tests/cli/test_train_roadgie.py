"""``l2r train roadgie_tiny_cpu``: the interactive recipe end to end on l2r prep output and on a
DeepGlobe-layout folder, its config checks, and (short) that it learns on the real Vegas tile."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import Result

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.checkpoint import checkpoint_kind, load_frontend
from linegraph2road.frontends.roadgie import RoadGIEFrontend
from linegraph2road.training.config import load_any_config
from linegraph2road.training.segmentation.common import read_log
from linegraph2road.training.segmentation.config import RoadGIERecipe
from tests.training import make_synthetic_labels
from tests.training.test_road_masks import _deepglobe


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("optim.kinds=[click,box]", "kinds"),
        ("data.crop=60", "multiple of 8"),
        ("model.mask_channels=3", "road only"),
        ("model.size=huge", "model.size"),
        ("optim.exclude=[iou]", "exclude"),
        ("optim.precision=fp16", "precision"),
        ("optim.rounds=0", "rounds"),
        ("optim.max_prompts=0", "max_prompts"),
        ("optim.refiner_epochs=2", "unknown config key"),
    ],
)
def test_config_checks(override: str, words: str) -> None:
    with pytest.raises(ParameterError, match=words):
        load_any_config("roadgie_tiny_cpu", overrides=[override])


def test_packaged_configs() -> None:
    paper = load_any_config("roadgie")
    assert isinstance(paper.optim, RoadGIERecipe)
    assert (paper.optim.lr, paper.optim.rounds, paper.optim.min_prompts) == (3e-4, 5, 1)
    assert paper.optim.max_prompts == 3 and paper.optim.exclude == ["skeleton"]
    assert paper.model.size == "paper" and paper.model.window_size == 512


@pytest.mark.parametrize("layout", ["prep", "deepglobe"])
def test_train_roadgie_cli(l2r: Callable[..., Result], tmp_path: Path, layout: str) -> None:
    if layout == "prep":
        data = make_synthetic_labels(tmp_path / "labels", size=64)
    else:
        data = _deepglobe(tmp_path / "dg", n=2, size=64)
    run = tmp_path / "run"
    r = l2r("train", "roadgie_tiny_cpu", "-o", run, "--max-steps", "3", "--set",
            f"data.train={data}", "--set", f"data.val={data}", "--set", "data.samples_per_tile=2",
            "--set", "optim.rounds=2")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "training roadgie/tiny" in r.stderr and "best road IoU" in r.stderr
    ckpt = run / "checkpoints" / "last.safetensors"
    assert checkpoint_kind(ckpt) == "frontend"
    fe, _, config = load_frontend(ckpt)
    assert isinstance(fe, RoadGIEFrontend) and config["optim"]["rounds"] == 2
    rows = read_log(run / "log.csv")
    assert [r["phase"] for r in rows].count("roadgie") == 3 and rows[-1]["phase"] == "val"
    assert 0.0 <= float(rows[-1]["val_road_iou"]) <= 1.0
    assert (run / "checkpoints" / "best.safetensors").is_file()


def test_a_step_reaches_every_parameter() -> None:
    from linegraph2road.frontends.roadgie import build_roadgie
    from linegraph2road.training.segmentation.roadgie import roadgie_step, simulation_settings

    torch.manual_seed(0)
    fe = build_roadgie("tiny", 32)
    road = torch.zeros(2, 32, 32)
    road[:, 10:15, :] = 1.0
    batch = {
        "image": torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8),
        "road": road,
        "uncertainty": torch.rand(2, 32, 32),
        "has_uncertainty": torch.tensor([True, False]),
    }
    recipe = RoadGIERecipe(rounds=3)
    loss = roadgie_step(fe, batch, recipe=recipe, settings=simulation_settings(recipe),
                        seed=(0, 0), device=torch.device("cpu"))  # fmt: skip
    assert np.isfinite(loss) and loss > 0
    missing = [n for n, p in fe.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing
