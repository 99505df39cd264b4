"""Scores of interactive segmentation, per round (RoadGIE Tables 3-4 and Fig. 6).

Per image and round (:func:`round_scores`), on ``probability > threshold`` against the road mask:
Dice (= pixel F1), Recall, clDice (:func:`~.pixel.cldice`), APLS (Sat2Graph variant, our
evaluator, on the :func:`~linegraph2road.mask2graph.mask_to_graph` graphs of the prediction and of
the ground-truth mask, as RoadGIE following GraphMorph does; small-tile parameters for images of
at most 512 px a side, at ``gsd`` metres per pixel) and the Betti-0 / Betti-1 errors
(:mod:`.betti`). APLS is NaN where it is undefined (no road in the ground truth): the summary
skips NaN, as the benchmarks do.

Over rounds (:func:`summarize_rounds`): the mean of each score per round (Table 4's rows), and
the number of interactions to reach a Dice of 0.85 and 0.90 (NoI@85, NoI@90): per image the first
round whose Dice reaches the target, ``rounds + 1`` when none does (the usual cap of NoC
metrics, one past the budget), averaged; with the share of images that reached it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from linegraph2road.errors import ParameterError
from linegraph2road.metrics.apls import apls
from linegraph2road.metrics.betti import betti_errors
from linegraph2road.metrics.pixel import pixel_scores

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["ROUND_METRICS", "interactions_to_reach", "round_scores", "summarize_rounds"]

#: The per-round scores, in report order.
ROUND_METRICS = ("dice", "recall", "cldice", "apls", "betti0_error", "betti1_error")
#: Dice targets of the interaction counts.
NOI_TARGETS = (0.85, 0.90)


def round_scores(
    probability: ArrayLike, gt: ArrayLike, *, threshold: float = 0.5, gsd: float = 1.0
) -> dict[str, float]:
    """The :data:`ROUND_METRICS` of one prediction (see the module docstring).

    Parameters
    ----------
    probability : (H, W) float
        Road probability (or a binary mask).
    gt : (H, W) bool
        Ground-truth road mask.
    threshold : float
        Road: ``probability > threshold``.
    gsd : float
        Metres per pixel (APLS).
    """
    from linegraph2road.mask2graph import mask_to_graph

    prob = np.asarray(probability, dtype=np.float32)
    truth = np.asarray(gt, dtype=bool)
    if prob.shape != truth.shape or prob.ndim != 2:
        raise ParameterError(f"prediction {prob.shape} and ground truth {truth.shape} differ")
    pred = prob > threshold
    px = pixel_scores(pred, truth)
    small = max(prob.shape) <= 512
    gt_graph = mask_to_graph(truth)
    pred_graph = mask_to_graph(pred)
    score = (
        apls(gt_graph, pred_graph, small_tiles=small, gsd=gsd).score
        if gt_graph.num_edges
        else math.nan
    )
    b0, b1 = betti_errors(pred, truth)
    return {
        "dice": px.f1,
        "recall": px.recall,
        "cldice": px.cldice,
        "apls": float(score),
        "betti0_error": float(b0),
        "betti1_error": float(b1),
    }


def interactions_to_reach(dice: Sequence[float], target: float) -> int | None:
    """The first round (1-based) whose Dice is ``>= target``; None when none is."""
    for i, d in enumerate(dice, start=1):
        if d >= target:
            return i
    return None


def summarize_rounds(per_image: Sequence[Sequence[dict[str, float]]]) -> dict[str, Any]:
    """Per-round means and NoI@85/90 over images (see the module docstring).

    Parameters
    ----------
    per_image : sequence of sequence of dict
        ``per_image[i][t]``: :func:`round_scores` of image ``i`` after round ``t + 1``; every image
        has the same number of rounds.

    Returns
    -------
    dict
        ``rounds`` (list of ``{"round": t, metric: mean...}``), ``noi`` (``{"0.85": {"mean":
        ..., "reached": share}, ...}``), ``images``.
    """
    if not per_image:
        raise ParameterError("no images to summarise")
    n = len(per_image[0])
    if any(len(r) != n for r in per_image) or n == 0:
        raise ParameterError("every image needs the same number (>= 1) of rounds")
    rounds = []
    for t in range(n):
        row: dict[str, Any] = {"round": t + 1}
        for m in ROUND_METRICS:
            values = np.array([img[t][m] for img in per_image], dtype=np.float64)
            ok = ~np.isnan(values)
            row[m] = float(values[ok].mean()) if ok.any() else None
        rounds.append(row)
    noi: dict[str, Any] = {}
    for target in NOI_TARGETS:
        hits = [interactions_to_reach([r["dice"] for r in img], target) for img in per_image]
        counts = [n + 1 if h is None else h for h in hits]
        noi[f"{target:.2f}"] = {
            "mean": float(np.mean(counts)),
            "reached": float(np.mean([h is not None for h in hits])),
            "cap": n + 1,
        }
    return {"images": len(per_image), "rounds": rounds, "noi": noi}
