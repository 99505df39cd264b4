from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from linegraph2road.errors import InputFileError, ParameterError
from linegraph2road.training.config import (
    DataSource,
    OptimConfig,
    config_from_dict,
    load_config,
    packaged_configs,
    resolve,
)


def test_packaged_configs_ship_inside_the_package() -> None:
    folder = files("linegraph2road.pipelines") / "configs"
    names = {p.name for p in folder.iterdir()}
    assert {"cityscale.yaml", "spacenet.yaml", "globalscale.yaml", "tiny_cpu.yaml"} <= names
    assert set(packaged_configs()) >= {"cityscale", "spacenet", "globalscale", "tiny_cpu"}


def test_paper_values() -> None:
    cs = load_config("cityscale")
    assert (cs.optim.lr, cs.optim.encoder_lr_factor, cs.optim.epochs) == (1e-3, 0.05, 10)
    # SAM-Road's MultiStepLR(milestones=[9], gamma=0.1): the paper trains "consistent with" it
    assert (cs.optim.batch_size, cs.optim.lambda_edge, cs.optim.milestones) == (4, 0.1, [9])
    assert (cs.optim.gamma, OptimConfig().milestones, OptimConfig().epochs) == (0.1, [9], 10)
    assert (cs.model.size, cs.model.window_size, cs.data.crop) == ("vit_b", 512, 512)
    v = cs.validation
    assert (v.t_k, v.t_r, v.t_topo, v.d_k, v.d_r, v.d_nei) == (0.248, 0.364, 0.5, 8, 16, 64)
    sn = load_config("spacenet.yaml")
    assert (sn.validation.t_k, sn.validation.t_r, sn.validation.t_topo) == (0.195, 0.341, 0.705)
    assert sn.model.window_size == sn.data.crop == 400 and sn.optim.epochs == 10
    assert (sn.optim.milestones, sn.optim.gamma) == ([9], 0.1)
    # Table 1: the best SpaceNet model has no overpass head, the best City-scale model has one
    assert (sn.model.overpass, cs.model.overpass) == (False, True)
    gs = load_config("globalscale")
    assert (gs.optim.epochs, gs.optim.milestones, gs.optim.gamma) == (20, [10], 0.1)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"optimm": {}}, "optimm"),
        ({"optim": {"learning_rate": 1}}, "optim.learning_rate"),
        ({"data": {"train": [{"labels": "x", "image": "y"}]}}, "data.train[0].image"),
        ({"model": {"head": {"hidden": 8}}}, "model.head.hidden"),
    ],
)
def test_unknown_keys_are_named(data: dict, key: str) -> None:
    with pytest.raises(ParameterError, match=f"unknown config key '{key}'".replace("[", r"\[")):
        config_from_dict(data)


@pytest.mark.parametrize(
    "data",
    [{"optim": {"lr": "fast"}}, {"optim": {"epochs": 2.5}}, {"data": {"rotate": "yes"}},
     {"precision": "fp16"}, {"optim": {"milestones": ["a"]}}],
)  # fmt: skip
def test_wrong_types_are_parameter_errors(data: dict) -> None:
    with pytest.raises(ParameterError):
        config_from_dict(data)


def test_overrides_and_data_shorthand(tmp_path: Path) -> None:
    cfg = load_config(
        "tiny_cpu",
        overrides=[
            "optim.lr=1e-4",
            "data.train=labels/a",
            "data.val=[{labels: v, images: img, split: valid}]",
            "model.head.hidden_dim=8",
        ],
    )
    assert cfg.optim.lr == 1e-4 and cfg.model.head["hidden_dim"] == 8
    assert cfg.data.train == [DataSource("labels/a")]
    assert cfg.data.val == [DataSource("v", "img", "valid")]
    with pytest.raises(ParameterError, match="KEY=VALUE"):
        load_config("tiny_cpu", overrides=["optim.lr"])
    with pytest.raises(ParameterError, match=r"unknown config key 'optim\.lrr'"):
        load_config("tiny_cpu", overrides=["optim.lrr=1"])


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="packaged configs"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(ParameterError, match="mapping"):
        load_config(bad)


def test_resolve_writes_a_config_that_reloads_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config("spacenet", overrides=["data.train=labels", "data.crop=null"])
    out = resolve(cfg, tmp_path / "run")
    assert out.data.crop == 400  # filled from the model window
    assert out.data.train[0].labels == str(tmp_path / "labels")  # absolute
    written = tmp_path / "run" / "config.yaml"
    assert yaml.safe_load(written.read_text()) == out.to_dict()
    assert load_config(written) == out
    assert cfg.data.crop is None  # the input is not modified
