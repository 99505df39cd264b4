"""Segmentation-only training (``task: segmentation``): config, front-ends, the three loops.

The loops run on :func:`tests.training.make_synthetic_labels` tiles (bright roads on a dark,
noisy ground), small enough for a few seconds of CPU each.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.checkpoint import checkpoint_kind, load_frontend, save_frontend
from linegraph2road.frontends.fctl import FCtLFrontend
from linegraph2road.training import TileDataset, find_tiles, load_config
from linegraph2road.training.config import config_from_dict, load_any_config
from linegraph2road.training.segmentation.common import (
    RoadIoU,
    RunLog,
    build_segmentation_frontend,
    experts_size,
    read_log,
)
from linegraph2road.training.segmentation.config import (
    ExpertsRecipe,
    FCtLRecipe,
    NLLinkNetRecipe,
    SegmentationConfig,
    resolve_segmentation,
    segmentation_config_from_dict,
)
from linegraph2road.training.segmentation.experts import tile_locations, train_experts
from linegraph2road.training.segmentation.fctl import train_fctl
from linegraph2road.training.segmentation.nl_linknet import train_nl_linknet
from tests.training import make_synthetic_labels


@pytest.fixture(scope="module")
def plus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_labels(tmp_path_factory.mktemp("plus"))


@pytest.fixture(scope="module")
def plus2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_labels(tmp_path_factory.mktemp("plus2"), seed=1)


def _seg(**sections: Any) -> dict[str, Any]:
    return {"task": "segmentation", **sections}


def _first_last(losses: list[float], n: int = 5) -> tuple[float, float]:
    return float(np.mean(losses[:n])), float(np.mean(losses[-n:]))


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module, window: int) -> None:
    x = torch.randn(2, 3, window, window, generator=torch.Generator().manual_seed(0))
    a.eval()
    b.eval()
    with torch.no_grad():
        torch.testing.assert_close(a(x).masks, b(x).masks)


# -- config --------------------------------------------------------------------------------------
def test_packaged_configs_hold_the_papers_values() -> None:
    nl = load_any_config("nl_linknet")
    assert isinstance(nl, SegmentationConfig) and isinstance(nl.optim, NLLinkNetRecipe)
    assert (nl.model.frontend, nl.model.size, nl.model.window_size) == ("nl-linknet", "nl34", 1024)
    o = nl.optim
    assert (o.lr, o.batch_size, o.epochs, o.loss, o.plateau_factor) == (3e-4, 8, 180, "bce", 0.2)
    assert nl.data.crop == 1024 and nl.model.mask_channels == 1

    fc = load_any_config("fctl")
    assert isinstance(fc, SegmentationConfig) and isinstance(fc.optim, FCtLRecipe)
    assert (fc.model.size, fc.model.window_size) == ("vgg16", 508)
    f = fc.optim
    assert (f.lr, f.poly_power, f.focal_gamma, f.epochs) == (5e-5, 0.9, 3.0, 50)
    assert (f.batch_size * f.accumulate, f.refiner_from_epoch) == (6, 20)
    fe = build_segmentation_frontend("fctl", "tiny", window_size=fc.model.window_size)
    assert isinstance(fe, FCtLFrontend) and fe.context_sizes == (508, 1016, 1524)

    ex = load_any_config("experts")
    assert isinstance(ex, SegmentationConfig) and isinstance(ex.optim, ExpertsRecipe)
    e = ex.optim
    assert (ex.model.size, ex.model.window_size) == ("resnet34", 512)
    assert (e.lr, e.weight_decay, e.poly_power, e.batch_size, e.epochs) == (1e-4, 5e-4, 0.9, 8, 30)
    assert experts_size(ex.model.size, ex.model.mask_channels) == "resnet34-road"
    for name in ("nl_linknet_tiny_cpu", "fctl_tiny_cpu", "experts_tiny_cpu"):
        cfg = load_any_config(name)
        assert isinstance(cfg, SegmentationConfig) and cfg.device == "cpu"


def test_task_selects_the_config_kind() -> None:
    assert config_from_dict({"task": "linegraph2road"}) == config_from_dict({})
    assert isinstance(segmentation_config_from_dict({"task": "segmentation"}), SegmentationConfig)
    with pytest.raises(ParameterError, match="load_any_config"):
        load_config("nl_linknet")
    with pytest.raises(ParameterError, match="'task' must be one of"):
        config_from_dict({"task": "detection"})
    tiny = load_any_config("tiny_cpu", overrides=["task=linegraph2road"])
    assert tiny == load_config("tiny_cpu")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (_seg(optimm={}), "optimm"),
        (_seg(model={"sam_checkpoint": "x"}), "model.sam_checkpoint"),
        (_seg(model={"frontend": "fctl"}, optim={"plateau_factor": 0.2}), "optim.plateau_factor"),
        (_seg(optim={"focal_gamma": 3}), "optim.focal_gamma"),
        (_seg(validation={"t_k": 0.2}), "validation.t_k"),
        (_seg(data={"train": [{"labels": "x", "image": "y"}]}), "data.train[0].image"),
    ],
)
def test_unknown_keys_are_named(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ParameterError, match=f"unknown config key '{key}'".replace("[", r"\[")):
        segmentation_config_from_dict(data)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_seg(model={"mask_channels": 2}), "mask_channels"),
        (_seg(model={"frontend": "sam"}), "nl-linknet, fctl, experts"),
        (_seg(optim={"loss": "dice"}), "optim.loss"),
        (_seg(model={"window_size": 100}), "multiple of 32"),
        (_seg(model={"frontend": "fctl", "window_size": 64}, data={"crop": 128}), "data.crop"),
        (_seg(model={"frontend": "experts", "size": "tiny", "checkpoint": "w.pt"}), "scratch"),
        (
            _seg(model={"frontend": "experts", "size": "tiny"}, optim={"locations": "city"}),
            "source",
        ),
        (_seg(validation={"threshold": 1.5}), "threshold"),
        (_seg(optim={"epochs": 0}), "optim.epochs"),
        (_seg(optim={"lr": "fast"}), "optim.lr"),
    ],
)
def test_bad_values_are_parameter_errors(data: dict[str, Any], words: str) -> None:
    with pytest.raises(ParameterError, match=words):
        segmentation_config_from_dict(data)


def test_resolve_writes_a_config_that_reloads_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_any_config("fctl", overrides=["data.train=labels", "optim.refiner_epochs=0"])
    assert isinstance(cfg, SegmentationConfig)
    out = resolve_segmentation(cfg, tmp_path / "run")
    assert out.data.crop == 508 and out.data.train[0].labels == str(tmp_path / "labels")
    written = tmp_path / "run" / "config.yaml"
    assert yaml.safe_load(written.read_text())["task"] == "segmentation"
    assert load_any_config(written) == out
    assert cfg.data.crop is None  # the input is not modified


# -- front-ends ----------------------------------------------------------------------------------
def test_frontends_take_mask_channels_and_pretrained_weights(tmp_path: Path) -> None:
    nl = build_segmentation_frontend("nl-linknet", "tiny", window_size=64)
    assert nl.trained_channels == (1,)
    assert build_segmentation_frontend("fctl", "tiny", window_size=32, mask_channels=3)
    assert experts_size("tiny-k2", 1) == "tiny-k2-road" and experts_size("tiny", 3) == "tiny"
    with pytest.raises(ParameterError, match="road-only"):
        experts_size("tiny-road", 3)

    # a previous segmentation checkpoint of the same architecture, at another window size
    torch.manual_seed(1)
    old = build_segmentation_frontend("nl-linknet", "tiny", window_size=64)
    save_frontend(old, tmp_path / "old.safetensors")
    new = build_segmentation_frontend(
        "nl-linknet", "tiny", window_size=128, checkpoint=tmp_path / "old.safetensors"
    )
    assert new.window_size == 128 and "old.safetensors" in new.weights_description
    _same_outputs(old, new, 64)
    with pytest.raises(ParameterError, match="config builds"):
        build_segmentation_frontend(
            "nl-linknet",
            "tiny",
            window_size=64,
            mask_channels=3,
            checkpoint=tmp_path / "old.safetensors",
        )

    # ImageNet backbones in torchvision layout
    vgg = build_segmentation_frontend("fctl", "vgg16", window_size=32)
    assert isinstance(vgg, FCtLFrontend)
    torch.save(vgg.net.encoder.state_dict(), tmp_path / "vgg16.pth")
    loaded = build_segmentation_frontend(
        "fctl", "vgg16", window_size=32, checkpoint=tmp_path / "vgg16.pth"
    )
    assert "VGG16" in loaded.weights_description
    resnet = build_segmentation_frontend("nl-linknet", "nl34", window_size=64)
    torch.save(resnet.net.encoder.state_dict(), tmp_path / "resnet34.pth")  # type: ignore[union-attr]
    loaded = build_segmentation_frontend(
        "nl-linknet", "nl34", window_size=64, checkpoint=tmp_path / "resnet34.pth"
    )
    assert "ResNet34 encoder" in loaded.weights_description


def test_tile_locations(plus: Path, plus2: Path) -> None:
    tiles = [find_tiles(plus), find_tiles(plus), find_tiles(plus2)]
    by_source = tile_locations(tiles, mode="source")
    assert by_source[0] == by_source[1] != by_source[2]  # the same image file, another one
    assert tile_locations(tiles, mode="folder") == [
        "data.train[0]",
        "data.train[1]",
        "data.train[2]",
    ]
    with pytest.raises(ParameterError):
        tile_locations(tiles, mode="city")


# -- the loops -----------------------------------------------------------------------------------
def test_nl_linknet_loop_learns_and_its_checkpoint_reloads(plus: Path, tmp_path: Path) -> None:
    tiles = find_tiles(plus)
    torch.manual_seed(0)
    frontend = build_segmentation_frontend("nl-linknet", "tiny", window_size=64)
    data = TileDataset(tiles, crop=64, samples_per_tile=8, cache=True)
    run = RunLog(tmp_path, config={"test": 1}, log_every=1, validator=RoadIoU(tiles))
    recipe = NLLinkNetRecipe(epochs=10, batch_size=4, lr=1e-2, loss="dice_bce")
    result = train_nl_linknet(frontend, data, run, recipe=recipe, validate_every=5, progress=False)
    assert result.steps == 20 and result.epochs == 10
    rows = read_log(tmp_path / "log.csv")
    losses = [float(r["loss"]) for r in rows if r["phase"] == "nl-linknet"]
    first, last = _first_last(losses)
    assert len(losses) == 20 and last < 0.8 * first, (first, last)
    ious = [float(r["val_road_iou"]) for r in rows if r["phase"] == "val"]
    assert [int(r["epoch"]) for r in rows if r["phase"] == "val"] == [5, 10]
    assert result.best_iou == max(ious) and all(0.0 <= v <= 1.0 for v in ious), ious

    assert result.last is not None and result.best is not None
    assert checkpoint_kind(result.last) == "frontend"
    ckpt = load_frontend(result.last)
    assert ckpt.config == {"test": 1} and ckpt.refiner is None
    _same_outputs(frontend, ckpt.frontend, 64)


def test_nl_linknet_max_steps_stops_inside_an_epoch(plus: Path, tmp_path: Path) -> None:
    tiles = find_tiles(plus)
    frontend = build_segmentation_frontend("nl-linknet", "tiny", window_size=64)
    data = TileDataset(tiles, crop=64, samples_per_tile=8, cache=True)
    run = RunLog(tmp_path, config={}, log_every=10, validator=RoadIoU(tiles))
    result = train_nl_linknet(
        frontend, data, run, recipe=NLLinkNetRecipe(batch_size=2), max_steps=3, progress=False
    )
    assert (result.steps, result.epochs) == (3, 0) and result.best is not None
    rows = read_log(tmp_path / "log.csv")
    assert [(r["phase"], r["step"]) for r in rows] == [("nl-linknet", "3"), ("val", "3")]


def test_fctl_loop_learns_with_its_refiner(plus: Path, tmp_path: Path) -> None:
    tiles = find_tiles(plus)  # 96 px: contexts of 32 / 64 / 96 px fit
    torch.manual_seed(0)
    frontend = build_segmentation_frontend("fctl", "tiny", window_size=32)
    assert isinstance(frontend, FCtLFrontend)
    data = TileDataset(tiles, crop=32, samples_per_tile=8, cache=True)
    run = RunLog(tmp_path, config={}, log_every=1, validator=RoadIoU(tiles))
    recipe = FCtLRecipe(
        epochs=12,
        batch_size=2,
        accumulate=2,
        lr=3e-3,
        refiner_epochs=1,
        refiner_from_epoch=6,
        refiner_widths=[4, 8],
    )
    result = train_fctl(frontend, data, run, recipe=recipe, validate_every=0, progress=False)
    rows = read_log(tmp_path / "log.csv")
    losses = [float(r["loss"]) for r in rows if r["phase"] == "fctl"]
    first, last = _first_last(losses)
    assert len(losses) == 24 and last < 0.7 * first, (first, last)
    assert len([r for r in rows if r["phase"] == "refiner"]) == 2 and result.steps == 26
    assert [r["phase"] for r in rows if r["phase"] == "val"] == ["val", "val"]  # end, refiner end
    assert result.refiner is not None and result.notes == []

    assert result.last is not None
    ckpt = load_frontend(result.last)
    assert ckpt.refiner is not None and ckpt.refiner.describe() == result.refiner.describe()
    _same_outputs(frontend, ckpt.frontend, 32)
    crude = torch.rand(1, 1, 32, 32)
    torch.testing.assert_close(ckpt.refiner(crude, crude), result.refiner(crude, crude))


def test_fctl_refuses_tiles_smaller_than_the_context(plus: Path, tmp_path: Path) -> None:
    frontend = build_segmentation_frontend("fctl", "tiny", window_size=64)  # context 192 px
    assert isinstance(frontend, FCtLFrontend)
    data = TileDataset(find_tiles(plus), crop=64)
    with pytest.raises(ParameterError, match="tile plus is 96 x 96 px, smaller than FCtL"):
        train_fctl(frontend, data, RunLog(tmp_path, config={}), recipe=FCtLRecipe(), progress=False)
    assert not (tmp_path / "checkpoints").exists()


def test_experts_train_one_expert_per_cluster(plus: Path, plus2: Path, tmp_path: Path) -> None:
    per_source = [find_tiles(plus), find_tiles(plus2)]
    tiles = [t for ts in per_source for t in ts]
    data = TileDataset(tiles, crop=64, rotate=False, samples_per_tile=4, cache=True)
    run = RunLog(tmp_path, config={"x": 1}, log_every=1, validator=RoadIoU(tiles[:1]))
    recipe = ExpertsRecipe(embedding_steps=2, expert_steps=8, batch_size=4, lr=3e-3)
    result = train_experts(
        data, tile_locations(per_source), run, size="tiny-k2", window_size=64, recipe=recipe
    )
    assert "2 locations" in result.notes[0]
    rows = read_log(tmp_path / "log.csv")
    phases = [r["phase"] for r in rows]
    assert phases.count("embedding") == 2 and phases[-1] == "val"
    trained = [p for p in ("expert0", "expert1") if phases.count(p) == 8]
    assert trained, phases  # k-means gives at least one non-empty cluster
    for p in trained:  # alpha BCE + (1 - alpha) soft Jaccard on 7 % road falls slowly
        first, last = _first_last([float(r["loss"]) for r in rows if r["phase"] == p], 3)
        assert last < 0.95 * first, (p, first, last)
    assert result.last is not None and checkpoint_kind(result.last) == "experts"
    ckpt = load_frontend(result.last)
    assert ckpt.frontend.describe()["size"] == "tiny-k2-road"
    _same_outputs(result.frontend, ckpt.frontend, 64)


def test_experts_with_one_location_train_the_k1_baseline(plus: Path, tmp_path: Path) -> None:
    tiles = find_tiles(plus)
    data = TileDataset(tiles, crop=64, rotate=False, samples_per_tile=4, cache=True)
    recipe = ExpertsRecipe(expert_steps=3, batch_size=2)
    result = train_experts(
        data,
        tile_locations([tiles]),
        RunLog(tmp_path, config={}),
        size="tiny-k2",
        window_size=64,
        recipe=recipe,
    )
    assert "one location" in result.notes[0] and "k = 1" in result.notes[0]
    assert result.frontend.describe()["k"] == 1 and result.steps == 3
    with open(tmp_path / "log.csv", newline="") as f:
        assert {r["phase"] for r in csv.DictReader(f)} == {"expert0"}  # no validator: no val
    assert result.best is None and result.last is not None


def test_experts_need_two_crops_per_location(plus: Path, plus2: Path, tmp_path: Path) -> None:
    per_source = [find_tiles(plus), find_tiles(plus2)]
    data = TileDataset([t for ts in per_source for t in ts], crop=64, samples_per_tile=1)
    with pytest.raises(ParameterError, match="samples_per_tile"):
        train_experts(
            data,
            tile_locations(per_source),
            RunLog(tmp_path, config={}),
            size="tiny-k2",
            window_size=64,
            recipe=ExpertsRecipe(),
        )


def test_config_dataclasses_are_frozen() -> None:
    cfg = segmentation_config_from_dict({"task": "segmentation"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1  # type: ignore[misc]
