"""A small, shared loop for training a mask front-end on image/mask pairs.

The segmentation papers each have their own recipe (loss, optimiser, schedule); a recipe is three
injected parts, and this loop runs them. It is deliberately minimal: the full LineGraph2Road
trainer (``linegraph2road.training``) handles crops from ``l2r prep`` output, checkpoints,
validation and DDP; this loop serves the front-ends' own recipes, their tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from linegraph2road.frontends.base import MaskFrontend

__all__ = ["Batch", "FitLog", "fit", "random_crops"]

#: (images (B, 3, H, W) uint8 or 0-255 float, targets (B, K, H, W) float in {0, 1})
Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class FitLog:
    """Per-step training losses (float) and learning rates."""

    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)


def fit(
    frontend: MaskFrontend,
    batches: Iterable[Batch],
    *,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    channels: tuple[int, ...] = (1,),
    max_steps: int | None = None,
) -> FitLog:
    """Train ``frontend`` on ``batches``; the loss sees the mask logits of ``channels`` only.

    Parameters
    ----------
    frontend : MaskFrontend
        Put in train mode for the loop (and left in train mode).
    batches : iterable of (images, targets)
        ``images (B, 3, H, W)`` on the 0-255 scale; ``targets (B, len(channels), H, W)``.
    loss_fn : callable
        ``loss_fn(logits, targets) -> scalar``; logits are ``masks[:, channels]``.
    channels : tuple of int
        Which of the front-end's mask channels are trained (default ``(1,)``: the road mask, the
        segmentation papers' single task; ``(0, 1, 2)`` with l2r's three label masks).
    scheduler : optional
        Stepped once per batch, or with the loss for ``ReduceLROnPlateau``.
    """
    frontend.train()
    log = FitLog()
    index = list(channels)
    for step, (images, targets) in enumerate(batches):
        if max_steps is not None and step >= max_steps:
            break
        out = frontend(frontend.normalize(images))
        loss = loss_fn(out.masks[:, index], targets.to(out.masks.device).float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(value)
        elif scheduler is not None:
            scheduler.step()
        log.losses.append(value)
        log.lrs.append(float(optimizer.param_groups[0]["lr"]))
    return log


def random_crops(
    image: np.ndarray,
    targets: np.ndarray,
    *,
    size: int,
    batch_size: int,
    steps: int,
    seed: int = 0,
    rotate: bool = True,
) -> Iterator[Batch]:
    """Random ``size`` crops (and 90-degree rotations) of one image and its target masks.

    Parameters
    ----------
    image : (3, H, W) uint8
    targets : (K, H, W) bool or float
    """
    rng = np.random.default_rng(seed)
    _, h, w = image.shape
    for _ in range(steps):
        imgs, tgts = [], []
        for _ in range(batch_size):
            r = int(rng.integers(0, h - size + 1))
            c = int(rng.integers(0, w - size + 1))
            k = int(rng.integers(0, 4)) if rotate else 0
            imgs.append(np.rot90(image[:, r : r + size, c : c + size], k, axes=(1, 2)))
            tgts.append(np.rot90(targets[:, r : r + size, c : c + size], k, axes=(1, 2)))
        yield (
            torch.from_numpy(np.ascontiguousarray(np.stack(imgs))).float(),
            torch.from_numpy(np.ascontiguousarray(np.stack(tgts))).float(),
        )
