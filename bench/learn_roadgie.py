"""Does RoadGIE learn to use prompts? ``roadgie_tiny_cpu`` on the real Vegas tile, CPU minutes.

Run ``python bench/learn_roadgie.py`` (defaults: ``--steps 0 150 500 1500 --seeds 6 --rounds 5``).

1. Labels: the SpaceNet Vegas tile (``../shared/fixtures/spacenet_vegas/``) at 1 m/px (352 x 352
   px), cut into a training crop (the left 240 columns) and a held-out crop (the right 96
   columns, 16 px away), each labelled from the GeoJSON ground truth with the library steps of
   ``l2r prep`` (``tests/training/__init__.py`` ``make_vegas_split_labels``).
2. Training: ``pipelines/configs/roadgie_tiny_cpu.yaml`` (27 k parameters, random init) through
   the real ``l2r train`` pipeline (:func:`~linegraph2road.pipelines.train_segmentation.
   train_segmentation`) on the training crop only, for each ``--steps`` value from scratch
   (``optim.epochs`` raised so that the cosine schedule spans exactly those steps; 0 = untrained).
3. Measured on the held-out crop: ``--seeds`` simulated users (the training mix of clicks and
   scribbles, 1-3 prompts a round, :func:`~linegraph2road.inference.simulated_user.
   simulate_session`) run ``--rounds`` rounds each; the mean Dice of ``probability > 0.5``
   against the road mask after every round.

Targets: after training, Dice after 5 rounds is higher than after 1 (the network uses the
prompts and its previous mask), and both rise with training. The script exits with status 1 when
the last trained model misses either. This proves the interactive machinery (simulated prompts,
rounds, loss, recipe, checkpoints) fits together and learns, not model quality: that needs a
real dataset (WorldRoadSeg-360K, DeepGlobe), the paper size and a GPU.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from linegraph2road.frontends.roadgie import RoadGIEFrontend  # noqa: E402
from linegraph2road.inference.simulated_user import simulate_session  # noqa: E402
from linegraph2road.metrics import pixel_scores  # noqa: E402
from linegraph2road.pipelines.train_segmentation import train_segmentation  # noqa: E402
from linegraph2road.training.config import load_any_config  # noqa: E402
from linegraph2road.training.road_masks import find_road_tiles, load_road_tile  # noqa: E402
from tests.training import VEGAS, make_vegas_split_labels  # noqa: E402


def held_out_dice(
    model: RoadGIEFrontend, image: np.ndarray, road: np.ndarray, *, rounds: int, seeds: int
) -> np.ndarray:
    """``(rounds,)`` mean Dice over ``seeds`` simulated sessions."""
    out = np.zeros((seeds, rounds))
    for s in range(seeds):
        session = simulate_session(model, image, road, rounds=rounds, seed=1000 + s)
        out[s] = [pixel_scores(r.probability > 0.5, road).f1 for r in session]
    return out.mean(axis=0)


def train(
    train_dir: Path, steps: int, out: Path, *, seed: int, config: str, lr: float | None
) -> RoadGIEFrontend:
    """``config`` trained for ``steps`` steps on ``train_dir`` (0: the untrained model)."""
    overrides = [f"data.train={train_dir}", "optim.epochs=100000", f"seed={seed}"]
    if lr is not None:
        overrides.append(f"optim.lr={lr}")
    cfg = load_any_config(config, overrides=overrides)
    result = train_segmentation(cfg, out, max_steps=max(steps, 1), progress=False)
    model = result.frontend
    if steps == 0:  # one step was taken to build everything; start again from its init
        torch.manual_seed(seed)
        from linegraph2road.frontends.roadgie import build_roadgie

        model = build_roadgie(cfg.model.size, cfg.model.window_size)
    assert isinstance(model, RoadGIEFrontend)
    return model.eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 150, 500, 1500])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default="roadgie_tiny_cpu")
    parser.add_argument("--lr", type=float, default=None)
    args = parser.parse_args()
    if not VEGAS.is_dir():
        print(f"fixtures not found: {VEGAS}")
        return 2
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"machine load before: {load} (shared machine)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        train_dir, holdout = make_vegas_split_labels(Path(tmp) / "labels")
        tile = load_road_tile(find_road_tiles(holdout)[0])
        print(f"held-out crop {tile.road.shape[1]} x {tile.road.shape[0]} px, "
              f"{100 * tile.road.mean():.1f} % road; training crop {train_dir}")  # fmt: skip
        for steps in args.steps:
            t0 = time.perf_counter()
            model = train(train_dir, steps, Path(tmp) / f"run{steps}", seed=args.seed,
                          config=args.config, lr=args.lr)  # fmt: skip
            t1 = time.perf_counter()
            dice = held_out_dice(model, tile.image, tile.road, rounds=args.rounds, seeds=args.seeds)
            t2 = time.perf_counter()
            rows.append((steps, dice))
            print(f"steps {steps:5d}: Dice per round " + " ".join(f"{d:.3f}" for d in dice)
                  + f"  (train {t1 - t0:.0f} s, eval {t2 - t1:.0f} s)", flush=True)  # fmt: skip
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"machine load after: {load}")
    first, last = rows[0][1], rows[-1][1]
    better_rounds = last[-1] > last[0]
    rising = last[0] > first[0] and last[-1] > first[-1]
    print(f"Dice after {args.rounds} rounds > after 1 (last model): {better_rounds} "
          f"({last[-1]:.3f} vs {last[0]:.3f}); both rose with training: {rising} "
          f"(round 1 {first[0]:.3f} -> {last[0]:.3f}, round {args.rounds} "
          f"{first[-1]:.3f} -> {last[-1]:.3f})")  # fmt: skip
    return 0 if better_rounds and rising else 1


if __name__ == "__main__":
    sys.exit(main())
