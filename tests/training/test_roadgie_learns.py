"""RoadGIE learns on real data (the short version of ``bench/learn_roadgie.py``):
``roadgie_tiny_cpu`` trained through ``l2r train``'s pipeline on the left part of the real Vegas
tile; on the held-out right part, the Dice of a simulated user's session is higher after 5
rounds than after 1, and both are higher than the untrained model's. Machinery, not quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from linegraph2road.frontends.roadgie import RoadGIEFrontend, build_roadgie
from linegraph2road.inference.simulated_user import simulate_session
from linegraph2road.metrics import pixel_scores
from linegraph2road.pipelines.train_segmentation import train_segmentation
from linegraph2road.training.config import load_any_config
from linegraph2road.training.road_masks import find_road_tiles, load_road_tile
from tests.training import VEGAS, make_vegas_split_labels

pytestmark = pytest.mark.skipif(
    not VEGAS.is_dir(), reason="real fixtures not found (set L2R_FIXTURES)"
)
STEPS = 120


def _dice(model: RoadGIEFrontend, image: np.ndarray, road: np.ndarray) -> np.ndarray:
    runs = [simulate_session(model, image, road, rounds=5, seed=1000 + s) for s in range(3)]
    return np.mean([[pixel_scores(r.probability > 0.5, road).f1 for r in run] for run in runs], 0)


@pytest.mark.usefixtures("one_torch_thread")
def test_dice_rises_over_rounds_and_with_training(tmp_path: Path) -> None:
    train_dir, holdout = make_vegas_split_labels(tmp_path / "labels")
    tile = load_road_tile(find_road_tiles(holdout)[0])
    cfg = load_any_config(
        "roadgie_tiny_cpu", overrides=[f"data.train={train_dir}", "optim.epochs=1000"]
    )
    torch.manual_seed(cfg.seed)
    untrained = build_roadgie("tiny", 64).eval()
    result = train_segmentation(cfg, tmp_path / "run", max_steps=STEPS, progress=False)
    assert result.steps == STEPS and result.last is not None
    trained = result.frontend
    assert isinstance(trained, RoadGIEFrontend)
    before, after = (
        _dice(untrained, tile.image, tile.road),
        _dice(trained.eval(), tile.image, tile.road),
    )
    print(f"held-out Dice per round: untrained {np.round(before, 3)}, trained {np.round(after, 3)}")
    assert after[4] > after[0]
    assert after[0] > before[0] and after[4] > before[4]
