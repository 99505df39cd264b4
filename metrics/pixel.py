"""Pixel metrics of road masks: IoU, precision, recall, F1 and clDice.

All functions take two masks of the same 2-D shape: boolean masks, 0/1 or 0/255 integers, or
probabilities; they are binarised as ``mask >= threshold``. Inputs are never modified.

Empty masks: a ratio whose denominator is zero is 1.0 when both masks are empty (nothing to find
and nothing found) and 0.0 otherwise (an empty prediction has precision 0 against a non-empty
ground truth, as scikit-learn's ``zero_division=0``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from linegraph2road.errors import ParameterError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["PixelScores", "cldice", "pixel_scores"]


@dataclass(frozen=True)
class PixelScores:
    """Pixel scores of one predicted mask against the ground truth, each in [0, 1].

    Attributes
    ----------
    iou : float
        ``|P & G| / |P | G|``.
    precision, recall, f1 : float
        ``|P & G| / |P|``, ``|P & G| / |G|`` and their harmonic mean.
    cldice : float
        Centreline Dice (see :func:`cldice`).
    """

    iou: float
    precision: float
    recall: float
    f1: float
    cldice: float

    def to_dict(self) -> dict[str, float]:
        """The fields as a plain dict (JSON-ready)."""
        return asdict(self)


def _binarise(
    pred: ArrayLike, gt: ArrayLike, threshold: float
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    p = np.asarray(pred)
    g = np.asarray(gt)
    if p.ndim != 2 or g.ndim != 2:
        raise ParameterError(f"masks must be 2-D, got shapes {p.shape} and {g.shape}")
    if p.shape != g.shape:
        raise ParameterError(f"masks differ in shape: pred {p.shape}, gt {g.shape}")
    if not np.isfinite(threshold):
        raise ParameterError(f"threshold must be finite, got {threshold}")
    return np.asarray(p >= threshold, dtype=bool), np.asarray(g >= threshold, dtype=bool)


def _ratio(num: int, den: int, both_empty: bool) -> float:
    if den == 0:
        return 1.0 if both_empty else 0.0
    return num / den


def _harmonic(a: float, b: float) -> float:
    return 2.0 * a * b / (a + b) if a + b > 0 else 0.0


def _cldice_binary(p: NDArray[np.bool_], g: NDArray[np.bool_]) -> float:
    from skimage.morphology import skeletonize

    both_empty = not p.any() and not g.any()
    sp = skeletonize(p)
    sg = skeletonize(g)
    t_prec = _ratio(int(np.count_nonzero(sp & g)), int(np.count_nonzero(sp)), both_empty)
    t_sens = _ratio(int(np.count_nonzero(sg & p)), int(np.count_nonzero(sg)), both_empty)
    return _harmonic(t_prec, t_sens)


def cldice(pred: ArrayLike, gt: ArrayLike, *, threshold: float = 0.5) -> float:
    """Centreline Dice (Shit et al., CVPR 2021) of two road masks.

    Topology precision is the fraction of the predicted mask's skeleton lying inside the
    ground-truth mask, topology sensitivity the fraction of the ground truth's skeleton inside
    the prediction; clDice is their harmonic mean. Skeletons are scikit-image's
    ``skeletonize`` (8-connected, one pixel wide).

    Parameters
    ----------
    pred, gt : (H, W) array_like
        Masks (bool, integer or probability), binarised as ``mask >= threshold``.
    threshold : float
        Binarisation threshold (default 0.5).

    Returns
    -------
    float
        In [0, 1]; symmetric in ``pred`` and ``gt``. 1.0 when both masks are empty, 0.0 when
        exactly one is.
    """
    p, g = _binarise(pred, gt, threshold)
    return _cldice_binary(p, g)


def pixel_scores(
    pred_mask: ArrayLike, gt_mask: ArrayLike, *, threshold: float = 0.5
) -> PixelScores:
    """IoU, precision, recall, F1 and clDice of a predicted road mask.

    Parameters
    ----------
    pred_mask, gt_mask : (H, W) array_like
        Predicted and ground-truth masks, rows x columns (bool, integer or probability),
        binarised as ``mask >= threshold``.
    threshold : float
        Binarisation threshold (default 0.5).

    Returns
    -------
    PixelScores

    Raises
    ------
    ParameterError
        If the masks are not 2-D or differ in shape, or the threshold is not finite.
    """
    p, g = _binarise(pred_mask, gt_mask, threshold)
    tp = int(np.count_nonzero(p & g))
    n_p = int(np.count_nonzero(p))
    n_g = int(np.count_nonzero(g))
    both_empty = n_p == 0 and n_g == 0
    precision = _ratio(tp, n_p, both_empty)
    recall = _ratio(tp, n_g, both_empty)
    return PixelScores(
        iou=_ratio(tp, n_p + n_g - tp, both_empty),
        precision=precision,
        recall=recall,
        f1=_harmonic(precision, recall),
        cldice=_cldice_binary(p, g),
    )
