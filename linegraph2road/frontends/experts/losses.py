"""Losses and schedule of the experts recipe (paper 003, equations 1-3 and section 3.2).

* :func:`triplet_margin_loss`: ``max(d(a, p) - d(a, n) + margin, 0)`` with the cosine distance
  ``d = 1 - cos`` (equation 1); margin 1.0 by default (not stated in the paper).
* :func:`segmentation_loss`: ``alpha * BCE + (1 - alpha) * (1 - soft Jaccard)`` (equations 2-3);
  alpha 0.5 by default (not stated in the paper).
* :func:`poly_scheduler`: ``(1 - step / total) ** 0.9`` ("We set the hyperparameter power to 0.9").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from linegraph2road.errors import ParameterError

__all__ = ["poly_scheduler", "segmentation_loss", "soft_jaccard", "triplet_margin_loss"]


def soft_jaccard(probs: torch.Tensor, targets: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """Soft Jaccard index ``sum(y p) / sum(y + p - y p)`` over all elements (equation 3).

    Parameters
    ----------
    probs, targets : torch.Tensor
        Same shape, values in [0, 1]. On binary inputs the result is the IoU.
    eps : float
        Added to numerator and denominator (two empty masks give 1).

    Returns
    -------
    torch.Tensor
        Scalar in [0, 1].
    """
    inter = (probs * targets).sum()
    return (inter + eps) / (probs.sum() + targets.sum() - inter + eps)


def segmentation_loss(
    logits: torch.Tensor, targets: torch.Tensor, *, alpha: float = 0.5
) -> torch.Tensor:
    """``alpha * BCE + (1 - alpha) * (1 - soft Jaccard)`` of mask logits (equation 2).

    Parameters
    ----------
    logits : torch.Tensor
        ``(B, C, H, W)`` float mask logits.
    targets : torch.Tensor
        Same shape, in {0, 1}.
    alpha : float
        BCE weight in [0, 1] (default 0.5; not stated in the paper).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ParameterError(f"alpha must be in [0, 1], got {alpha}")
    bce = F.binary_cross_entropy_with_logits(logits, targets)
    return alpha * bce + (1.0 - alpha) * (1.0 - soft_jaccard(torch.sigmoid(logits), targets))


def poly_scheduler(
    optimizer: torch.optim.Optimizer, *, total_steps: int, power: float = 0.9
) -> torch.optim.lr_scheduler.LambdaLR:
    """The "poly" policy: ``lr = base_lr * (1 - step / total_steps) ** power`` (power 0.9).

    Stepped once per optimiser step; the rate reaches 0 after ``total_steps`` and stays there.
    """
    if total_steps < 1:
        raise ParameterError(f"total_steps must be >= 1, got {total_steps}")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(0.0, 1.0 - step / total_steps) ** power
    )


def triplet_margin_loss(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, *, margin: float = 1.0
) -> torch.Tensor:
    """Mean of ``max(d(a, p) - d(a, n) + margin, 0)`` with ``d = 1 - cosine`` (equation 1).

    Parameters
    ----------
    anchor, positive, negative : torch.Tensor
        ``(B, E)`` embeddings.
    margin : float
        Default 1.0 (not stated in the paper; PyTorch's default).
    """
    d_ap = 1.0 - F.cosine_similarity(anchor, positive, dim=1)
    d_an = 1.0 - F.cosine_similarity(anchor, negative, dim=1)
    return torch.clamp(d_ap - d_an + margin, min=0.0).mean()
