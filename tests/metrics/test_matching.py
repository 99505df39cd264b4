"""Line matching in metres (metrics/matching.py) and the shared kernels TOPO runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linegraph2road.errors import ParameterError
from linegraph2road.metrics import LineSamples, covered_fraction, match_samples, sample_segments
from linegraph2road.metrics._match_kernels import candidate_pairs, hopcroft_karp_match


def test_sample_segments_exact() -> None:
    s = sample_segments([[0.0, 0.0], [0.0, 0.0]], [[5.0, 0.0], [0.0, 0.0]], step=2.0)
    # 5 m -> 3 pieces of 5/3 m, samples at their centres; the zero-length one: one sample, weight 0
    np.testing.assert_allclose(s.xy, [[5 / 6, 0], [2.5, 0], [25 / 6, 0], [0, 0]])
    np.testing.assert_allclose(s.weight, [5 / 3, 5 / 3, 5 / 3, 0])
    np.testing.assert_array_equal(s.segment, [0, 0, 0, 1])
    np.testing.assert_allclose(s.direction, [[1, 0], [1, 0], [1, 0], [0, 0]])
    assert len(s) == 4 and len(s.select([True, False, False, True])) == 2


def _line(x0: float, y0: float, x1: float, y1: float, step: float = 1.0) -> LineSamples:
    return sample_segments([[x0, y0]], [[x1, y1]], step=step)


def test_distance_and_angle_tolerances() -> None:
    road = _line(0, 0, 100, 0)
    near, _ = match_samples(_line(0, 3, 100, 3), road, distance=8.0)
    far, _ = match_samples(_line(0, 10, 100, 10), road, distance=8.0)
    assert near.all() and not far.any()
    # a crossing road matches only near the crossing when directions are ignored
    cross = _line(50, -50, 50, 50)
    at_45, _ = match_samples(cross, road, distance=8.0, max_angle=45.0)
    at_90, _ = match_samples(cross, road, distance=8.0, max_angle=90.0)
    assert not at_45.any()
    assert 10 <= at_90.sum() <= 16  # samples within 8 m of the crossing point
    # the opposite direction is the same line
    back, _ = match_samples(_line(100, 2, 0, 2), road, distance=8.0, max_angle=10.0)
    assert back.all()
    tilt = _line(0, 0, 100, 100 * math.tan(math.radians(40)))
    assert match_samples(tilt, road, distance=100.0, max_angle=45.0)[0][:3].all()
    assert not match_samples(tilt, road, distance=100.0, max_angle=35.0)[0].any()


def test_nearest_versus_one_to_one() -> None:
    road = _line(0, 0, 100, 0, step=2.0)
    twin = sample_segments([[0, 2], [0, -2]], [[100, 2], [100, -2]], step=2.0)
    a, b = match_samples(twin, road, distance=8.0, rule="nearest")
    assert a.all() and b.all()
    a, b = match_samples(twin, road, distance=8.0, rule="one-to-one")
    assert b.all() and a.sum() == len(road)  # one line of the two finds a partner
    cov = covered_fraction(twin, a, 2)
    assert cov.sum() == pytest.approx(1.0)


def test_covered_fraction_weights_by_length() -> None:
    s = sample_segments([[0, 0], [0, 0]], [[10, 0], [0, 0]], step=2.0)
    matched = np.array([True, True, False, False, False, True])
    np.testing.assert_allclose(covered_fraction(s, matched, 3), [0.4, 1.0, 0.0])


def test_bad_parameters() -> None:
    s = _line(0, 0, 10, 0)
    with pytest.raises(ParameterError, match="step"):
        sample_segments([[0, 0]], [[1, 1]], step=0)
    with pytest.raises(ParameterError, match="same shape"):
        sample_segments([[0, 0]], [[1, 1], [2, 2]])
    with pytest.raises(ParameterError, match="distance"):
        match_samples(s, s, distance=-1)
    with pytest.raises(ParameterError, match="max_angle"):
        match_samples(s, s, distance=1, max_angle=91)
    with pytest.raises(ParameterError, match="rule"):
        match_samples(s, s, distance=1, rule="best")


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 10**6),
    st.integers(0, 40),
    st.integers(0, 40),
    st.floats(0.5, 20.0),
    st.floats(0.01, 1.0),
)
def test_planar_candidates_equal_brute_force(
    seed: int, na: int, nb: int, threshold: float, tol: float
) -> None:
    rng = np.random.default_rng(seed)
    a = np.concatenate([rng.uniform(0, 60, (na, 2)), rng.normal(size=(na, 2))], axis=1)
    b = np.concatenate([rng.uniform(0, 60, (nb, 2)), rng.normal(size=(nb, 2))], axis=1)
    indptr, indices = candidate_pairs(a, b, threshold, tol, False)
    got = {(i, int(j)) for i in range(na) for j in indices[indptr[i] : indptr[i + 1]]}
    want = set()
    for i in range(na):
        for j in range(nb):
            if np.hypot(*(a[i, :2] - b[j, :2])) >= threshold:
                continue
            u, v = a[i, 2:], b[j, 2:]
            cos = abs(u @ v) / (np.linalg.norm(u) * np.linalg.norm(v))
            if 1.0 - cos < tol:
                want.add((i, j))
    # pairs on the edge of a tolerance may fall either way by rounding
    assert len(got ^ want) <= 1


def test_hopcroft_karp_match_is_a_maximum_matching() -> None:
    # left 0 - {0, 1}, left 1 - {0}, left 2 - {1, 2}: a perfect matching exists
    indptr = np.array([0, 2, 3, 5])
    indices = np.array([0, 1, 0, 1, 2])
    size, ml, mr = hopcroft_karp_match(3, 3, indptr, indices)
    assert size == 3
    np.testing.assert_array_equal(ml, [1, 0, 2])
    np.testing.assert_array_equal(mr[ml], [0, 1, 2])
