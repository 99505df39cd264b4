"""Does the training machinery learn? The tiny model on the real Vegas tile, a few minutes of CPU.

Run ``python bench/learn_smoke.py [--steps 600] [--seed 0] [--save smoke.safetensors]``
(``--save`` keeps the trained checkpoint, e.g. for ``bench/bench_extract.py --checkpoint``).

1. Labels: ``l2r prep osm --raster`` of the real SpaceNet Vegas tile
   (``../shared/fixtures/spacenet_vegas/``) with its GeoJSON ground truth, at the model GSD of
   1 m/px (352 x 352 px; ``tests/training/__init__.py`` ``make_vegas_labels``).
2. Training: ``pipelines/configs/tiny_cpu.yaml`` (tiny SAM-shaped model, ~0.22 M parameters,
   random init, 256 px windows, batch 4, Adam 1e-3) through the real
   :class:`~linegraph2road.training.Trainer` for ``--steps`` steps.
3. Measured on the four fixed 256 px corner windows of the tile, in eval mode, before and after
   training: the mask BCE (three masks), the fraction by which it fell, and the ROC AUC of the
   candidate-edge probabilities against the tile's candidate labels; plus the wall time.
4. The README's last two steps on the trained checkpoint: ``l2r extract`` of the original
   GeoTIFF at the checkpoint's thresholds (this run has no validation, so the config's 0.248 /
   0.364 / 0.5; the checkpoint's 1 m/px), then ``l2r eval`` against the GeoJSON ground truth:
   edges found, TOPO P/R/F1 and APLS (Sat2Graph variant).
5. ``l2r thresholds`` on the tile's labels (SAM-Road's best-F1 selection) into a new checkpoint,
   and steps 4 again with the selected thresholds.

Targets: mask loss clearly down; candidate-edge AUC above 0.9. The model sees this tile in
training, so this proves that gradients reach every part and that labels, crops, rotations,
loss and optimiser fit together -- not model quality, which needs the real datasets, SAM
weights and a GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from linegraph2road.model import build_model, save_checkpoint  # noqa: E402
from linegraph2road.pipelines.evaluate import evaluate_graphs  # noqa: E402
from linegraph2road.pipelines.extract import ExtractOptions, run_extract  # noqa: E402
from linegraph2road.pipelines.thresholds import run_thresholds  # noqa: E402
from linegraph2road.training import (  # noqa: E402
    DataSource,
    TileDataset,
    Trainer,
    crop_sample,
    find_tiles,
    load_config,
    resolve,
    seed_everything,
    tiles_gsd,
    window_scores,
)
from tests.training import VEGAS, VEGAS_GT, VEGAS_TIF, make_vegas_labels  # noqa: E402


def _quiet(line: str) -> None:
    """Extraction's progress lines are not part of this report."""


