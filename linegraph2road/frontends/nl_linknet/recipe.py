"""NL-LinkNet's training recipe and test-time augmentation (paper 000, Sec. III-B).

Training (paper, "Training Phase")
----------------------------------
* Loss: binary cross-entropy on the sigmoid output (:func:`bce_loss`). The authors' released
  ``train.py`` actually trains with D-LinkNet's BCE + dice loss; :func:`dice_bce_loss` is that
  loss, for users who want the code's behaviour rather than the paper's text.
* Optimiser: Adam, initial learning rate 3e-4 (:func:`make_optimizer`), one rate for every
  parameter (the encoder is fine-tuned like the rest).
* Schedule: "the learning rate fell off step by step by a factor of 0.2 when loss did not fall
  several times" (:class:`PlateauSchedule`, epoch level, with the thresholds of the authors'
  ``train.py``: reduce after more than 5 epochs without a new best training loss, reloading the
  best weights; stop after more than 8, or when the rate is already below 5e-6).
* Paper data: batch 8, 1024 x 1024 crops, shifts, multi-scaling and flips; ~180 epochs.

Test time (paper, "Test Phase"): :func:`tta` averages the sigmoid probabilities over the 8
dihedral transforms of each window (horizontal, vertical and diagonal flips), optionally at
scales 0.75, 1 and 1.25 (24 passes). The paper thresholds the sum at 4 of 8 (12 of 24), which is
``tta(...) >= 0.5``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.base import MaskFrontend

__all__ = ["PlateauSchedule", "bce_loss", "dice_bce_loss", "make_optimizer", "tta"]


def bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The paper's loss: mean binary cross-entropy of ``sigmoid(logits)`` against ``targets``.

    Parameters
    ----------
    logits : torch.Tensor
        ``(B, K, H, W)`` float logits.
    targets : torch.Tensor
        Same shape, float in ``[0, 1]``.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    return F.binary_cross_entropy_with_logits(logits, targets)


def dice_bce_loss(
    logits: torch.Tensor, targets: torch.Tensor, *, smooth: float = 1.0
) -> torch.Tensor:
    """D-LinkNet's loss, used by the authors' code: BCE + ``1 - dice`` over the whole batch.

    ``dice = (2 sum(p y) + smooth) / (sum(p) + sum(y) + smooth)`` with ``p = sigmoid(logits)``,
    sums over every element of the batch. ``smooth`` (default 1; D-LinkNet: 0) keeps an
    all-background batch finite.
    """
    p = torch.sigmoid(logits)
    dice = (2 * (p * targets).sum() + smooth) / (p.sum() + targets.sum() + smooth)
    return bce_loss(logits, targets) + (1 - dice)


def make_optimizer(frontend: nn.Module, *, lr: float = 3e-4) -> torch.optim.Adam:
    """Adam over every trainable parameter at the paper's initial rate (default 3e-4)."""
    if lr <= 0:
        raise ParameterError(f"learning rate must be > 0, got {lr}")
    return torch.optim.Adam([p for p in frontend.parameters() if p.requires_grad], lr=lr)


