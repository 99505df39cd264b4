"""Pixel metrics: exact 5x5 cases and hypothesis properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from linegraph2road.metrics.pixel import PixelScores, cldice, pixel_scores


def _mask(*cells: tuple[int, int] | tuple[slice | int, slice | int]) -> np.ndarray:
    m = np.zeros((5, 5), dtype=bool)
    for rc in cells:
        m[rc] = True
    return m


ROW = _mask((2, slice(None)))  # horizontal 1 px road through the middle
COL = _mask((slice(None), 2))  # vertical road
PLUS = ROW | COL  # crossing; each of these is its own skeleton


def test_partial_road() -> None:
    pred = _mask((2, slice(0, 3)))  # left 3 of the 5 road pixels
    s = pixel_scores(pred, ROW)
    assert s.to_dict() == pytest.approx(
        {"iou": 3 / 5, "precision": 1.0, "recall": 3 / 5, "f1": 3 / 4, "cldice": 3 / 4}, abs=1e-12
    )


def test_crossing_roads_overlap_in_one_pixel() -> None:
    s = pixel_scores(COL, ROW)
    assert s.to_dict() == pytest.approx(
        {"iou": 1 / 9, "precision": 1 / 5, "recall": 1 / 5, "f1": 1 / 5, "cldice": 1 / 5}, abs=1e-12
    )


def test_missing_branch() -> None:
    # prediction finds the horizontal road of a crossing: 5 of 9 pixels, all correct
    s = pixel_scores(ROW, PLUS)
    assert s.to_dict() == pytest.approx(
        {"iou": 5 / 9, "precision": 1.0, "recall": 5 / 9, "f1": 5 / 7, "cldice": 5 / 7}, abs=1e-12
    )


def test_cldice_ignores_road_width() -> None:
    # a 3 px wide prediction (rounded ends) of a 1 px road: IoU 5/11 in pixels, but the
    # prediction's skeleton (row 3, columns 2-4) lies on the road and the road inside it
    wide = np.zeros((7, 7), dtype=bool)
    wide[2:5, 1:6] = True
    wide[2, 1] = wide[4, 1] = wide[2, 5] = wide[4, 5] = False
    road = np.zeros((7, 7), dtype=bool)
    road[3, 1:6] = True
    s = pixel_scores(wide, road)
    assert (s.iou, s.precision, s.recall) == (5 / 11, 5 / 11, 1.0)
    assert s.cldice == 1.0


def test_threshold_binarises_probabilities_and_255_masks() -> None:
    prob = np.where(ROW, 0.7, 0.2)
    prob[2, 4] = 0.5  # exactly at the threshold counts as road
    assert pixel_scores(prob, ROW.astype(np.uint8) * 255).iou == 1.0
    assert pixel_scores(prob, ROW, threshold=0.6).recall == 4 / 5
    assert cldice(prob, ROW, threshold=0.6) == pytest.approx(2 * 0.8 / 1.8)


def test_empty_masks() -> None:
    empty = np.zeros((5, 5), dtype=bool)
    assert pixel_scores(empty, empty) == PixelScores(1.0, 1.0, 1.0, 1.0, 1.0)
    assert pixel_scores(empty, ROW) == PixelScores(0.0, 0.0, 0.0, 0.0, 0.0)
    assert pixel_scores(ROW, empty) == PixelScores(0.0, 0.0, 0.0, 0.0, 0.0)


def test_inputs_are_not_modified() -> None:
    pred = np.where(ROW, 0.9, 0.1)
    before = pred.copy()
    pixel_scores(pred, PLUS)
    np.testing.assert_array_equal(pred, before)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="shape"):
        pixel_scores(ROW, np.zeros((4, 5)))
    with pytest.raises(ValueError, match="2-D"):
        pixel_scores(ROW[None], ROW[None])
    with pytest.raises(ValueError, match="threshold"):
        cldice(ROW, ROW, threshold=float("nan"))


def test_to_dict() -> None:
    assert pixel_scores(ROW, ROW).to_dict() == {
        "iou": 1.0,
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "cldice": 1.0,
    }


MASKS = arrays(np.bool_, st.tuples(st.integers(1, 12), st.integers(1, 12)))


@settings(max_examples=60, deadline=None)
@given(MASKS)
def test_identical_masks_score_one(m: np.ndarray) -> None:
    assert pixel_scores(m, m) == PixelScores(1.0, 1.0, 1.0, 1.0, 1.0)


@settings(max_examples=60, deadline=None)
@given(MASKS, st.data())
def test_disjoint_masks_score_zero(m: np.ndarray, data: st.DataObject) -> None:
    other = ~m & data.draw(arrays(np.bool_, m.shape))
    if not m.any() or not other.any():
        return
    assert pixel_scores(m, other) == PixelScores(0.0, 0.0, 0.0, 0.0, 0.0)


@settings(max_examples=60, deadline=None)
@given(MASKS, st.data())
def test_symmetry(a: np.ndarray, data: st.DataObject) -> None:
    b = data.draw(arrays(np.bool_, a.shape))
    ab, ba = pixel_scores(a, b), pixel_scores(b, a)
    assert (ab.iou, ab.f1, ab.cldice) == (ba.iou, ba.f1, ba.cldice)
    assert (ab.precision, ab.recall) == (ba.recall, ba.precision)
    for v in ab.to_dict().values():
        assert 0.0 <= v <= 1.0
