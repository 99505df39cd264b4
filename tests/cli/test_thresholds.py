"""``l2r thresholds`` (re-selection into a new checkpoint) and ``l2r extract`` using the
thresholds a checkpoint records."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import Result
from safetensors.torch import load_file

from linegraph2road.frontends.checkpoint import checkpoint_thresholds, save_frontend
from linegraph2road.frontends.nl_linknet import build_nl_linknet
from linegraph2road.model import build_model, save_checkpoint
from tests.cli.conftest import one_line_error
from tests.training import make_synthetic_labels

L2R = Callable[..., Result]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_labels(tmp_path_factory.mktemp("syn"))


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    config = {"validation": {"t_k": 0.248, "t_r": 0.364, "t_topo": 0.5}}
    return save_checkpoint(build_model("tiny", window_size=64), tmp_path / "m.safetensors", config)


def test_selects_prints_and_writes_a_new_checkpoint(
    l2r: L2R, synthetic: Path, ckpt: Path, tmp_path: Path
) -> None:
    before = ckpt.read_bytes()
    r = l2r("thresholds", ckpt, "--labels", synthetic, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "best F1 of each precision-recall curve, 1 tile(s), 4 window(s)" in r.stdout
    for head in ("keypoint  t_k", "road      t_r", "topology  t_topo"):
        assert head in r.stdout
    assert " P " in r.stdout and " F1 " in r.stdout
    assert "the checkpoint had: t_k 0.248, t_r 0.364, t_topo 0.5" in r.stdout
    assert "nothing written" in r.stderr
    out = tmp_path / "new" / "m_thresholds.safetensors"
    r = l2r("thresholds", ckpt, "--labels", synthetic, "-o", out, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert ckpt.read_bytes() == before  # the input is never modified without --in-place
    stored = checkpoint_thresholds(out)
    assert stored is not None and stored["source"] == "selected on 1 tile(s), 4 window(s), best F1"
    old, new = load_file(str(ckpt)), load_file(str(out))
    assert old.keys() == new.keys() and all(torch.equal(old[k], new[k]) for k in old)
    printed = r.stdout.split("keypoint  t_k", 1)[1].split()[0]
    assert f"{stored['t_k']:.4f}" == printed
    # extract runs with them by default, and says so; an option overrides one of them
    image, graph = synthetic / "img.png", tmp_path / "g.geojson"
    r = l2r("extract", image, "-o", graph, "--checkpoint", out, "--no-progress", "--t-topo", "0.3")
    assert r.exit_code == 0, r.output
    assert f"t_k {stored['t_k']:g}, t_r {stored['t_r']:g} (checkpoint: selected on 1" in r.stderr
    assert "t_topo 0.3 (--t-topo)" in r.stderr


def test_in_place_and_refusals(l2r: L2R, synthetic: Path, ckpt: Path, tmp_path: Path) -> None:
    line = one_line_error(l2r("thresholds", ckpt, "--labels", synthetic, "-o", ckpt))
    assert "--in-place" in line
    line = one_line_error(
        l2r("thresholds", ckpt, "--labels", synthetic, "-o", tmp_path / "x.st", "--in-place")
    )
    assert "not both" in line
    assert checkpoint_thresholds(ckpt) is not None and checkpoint_thresholds(ckpt)["record"] is None
    r = l2r("thresholds", ckpt, "--labels", synthetic, "--in-place", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert checkpoint_thresholds(ckpt)["record"] is not None  # type: ignore[index]
    seg = save_frontend(build_nl_linknet("tiny", 64, mask_channels=1), tmp_path / "nl.st")
    assert "segmentation-only" in one_line_error(
        l2r("thresholds", seg, "--labels", synthetic, "-o", tmp_path / "y.st")
    )
    assert "no prepared tiles of split 'nope'" in one_line_error(
        l2r("thresholds", ckpt, "--labels", synthetic, "--split", "nope")
    )


def test_spacenet_config_checkpoint_extracts_with_its_own_thresholds(
    l2r: L2R, synthetic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint trained with the packaged spacenet config (no validation tiles, so nothing
    selected) runs at SpaceNet's 0.195 / 0.341 / 0.705, not at City-scale's defaults."""
    run = tmp_path / "run"
    r = l2r("train", "spacenet", "-o", run, "--max-steps", "1", "--set", f"data.train={synthetic}",
            "--set", "model.size=tiny", "--set", "model.window_size=64", "--set", "data.crop=64",
            "--set", "model.head.hidden_dim=8", "--set", "data.samples_per_tile=2",
            "--set", "data.workers=0", "--set", "device=cpu",
            "--set", "precision=fp32")  # fmt: skip
    assert r.exit_code == 0, r.output
    ckpt = run / "checkpoints" / "last.safetensors"
    import linegraph2road.pipelines.extract as extract_module

    seen: dict[str, Any] = {}
    real = extract_module.extract_graph

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(extract_module, "extract_graph", spy)
    r = l2r("extract", synthetic / "img.png", "-o", tmp_path / "g.geojson", "--checkpoint", ckpt,
            "--no-progress")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (seen["t_k"], seen["t_r"], seen["t_topo"]) == (0.195, 0.341, 0.705)
    assert (
        "thresholds: t_k 0.195, t_r 0.341, t_topo 0.705 (checkpoint: the training config's "
        "validation thresholds)"
    ) in r.stderr
    assert "no-overpass variant" in r.stderr  # the spacenet config's choice


def test_resolve_thresholds_sources_and_defaults() -> None:
    import inspect

    from linegraph2road.inference import extract_graph
    from linegraph2road.nms import DEFAULT_T_K, DEFAULT_T_R
    from linegraph2road.pipelines.options import (
        DEFAULT_THRESHOLDS,
        ExtractOptions,
        resolve_thresholds,
    )

    params = inspect.signature(extract_graph).parameters
    want = {"t_k": DEFAULT_T_K, "t_r": DEFAULT_T_R, "t_topo": params["t_topo"].default}
    assert want == DEFAULT_THRESHOLDS
    assert (params["t_k"].default, params["t_r"].default) == (DEFAULT_T_K, DEFAULT_T_R)
    values, line = resolve_thresholds(ExtractOptions(), None)
    assert values == DEFAULT_THRESHOLDS
    assert (
        line
        == "thresholds: t_k 0.248, t_r 0.364, t_topo 0.5 (defaults: SAM-Road's City-scale values)"
    )
    stored = {"t_k": 0.1, "t_r": 0.2, "t_topo": 0.3, "source": "selected on 2 tile(s)"}
    values, line = resolve_thresholds(ExtractOptions(t_r=0.45), stored)
    assert values == {"t_k": 0.1, "t_r": 0.45, "t_topo": 0.3}
    assert line == (
        "thresholds: t_k 0.1, t_topo 0.3 (checkpoint: selected on 2 tile(s)); t_r 0.45 (--t-r)"
    )
