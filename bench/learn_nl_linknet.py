"""Does NL-LinkNet learn? A reduced-width NL34 on the real Vegas tile, a few minutes of CPU.

Run ``python bench/learn_nl_linknet.py`` (defaults: ``--size small --steps 300 --epoch-steps 20
--batch 4 --crop 256 --lr 3e-3 --loss dice_bce``).

1. Data: the SpaceNet Vegas tile (``../shared/fixtures/spacenet_vegas/``, 1300 x 1300 px,
   ~0.3 m/px, RGB bands of the RGBA pan-sharpened GeoTIFF) and a road mask rasterised from its
   GeoJSON centrelines (``read_graph(geojson, like=read_georef(tif))`` +
   ``render_road_mask(..., width=20)``: 20 px ~ 6 m roads; 17.6 % of the tile).
2. Training: the recipe of :mod:`linegraph2road.frontends.nl_linknet.recipe` (Adam, the plateau
   schedule per epoch of ``--epoch-steps`` steps) through the shared
   :func:`~linegraph2road.frontends.fit.fit` loop on random 256 px crops with 90-degree
   rotations; the road channel only (``mask_channels=1``, the paper's single output). Two
   departures make a few CPU minutes from random init enough: the rate is 3e-3 (paper: 3e-4
   with ImageNet weights and 180 epochs), and the loss is the authors' released code's BCE +
   dice (``--loss bce`` is the paper text's BCE: with it, 400 steps at 1e-3 lower the training
   loss from 0.71 to 0.27, but the probabilities stay below 0.5, so IoU at 0.5 stays ~0 while
   the best-threshold IoU is 0.27).
3. Measured before and after, in eval mode, on the whole tile (reflect-padded to 1312 px, a
   multiple of 32, in one pass): road IoU of ``sigmoid > 0.5`` against the mask; also with the
   8-flip TTA after training, the best threshold's IoU, the steps and the wall time.
   The untrained network calls every pixel road, so its IoU is the road fraction.

The model sees this tile in training: this shows that gradients reach every part and the recipe
fits together, not model quality (that needs DeepGlobe, ImageNet weights and a GPU).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
import torch.nn.functional as F

from linegraph2road.frontends.fit import fit, random_crops
from linegraph2road.frontends.nl_linknet import (
    PlateauSchedule,
    bce_loss,
    build_nl_linknet,
    dice_bce_loss,
    make_optimizer,
    tta,
)
from linegraph2road.frontends.nl_linknet.model import NLLinkNetFrontend
from linegraph2road.io import read_graph
from linegraph2road.io.raster import read_georef
from linegraph2road.rasterize import render_road_mask

REPO = Path(__file__).resolve().parents[1]
VEGAS = REPO.parent / "shared" / "fixtures" / "spacenet_vegas"


def vegas_tile(width: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """``(3, H, W)`` uint8 RGB and ``(1, H, W)`` bool road mask of the Vegas tile."""
    tif = VEGAS / "RGB-PanSharpen_AOI_2_Vegas_img0.tif"
    with rasterio.open(tif) as src:
        image = src.read((1, 2, 3))
    graph = read_graph(VEGAS / "AOI_2_Vegas_img0_gt.geojson", like=read_georef(tif))
    mask = render_road_mask(graph, image.shape[1:], width=width)
    return image.astype(np.uint8), mask[None]


def road_probability(frontend: NLLinkNetFrontend, image: np.ndarray, *, flips: bool) -> np.ndarray:
    """``(H, W)`` road probability of the whole tile, reflect-padded to a multiple of 32."""
    _, h, w = image.shape
    side = -(-max(h, w) // 32) * 32
    x = frontend.normalize(torch.from_numpy(image))
    x = F.pad(x, (0, side - w, 0, side - h), mode="reflect")
    frontend.eval()
    prob = tta(frontend, x, flips=flips)[0, 1, :h, :w]
    return prob.numpy()


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two bool masks."""
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small", help="NL-LinkNet size (default small)")
    ap.add_argument("--steps", type=int, default=300, help="optimiser steps (default 300)")
    ap.add_argument("--epoch-steps", type=int, default=20, help="steps per schedule epoch")
    ap.add_argument("--batch", type=int, default=4, help="crops per step (default 4)")
    ap.add_argument("--crop", type=int, default=256, help="crop side in px (default 256)")
    ap.add_argument("--lr", type=float, default=3e-3, help="Adam rate (paper: 3e-4)")
    ap.add_argument(
        "--loss",
        choices=("bce", "dice_bce"),
        default="dice_bce",
        help="default: the authors' code; bce: the paper text",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not VEGAS.is_dir():
        sys.exit(f"Vegas fixture not found at {VEGAS}")
    torch.manual_seed(args.seed)
    print(f"args: {vars(args)}, torch threads {torch.get_num_threads()}")
    image, mask = vegas_tile()
    truth = mask[0]
    frontend = build_nl_linknet(args.size, window_size=args.crop, mask_channels=1)
    n_params = sum(p.numel() for p in frontend.parameters())
    print(
        f"NL-LinkNet {args.size}: {n_params / 1e6:.3f} M parameters, {frontend.weights_description}"
    )
    print(f"tile {image.shape[1]}x{image.shape[2]}, road fraction {truth.mean():.3f}")
    iou0 = iou(road_probability(frontend, image, flips=False) > 0.5, truth)
    print(f"untrained road IoU: {iou0:.3f}")

    optimizer = make_optimizer(frontend, lr=args.lr)
    loss_fn = bce_loss if args.loss == "bce" else dice_bce_loss
    schedule = PlateauSchedule(optimizer, model=frontend)
    losses: list[float] = []
    t0 = time.perf_counter()
    epoch = 0
    while len(losses) < args.steps and not schedule.stopped:
        n = min(args.epoch_steps, args.steps - len(losses))
        batches = random_crops(
            image, mask, size=args.crop, batch_size=args.batch, steps=n, seed=args.seed + epoch
        )
        log = fit(frontend, batches, loss_fn=loss_fn, optimizer=optimizer, channels=(1,))
        losses += log.losses
        action = schedule.step(float(np.mean(log.losses)))
        epoch += 1
        print(
            f"epoch {epoch:3d}  steps {len(losses):4d}  loss {np.mean(log.losses):.4f}  "
            f"lr {schedule.lr:.1e}  {action}  {(time.perf_counter() - t0) / 60:.1f} min",
            flush=True,
        )
    minutes = (time.perf_counter() - t0) / 60
    prob = road_probability(frontend, image, flips=False)
    iou1 = iou(prob > 0.5, truth)
    best_t = max(np.linspace(0.05, 0.95, 19), key=lambda t: iou(prob > t, truth))
    print(
        f"road probability mean {prob.mean():.3f} max {prob.max():.3f}; best threshold "
        f"{best_t:.2f}: IoU {iou(prob > best_t, truth):.3f}"
    )
    iou_tta = iou(road_probability(frontend, image, flips=True) > 0.5, truth)
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    print(f"loss first 10 steps {first:.4f} -> last 10 steps {last:.4f} ({last / first:.2f}x)")
    print(
        f"untrained IoU {iou0:.3f}  trained IoU {iou1:.3f}  trained IoU with 8-flip TTA "
        f"{iou_tta:.3f}  steps {len(losses)}  minutes {minutes:.1f}"
    )


if __name__ == "__main__":
    main()
