"""Tests for linegraph2road.nms: exact tiny cases, an O(n^2) oracle of Algorithm 1, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linegraph2road.errors import GraphError, L2RError
from linegraph2road.nms import (
    KEYPOINT,
    OVERPASS,
    ROAD,
    Vertices,
    coupled_nms,
    coupled_nms_points,
    mask_candidates,
    nms_points,
    plain_nms,
)


# -- brute-force oracle: Algorithm 1 written literally, O(n^2) ------------------------------------
def _candidates(mask: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    pts, scores = [], []
    for row in range(mask.shape[0]):
        for col in range(mask.shape[1]):
            if mask[row, col] > t:
                pts.append((col + 0.5, row + 0.5))
                scores.append(np.float32(mask[row, col]))
    return np.array(pts, dtype=np.float64).reshape(-1, 2), np.array(scores, dtype=np.float32)


def _d2(points: np.ndarray, p: np.ndarray) -> np.ndarray:
    dx = points[:, 0] - p[0]
    dy = points[:, 1] - p[1]
    return dx * dx + dy * dy


def _greedy(pts: np.ndarray, scores: np.ndarray, r: float, inclusive: bool = False) -> list[int]:
    """Sort by descending score (ties by index), drop every later point near each kept one."""
    order = sorted(range(len(pts)), key=lambda i: (-float(scores[i]), i))
    alive = dict.fromkeys(order, True)
    kept = []
    for pos, i in enumerate(order):
        if not alive[i]:
            continue
        kept.append(i)
        later = order[pos + 1 :]
        if later:
            d2 = _d2(pts[later], pts[i])
            near = d2 <= r * r if inclusive else d2 < r * r
            for j, n in zip(later, near, strict=True):
                if n:
                    alive[j] = False
    return kept


def _oracle_coupled(kp_mask, road_mask, ov_mask, t_k, t_r, d_k, d_r):
    kp, kp_s = _candidates(kp_mask, t_k)
    ki = _greedy(kp, kp_s, d_k)
    ov, ov_s = _candidates(ov_mask, t_k) if ov_mask is not None else (np.zeros((0, 2)), [])
    oi = _greedy(ov, np.asarray(ov_s), d_k)
    ov_set = {tuple(ov[i]) for i in oi}
    ki = [i for i in ki if tuple(kp[i]) not in ov_set]  # set union V_k = V_k ∪ V_o
    vk = np.concatenate([kp[ki], ov[oi]]).reshape(-1, 2)
    rd, rd_s = _candidates(road_mask, t_r)
    alive = [i for i in range(len(rd)) if not len(vk) or _d2(vk, rd[i]).min() >= d_r * d_r]
    ri = [alive[i] for i in _greedy(rd[alive], rd_s[alive], d_r)] if alive else []
    points = np.concatenate([vk, rd[ri]]).reshape(-1, 2)
    kind = [KEYPOINT] * len(ki) + [OVERPASS] * len(oi) + [ROAD] * len(ri)
    return points, np.array(kind, dtype=np.int8)


def _random_masks(seed: int, h: int, w: int, levels: int):
    rng = np.random.default_rng(seed)
    # Few distinct values make many ties; smooth-ish blobs make realistic clusters.
    masks = [np.round(rng.random((h, w)) ** 3 * levels) / levels for _ in range(3)]
    return [m.astype(np.float32) for m in masks]


# -- nms_points -----------------------------------------------------------------------------------
def test_nms_points_exact_small_case() -> None:
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [5.0, 0.0], [20.0, 0.0]])
    scores = np.array([0.5, 0.9, 0.4, 0.4, 0.1])
    # Visit 1 (0.9): keep; 0 at d=1 < 2 dropped; 2 at d=2 (not < 2) kept; 3 at d=2 from 2 kept.
    np.testing.assert_array_equal(nms_points(pts, scores, radius=2.0), [1, 2, 3, 4])
    np.testing.assert_array_equal(nms_points(pts, scores, radius=2.5), [1, 3, 4])


def test_nms_points_ties_keep_input_order() -> None:
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    np.testing.assert_array_equal(nms_points(pts, np.ones(3), radius=1.5), [0, 2])
    np.testing.assert_array_equal(nms_points(pts[::-1], np.ones(3), radius=1.5), [0, 2])


def test_nms_points_does_not_mutate_and_handles_empty() -> None:
    pts = np.array([[0.0, 0.0], [1.0, 0.0]])
    scores = np.array([1.0, 2.0])
    before = (pts.copy(), scores.copy())
    nms_points(pts, scores, radius=5)
    np.testing.assert_array_equal(pts, before[0])
    np.testing.assert_array_equal(scores, before[1])
    out = nms_points(np.zeros((0, 2)), np.zeros(0), radius=5)
    assert out.dtype == np.int64
    assert out.shape == (0,)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 80), spread=st.sampled_from([10, 1e7]))
@settings(max_examples=40, deadline=None)
def test_nms_points_equals_oracle(seed: int, n: int, spread: float) -> None:
    rng = np.random.default_rng(seed)
    # Half-pixel lattice: many exact distance ties with the radius; huge spread: grid fallback.
    pts = np.floor(rng.random((n, 2)) * spread * 2) / 2
    scores = np.round(rng.random(n) * 4) / 4
    for r in (0.0, 1.0, 3.0):
        assert nms_points(pts, scores, radius=r).tolist() == _greedy(pts, scores, r)


def test_nms_points_rejects_bad_input() -> None:
    with pytest.raises(GraphError, match="shape"):
        nms_points(np.zeros((3, 3)), np.zeros(3), radius=1)
    with pytest.raises(GraphError, match="scores"):
        nms_points(np.zeros((3, 2)), np.zeros(2), radius=1)
    with pytest.raises(GraphError, match="NaN"):
        nms_points(np.array([[np.nan, 0.0]]), np.zeros(1), radius=1)
    with pytest.raises(GraphError, match="radius"):
        nms_points(np.zeros((1, 2)), np.zeros(1), radius=-1)


# -- mask_candidates ------------------------------------------------------------------------------
def test_mask_candidates_pixel_centres_row_major_strict_threshold() -> None:
    mask = np.array([[0.1, 0.5, 0.6], [0.7, 0.5, 0.0]])
    pts, scores = mask_candidates(mask, threshold=0.5)
    np.testing.assert_array_equal(pts, [[2.5, 0.5], [0.5, 1.5]])
    np.testing.assert_array_equal(scores, np.array([0.6, 0.7], dtype=np.float32))
    assert pts.dtype == np.float64
    assert scores.dtype == np.float32


# -- coupled_nms ----------------------------------------------------------------------------------
def test_coupled_nms_exact_small_case() -> None:
    kp = np.zeros((8, 60), dtype=np.float32)
    road = np.zeros((8, 60), dtype=np.float32)
    kp[4, 20] = 0.9  # keypoint at (20.5, 4.5)
    kp[4, 24] = 0.8  # 4 px away: suppressed by d_k = 8
    kp[4, 29] = 0.7  # 9 px away: kept
    road[4, :] = np.linspace(0.5, 0.6, 60)  # a road row, brightest at the right end
    v = coupled_nms(kp, road, d_k=8, d_r=16)
    # Road pixels closer than 16 to x=20.5 or 29.5 are gone (x in (4.5, 45.5)); of the rest the
    # brightest (x=59.5) is kept and suppresses x > 43.5; on the left x=4.5 wins over 0.5..3.5.
    np.testing.assert_array_equal(v.points, [[20.5, 4.5], [29.5, 4.5], [59.5, 4.5], [4.5, 4.5]])
    np.testing.assert_array_equal(v.kind, [KEYPOINT, KEYPOINT, ROAD, ROAD])
    np.testing.assert_array_equal(v.scores, np.float32([0.9, 0.7, road[4, 59], road[4, 4]]))
    assert v.points.dtype == np.float64
    assert v.scores.dtype == np.float32
    assert v.kind.dtype == np.int8
    assert not v.points.flags.writeable


def test_coupled_nms_overpass_uses_t_k_and_union_dedupes() -> None:
    kp = np.zeros((10, 20))
    road = np.zeros((10, 20))
    ov = np.zeros((10, 20))
    kp[5, 5] = 0.9
    ov[5, 5] = 0.3  # above t_k = 0.248: kept, same pixel as the keypoint
    ov[5, 15] = 0.2  # below t_k
    v = coupled_nms(kp, road, ov)
    np.testing.assert_array_equal(v.points, [[5.5, 5.5]])
    np.testing.assert_array_equal(v.kind, [OVERPASS])
    v2 = coupled_nms(kp, road, ov, t_o=0.1)
    np.testing.assert_array_equal(v2.kind, [OVERPASS, OVERPASS])  # 10 px apart: both kept


def test_coupled_nms_points_from_ground_truth_sets() -> None:
    kp = np.array([[0.0, 0.0], [100.0, 0.0]])
    road = np.array([[10.0, 0.0], [20.0, 0.0], [40.0, 0.0], [50.0, 0.0], [90.0, 0.0]])
    v = coupled_nms_points(kp, np.ones(2), road, np.ones(5))
    np.testing.assert_array_equal(v.points[:, 0], [0.0, 100.0, 20.0, 40.0])
    np.testing.assert_array_equal(v.kind, [KEYPOINT, KEYPOINT, ROAD, ROAD])
    with pytest.raises(GraphError, match="overpass"):
        coupled_nms_points(kp, np.ones(2), road, np.ones(5), overpass_points=kp)


def test_coupled_nms_rejects_bad_masks() -> None:
    good = np.zeros((4, 4))
    with pytest.raises(GraphError, match="2-D"):
        coupled_nms(np.zeros((4, 4, 1)), good)
    with pytest.raises(GraphError, match="shape"):
        coupled_nms(good, np.zeros((4, 5)))
    with pytest.raises(GraphError, match="shape"):
        coupled_nms(good, good, np.zeros((5, 4)))
    bad = good.copy()
    bad[1, 1] = np.inf
    with pytest.raises(L2RError, match="NaN or infinite"):
        coupled_nms(good, bad)
    with pytest.raises(GraphError, match="threshold"):
        coupled_nms(good, good, t_r=float("nan"))
    with pytest.raises(GraphError, match="d_r"):
        coupled_nms(good, good, d_r=-1.0)
    with pytest.raises(GraphError, match="real numbers"):
        coupled_nms(good.astype(complex), good)


@given(seed=st.integers(0, 2**32 - 1), use_ov=st.booleans(), levels=st.sampled_from([4, 50]))
@settings(max_examples=25, deadline=None)
def test_coupled_nms_equals_bruteforce_oracle(seed: int, use_ov: bool, levels: int) -> None:
    kp, road, ov = _random_masks(seed, 28, 36, levels)
    t_k, t_r, d_k, d_r = 0.5, 0.2, 4.0, 6.0
    v = coupled_nms(kp, road, ov if use_ov else None, t_k=t_k, t_r=t_r, d_k=d_k, d_r=d_r)
    points, kind = _oracle_coupled(kp, road, ov if use_ov else None, t_k, t_r, d_k, d_r)
    np.testing.assert_array_equal(v.points, points)
    np.testing.assert_array_equal(v.kind, kind)


@given(seed=st.integers(0, 2**32 - 1), d_k=st.sampled_from([2.0, 3.0, 8.0]))
@settings(max_examples=25, deadline=None)
def test_coupled_nms_spacing_and_completeness(seed: int, d_k: float) -> None:
    kp, road, ov = _random_masks(seed, 30, 30, 20)
    d_r = 2 * d_k
    t_k, t_r = 0.4, 0.1
    v = coupled_nms(kp, road, ov, t_k=t_k, t_r=t_r, d_k=d_k, d_r=d_r)
    vk = v.points[v.kind != ROAD]
    rd = v.points[v.kind == ROAD]
    for kind in (KEYPOINT, OVERPASS):
        pk = v.of_kind(kind)
        d = np.hypot(*(pk[:, None] - pk[None]).transpose(2, 0, 1)) + np.eye(len(pk)) * 1e9
        assert (d >= d_k).all()
    d = np.hypot(*(rd[:, None] - rd[None]).transpose(2, 0, 1)) + np.eye(len(rd)) * 1e9
    assert (d >= d_r).all()
    if len(vk) and len(rd):
        assert (np.hypot(*(rd[:, None] - vk[None]).transpose(2, 0, 1)) >= d_r).all()
    # Completeness: a candidate that was not kept has a kept point of >= score within the radius
    # (road pixels: or lie within d_r of V_k). Nothing unsuppressed is lost.
    for mask, kind, t, r in ((kp, KEYPOINT, t_k, d_k), (ov, OVERPASS, t_k, d_k)):
        pts, sc = mask_candidates(mask, threshold=t)
        kept_mask_pts = _candidates(mask, t)[0][_greedy(*_candidates(mask, t), r)]
        for p, s in zip(pts, sc, strict=True):
            near = np.hypot(*(kept_mask_pts - p).T) < r
            kept_sc = mask[
                (kept_mask_pts[near, 1]).astype(int), (kept_mask_pts[near, 0]).astype(int)
            ]
            assert near.any() and (kept_sc >= s).any()
        # Every kept point of this mask is a vertex (possibly re-labelled OVERPASS at one pixel).
        assert {tuple(p) for p in kept_mask_pts} <= {tuple(p) for p in vk}
        assert len(v.of_kind(kind)) <= len(kept_mask_pts)
    pts, sc = mask_candidates(road, threshold=t_r)
    kept_set = {tuple(p) for p in rd}
    for p, s in zip(pts, sc, strict=True):
        if tuple(p) in kept_set:
            continue
        if len(vk) and (np.hypot(*(vk - p).T) < d_r).any():
            continue
        near = rd[np.hypot(*(rd - p).T) < d_r]
        assert len(near) and (road[near[:, 1].astype(int), near[:, 0].astype(int)] >= s).any()


def test_coupled_nms_default_parameters_on_a_line() -> None:
    road = np.zeros((5, 200), dtype=np.float32)
    road[2] = 0.5
    v = coupled_nms(np.zeros_like(road), road)
    # Ties in row-major order: the leftmost pixel first, then every 16 px.
    np.testing.assert_array_equal(v.points[:, 0], np.arange(0.5, 200, 16))
    assert isinstance(v, Vertices)
    assert len(v) == 13


# -- plain_nms (SAM-Road) -------------------------------------------------------------------------
def test_plain_nms_merges_with_keypoint_priority_and_inclusive_radius() -> None:
    kp = np.zeros((4, 60))
    road = np.zeros((4, 60))
    kp[1, 10] = 0.9
    kp[1, 20] = 0.8  # 10 px from the first keypoint: kept by d_k, dropped by the d_r merge
    road[1, 26] = 0.99  # exactly 16 px from the first keypoint: <= radius suppresses it
    road[1, 27] = 0.5  # 17 px from it, but 1 px from road 26, which the road NMS keeps first
    road[1, 50] = 0.7
    v = plain_nms(kp, road)
    np.testing.assert_array_equal(v.points, [[10.5, 1.5], [50.5, 1.5]])
    np.testing.assert_array_equal(v.kind, [KEYPOINT, ROAD])
    # Without the per-mask stage (SAM-Road's uint8 behaviour) road 26 still loses to the keypoint
    # in the merge, and road 27 is no longer suppressed by it.
    v2 = plain_nms(kp, road, per_mask_nms=False)
    np.testing.assert_array_equal(v2.points, [[10.5, 1.5], [50.5, 1.5], [27.5, 1.5]])
    np.testing.assert_array_equal(v2.kind, [KEYPOINT, ROAD, ROAD])


@given(seed=st.integers(0, 2**32 - 1), with_overpass=st.booleans())
@settings(max_examples=15, deadline=None)
def test_plain_nms_equals_oracle(seed: int, with_overpass: bool) -> None:
    kp, road, ov = _random_masks(seed, 24, 24, 10)
    t_k, t_r, d_k, d_r = 0.3, 0.2, 3.0, 6.0
    v = plain_nms(kp, road, ov if with_overpass else None, t_k=t_k, t_r=t_r, d_k=d_k, d_r=d_r)
    k, ks = _candidates(kp, t_k)
    o, os_ = _candidates(ov, t_k) if with_overpass else (np.zeros((0, 2)), np.zeros(0))
    r, rs = _candidates(road, t_r)
    k = k[_greedy(k, ks, d_k, inclusive=True)]
    o = o[_greedy(o, os_, d_k, inclusive=True)]
    r = r[_greedy(r, rs, d_r, inclusive=True)]
    both = np.concatenate([k, o, r]).reshape(-1, 2)
    prio = np.r_[np.ones(len(k) + len(o)), np.zeros(len(r))]  # keypoints, then overpass points
    keep = sorted(_greedy(both, prio, d_r, inclusive=True))
    np.testing.assert_array_equal(v.points, both[keep])
    kinds = np.repeat([KEYPOINT, OVERPASS, ROAD], [len(k), len(o), len(r)])
    np.testing.assert_array_equal(v.kind, kinds[keep])


def test_nms_points_large_float32_scores_with_ties_and_signed_zeros() -> None:
    # Above 4096 candidates float32 scores take the packed-key sort; it must equal a stable sort.
    rng = np.random.default_rng(7)
    n = 6000
    pts = np.floor(rng.random((n, 2)) * 400) / 2
    scores = (np.round(rng.normal(size=n) * 3) / 3).astype(np.float32)
    scores[::7] = np.float32(-0.0)
    scores[1::7] = np.float32(0.0)
    assert nms_points(pts, scores, radius=4.0).tolist() == _greedy(pts, scores, 4.0)
