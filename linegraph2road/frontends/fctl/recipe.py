"""FCtL's training recipe (paper 001, 3.1.3 and 4.2): focal loss, Adam + poly, patch sampling.

* **Loss**: focal loss (Lin et al. 2017) with ``gamma = 3``, ``-(1 - p_t)^gamma log p_t``, no
  alpha balancing (as the released code). :func:`focal_loss` is the sigmoid form for binary /
  multi-label masks (float targets) and the softmax form for land cover (integer class maps,
  optional ignore index). ``gamma = 0`` gives BCE / cross-entropy.
* **Optimiser**: Adam, learning rate ``5e-5``, poly decay ``(1 - iter / total) ** 0.9`` after
  every iteration, mini-batch 6 by gradient accumulation (:func:`fit_fctl` ``accumulate=6``).
  The paper gives no weight decay (the released code uses 5e-4); the default here is 0.
* **Samples**: :func:`sample_patches` cuts random patches with their centred contexts from one
  normalised image (rotating patch, contexts and targets together by multiples of 90 degrees).
  The refinement network trains on the same samples cut from the *crude* merged mask of a
  non-converged segmentation model (the paper stops it after 20 of 50 epochs to avoid
  over-fitting the refiner): :func:`refinement_batches`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.base import FrontendOutput
from linegraph2road.frontends.fctl.refine import extract_contexts
from linegraph2road.frontends.fit import FitLog

__all__ = [
    "FCtLBatch",
    "fit_fctl",
    "focal_loss",
    "make_optimizer",
    "poly_schedule",
    "refinement_batches",
    "sample_patches",
]


def focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    gamma: float = 3.0,
    ignore_index: int | None = None,
) -> torch.Tensor:
    """Mean focal loss ``-(1 - p_t)^gamma log p_t`` over pixels (and channels).

    Parameters
    ----------
    logits : torch.Tensor
        ``(B, K, H, W)`` float.
    targets : torch.Tensor
        Float ``(B, K, H, W)`` in [0, 1]: sigmoid (binary / multi-label) form, ``p_t = p`` where
        the target is 1 and ``1 - p`` where it is 0 (soft targets interpolate the log terms).
        Integer ``(B, H, W)`` class indices: softmax (multi-class) form.
    gamma : float
        Focusing parameter (paper: 3; 0 = BCE / cross-entropy).
    ignore_index : int or None
        Class index excluded from the softmax form's mean.

    Returns
    -------
    torch.Tensor
        Scalar float.
    """
    if gamma < 0:
        raise ParameterError(f"gamma must be >= 0, got {gamma}")
    if targets.dtype.is_floating_point:
        if targets.shape != logits.shape:
            raise ParameterError(
                f"float targets must match logits {tuple(logits.shape)}, got {tuple(targets.shape)}"
            )
        log_pt = -F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        return (-((1 - log_pt.exp()) ** gamma) * log_pt).mean()
    if targets.shape != (logits.shape[0], *logits.shape[2:]):
        raise ParameterError(
            f"class-index targets must be (B, H, W) for logits {tuple(logits.shape)}, got "
            f"{tuple(targets.shape)}"
        )
    valid = torch.ones_like(targets, dtype=torch.bool)
    if ignore_index is not None:
        valid = targets != ignore_index
    index = torch.where(valid, targets, torch.zeros_like(targets)).long()
    log_pt = F.log_softmax(logits, dim=1).gather(1, index[:, None])[:, 0]
    loss = -((1 - log_pt.exp()) ** gamma) * log_pt
    return loss[valid].mean()


class FCtLBatch(NamedTuple):
    """One training batch: ``patches (B, C, p, p)``, ``contexts (B, T, C, p, p)``, ``targets``
    (``(B, K, p, p)`` float masks or ``(B, p, p)`` class indices)."""

    patches: torch.Tensor
    contexts: torch.Tensor
    targets: torch.Tensor


def sample_patches(
    image: torch.Tensor,
    targets: torch.Tensor,
    *,
    patch: int,
    context_sizes: Sequence[int],
    batch_size: int,
    steps: int,
    seed: int = 0,
    rotate: bool = True,
) -> Iterator[FCtLBatch]:
    """Random patches of one image with their contexts and targets.

    Parameters
    ----------
    image : torch.Tensor
        ``(C, H, W)`` float: a normalised image (``frontend.normalize(raw)[0]``), or a crude mask
        for the refinement network. ``H, W >=`` the largest context.
    targets : torch.Tensor
        ``(K, H, W)`` float masks or ``(H, W)`` integer class map, on the image's grid.
    patch : int
        Patch side ``p`` in pixels.
    context_sizes : sequence of int
        Context sides in pixels (a front-end's ``context_sizes``).
    batch_size, steps : int
        Patches per batch and number of batches.
    seed : int
        Seed of the patch positions and rotations.
    rotate : bool
        Rotate each sample (patch, contexts, targets together) by a random multiple of 90 deg.

    Yields
    ------
    FCtLBatch
    """
    if image.ndim != 3 or targets.shape[-2:] != image.shape[-2:]:
        raise ParameterError(
            f"image (C, H, W) and targets (..., H, W) must share H, W; got "
            f"{tuple(image.shape)} and {tuple(targets.shape)}"
        )
    rng = np.random.default_rng(seed)
    h, w = int(image.shape[1]), int(image.shape[2])
    for _ in range(steps):
        ps, cs, ts = [], [], []
        for _ in range(batch_size):
            r, c = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
            k = int(rng.integers(0, 4)) if rotate else 0
            ctx = extract_contexts(image, row=r, col=c, patch=patch, context_sizes=context_sizes)
            ps.append(torch.rot90(image[:, r : r + patch, c : c + patch], k, (-2, -1)))
            cs.append(torch.rot90(ctx, k, (-2, -1)))
            ts.append(torch.rot90(targets[..., r : r + patch, c : c + patch], k, (-2, -1)))
        yield FCtLBatch(torch.stack(ps), torch.stack(cs), torch.stack(ts))


def refinement_batches(
    crude: torch.Tensor,
    targets: torch.Tensor,
    *,
    patch: int,
    context_size: int = 1016,
    batch_size: int,
    steps: int,
    seed: int = 0,
) -> Iterator[FCtLBatch]:
    """Samples for :class:`~.refine.RefinementNet`: local crude mask, context mask, targets.

    ``crude`` is ``(K, H, W)`` merged probabilities (:func:`~.refine.segment_large` of an
    early-stopped model); the batches' ``contexts`` are ``(B, K, p, p)`` (the single context).
    """
    for b in sample_patches(
        crude,
        targets,
        patch=patch,
        context_sizes=[context_size],
        batch_size=batch_size,
        steps=steps,
        seed=seed,
    ):
        yield FCtLBatch(b.patches, b.contexts[:, 0], b.targets)


def make_optimizer(
    model: nn.Module, *, lr: float = 5e-5, weight_decay: float = 0.0
) -> torch.optim.Adam:
    """Adam over the trainable parameters (paper: learning rate 5e-5)."""
    return torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay
    )


def poly_schedule(
    optimizer: torch.optim.Optimizer, *, total_steps: int, power: float = 0.9
) -> torch.optim.lr_scheduler.LambdaLR:
    """Poly decay: the learning rate times ``(1 - step / total_steps) ** power`` (paper: 0.9)."""
    if total_steps <= 0:
        raise ParameterError(f"total_steps must be positive, got {total_steps}")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: (1 - min(step, total_steps) / total_steps) ** power
    )


def fit_fctl(
    model: nn.Module,
    batches: Iterable[FCtLBatch],
    *,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = focal_loss,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    accumulate: int = 1,
    channels: Sequence[int] | None = None,
) -> FitLog:
    """Train an FCtL model (or refiner) on :class:`FCtLBatch` es; one step per ``accumulate``.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(patches, contexts)``: an :class:`~.model.FCtLFrontend` (the loss sees
        ``masks[:, channels]``), an :class:`~.model.FCtLNet` (``logits``) or a
        :class:`~.refine.RefinementNet`. Put in train mode and left there.
    batches : iterable of FCtLBatch
        From :func:`sample_patches` / :func:`refinement_batches` (moved to the model's device).
    optimizer, scheduler
        :func:`make_optimizer`, :func:`poly_schedule` (stepped once per optimiser step).
    loss_fn : callable
        ``loss_fn(logits, targets) -> scalar`` (default :func:`focal_loss`, gamma 3).
    accumulate : int
        Batches whose gradients add up into one optimiser step (paper: mini-batch 6).
    channels : sequence of int or None
        Front-end mask channels trained; None: its ``trained_channels`` (all for other models).

    Returns
    -------
    FitLog
        Per optimiser step: the mean loss of its batches and the learning rate.
    """
    if accumulate <= 0:
        raise ParameterError(f"accumulate must be positive, got {accumulate}")
    model.train()
    device = next(model.parameters()).device
    chans = list(channels if channels is not None else getattr(model, "trained_channels", ()))
    log, pending = FitLog(), []
    optimizer.zero_grad(set_to_none=True)
    for batch in batches:
        patches, contexts, targets = (x.to(device) for x in batch)
        out = model(patches, contexts)
        if isinstance(out, FrontendOutput):
            logits = out.masks[:, chans] if chans else out.masks
        else:
            logits = getattr(out, "logits", out)
        loss = loss_fn(logits, targets)
        (loss / accumulate).backward()
        pending.append(float(loss.detach()))
        if len(pending) == accumulate:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if scheduler is not None:
                scheduler.step()
            log.losses.append(sum(pending) / accumulate)
            log.lrs.append(float(optimizer.param_groups[0]["lr"]))
            pending = []
    return log
