"""RoadGIE's training loss (paper 4.4, eq. 6): focal + Dice + prompt-excluded skeleton recall.

Equation 6 was lost in extraction; the text and Table 5 fix its parts. Table 5 lists the three
terms (focal, Dice, skeleton-based recall) with the prompt exclusion applied to one at a time,
and the paper keeps it on the skeleton recall term only. We therefore use

    L = w_f * Focal(p, y) + w_d * Dice(p, y) + w_s * SkelRecall(p, y; 1 - M_t)

with ``p = sigmoid(logits)``, ``y`` the road mask and ``M_t`` the pixels covered by the prompts
so far (:func:`linegraph2road.prompts.prompt_mask`); all weights 1 (the Skeleton Recall paper
adds its term with weight 1 to nnU-Net's Dice + CE).

* **Focal** (Lin et al., ICCV 2017): ``-(1 - p_t) ** gamma * log p_t`` averaged over pixels,
  ``gamma = 2`` (their default; no ``alpha``).
* **Dice**: soft Dice ``1 - (2 sum p y + 1) / (sum p + sum y + 1)`` per sample, averaged.
* **Skeleton recall** (Kirchhoff et al., ECCV 2024): the ground truth's skeleton
  (:func:`tubed_skeleton`: scikit-image ``skeletonize``, dilated to a 3 px "tube" as they do
  for 2-D) ``S``; the loss is ``1 - sum(p S F) / sum(S F)`` per sample, with ``F = 1 - M_t`` the
  prompt-free mask (RoadGIE's exclusion; ``F = 1`` gives the original loss). Samples whose
  skeleton lies entirely under prompts (or that have no road) contribute 0 to the mean. Unlike
  clDice (Shit et al., CVPR 2021), which needs a differentiable soft skeleton of the
  prediction, the skeleton of the ground truth is computed once per sample, on the CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from linegraph2road.errors import ParameterError
from linegraph2road.rasterize import dilate

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["dice_loss", "focal_loss", "roadgie_loss", "skeleton_recall_loss", "tubed_skeleton"]


def tubed_skeleton(mask: NDArray[np.bool_], *, tube: int = 3) -> NDArray[np.bool_]:
    """``(H, W)`` bool: the skeleton of ``mask`` dilated to ``tube`` px (3: a 3x3 tube)."""
    from skimage.morphology import skeletonize

    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ParameterError(f"mask must be (H, W), got {m.shape}")
    skel = skeletonize(m)
    return dilate(skel, (tube - 1) / 2.0) & m if tube > 1 else skel


def focal_loss(logits: torch.Tensor, target: torch.Tensor, *, gamma: float = 2.0) -> torch.Tensor:
    """Mean binary focal loss of ``(B, 1, H, W)`` logits against 0/1 targets."""
    logits, target = logits.float(), target.float()
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = torch.exp(-bce)
    return ((1.0 - p_t) ** gamma * bce).mean()


def dice_loss(logits: torch.Tensor, target: torch.Tensor, *, smooth: float = 1.0) -> torch.Tensor:
    """``1 - soft Dice`` per sample of ``(B, 1, H, W)`` logits, averaged over the batch."""
    p = torch.sigmoid(logits.float()).flatten(1)
    y = target.float().flatten(1)
    dice = (2 * (p * y).sum(1) + smooth) / (p.sum(1) + y.sum(1) + smooth)
    return (1.0 - dice).mean()


def skeleton_recall_loss(
    logits: torch.Tensor, skeleton: torch.Tensor, prompt_free: torch.Tensor | None = None
) -> torch.Tensor:
    """Prompt-excluded skeleton recall loss (module docstring).

    Parameters
    ----------
    logits : torch.Tensor
        ``(B, 1, H, W)`` road logits.
    skeleton : torch.Tensor
        ``(B, 1, H, W)`` 0/1 tubed skeleton of the ground truth (:func:`tubed_skeleton`).
    prompt_free : torch.Tensor or None
        ``(B, 1, H, W)`` 1 where no prompt lies, 0 on prompted pixels; None: no exclusion.

    Returns
    -------
    torch.Tensor
        Scalar: mean over samples with a non-empty ``skeleton * prompt_free`` of
        ``1 - recall``; 0 when there is none.
    """
    if logits.shape != skeleton.shape:
        raise ParameterError(f"logits {tuple(logits.shape)} and skeleton {tuple(skeleton.shape)}")
    s = skeleton.float()
    if prompt_free is not None:
        s = s * prompt_free.float()
    p = torch.sigmoid(logits.float())
    total = s.flatten(1).sum(1)
    hit = (p * s).flatten(1).sum(1)
    valid = total > 0
    if not bool(valid.any()):
        return logits.float().sum() * 0.0
    recall = hit[valid] / total[valid]
    return (1.0 - recall).mean()


def roadgie_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    skeleton: torch.Tensor,
    prompted: torch.Tensor,
    *,
    focal_weight: float = 1.0,
    dice_weight: float = 1.0,
    skeleton_weight: float = 1.0,
    focal_gamma: float = 2.0,
    exclude: tuple[str, ...] = ("skeleton",),
) -> torch.Tensor:
    """Eq. 6: the weighted sum of focal, Dice and skeleton recall terms.

    Parameters
    ----------
    logits, target, skeleton, prompted : torch.Tensor
        ``(B, 1, H, W)``: logits, 0/1 road mask, 0/1 tubed skeleton, 0/1 prompted pixels
        ``M_t``.
    exclude : tuple of str
        Terms computed on prompt-free pixels only: any of ``"focal"``, ``"dice"``,
        ``"skeleton"`` (paper: the skeleton term; the others are Table 5's ablations).
    """
    bad = set(exclude) - {"focal", "dice", "skeleton"}
    if bad:
        raise ParameterError(f"exclude takes focal, dice and skeleton, got {sorted(bad)}")
    free = 1.0 - prompted.float()
    loss = logits.float().sum() * 0.0
    if focal_weight:
        if "focal" in exclude:
            bce = F.binary_cross_entropy_with_logits(
                logits.float(), target.float(), reduction="none"
            )
            term = ((1.0 - torch.exp(-bce)) ** focal_gamma * bce * free).sum() / free.sum().clamp(
                min=1.0
            )
        else:
            term = focal_loss(logits, target, gamma=focal_gamma)
        loss = loss + focal_weight * term
    if dice_weight:
        if "dice" in exclude:
            term = dice_loss(logits.masked_fill(free == 0, -30.0), target * free)
        else:
            term = dice_loss(logits, target)
        loss = loss + dice_weight * term
    if skeleton_weight:
        mask = free if "skeleton" in exclude else None
        loss = loss + skeleton_weight * skeleton_recall_loss(logits, skeleton, mask)
    return loss
