"""Vertex extraction from probability masks: coupled NMS (Algorithm 1) and SAM-Road's plain NMS.

Coordinates follow the library convention: a point is ``(x, y) = (col, row)`` in float64 pixels
and a mask pixel stands for its centre ``(col + 0.5, row + 0.5)``. Distances are Euclidean, in
pixels, compared as squared distances (``dx*dx + dy*dy < d*d``).

Suppression is greedy: candidates are visited by descending score, ties in input order (for
masks: row-major pixel order), and a candidate is dropped when an already *kept* point lies
strictly closer than the radius. A uniform grid (cell side >= radius, numba kernel in
:mod:`linegraph2road._nms_kernels`) makes this O(n log n) for n candidates (the sort dominates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from linegraph2road._nms_kernels import grid_greedy_nms
from linegraph2road.errors import GraphError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = [
    "KEYPOINT",
    "OVERPASS",
    "ROAD",
    "Vertices",
    "coupled_nms",
    "coupled_nms_points",
    "mask_candidates",
    "nms_points",
    "plain_nms",
]

KEYPOINT = 0
OVERPASS = 1
ROAD = 2

# SAM-Road's City-scale thresholds (SPEC.md); Algorithm 1 reuses t_k for the overpass mask.
DEFAULT_T_K = 0.248
DEFAULT_T_R = 0.364


@dataclass(frozen=True, eq=False)
class Vertices:
    """Vertices extracted by NMS.

    Attributes
    ----------
    points : (M, 2) float64
        ``(x, y)`` pixels (mask pixels give their centres ``(col + 0.5, row + 0.5)``).
    scores : (M,) float32
        The mask value (or given score) of each vertex.
    kind : (M,) int8
        :data:`KEYPOINT` (0), :data:`OVERPASS` (1) or :data:`ROAD` (2): which mask or point set
        the vertex came from. Rows are grouped by kind in that order, each group in the order the
        greedy pass kept them (descending score).

    The arrays are read-only.
    """

    points: NDArray[np.float64]
    scores: NDArray[np.float32]
    kind: NDArray[np.int8]

    def __post_init__(self) -> None:
        pts = np.array(self.points, dtype=np.float64).reshape(-1, 2)
        sc = np.array(self.scores, dtype=np.float32).reshape(-1)
        kd = np.array(self.kind, dtype=np.int8).reshape(-1)
        if not len(pts) == len(sc) == len(kd):
            raise GraphError(
                f"points, scores and kind differ in length: {len(pts)}, {len(sc)}, {len(kd)}"
            )
        for name, a in (("points", pts), ("scores", sc), ("kind", kd)):
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    def __len__(self) -> int:
        return len(self.points)

    def of_kind(self, kind: int) -> NDArray[np.float64]:
        """(K, 2) float64 points of one kind (``KEYPOINT``, ``OVERPASS`` or ``ROAD``)."""
        return self.points[self.kind == kind]


# -- validation -----------------------------------------------------------------------------------
def _check_radius(name: str, value: float) -> float:
    v = float(value)
    if not np.isfinite(v) or v < 0:
        raise GraphError(f"{name} must be a finite distance >= 0 pixels, got {value!r}")
    return v


def _check_threshold(name: str, value: float) -> float:
    v = float(value)
    if not np.isfinite(v):
        raise GraphError(f"{name} must be a finite threshold, got {value!r}")
    return v


def _check_mask(name: str, mask: ArrayLike, shape: tuple[int, ...] | None = None) -> NDArray:
    m = np.asarray(mask)
    if m.ndim != 2:
        raise GraphError(f"{name} mask must be 2-D (H, W), got shape {m.shape}")
    if not (np.issubdtype(m.dtype, np.number) or m.dtype == bool) or np.iscomplexobj(m):
        raise GraphError(f"{name} mask must hold real numbers, got dtype {m.dtype}")
    if shape is not None and m.shape != shape:
        raise GraphError(f"{name} mask has shape {m.shape} but the keypoint mask has {shape}")
    if np.issubdtype(m.dtype, np.floating) and not np.isfinite(m).all():
        raise GraphError(f"{name} mask contains NaN or infinite values; clean it first")
    return m


def _check_points(name: str, points: ArrayLike, scores: ArrayLike) -> tuple[NDArray, NDArray]:
    p = np.asarray(points, dtype=np.float64)
    if p.size == 0:
        p = p.reshape(0, 2)
    if p.ndim != 2 or p.shape[1] != 2:
        raise GraphError(f"{name} points must have shape (N, 2) (x, y), got {p.shape}")
    s = np.asarray(scores)
    if s.ndim != 1 or len(s) != len(p):
        raise GraphError(f"{name} scores must have shape ({len(p)},), got {s.shape}")
    if not np.isfinite(p).all():
        raise GraphError(f"{name} points contain NaN or infinite coordinates")
    if s.size and (not np.issubdtype(s.dtype, np.number) or not np.isfinite(s).all()):
        raise GraphError(f"{name} scores must be finite numbers")
    return p, s


def _descending(scores: NDArray) -> NDArray[np.int64]:
    """Indices by descending score, ties in input order (stable)."""
    s = np.asarray(scores)
    if s.dtype == np.float32 and s.size > 4096:
        # Same order as a stable argsort, faster: sort one uint64 per point whose high half is
        # the score mapped to an order-reversing integer and whose low half is the index.
        bits = (s + np.float32(0.0)).view(np.uint32).astype(np.uint64)  # +0 turns -0 into 0
        neg = (bits >> np.uint64(31)) == 1
        asc = np.where(neg, ~bits & np.uint64(0xFFFFFFFF), bits | np.uint64(0x80000000))
        key = ((np.uint64(0xFFFFFFFF) - asc) << np.uint64(32)) | np.arange(s.size, dtype=np.uint64)
        return (np.sort(key) & np.uint64(0xFFFFFFFF)).astype(np.int64)
    return np.argsort(-s.astype(np.float64), kind="stable").astype(np.int64)


def _nms(points: NDArray, scores: NDArray, radius: float, **kw: object) -> NDArray[np.int64]:
    order = _descending(scores)
    return grid_greedy_nms(points[:, 0], points[:, 1], order, radius, **kw)  # type: ignore[arg-type]


# -- public API -----------------------------------------------------------------------------------
def nms_points(points: ArrayLike, scores: ArrayLike, *, radius: float) -> NDArray[np.int64]:
    """Greedy non-maximum suppression of scored points.

    Parameters
    ----------
    points : (N, 2) float64
        ``(x, y)`` pixels.
    scores : (N,) float
        Higher is better. Visited in descending order, ties in input order.
    radius : float
        Suppression radius in pixels: a point is dropped when an already kept point lies at
        distance ``< radius`` (strict, as Algorithm 1).

    Returns
    -------
    (K,) int64 indices into ``points`` of the kept points, in visiting order (descending score).
    """
    p, s = _check_points("nms", points, scores)
    return _nms(p, s, _check_radius("radius", radius))


def mask_candidates(
    mask: ArrayLike, *, threshold: float
) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
    """Pixels of ``mask`` whose value is ``> threshold``.

    Parameters
    ----------
    mask : (H, W) float
        Probabilities (any real dtype; compared in its own dtype).
    threshold : float
        Strict lower bound on the pixel value.

    Returns
    -------
    points : (N, 2) float64
        Pixel centres ``(col + 0.5, row + 0.5)``, in row-major pixel order.
    scores : (N,) float32
        The pixel values.
    """
    m = _check_mask("input", mask)
    flat = np.flatnonzero(m > _check_threshold("threshold", threshold))
    rows, cols = np.divmod(flat, m.shape[1])
    points = np.empty((flat.size, 2), dtype=np.float64)
    points[:, 0] = cols + 0.5
    points[:, 1] = rows + 0.5
    return points, m.reshape(-1)[flat].astype(np.float32)


def _merge_vk(
    kp: tuple[NDArray, NDArray], ov: tuple[NDArray, NDArray]
) -> tuple[NDArray, NDArray, NDArray]:
    """V_k = keypoints ∪ overpass points; a keypoint at exactly an overpass point's position is
    dropped (the set union keeps one vertex there, reported as OVERPASS)."""
    kp_pts, kp_sc = kp
    ov_pts, ov_sc = ov
    if len(kp_pts) and len(ov_pts):
        both = np.concatenate([ov_pts, kp_pts])
        _, first = np.unique(both, axis=0, return_index=True)
        keep = np.zeros(len(both), dtype=bool)
        keep[first] = True
        dup_free = keep[len(ov_pts) :]
        kp_pts, kp_sc = kp_pts[dup_free], kp_sc[dup_free]
    pts = np.concatenate([kp_pts, ov_pts])
    sc = np.concatenate([kp_sc, ov_sc]).astype(np.float32)
    kind = np.repeat(np.array([KEYPOINT, OVERPASS], dtype=np.int8), [len(kp_pts), len(ov_pts)])
    return pts, sc, kind


def coupled_nms_points(
    keypoint_points: ArrayLike,
    keypoint_scores: ArrayLike,
    road_points: ArrayLike,
    road_scores: ArrayLike,
    overpass_points: ArrayLike | None = None,
    overpass_scores: ArrayLike | None = None,
    *,
    d_k: float = 8.0,
    d_r: float = 16.0,
) -> Vertices:
    """Coupled NMS (Algorithm 1) on given candidate point sets (no thresholding).

    Used by the data preparation (Algorithm 4) with ground-truth keypoints and points interpolated
    along the ground-truth paths. Steps: keypoints NMS'd within ``d_k``; overpass points NMS'd
    within ``d_k``; ``V_k`` = their union; road points closer than ``d_r`` to a ``V_k`` vertex are
    removed, the rest NMS'd within ``d_r``; result ``V_k`` ∪ road vertices.

    Parameters
    ----------
    keypoint_points, road_points, overpass_points : (N, 2) float64
        ``(x, y)`` pixels; ``overpass_points`` may be None (no overpass set).
    keypoint_scores, road_scores, overpass_scores : (N,) float
        Scores (visited in descending order, ties in input order).
    d_k, d_r : float
        Keypoint and road suppression radii in pixels (paper: 8 and 16); distances ``<`` radius
        suppress.

    Returns
    -------
    Vertices
        Keypoint, then overpass, then road vertices. A keypoint at exactly the position of a kept
        overpass vertex is reported once, as OVERPASS.
    """
    d_k = _check_radius("d_k", d_k)
    d_r = _check_radius("d_r", d_r)
    kp, kp_s = _check_points("keypoint", keypoint_points, keypoint_scores)
    rd, rd_s = _check_points("road", road_points, road_scores)
    if (overpass_points is None) != (overpass_scores is None):
        raise GraphError("give both overpass_points and overpass_scores, or neither")
    if overpass_points is None or overpass_scores is None:
        ov, ov_s = np.zeros((0, 2)), np.zeros(0, dtype=np.float32)
    else:
        ov, ov_s = _check_points("overpass", overpass_points, overpass_scores)
    ki = _nms(kp, kp_s, d_k)
    oi = _nms(ov, ov_s, d_k)
    vk_pts, vk_sc, vk_kind = _merge_vk((kp[ki], kp_s[ki]), (ov[oi], ov_s[oi]))
    # Seeding the grid with V_k removes every road point within d_r of V_k before any road point
    # is kept (removed points never suppress), which is exactly Algorithm 1 lines 28-34.
    ri = _nms(rd, rd_s, d_r, seed_x=vk_pts[:, 0], seed_y=vk_pts[:, 1])
    return Vertices(
        np.concatenate([vk_pts, rd[ri]]),
        np.concatenate([vk_sc, rd_s[ri].astype(np.float32)]),
        np.concatenate([vk_kind, np.full(len(ri), ROAD, dtype=np.int8)]),
    )


def coupled_nms(
    keypoint: ArrayLike,
    road: ArrayLike,
    overpass: ArrayLike | None = None,
    *,
    t_k: float = DEFAULT_T_K,
    t_r: float = DEFAULT_T_R,
    t_o: float | None = None,
    d_k: float = 8.0,
    d_r: float = 16.0,
) -> Vertices:
    """Coupled non-maximum suppression of vertices (paper, Algorithm 1 in Appendix 0.A).

    Parameters
    ----------
    keypoint, road : (H, W) float
        Keypoint and road probability masks (same shape, finite).
    overpass : (H, W) float or None
        Overpass/underpass probability mask; None when the model has no overpass head.
    t_k, t_r : float
        Keypoint and road thresholds (pixels ``> t`` are candidates). Defaults 0.248 and 0.364 are
        SAM-Road's City-scale values (SPEC.md; SpaceNet uses 0.195 and 0.341).
    t_o : float or None
        Overpass threshold; None means ``t_k``, as Algorithm 1 does.
    d_k, d_r : float
        Keypoint and road suppression radii in pixels (paper: 8 and 16).

    Returns
    -------
    Vertices
        Pixel-centre vertices: keypoint, overpass, then road (see :func:`coupled_nms_points`).
        Candidates are ranked by their value cast to float32 (ties in row-major pixel order).
        Guarantees: no two keypoints (or two overpass vertices) closer than ``d_k``, no two road
        vertices closer than ``d_r``, no road vertex closer than ``d_r`` to a keypoint/overpass one.
    """
    k = _check_mask("keypoint", keypoint)
    r = _check_mask("road", road, k.shape)
    t_o = t_k if t_o is None else t_o
    kp = mask_candidates(k, threshold=t_k)
    rd = mask_candidates(r, threshold=t_r)
    ov = (
        None
        if overpass is None
        else mask_candidates(_check_mask("overpass", overpass, k.shape), threshold=t_o)
    )
    return coupled_nms_points(
        kp[0],
        kp[1],
        rd[0],
        rd[1],
        None if ov is None else ov[0],
        None if ov is None else ov[1],
        d_k=d_k,
        d_r=d_r,
    )


def plain_nms(
    keypoint: ArrayLike,
    road: ArrayLike,
    overpass: ArrayLike | None = None,
    *,
    t_k: float = DEFAULT_T_K,
    t_r: float = DEFAULT_T_R,
    t_o: float | None = None,
    d_k: float = 8.0,
    d_r: float = 16.0,
    per_mask_nms: bool = True,
) -> Vertices:
    """SAM-Road's vertex extraction (the "w/ NMS" rows of the paper's Table 4).

    Reproduces ``extract_graph_points`` in SAM-Road's ``graph_extraction.py`` with
    ``nms_points`` from its ``graph_utils.py`` (github.com/htcr/sam_road): keypoint pixels
    ``> t_k`` are NMS'd within ``d_k``, road pixels ``> t_r`` within ``d_r``; the two sets are
    concatenated with priority score 1 for keypoints and 0 for road vertices and NMS'd again
    within ``d_r`` (the *road* radius, so keypoints closer than ``d_r`` also suppress each other).
    SAM-Road finds neighbours with ``KDTree.query_radius``, which includes the radius itself, so
    here distances ``<=`` radius suppress (unlike :func:`coupled_nms`). Ties keep input order
    (SAM-Road's ``argsort()[::-1]`` leaves them unspecified).

    The paper's Table 4 also has "w/ Overpass w/ NMS" rows without saying how the overpass mask
    joins SAM-Road's scheme; given ``overpass``, its pixels ``> t_o`` are NMS'd within ``d_k``
    and join the keypoints' priority class (after the keypoints), as Algorithm 1 joins them
    into ``V_k``.

    Parameters
    ----------
    keypoint, road : (H, W) float
        Probability masks of the same shape.
    overpass : (H, W) float or None
        Overpass/underpass mask; None (SAM-Road, and models without the head): no overpass set.
    t_k, t_r, d_k, d_r : float
        Thresholds and radii in pixels, as in :func:`coupled_nms`.
    t_o : float or None
        Overpass threshold; None means ``t_k``.
    per_mask_nms : bool
        True (default) runs the per-mask NMS the code intends. SAM-Road's released inference
        passes uint8 masks (0-255) to ``nms_points``, whose "scores > 1 are never suppressed" rule
        then turns the per-mask NMS into a no-op; False reproduces that: all candidate pixels go
        straight into the merge NMS (keypoints first, each set by descending value).

    Returns
    -------
    Vertices
        Keypoint, overpass, then road vertices (kinds ``KEYPOINT``, ``OVERPASS``, ``ROAD``),
        pixel centres.
    """
    k = _check_mask("keypoint", keypoint)
    r = _check_mask("road", road, k.shape)
    d_k = _check_radius("d_k", d_k)
    d_r = _check_radius("d_r", d_r)
    kp, kp_s = mask_candidates(k, threshold=t_k)
    rd, rd_s = mask_candidates(r, threshold=t_r)
    if overpass is None:
        ov, ov_s = np.zeros((0, 2)), np.zeros(0, dtype=np.float32)
    else:
        o = _check_mask("overpass", overpass, k.shape)
        ov, ov_s = mask_candidates(o, threshold=t_k if t_o is None else t_o)
    if per_mask_nms:
        ki = _nms(kp, kp_s, d_k, inclusive=True)
        oi = _nms(ov, ov_s, d_k, inclusive=True)
        ri = _nms(rd, rd_s, d_r, inclusive=True)
    else:
        ki, oi, ri = _descending(kp_s), _descending(ov_s), _descending(rd_s)
    pts = np.concatenate([kp[ki], ov[oi], rd[ri]])
    sc = np.concatenate([kp_s[ki], ov_s[oi], rd_s[ri]])
    kind = np.repeat(
        np.array([KEYPOINT, OVERPASS, ROAD], dtype=np.int8), [len(ki), len(oi), len(ri)]
    )
    # Priority 1 / 0 with a stable order: keypoints (then overpass points) first, each set in the
    # order kept above.
    keep = grid_greedy_nms(pts[:, 0], pts[:, 1], np.arange(len(pts)), d_r, inclusive=True)
    keep = np.sort(keep)
    return Vertices(pts[keep], sc[keep], kind[keep])