def corner_windows(tile, size):  # type: ignore[no-untyped-def]
    """The four corner windows of a tile (no rotation): a fixed evaluation set."""
    _, h, w = tile.image.shape
    return [
        crop_sample(tile, x0=x, y0=y, size=size)
        for y in (0, max(h - size, 0))
        for x in (0, max(w - size, 0))
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="optimiser steps (default 600)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=None, help="override optim.lr")
    ap.add_argument("--save", type=Path, help="also write the trained l2r checkpoint here")
    args = ap.parse_args()
    if not VEGAS.is_dir():
        sys.exit(f"fixtures not found at {VEGAS} (set L2R_FIXTURES)")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    overrides = [f"seed={args.seed}"] + ([f"optim.lr={args.lr}"] if args.lr else [])
    with tempfile.TemporaryDirectory() as tmp:
        labels = make_vegas_labels(Path(tmp) / "vegas")
        cfg = resolve(load_config("tiny_cpu", overrides=[*overrides, f"data.train={labels}"]))
        seed_everything(cfg.seed)
        m = cfg.model
        model = build_model(m.size, window_size=m.window_size, **m.head)
        tiles = find_tiles(labels)
        crop = cfg.data.crop or m.window_size
        data = TileDataset(
            tiles, crop=crop, samples_per_tile=cfg.data.samples_per_tile, seed=cfg.seed, cache=True
        )
        fixed = corner_windows(data.tile(0), crop)
        before = window_scores(model, fixed)
        o = cfg.optim
        trainer = Trainer(
            model,
            train_data=data,
            out_dir=Path(tmp) / "run",
            lr=o.lr,
            encoder_lr_factor=o.encoder_lr_factor,
            epochs=10**6,
            batch_size=o.batch_size,
            lambda_edge=o.lambda_edge,
            device="cpu",
            precision="fp32",
            seed=cfg.seed,
            log_every=max(1, args.steps // 10),
            config=cfg.to_dict(),
            progress=False,
        )
        t0 = time.perf_counter()
        result = trainer.fit(max_steps=args.steps)
        wall = time.perf_counter() - t0
        after = window_scores(model, fixed)
        meta = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, gsd=tiles_gsd(tiles)))
        ckpt = args.save if args.save is not None else Path(tmp) / "smoke.safetensors"
        save_checkpoint(model, ckpt, meta.to_dict())
        pred = Path(tmp) / "vegas_roads.geojson"
        extracted = run_extract(VEGAS_TIF, pred, ExtractOptions(checkpoint=str(ckpt)), echo=_quiet)
        scores = evaluate_graphs(VEGAS_GT, pred).summary
        tuned = Path(tmp) / "smoke_thresholds.safetensors"
        selected = run_thresholds(ckpt, [DataSource(str(labels))], output=tuned, device="cpu",
                                  echo=_quiet).selection  # fmt: skip
        pred2 = Path(tmp) / "vegas_roads_selected.geojson"
        extracted2 = run_extract(VEGAS_TIF, pred2, ExtractOptions(checkpoint=str(tuned)),
                                 echo=_quiet)  # fmt: skip
        scores2 = evaluate_graphs(VEGAS_GT, pred2).summary
    n_cand = sum(len(s.labels) for s in fixed)
    n_pos = int(sum(float(s.labels.sum()) for s in fixed))
    print(f"tile: Vegas at 1 m/px, {tuple(data.tile(0).image.shape[1:])} px; fixed windows: "
          f"4 corners of {crop} px, {n_cand} candidate edges ({n_pos} positive)")  # fmt: skip
    print(f"model: tiny ({sum(p.numel() for p in model.parameters()):,} parameters), "
          f"seed {cfg.seed}, lr {o.lr}, batch {o.batch_size}")  # fmt: skip
    for row in result.rows:
        print(f"  step {row['step']:5d}  train loss {row['loss']:.4f}  mask {row['mask_loss']:.4f}"
              f"  edge {row['edge_loss']:.4f}")  # fmt: skip
    fell = 1.0 - after["mask_loss"] / before["mask_loss"]
    print(f"mask loss   start {before['mask_loss']:.4f}  end {after['mask_loss']:.4f}  "
          f"fell {100 * fell:.1f} %")  # fmt: skip
    print(f"edge loss   start {before['edge_loss']:.4f}  end {after['edge_loss']:.4f}")
    print(
        f"edge AUC    start {before['edge_auc']:.3f}  end {after['edge_auc']:.3f}  (target > 0.9)"
    )
    print(f"steps {result.step}, wall {wall:.1f} s ({wall / 60:.2f} min), "
          f"{wall / max(result.step, 1):.3f} s/step")  # fmt: skip
    print("l2r thresholds on the tile's labels (best F1 of each precision-recall curve):")
    for line in selected.lines():
        print(f"  {line}")
    for name, run, sc in (("the config's thresholds 0.248/0.364/0.5", extracted, scores),
                          ("the selected thresholds", extracted2, scores2)):  # fmt: skip
        g, topo, apls = run.graph, sc["topo"], sc["apls"]
        print(f"l2r extract at {name}: {g.num_edges} edges, {g.num_nodes} nodes, "
              f"{g.total_length():.0f} px of road (the ground truth: 114 edges)")  # fmt: skip
        print(f"  l2r eval: TOPO P {topo['precision']:.3f} R {topo['recall']:.3f} F1 "
              f"{topo['f1']:.3f}; APLS {apls['score']:.3f} (sat2graph)")  # fmt: skip


if __name__ == "__main__":
    main()
