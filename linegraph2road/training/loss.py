"""The LineGraph2Road training loss (paper section 3.5, equation 4).

``L = BCE(masks) + lambda * BCE(edges)`` with ``lambda = 0.1``: binary cross-entropy with logits,
averaged over every pixel of the three masks (keypoint, road, overpass) of the batch, plus the
same averaged over every candidate edge of the batch (all windows pooled). The non-overpass
variant (``channels=(0, 1)``) has no overpass term: its BCE averages the keypoint and road masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

from linegraph2road.errors import ParameterError

__all__ = ["LossParts", "l2r_loss"]


class LossParts(NamedTuple):
    """The loss and its parts (0-d tensors; only ``total`` needs a gradient).

    ``mask`` is the mean BCE over the trained masks, ``keypoint`` / ``road`` / ``overpass`` each
    mask's own mean BCE (``mask`` is the mean of the trained ones; a mask that is not trained,
    such as the non-overpass variant's overpass, is NaN), ``edge`` the candidate-edge BCE (0
    for a batch without candidates), ``total = mask + lambda_edge * edge``.
    """

    total: torch.Tensor
    mask: torch.Tensor
    edge: torch.Tensor
    keypoint: torch.Tensor
    road: torch.Tensor
    overpass: torch.Tensor


def l2r_loss(
    mask_logits: torch.Tensor,
    mask_targets: torch.Tensor,
    edge_logits: Sequence[torch.Tensor],
    edge_labels: Sequence[torch.Tensor],
    *,
    lambda_edge: float = 0.1,
    channels: Sequence[int] = (0, 1, 2),
) -> LossParts:
    """Mask BCE + ``lambda_edge`` x candidate-edge BCE.

    Parameters
    ----------
    mask_logits : torch.Tensor
        ``(B, 3, H, W)`` logits, channels keypoint, road, overpass (any float dtype; computed in
        float32).
    mask_targets : torch.Tensor
        ``(B, 3, H, W)`` targets in {0, 1} (float or integer).
    edge_logits, edge_labels : sequence of torch.Tensor
        ``B`` tensors ``(C_b,)`` each: logits and 0/1 labels of window ``b``'s candidate edges.
    lambda_edge : float, default 0.1
        Weight of the edge term (paper: 0.1).
    channels : sequence of int, default (0, 1, 2)
        Mask channels in the loss: the model's ``trained_channels`` (``(0, 1)`` for the
        non-overpass variant, whose overpass channel is a constant).

    Returns
    -------
    LossParts
    """
    if mask_logits.shape != mask_targets.shape or mask_logits.ndim != 4:
        raise ParameterError(
            f"mask logits {tuple(mask_logits.shape)} and targets {tuple(mask_targets.shape)} "
            "must both be (B, 3, H, W)"
        )
    if len(edge_logits) != len(edge_labels):
        raise ParameterError(
            f"{len(edge_logits)} edge-logit tensors but {len(edge_labels)} label tensors"
        )
    chans = sorted({int(c) for c in channels})
    if not chans or chans[0] < 0 or chans[-1] >= mask_logits.shape[1]:
        raise ParameterError(
            f"channels must name some of the {mask_logits.shape[1]} mask channels, got "
            f"{tuple(channels)}"
        )
    per_pixel = F.binary_cross_entropy_with_logits(
        mask_logits[:, chans].float(),
        mask_targets[:, chans].to(mask_logits.device, torch.float32),
        reduction="none",
    )
    trained = per_pixel.mean(dim=(0, 2, 3))
    mask = trained.mean()
    per_mask = torch.full((mask_logits.shape[1],), float("nan"), device=mask.device)
    per_mask = per_mask.index_put((torch.tensor(chans, device=mask.device),), trained.detach())
    logits = torch.cat([x.reshape(-1).float() for x in edge_logits]) if edge_logits else None
    if logits is None or logits.numel() == 0:
        # keep the head in the graph with a zero term (DDP expects every parameter to get a grad)
        edge = logits.sum() * 0.0 if logits is not None else mask.new_zeros(())
    else:
        labels = torch.cat([y.reshape(-1) for y in edge_labels]).to(logits.device, torch.float32)
        if labels.shape != logits.shape:
            raise ParameterError(f"{logits.numel()} edge logits but {labels.numel()} labels")
        edge = F.binary_cross_entropy_with_logits(logits, labels)
    total = mask + float(lambda_edge) * edge
    return LossParts(total, mask, edge, per_mask[0], per_mask[1], per_mask[2])
