"""Betti numbers and errors, per-round interactive scores, NoI@85/90."""

from __future__ import annotations

import math

import numpy as np
import pytest

from linegraph2road.errors import ParameterError
from linegraph2road.metrics.betti import betti_errors, betti_numbers
from linegraph2road.metrics.interactive import (
    interactions_to_reach,
    round_scores,
    summarize_rounds,
)


def test_betti_numbers() -> None:
    square = np.zeros((9, 9), bool)
    square[2:7, 2:7] = True
    assert betti_numbers(square) == (1, 0)
    ring = square.copy()
    ring[4, 4] = False
    assert betti_numbers(ring) == (1, 1)
    dots = np.zeros((5, 5), bool)
    dots[0, 0] = dots[4, 4] = True
    assert betti_numbers(dots) == (2, 0)
    diagonal = np.eye(4, dtype=bool)  # 8-connected: one component
    assert betti_numbers(diagonal) == (1, 0)
    notch = ring.copy()
    notch[2, 4] = False  # the hole opens to the outside through a 4-connected gap
    notch[3, 4] = False
    assert betti_numbers(notch) == (1, 0)
    far = np.zeros((9, 9), bool)
    far[0, 0] = far[8, 8] = True
    assert betti_errors(ring, far) == (1, 1)
    with pytest.raises(ParameterError):
        betti_errors(ring, dots[:3])


def test_round_scores_exact_and_degenerate() -> None:
    gt = np.zeros((200, 200), bool)
    gt[98:103, 2:198] = True
    gt[2:198, 98:103] = True
    s = round_scores(gt.astype(np.float32), gt)
    assert s["dice"] == 1.0 and s["recall"] == 1.0 and s["cldice"] == 1.0
    assert s["apls"] == pytest.approx(1.0) and s["betti0_error"] == s["betti1_error"] == 0
    half = gt.copy()
    half[:, 100:] = False
    h = round_scores(half, gt)
    assert 0.4 < h["recall"] < 0.8 and h["dice"] == pytest.approx(
        2 * h["recall"] / (1 + h["recall"])
    )
    assert h["apls"] < 1.0
    empty = round_scores(np.zeros_like(gt, np.float32), np.zeros_like(gt))
    assert math.isnan(empty["apls"]) and empty["betti0_error"] == 0
    with pytest.raises(ParameterError):
        round_scores(gt[:10], gt)


def test_summary_and_noi() -> None:
    assert interactions_to_reach([0.5, 0.86, 0.95], 0.85) == 2
    assert interactions_to_reach([0.5, 0.6], 0.85) is None

    def r(d: float, apls: float = math.nan) -> dict[str, float]:
        return {"dice": d, "recall": d, "cldice": d, "apls": apls, "betti0_error": 1.0,
                "betti1_error": 0.0}  # fmt: skip

    s = summarize_rounds([[r(0.8, 0.5), r(0.9, 0.7)], [r(0.5), r(0.6)]])
    assert s["images"] == 2 and [x["round"] for x in s["rounds"]] == [1, 2]
    assert s["rounds"][0]["dice"] == pytest.approx(0.65) and s["rounds"][1]["apls"] == 0.7
    assert s["noi"]["0.85"] == {"mean": 2.5, "reached": 0.5, "cap": 3}
    assert s["noi"]["0.90"]["mean"] == 2.5
    with pytest.raises(ParameterError):
        summarize_rounds([[r(0.5)], [r(0.5), r(0.6)]])
