"""The simulated user: prompts from the errors of a prediction (RoadGIE 4.2, eq. 4-5).

One round (:func:`simulate_round`) adds ``n ~ U{min_prompts .. max_prompts}`` prompts (paper:
1-3); the caller accumulates them over rounds. Each prompt:

1. **Correction region.** The error map splits into false negatives ``gt & ~pred`` (positive
   prompts) and false positives ``pred & ~gt`` (negative prompts); each 8-connected component of
   either is a candidate region ``E``. A region is drawn with probability proportional to its
   area (RITM corrects the largest error; sampling by area, as ScribblePrompt's simulation does,
   keeps smaller errors in play). Components smaller than ``min_region_area`` pixels are used only
   when nothing else is left; a region already used this round is not drawn again while others
   remain.
2. **Expert guidance** (eq. 5): with an uncertainty map ``U`` in [0, 1] (eq. 4,
   :mod:`.uncertainty`), positive prompts use ``P(p) = exp(U(p) / tau) / sum_q exp(U(q) / tau)``
   over the image: a false-negative region's weight becomes its probability mass under ``P``
   (scaled so that a uniform ``U`` gives its area), and points inside it are drawn with ``P`` as
   an extra factor. ``tau`` (paper: "controls sharpness", value lost) defaults to 0.1.
3. **Kind**, drawn from ``kinds`` (uniform by default):

   * ``click``: a pixel of ``E`` drawn with probability ``~ (D(p) / max D) ** gamma`` where ``D``
     is the Euclidean distance transform of ``E`` (its border and the image border at distance
     0.5) (the paper's centre-biased distance transform; ``gamma`` lost in extraction, 2 here);
     the click is that pixel's centre.
   * ``centre``: a walk along ``E``'s skeleton (scikit-image ``skeletonize``) from a random
     skeleton pixel, truncated to a random fraction ``truncate`` of the skeleton's length
     (partial annotations, after ScribblePrompt's centre-line scribbles).
   * ``line``: the straight line between two random points of ``E`` (a quick stroke).
   * ``bezier``: the quadratic Bezier curve through three random points of ``E`` used as control
     points (natural drawing).

   Every scribble is sampled every pixel, displaced by a smooth random field (white noise along
   the curve, Gaussian-filtered with ``displacement_scale`` px, scaled to at most
   ``displacement`` px; ScribblePrompt warps its scribbles with smooth random deformations),
   and cut at the first point that leaves ``E`` (the longest part inside that holds the start),
   then thinned to one point every ``step`` px. A scribble shorter than 2 px becomes a click.

A scribble therefore never leaves its region: every pixel that
:func:`~linegraph2road.rasterize.draw_segments` draws for it at width 1 lies in ``E``.
Randomness comes from the ``numpy.random.Generator`` passed in only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from linegraph2road.errors import ParameterError
from linegraph2road.prompts import Prompt

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "SIMULATED_KINDS",
    "SimulationSettings",
    "correction_regions",
    "sample_click",
    "sample_scribble",
    "simulate_round",
]

#: Kinds of simulated prompts.
SIMULATED_KINDS = ("click", "centre", "line", "bezier")
_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class SimulationSettings:
    """How the simulated user prompts (defaults: the paper's where it gives them).

    Attributes
    ----------
    kinds : tuple of str
        Kinds to draw from (:data:`SIMULATED_KINDS`); uniform choice.
    min_prompts, max_prompts : int
        Prompts per round, drawn uniformly (paper: 1-3).
    center_gamma : float
        Centre bias of clicks (``D ** gamma``); 0 = uniform over the region.
    expert_tau : float
        Sharpness ``tau`` of eq. 5 (used only with an uncertainty map).
    truncate : (float, float)
        Range of the fraction of a skeleton walk kept by centre scribbles.
    displacement : float
        Largest smooth displacement of scribble points, pixels.
    displacement_scale : float
        Smoothness of the displacement along the curve, pixels (Gaussian sigma).
    step : float
        Spacing of the points of a simulated scribble, pixels.
    min_region_area : int
        Error components smaller than this (pixels) are corrected only when nothing else is left.
    """

    kinds: tuple[str, ...] = SIMULATED_KINDS
    min_prompts: int = 1
    max_prompts: int = 3
    center_gamma: float = 2.0
    expert_tau: float = 0.1
    truncate: tuple[float, float] = (0.3, 1.0)
    displacement: float = 2.0
    displacement_scale: float = 8.0
    step: float = 2.0
    min_region_area: int = 4

    def __post_init__(self) -> None:
        kinds = tuple(self.kinds)
        object.__setattr__(self, "kinds", kinds)
        object.__setattr__(self, "truncate", tuple(float(v) for v in self.truncate))
        if not kinds or not set(kinds) <= set(SIMULATED_KINDS):
            raise ParameterError(f"kinds must be some of {SIMULATED_KINDS}, got {kinds}")
        if not 0 <= self.min_prompts <= self.max_prompts or self.max_prompts < 1:
            raise ParameterError(
                f"need 0 <= min_prompts <= max_prompts, max >= 1; got "
                f"{self.min_prompts}, {self.max_prompts}"
            )
        lo, hi = self.truncate
        if not 0 < lo <= hi <= 1:
            raise ParameterError(f"truncate must satisfy 0 < lo <= hi <= 1, got {self.truncate}")
        if self.center_gamma < 0 or self.expert_tau <= 0:
            raise ParameterError("center_gamma must be >= 0 and expert_tau > 0")
        if self.displacement < 0 or self.displacement_scale <= 0 or self.step <= 0:
            raise ParameterError("displacement >= 0, displacement_scale > 0 and step > 0 needed")


def _check_maps(gt: NDArray[np.bool_], pred: NDArray[np.bool_]) -> None:
    if gt.ndim != 2 or gt.shape != pred.shape:
        raise ParameterError(
            f"gt and pred must be (H, W) of one shape, got {gt.shape}, {pred.shape}"
        )


def _expert_weight(
    uncertainty: NDArray[np.floating] | None, tau: float
) -> NDArray[np.float64] | None:
    """Eq. 5 times the number of pixels: mean 1 over the image (None without uncertainty)."""
    if uncertainty is None:
        return None
    u = np.asarray(uncertainty, dtype=np.float64)
    z = (u - u.max()) / tau  # shift for numerical safety; the ratio is unchanged
    p = np.exp(z)
    return p / p.mean()


def correction_regions(
    gt: NDArray[np.bool_], pred: NDArray[np.bool_]
) -> list[tuple[NDArray[np.bool_], bool]]:
    """The 8-connected components of the false negatives (``positive=True``) and false positives.

    Parameters
    ----------
    gt, pred : (H, W) bool
        Ground truth and the current binary prediction.

    Returns
    -------
    list of (region (H, W) bool, positive bool)
    """
    gt, pred = np.asarray(gt, dtype=bool), np.asarray(pred, dtype=bool)
    _check_maps(gt, pred)
    out: list[tuple[NDArray[np.bool_], bool]] = []
    for error, positive in ((gt & ~pred, True), (pred & ~gt, False)):
        labels, n = ndimage.label(error, structure=_EIGHT)
        out.extend((labels == i, positive) for i in range(1, n + 1))
    return out


def _draw(probability: NDArray[np.float64], rng: np.random.Generator) -> tuple[int, int]:
    flat = probability.ravel()
    total = flat.sum()
    if not np.isfinite(total) or total <= 0:
        raise ParameterError("cannot sample from an empty region")
    i = int(rng.choice(flat.size, p=flat / total))
    return divmod(i, probability.shape[1])


def sample_click(
    region: NDArray[np.bool_],
    rng: np.random.Generator,
    *,
    positive: bool,
    gamma: float = 2.0,
    weight: NDArray[np.float64] | None = None,
) -> Prompt:
    """A click in ``region`` drawn from the centre-biased distance transform (module docstring).

    Returns
    -------
    Prompt
        ``click`` at the centre of the drawn pixel.
    """
    padded = np.pad(region, 1)
    dist = ndimage.distance_transform_edt(padded)[1:-1, 1:-1]
    dist = np.where(region, dist, 0.0)
    p = (dist / max(float(dist.max()), 1e-12)) ** gamma * region
    if weight is not None:
        p = p * weight
    row, col = _draw(p, rng)
    return Prompt.click(col + 0.5, row + 0.5, positive=positive)


# -- scribbles -----------------------------------------------------------------------------------
def _inside_prefix(points: NDArray[np.float64], region: NDArray[np.bool_]) -> NDArray[np.float64]:
    """The longest prefix of the polyline whose pixels (sampled as ``draw_segments`` does,
    every <= 0.25 px) all lie in ``region``; a segment that leaves is cut at its last inside
    sample."""
    h, w = region.shape

    def inside(q: NDArray[np.float64]) -> NDArray[np.bool_]:
        c, r = np.floor(q[:, 0]).astype(np.int64), np.floor(q[:, 1]).astype(np.int64)
        ok = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        ok[ok] = region[r[ok], c[ok]]
        return ok

    if not inside(points[:1])[0]:
        return points[:0]
    kept = [points[0]]
    for a, b in itertools.pairwise(points):
        n = int(np.ceil(np.hypot(*(b - a)) / 0.25)) + 1
        t = np.arange(n) / max(n - 1, 1)
        samples = a + (b - a) * t[:, None]
        ok = inside(samples)
        if ok.all():
            kept.append(b)
            continue
        first_out = int(np.argmin(ok))
        if first_out > 1:
            kept.append(samples[first_out - 1])
        break
    return np.array(kept)


def _resample(points: NDArray[np.float64], spacing: float) -> NDArray[np.float64]:
    """Points every ``spacing`` px along the polyline (first and last kept)."""
    seg = np.hypot(*np.diff(points, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return points[:1]
    targets = np.append(np.arange(0.0, s[-1], spacing), s[-1])
    return np.column_stack(
        [np.interp(targets, s, points[:, 0]), np.interp(targets, s, points[:, 1])]
    )


def _skeleton_walk(
    region: NDArray[np.bool_], rng: np.random.Generator, truncate: tuple[float, float]
) -> NDArray[np.float64]:
    from skimage.morphology import skeletonize

    rows, cols = np.nonzero(region)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    skel = skeletonize(region[r0:r1, c0:c1])
    sr, sc = np.nonzero(skel)
    if len(sr) == 0:
        return np.zeros((0, 2))
    limit = max(2.0, rng.uniform(*truncate) * len(sr))
    i = int(rng.integers(len(sr)))
    path = [(int(sr[i]), int(sc[i]))]
    seen = {path[0]}
    length = 0.0
    heading: tuple[int, int] | None = None
    while length < limit:
        r, c = path[-1]
        options = [
            (r + dr, c + dc)
            for dr in (-1, 0, 1)
            for dc in (-1, 0, 1)
            if (dr or dc)
            and 0 <= r + dr < skel.shape[0]
            and 0 <= c + dc < skel.shape[1]
            and skel[r + dr, c + dc]
            and (r + dr, c + dc) not in seen
        ]
        if not options:
            break
        if heading is None:
            nxt = options[int(rng.integers(len(options)))]
        else:  # keep going straight: the smallest turn
            hr, hc = heading
            nxt = max(options, key=lambda o: (o[0] - r) * hr + (o[1] - c) * hc)
        heading = (nxt[0] - r, nxt[1] - c)
        length += float(np.hypot(*heading))
        seen.add(nxt)
        path.append(nxt)
    pts = np.array(path, dtype=np.float64)
    return np.column_stack([pts[:, 1] + c0 + 0.5, pts[:, 0] + r0 + 0.5])


def _region_point(
    region: NDArray[np.bool_], rng: np.random.Generator, weight: NDArray[np.float64] | None
) -> NDArray[np.float64]:
    p = region.astype(np.float64) if weight is None else region * weight
    row, col = _draw(p, rng)
    return np.array([col + 0.5, row + 0.5])


def sample_scribble(
    region: NDArray[np.bool_],
    rng: np.random.Generator,
    *,
    kind: str,
    positive: bool,
    settings: SimulationSettings | None = None,
    weight: NDArray[np.float64] | None = None,
) -> Prompt:
    """A ``centre``, ``line`` or ``bezier`` scribble inside ``region`` (module docstring); a
    click when the region holds no scribble of 2 px or more."""
    s = settings or SimulationSettings()
    if kind == "centre":
        path = _skeleton_walk(region, rng, s.truncate)
    elif kind == "line":
        a, b = _region_point(region, rng, weight), _region_point(region, rng, None)
        path = np.array([a, b])
    elif kind == "bezier":
        p0, p1, p2 = (_region_point(region, rng, weight if i == 0 else None) for i in range(3))
        t = np.linspace(0.0, 1.0, 64)[:, None]
        path = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
    else:
        raise ParameterError(f"scribble kind must be centre, line or bezier, got {kind!r}")
    if len(path) >= 2:
        dense = _resample(path, 1.0)
        if s.displacement > 0 and len(dense) > 1:
            noise = ndimage.gaussian_filter1d(
                rng.normal(size=dense.shape), s.displacement_scale, axis=0, mode="nearest"
            )
            peak = float(np.abs(noise).max())
            if peak > 0:
                dense = dense + noise * (s.displacement / peak)
        path = _inside_prefix(_resample(dense, s.step), region)
    if len(path) < 2 or float(np.hypot(*(path[-1] - path[0]))) < 2.0:
        return sample_click(region, rng, positive=positive, gamma=s.center_gamma, weight=weight)
    return Prompt.scribble(path, positive=positive)


def simulate_round(
    gt: NDArray[np.bool_],
    pred: NDArray[np.bool_],
    rng: np.random.Generator,
    *,
    settings: SimulationSettings | None = None,
    uncertainty: NDArray[np.floating] | None = None,
) -> list[Prompt]:
    """The prompts a simulated user adds after seeing ``pred`` (see the module docstring).

    Parameters
    ----------
    gt : (H, W) bool
        Ground-truth road mask.
    pred : (H, W) bool
        The current prediction (``probability > 0.5``; all False before the first round).
    rng : numpy.random.Generator
        The only source of randomness.
    settings : SimulationSettings, optional
    uncertainty : (H, W) float in [0, 1], optional
        Expert uncertainty (eq. 4); biases positive prompts (eq. 5).

    Returns
    -------
    list of Prompt
        New prompts in pixel coordinates (none when the prediction is already exact).
    """
    s = settings or SimulationSettings()
    gt, pred = np.asarray(gt, dtype=bool), np.asarray(pred, dtype=bool)
    _check_maps(gt, pred)
    if uncertainty is not None and np.shape(uncertainty) != gt.shape:
        raise ParameterError(f"uncertainty must be {gt.shape}, got {np.shape(uncertainty)}")
    regions = correction_regions(gt, pred)
    if not regions:
        return []
    weight = _expert_weight(uncertainty, s.expert_tau)
    areas = np.array([r.sum() for r, _ in regions], dtype=np.float64)
    mass = np.array(
        [
            (float(weight[r].sum()) if (weight is not None and pos) else float(a))
            for (r, pos), a in zip(regions, areas, strict=True)
        ]
    )
    big = areas >= s.min_region_area
    n = int(rng.integers(s.min_prompts, s.max_prompts + 1))
    used = np.zeros(len(regions), dtype=bool)
    prompts: list[Prompt] = []
    for _ in range(n):
        for pool in (big & ~used, ~used, big, np.ones_like(big)):
            if pool.any() and mass[pool].sum() > 0:
                break
        p = np.where(pool, mass, 0.0)
        k = int(rng.choice(len(regions), p=p / p.sum()))
        used[k] = True
        region, positive = regions[k]
        w = weight if positive else None
        kind = s.kinds[int(rng.integers(len(s.kinds)))]
        if kind == "click":
            prompts.append(
                sample_click(region, rng, positive=positive, gamma=s.center_gamma, weight=w)
            )
        else:
            prompts.append(
                sample_scribble(region, rng, kind=kind, positive=positive, settings=s, weight=w)
            )
    return prompts
