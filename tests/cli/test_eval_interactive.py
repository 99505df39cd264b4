"""``l2r eval-interactive``: JSON/CSV per round + plot on a DeepGlobe-layout folder and on l2r
prep output; bad inputs are one line, exit 2, no output."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from click.testing import Result

from linegraph2road.frontends import build_frontend
from linegraph2road.frontends.checkpoint import save_frontend
from tests.cli.conftest import one_line_error
from tests.training import make_synthetic_labels
from tests.training.test_road_masks import _deepglobe

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "roadgie.safetensors"
    return save_frontend(build_frontend("roadgie", "tiny", window_size=64), path)


def test_eval_interactive_reports(
    l2r: Callable[..., Result], checkpoint: Path, tmp_path: Path
) -> None:
    dg = _deepglobe(tmp_path / "dg", n=2, size=64)
    prep = make_synthetic_labels(tmp_path / "labels", size=64)
    out = {k: tmp_path / f"report.{k}" for k in ("json", "csv", "png")}
    r = l2r("eval-interactive", "--checkpoint", checkpoint, "--data", dg, "--data", prep,
            "--rounds", "3", "--kinds", "click,bezier", "--json", out["json"], "--csv",
            out["csv"], "--plot", out["png"], "--device", "cpu", "--no-progress")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "round 3" in r.stdout and "NoI@0.85" in r.stdout and "clDice".lower() in r.stdout
    doc = json.loads(out["json"].read_text())
    assert doc["summary"]["images"] == 3 and len(doc["summary"]["rounds"]) == 3
    assert doc["settings"]["kinds"] == ["click", "bezier"] and doc["settings"]["rounds"] == 3
    first = doc["images"][0]["rounds"]
    assert [x["prompts"] for x in first] == [1, 2, 3]  # one prompt a round, accumulated
    for key in ("dice", "recall", "cldice", "apls", "betti0_error", "betti1_error"):
        assert key in first[0]
    rows = list(csv.DictReader(out["csv"].read_text().splitlines()))
    assert len(rows) == 3 * 3 + 3 and rows[-1]["image"] == "mean"
    assert out["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = tmp_path / "again.json"
    r = l2r("eval-interactive", "--checkpoint", checkpoint, "--data", dg, "--data", prep,
            "--rounds", "3", "--kinds", "click,bezier", "--json", again,
            "--no-progress")  # fmt: skip
    assert json.loads(again.read_text())["summary"] == doc["summary"]  # seeded: reproducible


def test_eval_interactive_bad_input(
    l2r: Callable[..., Result], checkpoint: Path, tmp_path: Path
) -> None:
    dg = _deepglobe(tmp_path / "dg", n=1, size=64)
    out = tmp_path / "r.json"
    other = save_frontend(build_frontend("nl-linknet", "tiny", window_size=64), tmp_path / "n.st")
    assert "not roadgie" in one_line_error(
        l2r("eval-interactive", "--checkpoint", other, "--data", dg, "--json", out)
    )
    corrupt = tmp_path / "c.safetensors"
    corrupt.write_bytes(checkpoint.read_bytes()[:100])
    assert "checkpoint" in one_line_error(
        l2r("eval-interactive", "--checkpoint", corrupt, "--data", dg, "--json", out)
    )
    assert "kinds" in one_line_error(
        l2r("eval-interactive", "--checkpoint", checkpoint, "--data", dg, "--kinds", "box")
    )
    assert "no training tiles" in one_line_error(
        l2r("eval-interactive", "--checkpoint", checkpoint, "--data", tmp_path, "--json", out)
    )
    assert ".json" in one_line_error(
        l2r(
            "eval-interactive",
            "--checkpoint",
            checkpoint,
            "--data",
            dg,
            "--json",
            tmp_path / "r.txt",
        )
    )
    assert not out.exists()
