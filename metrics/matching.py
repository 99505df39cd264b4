"""Matching two road networks along their lines, in metres.

The line matching behind TOPO, in a planar metric frame: both networks are sampled every
``step`` metres along their segments (oriented points: a position and the segment's direction,
as TOPO's marbles and holes), and a sample of one network matches a sample of the other when they
are closer than ``distance`` and their directions differ by less than ``max_angle`` (TOPO's test
``1 - |cos angle| < 1 - cos(max_angle)``; lines are undirected). The candidate pairs and the
Hopcroft-Karp matching are the kernels TOPO itself runs (:mod:`._match_kernels`), so the two can
never drift apart.

Two rules turn candidate pairs into matched samples:

``"nearest"``
    A sample is matched when *any* sample of the other network is a candidate (a road is there,
    within the tolerances). Two parallel lines drawn for one road both match it. This is what a
    map update needs: a duplicate line is not a missing road.
``"one-to-one"``
    A maximum one-to-one matching of the samples (Hopcroft-Karp), as TOPO matches marbles and
    holes: where one network draws two lines for one line of the other, half of their samples
    stay unmatched. Both networks must then be sampled with the same ``step``.

All positions are ``(x, y)`` metres in one common, conformal frame (e.g. a UTM zone, see
:func:`linegraph2road.georef.utm_crs_for`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from linegraph2road.errors import ParameterError

from . import _match_kernels as _mk

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["MATCH_RULES", "LineSamples", "covered_fraction", "match_samples", "sample_segments"]

MATCH_RULES: tuple[str, ...] = ("nearest", "one-to-one")


@dataclass(frozen=True)
class LineSamples:
    """Oriented points sampled along straight segments.

    Attributes
    ----------
    xy : (M, 2) float64
        Sample positions ``(x, y)``, metres.
    direction : (M, 2) float64
        Unit direction of the segment each sample lies on (zero for a zero-length segment).
    weight : (M,) float64
        Metres of line each sample stands for (its piece's length; a segment's weights sum to its
        length).
    segment : (M,) int64
        Index of the segment each sample was taken from.
    """

    xy: NDArray[np.float64]
    direction: NDArray[np.float64]
    weight: NDArray[np.float64]
    segment: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.xy)

    def oriented(self) -> NDArray[np.float64]:
        """(M, 4) float64 rows ``(x, y, dx, dy)``, the kernels' layout."""
        return np.ascontiguousarray(np.concatenate([self.xy, self.direction], axis=1))

    def select(self, keep: ArrayLike) -> LineSamples:
        """The samples where the (M,) boolean ``keep`` is true."""
        m = np.asarray(keep, dtype=bool)
        return LineSamples(self.xy[m], self.direction[m], self.weight[m], self.segment[m])


def _positive(name: str, value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ParameterError(f"{name} must be a positive number of metres, got {value!r}")
    return v


def sample_segments(start: ArrayLike, end: ArrayLike, *, step: float = 2.0) -> LineSamples:
    """Cut each segment into ``ceil(length / step)`` equal pieces, one sample at each centre.

    Parameters
    ----------
    start, end : (S, 2) float64
        Segment end points ``(x, y)``, metres.
    step : float, keyword-only
        Longest piece, metres (default 2, the densification step of APLS).

    Returns
    -------
    LineSamples
        Samples in segment order; a zero-length segment gets one sample of weight 0.

    Raises
    ------
    ParameterError
        ``step`` not a positive number, or ``start``/``end`` not matching (S, 2) arrays.
    """
    step = _positive("step", step)
    a = np.asarray(start, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(end, dtype=np.float64).reshape(-1, 2)
    if a.shape != b.shape:
        raise ParameterError(f"start {a.shape} and end {b.shape} must have the same shape")
    d = b - a
    length = np.hypot(d[:, 0], d[:, 1])
    k = np.maximum(1, np.ceil(length / step)).astype(np.int64)
    seg = np.repeat(np.arange(len(a), dtype=np.int64), k)
    j = np.arange(int(k.sum()), dtype=np.float64) - np.repeat(np.cumsum(k) - k, k)
    t = (j + 0.5) / k[seg]
    xy = a[seg] + d[seg] * t[:, None]
    unit = np.divide(d, length[:, None], out=np.zeros_like(d), where=length[:, None] > 0)
    return LineSamples(xy, unit[seg], (length / k)[seg], seg)


def match_samples(
    a: LineSamples,
    b: LineSamples,
    *,
    distance: float,
    max_angle: float = 45.0,
    rule: str = "nearest",
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Which samples of ``a`` and of ``b`` are matched (see the module docstring).

    Parameters
    ----------
    a, b : LineSamples
        Both in one metric frame.
    distance : float, keyword-only
        Samples closer than this (metres) may match.
    max_angle : float, keyword-only
        Largest angle between their lines, degrees in ``(0, 90]`` (default 45: TOPO's marble-hole
        tolerance 1 - |cos| < 0.29 is 44.8 degrees); 90 accepts any direction.
    rule : {"nearest", "one-to-one"}, keyword-only

    Returns
    -------
    a_matched : (len(a),) bool
    b_matched : (len(b),) bool

    Raises
    ------
    ParameterError
        A tolerance out of range or an unknown rule.
    """
    distance = _positive("distance", distance)
    angle = float(max_angle)
    if not (math.isfinite(angle) and 0.0 < angle <= 90.0):
        raise ParameterError(f"max_angle must be in (0, 90] degrees, got {max_angle!r}")
    if rule not in MATCH_RULES:
        raise ParameterError(f"unknown matching rule {rule!r}; expected one of {MATCH_RULES}")
    # 1 - |cos| < tol; at 90 degrees every direction passes (1 - 0 < 1 + eps)
    tol = 1.0 - math.cos(math.radians(angle)) if angle < 90.0 else 1.5
    indptr, indices = _mk.candidate_pairs(a.oriented(), b.oriented(), distance, tol, False)
    if rule == "nearest":
        a_hit = np.diff(indptr) > 0
        b_hit = np.bincount(indices, minlength=len(b)) > 0
        return a_hit, b_hit
    _, match_a, match_b = _mk.hopcroft_karp_match(len(a), len(b), indptr, indices)
    return match_a >= 0, match_b >= 0


def covered_fraction(
    samples: LineSamples, matched: ArrayLike, n_segments: int
) -> NDArray[np.float64]:
    """(n_segments,) float64 share of each segment's length whose samples are matched.

    Zero-length segments count as covered when their one sample is matched.
    """
    m = np.asarray(matched, dtype=bool)
    total = np.bincount(samples.segment, weights=samples.weight, minlength=n_segments)
    hit = np.bincount(samples.segment, weights=samples.weight * m, minlength=n_segments)
    any_hit = np.bincount(samples.segment, weights=m.astype(np.float64), minlength=n_segments)
    frac = np.divide(hit, total, out=np.zeros(n_segments), where=total > 0)
    return np.where(total > 0, frac, (any_hit > 0).astype(np.float64))
