"""``l2r train`` with the packaged ``task: segmentation`` smoke configs, on synthetic tiles."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import Result

from linegraph2road.frontends.checkpoint import checkpoint_kind, load_frontend
from tests.cli.conftest import one_line_error
from tests.training import make_synthetic_labels

L2R = Callable[..., Result]


@pytest.fixture(scope="module")
def tiles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two 96 px prepared tiles, each with its own image: two locations."""
    root = tmp_path_factory.mktemp("seg")
    return make_synthetic_labels(root / "a"), make_synthetic_labels(root / "b", seed=1)


@pytest.mark.parametrize(
    ("config", "extra", "kind"),
    [
        ("nl_linknet_tiny_cpu", (), "frontend"),
        # 96 px tiles: 32 px patches, so the largest context (3 patches) fits
        ("fctl_tiny_cpu", ("--set", "model.window_size=32"), "frontend"),
        ("experts_tiny_cpu", ("--set", "data.samples_per_tile=2"), "experts"),
    ],
)
def test_smoke_configs_write_segmentation_checkpoints(
    l2r: L2R,
    tiles: tuple[Path, Path],
    tmp_path: Path,
    config: str,
    extra: tuple[str, ...],
    kind: str,
) -> None:
    a, b = tiles
    run = tmp_path / "run"
    r = l2r(
        "train",
        config,
        "-o",
        run,
        "--max-steps",
        "2",
        "--set",
        f"data.train=[{a}, {b}]",
        "--set",
        f"data.val={a}",
        *extra,
    )
    assert r.exit_code == 0, r.output
    assert "steps done" in r.stderr
    last = run / "checkpoints" / "last.safetensors"
    assert checkpoint_kind(last) == kind
    assert (run / "checkpoints" / "best.safetensors").is_file()
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["task"] == "segmentation" and resolved["data"]["train"][0]["labels"] == str(a)
    with open(run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and {"phase", "step", "loss", "lr", "val_road_iou"} <= set(rows[0])
    ckpt = load_frontend(last)
    assert ckpt.frontend.describe()["frontend"] == resolved["model"]["frontend"]
    if kind == "frontend":
        assert ckpt.config["model"] == resolved["model"]  # the resolved config travels along
    # a second run into the same folder is refused, in one line
    again = l2r("train", config, "-o", run, "--set", f"data.train={a}", *extra)
    assert "already holds a training run" in one_line_error(again)


def test_unknown_key_and_resume_are_one_line(
    l2r: L2R, tiles: tuple[Path, Path], tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("task: segmentation\noptim:\n  lr: 1.0e-3\n  lr_decay: 0.5\n", encoding="utf-8")
    line = one_line_error(l2r("train", cfg, "-o", tmp_path / "run"))
    assert "optim.lr_decay" in line and "nl-linknet recipe" in line
    line = one_line_error(l2r("train", "fctl_tiny_cpu", "--set", "optim.loss=bce", "-o", tmp_path))
    assert "optim.loss" in line
    line = one_line_error(
        l2r(
            "train",
            "nl_linknet_tiny_cpu",
            "--resume",
            "--set",
            f"data.train={tiles[0]}",
            "-o",
            tmp_path / "r",
        )
    )
    assert "--resume" in line and "segmentation" in line
    assert not (tmp_path / "r").exists()


def test_fctl_tiles_smaller_than_the_context_are_one_line(
    l2r: L2R, tiles: tuple[Path, Path], tmp_path: Path
) -> None:
    r = l2r("train", "fctl_tiny_cpu", "--set", f"data.train={tiles[0]}", "-o", tmp_path / "r")
    assert "smaller than FCtL's largest context" in one_line_error(r)
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_help_lists_the_segmentation_configs(l2r: L2R) -> None:
    r = l2r("train", "--help")
    assert r.exit_code == 0
    for name in ("nl_linknet", "fctl", "experts", "nl_linknet_tiny_cpu", "experts_tiny_cpu"):
        assert name in r.output