class PlateauSchedule:
    """The paper's epoch-level plateau schedule (thresholds of the authors' ``train.py``).

    Call :meth:`step` once per epoch with the mean training loss. An epoch whose loss is not
    below the best so far counts as bad; good epochs reset the count and (with ``model``)
    snapshot the weights. When the count exceeds ``patience`` the rate is multiplied by
    ``factor`` and the best weights are restored -- or training stops if the rate is already
    below ``min_lr``; when it exceeds ``stop_patience`` training stops. As in the authors' code
    the count is not reset by a reduction, so every further bad epoch reduces again.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    factor : float
        Rate multiplier on a plateau (paper: 0.2, i.e. divide by 5).
    patience : int
        Bad epochs tolerated before reducing (default 5: the 6th reduces).
    stop_patience : int
        Bad epochs tolerated before stopping (default 8: the 9th stops).
    min_lr : float
        Stop instead of reducing below this rate (default 5e-6).
    model : nn.Module or None
        If given, its best weights are kept in memory and restored at each reduction.

    Attributes
    ----------
    best : float
        Lowest epoch loss so far (``inf`` at first).
    bad_epochs : int
    stopped : bool
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        factor: float = 0.2,
        patience: int = 5,
        stop_patience: int = 8,
        min_lr: float = 5e-6,
        model: nn.Module | None = None,
    ) -> None:
        if not 0 < factor < 1 or patience < 0 or stop_patience < 0 or min_lr < 0:
            raise ParameterError(
                f"need 0 < factor < 1 and non-negative patience/min_lr, got factor={factor}, "
                f"patience={patience}, stop_patience={stop_patience}, min_lr={min_lr}"
            )
        self.optimizer, self.model = optimizer, model
        self.factor, self.patience, self.stop_patience = factor, patience, stop_patience
        self.min_lr = min_lr
        self.best = float("inf")
        self.bad_epochs = 0
        self.stopped = False
        self._best_state: dict[str, torch.Tensor] | None = None

    @property
    def lr(self) -> float:
        """Current learning rate of the first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])

    def step(self, epoch_loss: float) -> str:
        """Account for one epoch's mean loss.

        Returns
        -------
        str
            ``"improved"``, ``"waiting"``, ``"reduced"`` (rate multiplied by ``factor``) or
            ``"stop"``.
        """
        if self.stopped:
            return "stop"
        if epoch_loss < self.best:
            self.best, self.bad_epochs = float(epoch_loss), 0
            if self.model is not None:
                self._best_state = {
                    k: v.detach().clone() for k, v in self.model.state_dict().items()
                }
            return "improved"
        self.bad_epochs += 1
        if self.bad_epochs > self.stop_patience:
            self.stopped = True
            return "stop"
        if self.bad_epochs > self.patience:
            if self.lr < self.min_lr:
                self.stopped = True
                return "stop"
            if self.model is not None and self._best_state is not None:
                self.model.load_state_dict(self._best_state)
            for group in self.optimizer.param_groups:
                group["lr"] = group["lr"] * self.factor
            return "reduced"
        return "waiting"


def _dihedral(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    x = torch.flip(x, dims=(-1,)) if flip else x
    return torch.rot90(x, k, dims=(-2, -1))


def _undo_dihedral(y: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    y = torch.rot90(y, -k, dims=(-2, -1))
    return torch.flip(y, dims=(-1,)) if flip else y


def tta(
    frontend: MaskFrontend,
    image: torch.Tensor,
    *,
    flips: bool = True,
    scales: Sequence[float] = (1.0,),
    size_multiple: int = 32,
) -> torch.Tensor:
    """Mask probabilities averaged over flips and scales (the paper's test-time augmentation).

    Parameters
    ----------
    frontend : MaskFrontend
        Put it in eval mode first (this function switches no mode; it runs without gradients).
    image : torch.Tensor
        ``(B, 3, H, W)`` float, already normalised (:meth:`MaskFrontend.normalize`); square
        when ``flips`` (the rotations swap the axes).
    flips : bool
        Average over the 8 dihedral transforms (4 rotations x mirror; default True); False:
        identity only.
    scales : sequence of float
        Input scale factors (default ``(1.0,)``; the paper's multi-scale test: ``(0.75, 1.0,
        1.25)``). A scaled side is rounded to a multiple of ``size_multiple`` (default 32,
        NL-LinkNet's total stride); images are resized bilinearly (``align_corners=False``),
        and so are the probabilities back to ``(H, W)``. The front-end must accept the scaled
        sizes (NL-LinkNet takes any multiple of 32; fixed-window front-ends only scale 1).

    Returns
    -------
    torch.Tensor
        ``(B, K, H, W)`` float32 mean of ``sigmoid(masks)`` over ``8 len(scales)`` passes (or
        ``len(scales)`` without flips); threshold at 0.5 for the paper's binary masks.
    """
    if image.ndim != 4:
        raise ParameterError(f"tta takes (B, 3, H, W) images, got {tuple(image.shape)}")
    if not scales or min(scales) <= 0 or size_multiple < 1:
        raise ParameterError(f"scales must be positive and non-empty, got {tuple(scales)}")
    h, w = int(image.shape[-2]), int(image.shape[-1])
    if flips and h != w:
        raise ParameterError(f"flip TTA needs square images, got {h} x {w}")
    transforms = [(k, f) for f in (False, True) for k in range(4)] if flips else [(0, False)]
    total = torch.zeros((), device=image.device)
    with torch.no_grad():
        for scale in scales:
            x = image
            if scale != 1.0:
                size = [
                    max(size_multiple, int(s * scale / size_multiple + 0.5) * size_multiple)
                    for s in (h, w)
                ]
                x = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
            for k, flip in transforms:
                prob = torch.sigmoid(frontend(_dihedral(x, k, flip)).masks.float())
                prob = _undo_dihedral(prob, k, flip)
                if prob.shape[-2:] != (h, w):
                    prob = F.interpolate(prob, size=(h, w), mode="bilinear", align_corners=False)
                total = total + prob
    return total / (len(scales) * len(transforms))
