"""Does FCtL learn roads? A reduced FCtL trained for a few CPU minutes on the real Vegas tile.

Run ``python bench/learn_fctl.py [--steps 1500] [--size small] [--patch 128] [--seed 0]``;
``--paper-size`` instead times one forward + backward of the full model (VGG16 widths) at the
paper's 508 px patch with 508/1016/1524 px contexts (the unit tests check those shapes on the
meta device and run the numbers with narrow widths).

1. Data: the SpaceNet Vegas tile ``RGB-PanSharpen_AOI_2_Vegas_img0.tif`` (1300 x 1300 px,
   0.3 m/px; its RGB bands) and a road mask drawn from ``AOI_2_Vegas_img0_gt.geojson``
   (``read_graph(..., like=read_georef(tif))`` + ``render_road_mask(width=20)``, ~6 m wide).
2. Model: the registry's reduced size (``small``: VGG widths 16/32/64, ~0.18 M parameters),
   road-only (``num_classes=1``), ``--patch`` px windows with contexts of 1x, 2x, 3x the patch,
   random init.
3. Recipe: the paper's (focal loss gamma 3, Adam, poly 0.9, patches with centred contexts and
   90-degree rotations) except the learning rate: 3e-3 instead of 5e-5, because a few minutes
   of CPU are ~1/1000 of the paper's 50 epochs.
4. Measured before and after training: road IoU over the whole tile, segmented by
   :func:`segment_large` (patch ``--patch``, overlap a quarter of it, contexts), at probability
   >= 0.5 and at the best of the thresholds 0.05 ... 0.95 (focal loss with gamma 3 keeps the
   probabilities of a briefly trained model low, so the 0.5 cut lags behind the ranking).

The tile is also the training data, so this shows that gradients reach every part and the
recipe fits together -- not generalisation, which needs the real datasets and a GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
import torch

from linegraph2road.frontends.fctl import (
    FCTL_SIZES,
    FCtLFrontend,
    extract_contexts,
    fit_fctl,
    make_optimizer,
    poly_schedule,
    sample_patches,
    segment_large,
)
from linegraph2road.io import read_graph
from linegraph2road.io.raster import read_georef
from linegraph2road.rasterize import render_road_mask

VEGAS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "spacenet_vegas"
TIF = VEGAS / "RGB-PanSharpen_AOI_2_Vegas_img0.tif"
GT = VEGAS / "AOI_2_Vegas_img0_gt.geojson"


def load_vegas(width: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """``(3, H, W) uint8`` RGB and ``(H, W) bool`` road mask of the Vegas tile."""
    with rasterio.open(TIF) as ds:
        rgb = ds.read((1, 2, 3))
    graph = read_graph(GT, like=read_georef(TIF))
    return rgb, render_road_mask(graph, rgb.shape[1:], width=width)


def road_probs(frontend: FCtLFrontend, image: torch.Tensor) -> np.ndarray:
    """``(H, W)`` road probability of the whole tile (``image`` normalised ``(3, H, W)``)."""
    frontend.eval()
    p = frontend.window_size
    probs = segment_large(
        frontend,
        image,
        patch=p,
        overlap=p // 4,
        context_sizes=frontend.context_sizes,
        batch_size=8,
    )
    return probs[1].numpy()


def iou(pred: np.ndarray, mask: np.ndarray) -> float:
    """Intersection over union of two ``(H, W)`` bool masks (1 when both are empty)."""
    union = np.logical_or(pred, mask).sum()
    return float(np.logical_and(pred, mask).sum() / union) if union else 1.0


def best_iou(probs: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Highest IoU over thresholds 0.05, 0.10, ..., 0.95 and the threshold reaching it."""
    return max((iou(probs >= t, mask), t) for t in np.round(np.arange(0.05, 1.0, 0.05), 2))


def paper_size_timing() -> None:
    """Forward + backward of the full-width model at 508 px with 508/1016/1524 contexts."""
    torch.manual_seed(0)
    fe = FCtLFrontend(spec=FCTL_SIZES["vgg16"], window_size=508)
    image = torch.randn(3, 1524, 1524)
    ctx = extract_contexts(image, row=508, col=508, patch=508, context_sizes=fe.context_sizes)
    start = time.perf_counter()
    out = fe(image[None, :, 508:1016, 508:1016], ctx[None])
    mid = time.perf_counter()
    (out.masks.square().mean() + out.features.square().mean()).backward()
    end = time.perf_counter()
    n = sum(p.numel() for p in fe.parameters())
    print(
        f"FCtL vgg16 ({n:,} params), 508 px + contexts {fe.context_sizes}: masks "
        f"{tuple(out.masks.shape)}, features {tuple(out.features.shape)}; forward "
        f"{mid - start:.1f} s, backward {end - mid:.1f} s on {torch.get_num_threads()} threads"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1500, help="optimiser steps (default 1500)")
    ap.add_argument("--size", default="small", choices=sorted(FCTL_SIZES))
    ap.add_argument("--patch", type=int, default=128, help="window side in px (default 128)")
    ap.add_argument("--batch", type=int, default=4, help="patches per step (default 4)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--paper-size", action="store_true", help="only time the full model at 508 px and exit"
    )
    args = ap.parse_args()
    if args.paper_size:
        paper_size_timing()
        return
    if not TIF.is_file():
        sys.exit(f"fixture not found: {TIF}")
    torch.manual_seed(args.seed)
    rgb, mask = load_vegas()
    spec = dataclasses.replace(FCTL_SIZES[args.size], num_classes=1)
    frontend = FCtLFrontend(spec=spec, window_size=args.patch)
    n_params = sum(p.numel() for p in frontend.parameters())
    image = frontend.normalize(torch.from_numpy(rgb))[0]
    targets = torch.from_numpy(mask[None].astype(np.float32))
    before = road_probs(frontend, image)
    optimizer = make_optimizer(frontend, lr=args.lr)
    batches = sample_patches(
        image,
        targets,
        patch=args.patch,
        context_sizes=frontend.context_sizes,
        batch_size=args.batch,
        steps=args.steps,
        seed=args.seed,
    )
    start = time.perf_counter()
    log = fit_fctl(
        frontend,
        batches,
        optimizer=optimizer,
        scheduler=poly_schedule(optimizer, total_steps=args.steps),
    )
    minutes = (time.perf_counter() - start) / 60
    after = road_probs(frontend, image)
    k = max(1, args.steps // 10)
    print(
        f"FCtL {args.size} (road only, {n_params / 1e6:.3f} M params), patch {args.patch}, "
        f"contexts {frontend.context_sizes}, batch {args.batch}, lr {args.lr}, seed {args.seed}"
    )
    print(f"road fraction of the tile: {mask.mean():.3f}")
    print(
        f"focal loss: first {k} steps {np.mean(log.losses[:k]):.4f} -> "
        f"last {k} steps {np.mean(log.losses[-k:]):.4f}"
    )
    for name, probs in (("untrained", before), ("trained", after)):
        best, t = best_iou(probs, mask)
        print(
            f"{name:>9} road IoU at p >= 0.5: {iou(probs >= 0.5, mask):.3f}; best over thresholds:"
            f" {best:.3f} (p >= {t:.2f})"
        )
    print(f"steps: {len(log.losses)}, training minutes: {minutes:.2f}")


if __name__ == "__main__":
    main()
