"""Binned precision-recall curves and the best-F1 threshold (SAM-Road's threshold selection)."""

from __future__ import annotations

import numpy as np
import pytest

from linegraph2road.errors import ParameterError
from linegraph2road.metrics import BestF1, PRCurve, best_f1_threshold


def test_hand_case_with_overlapping_classes() -> None:
    # scores 0.7 (30 positives), 0.6 (10 negatives), 0.5 (20 positives), 0.1 (50 negatives).
    # Predicted sets and F1: {0.7}: P 1, R .6, F1 .75; {.7, .6}: P .75, R .6, F1 .667;
    # {.7, .6, .5}: P 50/60, R 1, F1 .9091 (the best); everything: P .5, R 1, F1 .667.
    scores = np.repeat([0.7, 0.6, 0.5, 0.1], [30, 10, 20, 50])
    labels = np.repeat([1, 0, 1, 0], [30, 10, 20, 50])
    best = best_f1_threshold(scores, labels)
    # the best set under "score > t": t in [0.1, 0.5); the highest bin edge below 0.5 is chosen
    assert best.threshold == pytest.approx(0.4999, abs=1e-12)
    assert (best.precision, best.recall) == (pytest.approx(50 / 60), 1.0)
    assert best.f1 == pytest.approx(2 * (50 / 60) / (50 / 60 + 1))
    assert (best.positives, best.total) == (50, 110)
    assert np.sum(scores[labels == 1] > best.threshold) == 50  # the rule it means
    assert np.sum(scores[labels == 0] > best.threshold) == 10


@pytest.mark.parametrize("boundary", [0.3, 0.62, 0.815])
def test_separable_synthetic_masks_recover_their_boundary(boundary: float) -> None:
    """Road-like masks: positives above ``boundary``, negatives below; the best F1 is 1 at the
    boundary, and the selected threshold is within one bin (1e-4) of it."""
    rng = np.random.default_rng(0)
    labels = rng.random((200, 200)) < 0.1
    scores = np.where(
        labels, rng.uniform(boundary, 1.0, labels.shape), rng.uniform(0.0, boundary, labels.shape)
    )
    best = best_f1_threshold(scores, labels)
    assert (best.precision, best.recall, best.f1) == (1.0, 1.0, 1.0)
    assert abs(best.threshold - boundary) <= 1e-4
    assert np.array_equal(scores > best.threshold, labels)


def test_matches_an_exact_curve_on_binned_scores() -> None:
    """On scores that sit on bin centres the binned curve is the exact one: brute force over
    every threshold gives the same best F1 and the same predicted set."""
    rng = np.random.default_rng(1)
    bins = 1000
    scores = (rng.integers(0, bins, 5000) + 0.5) / bins
    labels = rng.random(5000) < scores**2  # higher scores, more positives
    best = best_f1_threshold(scores, labels, bins=bins)
    f1 = []
    for t in np.arange(bins) / bins:
        pred = scores > t
        tp = np.sum(pred & labels)
        p = tp / max(pred.sum(), 1)
        r = tp / labels.sum()
        f1.append(2 * p * r / (p + r) if p + r else 0.0)
    assert best.f1 == pytest.approx(max(f1), abs=1e-12)
    top = np.flatnonzero(np.isclose(f1, max(f1), rtol=0, atol=1e-12))
    assert best.threshold == pytest.approx(top.max() / bins)


def test_streaming_updates_and_validity() -> None:
    rng = np.random.default_rng(2)
    s, y = rng.random((4, 50, 50)), rng.random((4, 50, 50)) < 0.3
    valid = np.ones_like(y)
    valid[:, :, :10] = False
    one = PRCurve(500)
    one.update(s[:, :, 10:], y[:, :, 10:])
    parts = PRCurve(500)
    for k in range(4):
        parts.update(s[k], y[k], valid[k])
    assert np.array_equal(one.pos, parts.pos) and np.array_equal(one.neg, parts.neg)
    assert one.best_f1() == parts.best_f1()
    assert BestF1.from_dict(one.best_f1().to_dict()) == one.best_f1()


def test_bad_input() -> None:
    with pytest.raises(ParameterError, match="no positive"):
        best_f1_threshold(np.array([0.2, 0.9]), np.array([0, 0]))
    with pytest.raises(ParameterError, match="probabilities"):
        best_f1_threshold(np.array([0.2, 1.5]), np.array([0, 1]))
    with pytest.raises(ParameterError, match="shape"):
        best_f1_threshold(np.zeros(3), np.zeros(4))
    with pytest.raises(ParameterError, match="bins"):
        PRCurve(1)
