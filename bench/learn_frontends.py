"""Does each segmentation front-end learn through the real pipeline? Vegas tile, CPU minutes.

Run ``python bench/learn_frontends.py`` (all three families, ~2.2 min of training each on 2
idle cores; about 7 min in all), or e.g. ``python bench/learn_frontends.py --frontends fctl
--set 'optim.refiner_widths=[4, 8]'``. Options: ``--frontends``
(comma-separated, default ``nl-linknet,fctl,experts``); ``--max-steps N`` or ``--max-steps
FAMILY=N`` (repeatable; defaults nl-linknet 4000, fctl 6000, experts 2500); ``--size
FAMILY=SIZE`` (repeatable; defaults nl-linknet ``small``, the others their config's ``tiny``);
``--set KEY=VALUE`` (repeatable, every selected family, applied last); ``--seed``; ``--keep
DIR`` (write the run folders to ``DIR/FAMILY`` and keep them).

1. Labels: the real SpaceNet Vegas tile (``../shared/fixtures/spacenet_vegas/``) resampled to
   1 m/px (352 x 352 px) and labelled from its GeoJSON ground truth with the library steps of
   ``l2r prep`` (``tests/training/__init__.py`` ``make_vegas_labels``).
2. Training, per family, with its packaged smoke config (``nl_linknet_tiny_cpu``,
   ``fctl_tiny_cpu``, ``experts_tiny_cpu``) through what ``l2r train CONFIG --set
   data.train=LABELS --set data.val=LABELS --max-steps N`` calls:
   :func:`~linegraph2road.training.config.load_any_config` and
   :func:`~linegraph2road.pipelines.train_segmentation.train_segmentation`. So that the budget
   is ``--max-steps`` steps of a complete recipe (a whole plateau or poly schedule rather than
   one cut short), the bench also sets ``data.samples_per_tile`` (NL-LinkNet, FCtL: the epoch
   length, for the config's ``optim.epochs``; FCtL's refiner then adds ``refiner_epochs``
   epochs of its own) or ``optim.expert_steps`` (experts); it prints the overrides it used.
   The experts recipe needs >= 2 locations for its embedding network; one tile is one
   location, so it trains the paper's k = 1 "no embedding" baseline (one expert), as
   ``l2r train`` says. NL-LinkNet defaults to ``small``: ``tiny`` learns as well (best ~0.4)
   but its last checkpoint swings between validations (0.17 after 4000 steps): in eval mode
   its batch norms' running statistics (of batch-4, 64 px crops) depart from training mode.
3. Measured on the whole tile, in eval mode: road IoU (probability >= 0.5, and the best of the
   thresholds 0.05 ... 0.95, so that calibration shows) against ``vegas_road.png`` of the
   labels folder, with :func:`~linegraph2road.inference.segment.segment_image` (FCtL: with its
   refiner): before training (a fresh front-end of the same config and seed, built as the
   training code builds it) and after (``checkpoints/last.safetensors`` and
   ``best.safetensors`` read back with :func:`~linegraph2road.frontends.checkpoint.load_frontend`);
   plus the steps (all phases), the wall time of training and the training loss (means of the
   first and the last 10 steps of each phase in the run's ``log.csv``). FCtL's ``last`` holds
   its refiner, so the segmentation network alone is printed as well (``best`` is the
   checkpoint with the best validation IoU, with or without the refiner). A refiner too narrow
   to learn here outputs a constant (IoU 0 at 0.5, 0.104 = all road at best): the smoke
   config's refiner was widened from [4, 8] to [16, 32] for that reason (last 0.000 -> 0.360).

The tile is also the training (and validation) data: this shows that each recipe learns through
``l2r prep`` -> ``l2r train`` -> ``load_frontend`` -> ``segment_image``, not generalisation,
which needs the real datasets, pretrained weights and a GPU. ``best`` is chosen by validation on
this same tile.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from linegraph2road.errors import L2RError  # noqa: E402
from linegraph2road.frontends.base import MaskFrontend  # noqa: E402
from linegraph2road.frontends.checkpoint import load_frontend  # noqa: E402
from linegraph2road.frontends.fctl import RefinementNet  # noqa: E402
from linegraph2road.inference.segment import segment_image  # noqa: E402
from linegraph2road.pipelines.train_segmentation import train_segmentation  # noqa: E402
from linegraph2road.training import find_tiles, load_tile, seed_everything  # noqa: E402
from linegraph2road.training.config import load_any_config  # noqa: E402
from linegraph2road.training.segmentation.common import (  # noqa: E402
    build_segmentation_frontend,
    read_log,
)
from linegraph2road.training.segmentation.config import SegmentationConfig  # noqa: E402
from tests.training import VEGAS, make_vegas_labels  # noqa: E402

THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)
#: IoU at 0.5, the best IoU over :data:`THRESHOLDS`, and that threshold.
Scores = tuple[float, float, float]


@dataclass(frozen=True)
class Family:
    """A front-end family: its packaged smoke config, default step budget and ``model.size``
    (None: the config's)."""

    config: str
    steps: int
    size: str | None = None


FAMILIES = {
    "nl-linknet": Family("nl_linknet_tiny_cpu", 4000, "small"),
    "fctl": Family("fctl_tiny_cpu", 6000),
    "experts": Family("experts_tiny_cpu", 2500),
}
#: Crops of the tile the experts recipe trains on (its training set is epoch 0's crops; the
#: packaged 8 crops of 64 px cover a fraction of the 352 px tile).
EXPERTS_CROPS = 64


def per_family(values: list[str], what: str, *, bare: bool = False) -> dict[str, str]:
    """``FAMILY=VALUE`` arguments as a dict (``bare``: a plain ``VALUE`` is for every family)."""
    out: dict[str, str] = {}
    for v in values:
        name, sep, value = v.partition("=")
        if not sep and not bare:
            sys.exit(f"{what}: expected FAMILY=VALUE, got {v!r}")
        for n in [name] if sep else list(FAMILIES):
            if n not in FAMILIES:
                sys.exit(f"{what}: unknown front-end {n!r}; use one of {', '.join(FAMILIES)}")
            out[n] = value if sep else v
    return out


def budget_overrides(cfg: SegmentationConfig, steps: int) -> list[str]:
    """Config overrides that make the family's recipe ``steps`` optimiser steps long (on one
    tile): the epoch length (NL-LinkNet, FCtL) or the expert's steps (experts)."""
    o = cfg.optim
    family = cfg.model.frontend
    if family == "experts":
        return [f"optim.expert_steps={steps}", f"data.samples_per_tile={EXPERTS_CROPS}"]
    per_epoch = math.ceil(steps / o.epochs)
    accumulate = getattr(o, "accumulate", 1)
    return [f"data.samples_per_tile={per_epoch * o.batch_size * accumulate}"]


def road_iou(prob: np.ndarray, truth: np.ndarray) -> Scores:
    """IoU at 0.5, the best IoU over :data:`THRESHOLDS`, and that threshold."""

    def iou(t: float) -> float:
        pred = prob >= t
        union = np.logical_or(pred, truth).sum()
        return float(np.logical_and(pred, truth).sum() / union) if union else 1.0

    scores = [iou(float(t)) for t in THRESHOLDS]
    k = int(np.argmax(scores))
    return iou(0.5), scores[k], float(THRESHOLDS[k])


def evaluate(
    frontend: MaskFrontend, refiner: RefinementNet | None, image: np.ndarray, truth: np.ndarray
) -> Scores:
    """Road IoU of a front-end on the whole tile (see :func:`road_iou`)."""
    prob = segment_image(frontend, image, refiner=refiner, batch_size=16).road
    return road_iou(np.asarray(prob), truth)


def untrained(cfg: SegmentationConfig) -> MaskFrontend:
    """A fresh front-end as the training run starts from: same build, same seed. The experts
    recipe on one location trains one expert (k = 1), built after ``torch.manual_seed``."""
    m = cfg.model
    seed_everything(cfg.seed)
    size = m.size
    if m.frontend == "experts":
        size = m.size.split("-")[0] + "-k1"  # train_single_model: BASE-k1[-road]
    return build_segmentation_frontend(
        m.frontend,
        size,
        window_size=m.window_size,
        mask_channels=m.mask_channels,
        checkpoint=m.checkpoint,
    )


def loss_summary(log: list[dict[str, str]]) -> str:
    """``phase first10 -> last10`` training-loss means of each phase of a ``log.csv``."""
    phases: dict[str, list[float]] = {}
    for row in log:
        if row["phase"] != "val" and row["loss"]:
            phases.setdefault(row["phase"], []).append(float(row["loss"]))
    return ", ".join(
        f"{p} {np.mean(v[:10]):.3f} -> {np.mean(v[-10:]):.3f}" for p, v in phases.items()
    )


def run_family(
    name: str,
    base: list[str],
    overrides: list[str],
    steps: int,
    out: Path,
    *,
    image: np.ndarray,
    truth: np.ndarray,
) -> tuple[str, Scores, dict[str, Scores], int, float]:
    """Train one family as ``l2r train`` does and score it before and after; prints details.

    Returns the family, the untrained scores, the scores of ``last`` and ``best``, the
    optimiser steps of all phases and the training minutes."""
    config = FAMILIES[name].config
    first = load_any_config(config, overrides=[*base, *overrides])
    if not isinstance(first, SegmentationConfig):
        sys.exit(f"{config} is not a task: segmentation config")
    budget = budget_overrides(first, steps)
    cfg = load_any_config(config, overrides=[*base, *budget, *overrides])
    if not isinstance(cfg, SegmentationConfig):
        sys.exit(f"{config} is not a task: segmentation config")
    sets = " ".join(f"--set '{o}'" for o in [*base, *budget, *overrides])
    print(f"\n== {name}: {config}, size {cfg.model.size}")
    print(f"   l2r train {config} -o {out} --max-steps {steps} {sets}")
    before = evaluate(untrained(cfg), None, image, truth)
    t0 = time.perf_counter()
    result = train_segmentation(
        cfg, out, max_steps=steps, progress=False, echo=lambda m: print(f"   l2r train: {m}")
    )
    minutes = (time.perf_counter() - t0) / 60
    after = {}
    for which in ("last", "best"):
        ckpt = load_frontend(out / "checkpoints" / f"{which}.safetensors")
        after[which] = evaluate(ckpt.frontend, ckpt.refiner, image, truth)
        if which == "last" and ckpt.refiner is not None:
            alone = evaluate(ckpt.frontend, None, image, truth)
            print(
                f"   last without its refiner: IoU@0.5 {alone[0]:.3f}, best threshold "
                f"{alone[1]:.3f} at {alone[2]:.2f}"
            )
    print(f"   training loss (first -> last 10 steps): {loss_summary(read_log(out / 'log.csv'))}")
    print(
        f"   IoU@0.5 untrained {before[0]:.3f} (best threshold {before[1]:.3f} at "
        f"{before[2]:.2f}); last {after['last'][0]:.3f} (best threshold {after['last'][1]:.3f} "
        f"at {after['last'][2]:.2f}); best {after['best'][0]:.3f} (best threshold "
        f"{after['best'][1]:.3f} at {after['best'][2]:.2f}); {result.steps} steps in "
        f"{minutes:.1f} min"
    )
    return name, before, after, result.steps, minutes


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument(
        "--frontends",
        default=",".join(FAMILIES),
        help=f"comma-separated families (default {','.join(FAMILIES)})",
    )
    defaults = ", ".join(f"{n}={f.steps}" for n, f in FAMILIES.items())
    ap.add_argument(
        "--max-steps",
        action="append",
        default=[],
        metavar="[FAMILY=]N",
        help=f"optimiser steps of the main phase (default {defaults})",
    )
    ap.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="FAMILY=SIZE",
        help="model.size of a family (default nl-linknet=small; others: their config's)",
    )
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every family, after the bench's (as l2r train --set)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--keep", type=Path, metavar="DIR", help="write the run folders to DIR/FAMILY and keep them"
    )
    args = ap.parse_args()
    families = [f.strip() for f in args.frontends.split(",") if f.strip()]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        sys.exit(f"--frontends: unknown {unknown}; choose from {', '.join(FAMILIES)}")
    steps = {n: f.steps for n, f in FAMILIES.items()}
    for n, v in per_family(args.max_steps, "--max-steps", bare=True).items():
        if not v.isdigit() or int(v) < 1:
            sys.exit(f"--max-steps: expected a positive integer for {n}, got {v!r}")
        steps[n] = int(v)
    sizes = {n: f.size for n, f in FAMILIES.items() if f.size is not None}
    sizes |= per_family(args.size, "--size")
    if not VEGAS.is_dir():
        sys.exit(f"fixtures not found at {VEGAS} (set L2R_FIXTURES to the shared fixtures folder)")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        labels = make_vegas_labels(Path(tmp) / "vegas")
        (tile,) = find_tiles(labels)
        data = load_tile(tile)
        image, truth = data.image, data.masks[1] > 0
        print(
            f"tile: Vegas at 1 m/px, {truth.shape[1]} x {truth.shape[0]} px, "
            f"road {100 * truth.mean():.1f} % of pixels (labels: {tile.tile_id}_road.png)"
        )
        runs = args.keep if args.keep is not None else Path(tmp) / "runs"
        for name in families:
            base = [f"seed={args.seed}", f"data.train={labels}", f"data.val={labels}"]
            if name in sizes:
                base.append(f"model.size={sizes[name]}")
            try:
                rows.append(
                    run_family(
                        name,
                        base,
                        args.overrides,
                        steps[name],
                        runs / name,
                        image=image,
                        truth=truth,
                    )
                )
            except L2RError as e:  # a bad --set, or a --keep folder that holds a run
                sys.exit(f"{name}: {e}")
    print(f"\nroad IoU on the whole Vegas tile (also the training data); load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    head = ("front-end", "untrained@.5", "last@.5", "best@.5", "last@t* (t*)", "steps", "min")
    print("{:<11} {:>12} {:>8} {:>8} {:>13} {:>6} {:>6}".format(*head))
    for family, before, after, n_steps, minutes in rows:
        thr = f"{after['last'][1]:.3f} ({after['last'][2]:.2f})"
        print(
            f"{family:<11} {before[0]:>12.3f} {after['last'][0]:>8.3f} {after['best'][0]:>8.3f} "
            f"{thr:>13} {n_steps:>6d} {minutes:>6.1f}"
        )
    print(
        "last / best: checkpoints/{last,best}.safetensors; t*: the best of the thresholds "
        "0.05 ... 0.95; steps: all phases; min: training wall time"
    )
    if "experts" in families:
        print("experts: one tile = one location, so the k = 1 'no embedding' baseline trained")


if __name__ == "__main__":
    main()
