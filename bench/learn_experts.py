"""Do the location-specific experts learn? A few minutes of CPU on the real Vegas tile.

Run ``python bench/learn_experts.py [--size small-k2-road] [--crop 128] [--expert-steps 150]``
(``--shapes`` adds the paper-size forward/backward at 512 px; ``--baselines`` the paper's two
baselines).

Data: the SpaceNet Vegas tile (``../shared/fixtures/spacenet_vegas/``, 1300 x 1300 px RGB at
0.3 m/px) and a road mask rasterised from its GeoJSON ground truth (lines 20 px ~ 6 m wide).
With one real tile there are no real locations, so the clusters are **artificial**: ``--crops``
random crops of the tile are "location 0" and the same crops colour-jittered (red x1.3, green
x0.8, +20) are "location 1"; the embedding network learns from those triplets, k-means (k from
the size, 2 by default) splits the embeddings, and one road-only expert trains per cluster.

Printed: cluster sizes, steps, minutes, and the road IoU (threshold 0.5) over the whole tile
(sliding windows of ``--crop`` px, half overlap, logits averaged; each window routed to its
expert) before training (random init) and after. The tile is also the training data: this shows
that embedding, clustering, routing, loss and schedule fit together and learn, not
generalisation.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from linegraph2road.frontends.experts import (  # noqa: E402
    EmbeddingNet,
    ExpertsFrontend,
    UNetExpert,
    parse_size,
    random_expert,
    train_location_experts,
    train_single_model,
)
from linegraph2road.io import read_graph  # noqa: E402
from linegraph2road.io.raster import read_georef  # noqa: E402
from linegraph2road.rasterize import render_road_mask  # noqa: E402
from tests.conftest import SHARED_FIXTURES  # noqa: E402

VEGAS = SHARED_FIXTURES / "spacenet_vegas"


def vegas() -> tuple[np.ndarray, np.ndarray]:
    """The tile ``(3, 1300, 1300)`` uint8 and its road mask ``(1300, 1300)`` bool (20 px)."""
    tif = VEGAS / "RGB-PanSharpen_AOI_2_Vegas_img0.tif"
    with rasterio.open(tif) as src:
        image = src.read([1, 2, 3])
    graph = read_graph(VEGAS / "AOI_2_Vegas_img0_gt.geojson", like=read_georef(tif))
    return image, render_road_mask(graph, image.shape[1:], width=20)


def jitter(images: np.ndarray) -> np.ndarray:
    """The artificial second location: a fixed colour cast."""
    gain = np.array([1.3, 0.8, 1.0]).reshape(1, 3, 1, 1)
    return np.clip(images * gain + 20, 0, 255).astype(np.uint8)


@torch.no_grad()
def road_iou(frontend: ExpertsFrontend, image: np.ndarray, mask: np.ndarray, size: int) -> float:
    """Road IoU at 0.5 over the tile from half-overlapping ``size`` windows."""
    frontend.eval()
    _, h, w = image.shape
    starts = sorted({*range(0, h - size + 1, size // 2), h - size})
    total = np.zeros((h, w))
    count = np.zeros((h, w))
    for r in starts:
        for c in starts:
            x = frontend.normalize(torch.from_numpy(image[:, r : r + size, c : c + size].copy()))
            total[r : r + size, c : c + size] += frontend(x).masks[0, 1].numpy()
            count[r : r + size, c : c + size] += 1
    pred = total / count > 0.0
    return float((pred & mask).sum() / max((pred | mask).sum(), 1))


def shapes() -> None:
    """Forward + backward of the paper-size networks at 512 px, batch 1."""
    torch.manual_seed(0)
    spec = parse_size("resnet34")
    x = torch.randn(1, 3, 512, 512)
    for net in (EmbeddingNet(spec=spec.embedding), UNetExpert(spec=spec.expert)):
        t0 = time.perf_counter()
        outs = net(x)
        sum(o.float().square().mean() for o in outs).backward()
        n = sum(p.numel() for p in net.parameters())
        grads = all(p.grad is not None for p in net.parameters())
        print(
            f"{type(net).__name__}: {n / 1e6:.2f} M params, outputs "
            f"{[tuple(o.shape) for o in outs]}, all grads {grads}, "
            f"{time.perf_counter() - t0:.1f} s forward+backward"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small-k2-road", help="experts size (default small-k2-road)")
    ap.add_argument("--crop", type=int, default=128, help="crop = window side in px (128)")
    ap.add_argument("--crops", type=int, default=48, help="random crops per location (48)")
    ap.add_argument("--embedding-steps", type=int, default=30)
    ap.add_argument("--expert-steps", type=int, default=150, help="steps per expert (150)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam lr (paper 1e-4 over 30 epochs)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shapes", action="store_true", help="paper-size 512 px forward/backward")
    ap.add_argument("--baselines", action="store_true", help="also the paper's two baselines")
    args = ap.parse_args()
    if not VEGAS.is_dir():
        sys.exit(f"fixtures not found at {VEGAS} (set L2R_FIXTURES)")
    torch.set_num_threads(args.threads)
    if args.shapes:
        shapes()
    image, mask = vegas()
    rng = np.random.default_rng(args.seed)
    s = args.crop
    rows, cols = rng.integers(0, image.shape[1] - s + 1, (2, args.crops))
    crops = np.stack([image[:, r : r + s, c : c + s] for r, c in zip(rows, cols, strict=True)])
    masks = np.stack([mask[None, r : r + s, c : c + s] for r, c in zip(rows, cols, strict=True)])
    images = np.concatenate([crops, jitter(crops)])
    targets = np.concatenate([masks, masks]).astype(np.float32)
    locations = np.repeat([0, 1], args.crops)
    print(f"road fraction of the tile: {mask.mean():.3f}; {len(images)} crops of {s} px")

    torch.manual_seed(args.seed)
    untrained = ExpertsFrontend(spec=parse_size(args.size), window_size=s)
    print(f"untrained road IoU: {road_iou(untrained, image, mask, s):.3f}")
    t0 = time.perf_counter()
    common = dict(batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    run = train_location_experts(
        images,
        targets,
        locations,
        size=args.size,
        window_size=s,
        embedding_steps=args.embedding_steps,
        expert_steps=args.expert_steps,
        **common,  # type: ignore[arg-type]
    )
    minutes = (time.perf_counter() - t0) / 60
    purity = [np.bincount(locations[run.labels == c], minlength=2).tolist() for c in range(2)]
    print(f"cluster sizes: {run.clusters}; (location 0, location 1) per cluster: {purity}")
    print(
        f"embedding loss: {run.embedding_log.losses[0]:.3f} -> {run.embedding_log.losses[-1]:.3f}"
    )
    for c, log in enumerate(run.expert_logs):
        if log.losses:
            print(
                f"expert {c} loss: {np.mean(log.losses[:5]):.3f} -> {np.mean(log.losses[-5:]):.3f}"
            )
    steps = args.embedding_steps + args.expert_steps * sum(1 for n in run.clusters if n)
    print(f"steps: {steps} ({args.embedding_steps} embedding + {args.expert_steps} per expert)")
    print(f"minutes: {minutes:.1f}")
    print(f"trained road IoU: {road_iou(run.frontend, image, mask, s):.3f}")
    if args.baselines:
        rnd = random_expert(run.frontend, seed=args.seed)
        print(f"baseline 2 (random expert) road IoU: {road_iou(rnd, image, mask, s):.3f}")
        single, _ = train_single_model(
            images, targets, size=args.size, window_size=s, steps=args.expert_steps, **common
        )  # type: ignore[arg-type]
        print(f"baseline 1 (one model, {args.expert_steps} steps) road IoU: ", end="")
        print(f"{road_iou(single, image, mask, s):.3f}")


if __name__ == "__main__":
    main()
