"""Threshold selection (SAM-Road's best-F1 rule) on tiles, in training and in checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.checkpoint import checkpoint_thresholds
from linegraph2road.model import ModelOutput, build_model, save_checkpoint
from linegraph2road.pipelines.train import train
from linegraph2road.training import TileData, config_from_dict
from linegraph2road.training.thresholds import ThresholdSelection, select_thresholds
from tests.training import make_synthetic_labels

WINDOW = 32
# Known best-F1 points: keypoint pixels score >= 120/255, others <= 100/255; road >= 180/255
# vs <= 150/255; connected candidate edges 0.9, the others 0.2.
KP_LOW, KP_HIGH, ROAD_LOW, ROAD_HIGH = 100, 120, 150, 180


class MaskReader(nn.Module):
    """Mask probabilities read from the image (R = keypoint, G = road, /255); edge probability
    0.9 for edges shorter than 10 px, else 0.2."""

    def __init__(self) -> None:
        super().__init__()
        self.window_size = WINDOW
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, images: torch.Tensor, vertices: Any, edges: Any) -> ModelOutput:
        p = images.float()[:, :3] / 255.0
        masks = torch.logit(p.clamp(1e-6, 1 - 1e-6))
        edge_logits = []
        for v, e in zip(vertices, edges, strict=True):
            short = (v[e[:, 0]] - v[e[:, 1]]).norm(dim=1) < 10
            edge_logits.append(torch.logit(torch.where(short, 0.9, 0.2)))
        return ModelOutput(masks, edge_logits)


def synthetic_tile(seed: int, size: int = 50) -> TileData:
    rng = np.random.default_rng(seed)
    masks = np.zeros((3, size, size), np.uint8)
    masks[0] = rng.random((size, size)) < 0.05
    masks[1] = rng.random((size, size)) < 0.2
    image = np.zeros((3, size, size), np.uint8)
    image[0] = np.where(masks[0], rng.integers(KP_HIGH, 256, masks[0].shape), 0)
    image[0] = np.where(masks[0], image[0], rng.integers(0, KP_LOW + 1, masks[0].shape))
    image[1] = np.where(masks[1], rng.integers(ROAD_HIGH, 256, masks[1].shape), 0)
    image[1] = np.where(masks[1], image[1], rng.integers(0, ROAD_LOW + 1, masks[1].shape))
    vertices = rng.uniform(0, size, (30, 2))
    i, j = np.triu_indices(30, 1)
    near = np.hypot(*(vertices[i] - vertices[j]).T) < 20
    edges = np.stack([i[near], j[near]], 1).astype(np.int64)
    labels = (np.hypot(*(vertices[edges[:, 0]] - vertices[edges[:, 1]]).T) < 10).astype(np.uint8)
    return TileData(image, masks, vertices, edges, labels)


def test_recovers_known_thresholds_on_synthetic_masks() -> None:
    tiles = [synthetic_tile(s) for s in range(3)] + [synthetic_tile(3, size=20)]
    sel = select_thresholds(MaskReader(), tiles, batch_size=3)
    assert (sel.tiles, sel.windows) == (4, 3 * 9 + 1)  # 50 px: 3 x 3 windows of 32; 20 px: 1
    for name, head, low, high in (("t_k", "keypoint", KP_LOW, KP_HIGH),
                                  ("t_r", "road", ROAD_LOW, ROAD_HIGH)):  # fmt: skip
        point = getattr(sel, head)
        assert point is not None and (point.precision, point.recall, point.f1) == (1.0, 1.0, 1.0)
        value = getattr(sel, name)
        # every positive above it, every negative below: the best-F1 point, at most one bin
        # (1e-4) under the lowest positive score (SAM-Road's curve returns that score, with >=)
        assert low / 255 <= value < high / 255 and high / 255 - value <= 1e-4
    assert sel.topology is not None and sel.topology.f1 == 1.0
    assert 0.2 <= sel.t_topo < 0.9 and 0.9 - sel.t_topo <= 1e-4
    # pixels outside the tile (the padding of the window that reaches past it) are not counted
    assert sel.road is not None and sel.road.total == 27 * 32 * 32 + 20 * 20
    back = ThresholdSelection.from_dict(sel.to_dict())
    assert back == sel and "P 1.0000" in sel.lines()[0]


def test_curve_without_positives_keeps_the_fallback() -> None:
    tile = synthetic_tile(0)
    empty = TileData(tile.image, tile.masks * np.array([0, 1, 1], np.uint8)[:, None, None],
                     tile.vertices, tile.edges, tile.labels)  # fmt: skip
    sel = select_thresholds(MaskReader(), [empty], fallback=(0.3, 0.4, 0.6))
    assert sel.keypoint is None and sel.t_k == 0.3
    assert sel.road is not None and sel.t_r != 0.4
    assert "no positive label" in sel.lines()[0]
    with pytest.raises(ParameterError, match="at least one"):
        select_thresholds(MaskReader(), [])


def _config(labels: Path, select: bool) -> Any:
    return config_from_dict(
        {
            "device": "cpu", "precision": "fp32", "log_every": 1,
            "model": {"size": "tiny", "window_size": 64, "head": {"hidden_dim": 8}},
            "data": {"train": [str(labels)], "val": [str(labels)], "crop": 64,
                     "samples_per_tile": 2},
            "optim": {"batch_size": 2, "epochs": 1, "encoder_lr_factor": 1.0},
            "validation": {"select_thresholds": select, "t_k": 0.9, "t_r": 0.9, "t_topo": 0.7},
        }
    )  # fmt: skip


def test_training_stores_the_selection_in_its_checkpoints(tmp_path: Path) -> None:
    labels = make_synthetic_labels(tmp_path / "syn")
    result = train(_config(labels, True), tmp_path / "run", progress=False)
    (val,) = [r for r in result.rows if r["kind"] == "val"]
    stored = checkpoint_thresholds(tmp_path / "run" / "checkpoints" / "epoch_001.safetensors")
    assert stored is not None and stored["source"].startswith("selected on 1 tile(s)")
    assert stored["record"]["method"].startswith("best F1")
    assert [stored[k] for k in ("t_k", "t_r", "t_topo")] == [
        val["val_t_k"],
        val["val_t_r"],
        val["val_t_topo"],
    ]
    assert checkpoint_thresholds(tmp_path / "run" / "checkpoints" / "last.safetensors") == stored
    # without selection: the configured thresholds, which the checkpoint falls back to
    result = train(_config(labels, False), tmp_path / "fixed", progress=False)
    (val,) = [r for r in result.rows if r["kind"] == "val"]
    assert (val["val_t_k"], val["val_t_r"], val["val_t_topo"]) == (0.9, 0.9, 0.7)
    stored = checkpoint_thresholds(tmp_path / "fixed" / "checkpoints" / "last.safetensors")
    assert stored is not None and stored["record"] is None
    assert (stored["t_k"], stored["t_r"], stored["t_topo"]) == (0.9, 0.9, 0.7)
    assert "validation thresholds" in stored["source"]
    bare = save_checkpoint(build_model("tiny", window_size=64), tmp_path / "bare.safetensors")
    assert checkpoint_thresholds(bare) is None
