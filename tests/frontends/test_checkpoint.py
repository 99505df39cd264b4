"""Segmentation-only front-end checkpoints: round trip, kinds, and refusals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from linegraph2road.errors import CheckpointError, InputFileError
from linegraph2road.frontends.checkpoint import (
    checkpoint_kind,
    checkpoint_variant,
    load_frontend,
    save_frontend,
)
from linegraph2road.frontends.experts import build_experts
from linegraph2road.frontends.fctl import FCTL_SIZES, FCtLFrontend, RefinementNet
from linegraph2road.frontends.nl_linknet import build_nl_linknet
from linegraph2road.model import build_model, save_checkpoint


def _frontends() -> list[tuple[str, torch.nn.Module, RefinementNet | None]]:
    torch.manual_seed(0)
    fctl = FCtLFrontend(spec=replace(FCTL_SIZES["tiny"], num_classes=1), window_size=64)
    return [
        ("nl-linknet", build_nl_linknet("tiny", 64, mask_channels=1), None),
        ("nl-linknet", build_nl_linknet("tiny", 64, mask_channels=3), None),
        ("fctl", fctl, RefinementNet(widths=(4, 8))),
        ("experts", build_experts("tiny-k2-road", 64, None), None),
    ]


@pytest.mark.parametrize("index", range(4))
def test_round_trip_gives_the_same_outputs(tmp_path: Path, index: int) -> None:
    name, frontend, refiner = _frontends()[index]
    path = save_frontend(frontend, tmp_path / "f.safetensors", refiner=refiner, config={"lr": 1})
    assert checkpoint_kind(path) == ("experts" if name == "experts" else "frontend")
    loaded = load_frontend(path)
    assert loaded.frontend.describe() == frontend.describe()
    assert path.name in loaded.frontend.weights_description
    assert not loaded.frontend.training
    x = torch.rand(2, 3, 64, 64)
    frontend.eval()
    with torch.no_grad():
        assert torch.equal(frontend(x).masks, loaded.frontend(x).masks)
    if refiner is not None:
        assert loaded.refiner is not None
        m = torch.rand(1, 1, 64, 64)
        refiner.eval()
        with torch.no_grad():
            assert torch.equal(refiner(m, m), loaded.refiner(m, m))
    assert loaded.config == {"lr": 1}


def test_every_kind_records_its_variant(tmp_path: Path) -> None:
    expected = ["road-only", "overpass", "road-only", "road-only"]
    for index, want in enumerate(expected):
        _, frontend, refiner = _frontends()[index]
        path = save_frontend(frontend, tmp_path / f"f{index}.safetensors", refiner=refiner)
        assert checkpoint_variant(path) == want, index
    for overpass, want in ((True, "overpass"), (False, "no-overpass")):
        model = build_model("tiny", window_size=64, overpass=overpass)
        path = save_checkpoint(model, tmp_path / f"m{overpass}.safetensors")
        assert checkpoint_variant(path) == model.variant == want
    sam = build_model("tiny", window_size=64, overpass=False).frontend
    path = save_frontend(sam, tmp_path / "sam_frontend.safetensors")
    assert checkpoint_variant(path) == "no-overpass"
    assert load_frontend(path).frontend.trained_channels == (0, 1)


def test_kinds_and_refusals(tmp_path: Path) -> None:
    model_path = save_checkpoint(build_model("tiny", window_size=64), tmp_path / "m.safetensors")
    assert checkpoint_kind(model_path) == "model"
    with pytest.raises(CheckpointError, match="LineGraph2Road model checkpoint"):
        load_frontend(model_path)
    with pytest.raises(InputFileError):
        checkpoint_kind(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="cannot read"):
        checkpoint_kind(junk)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(1)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a linegraph2road checkpoint"):
        load_frontend(foreign)


def test_tensors_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    path = save_frontend(build_nl_linknet("tiny", 64, mask_channels=1), tmp_path / "f.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    key = next(iter(state))
    broken = tmp_path / "broken.safetensors"
    save_file({k: v for k, v in state.items() if k != key}, str(broken), metadata=meta)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_frontend(broken)
    state[key] = torch.zeros(3, 3)
    save_file(state, str(broken), metadata=meta)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_frontend(broken)
