"""Precision-recall curves of binary scores, and the threshold of their best F1.

This is SAM-Road's threshold selection (``on_test_end`` of its ``model.py``), which the
LineGraph2Road paper follows (section 3.6): a ``BinaryPrecisionRecallCurve`` over the keypoint
mask, the road mask and the topology scores of a validation set, and for each the threshold at
the point of best ``F1 = 2 P R / (P + R)``.

The curve here is *binned*: :class:`PRCurve` counts positive and negative labels per score bin
(``bins`` of width ``1 / bins`` over ``[0, 1]``), so millions of mask pixels accumulate in
constant memory and any number of batches can be added (torchmetrics offers the same trade with
``thresholds=N``; an exact curve would keep every score). Bin ``b`` holds the scores in
``(b / bins, (b + 1) / bins]``; the threshold ``t_i = i / bins`` predicts positive the scores
``> t_i``, exactly the rule of coupled NMS and of the topology threshold, so a selected threshold
means what the extraction does with it (a score of exactly 0 counts in bin 0). When several
thresholds share the best F1 (no score between them) the highest is returned: SAM-Road's curve
returns the lowest *score* of the best set, with ``>=``; the same set under ``>`` is cut just
below that score. Selected thresholds are thus within ``1 / bins`` of SAM-Road's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from linegraph2road.errors import ParameterError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["DEFAULT_BINS", "BestF1", "PRCurve", "best_f1_threshold"]

#: Score bins of the curve (threshold resolution 1e-4).
DEFAULT_BINS = 10_000


@dataclass(frozen=True)
class BestF1:
    """The best-F1 point of a precision-recall curve.

    Attributes
    ----------
    threshold : float
        Scores ``> threshold`` are predicted positive, in ``[0, 1)``.
    precision, recall, f1 : float
        At that threshold.
    positives, total : int
        Labelled positives and all samples counted.
    """

    threshold: float
    precision: float
    recall: float
    f1: float
    positives: int
    total: int

    def to_dict(self) -> dict[str, float | int]:
        """The fields as a plain dict (JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BestF1:
        """Inverse of :meth:`to_dict`."""
        return cls(
            threshold=float(data["threshold"]),
            precision=float(data["precision"]),
            recall=float(data["recall"]),
            f1=float(data["f1"]),
            positives=int(data["positives"]),
            total=int(data["total"]),
        )


class PRCurve:
    """A binned precision-recall curve fed batch by batch (see the module docstring).

    Parameters
    ----------
    bins : int
        Score bins over ``[0, 1]`` (default 10 000).
    """

    def __init__(self, bins: int = DEFAULT_BINS) -> None:
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
            raise ParameterError(f"bins must be an integer >= 2, got {bins!r}")
        self.bins = bins
        self.pos = np.zeros(bins, dtype=np.int64)
        self.neg = np.zeros(bins, dtype=np.int64)

    def update(self, scores: ArrayLike, labels: ArrayLike, valid: ArrayLike | None = None) -> None:
        """Add samples.

        Parameters
        ----------
        scores : array of float
            Probabilities in ``[0, 1]`` (any shape).
        labels : array
            Same shape; nonzero = positive.
        valid : array of bool or None
            Same shape; only True samples are counted (None: all).
        """
        s = np.asarray(scores, dtype=np.float64)
        y = np.asarray(labels)
        keep = None if valid is None else np.asarray(valid, dtype=bool)
        if s.shape != y.shape or (keep is not None and keep.shape != s.shape):
            shown = None if keep is None else keep.shape
            raise ParameterError(
                f"scores {s.shape}, labels {y.shape} and valid {shown} must have the same shape"
            )
        if keep is not None:
            s, y = s[keep], y[keep]
        s, y = s.reshape(-1), y.reshape(-1) != 0
        if s.size and not (np.isfinite(s).all() and s.min() >= 0.0 and s.max() <= 1.0):
            raise ParameterError("scores must be probabilities in [0, 1]")
        b = np.clip(np.ceil(s * self.bins).astype(np.int64) - 1, 0, self.bins - 1)
        self.pos += np.bincount(b[y], minlength=self.bins)
        self.neg += np.bincount(b[~y], minlength=self.bins)

    @property
    def positives(self) -> int:
        """Positive samples counted so far."""
        return int(self.pos.sum())

    def curve(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """``(thresholds, precision, recall)``, each ``(bins,)``: thresholds ``i / bins``
        ascending; precision 1 where nothing is predicted positive; recall 0 without positives."""
        tp = np.cumsum(self.pos[::-1])[::-1].astype(np.float64)
        fp = np.cumsum(self.neg[::-1])[::-1].astype(np.float64)
        predicted = tp + fp
        precision = np.divide(tp, predicted, out=np.ones_like(tp), where=predicted > 0)
        total = float(self.pos.sum())
        recall = tp / total if total > 0 else np.zeros_like(tp)
        return np.arange(self.bins) / self.bins, precision, recall

    def best_f1(self) -> BestF1:
        """The best-F1 point (the highest threshold among ties).

        Raises
        ------
        ParameterError
            No positive sample was counted (every threshold has F1 0).
        """
        if self.positives == 0:
            raise ParameterError(
                "no positive sample: a threshold cannot be selected (the labels hold no "
                "keypoint, road or connected edge of this kind)"
            )
        t, p, r = self.curve()
        s = p + r
        f1 = np.divide(2 * p * r, s, out=np.zeros_like(s), where=s > 0)
        i = len(f1) - 1 - int(np.argmax(f1[::-1]))
        return BestF1(
            threshold=float(t[i]),
            precision=float(p[i]),
            recall=float(r[i]),
            f1=float(f1[i]),
            positives=self.positives,
            total=int(self.pos.sum() + self.neg.sum()),
        )


def best_f1_threshold(scores: ArrayLike, labels: ArrayLike, *, bins: int = DEFAULT_BINS) -> BestF1:
    """The best-F1 threshold of ``scores`` against ``labels`` (one :class:`PRCurve` update).

    Parameters
    ----------
    scores : array of float
        Probabilities in ``[0, 1]``.
    labels : array
        Same shape; nonzero = positive.
    bins : int
        Score bins (threshold resolution ``1 / bins``).

    Returns
    -------
    BestF1
    """
    curve = PRCurve(bins)
    curve.update(scores, labels)
    return curve.best_f1()
