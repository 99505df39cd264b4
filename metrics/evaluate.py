"""Scoring one ground-truth / proposal pair with chosen metrics, pooling the scores of many, and the
comparison picture of a pair.

The pieces behind ``l2r eval`` (``linegraph2road.pipelines.evaluate`` reads the files and writes
the reports): :func:`evaluate_pair` runs TOPO and/or APLS on one pair, :func:`summarize` pools the
per-image rows with a :class:`~.protocols.Protocol`, :func:`comparison_canvas` draws a pair with its
unmatched parts highlighted. No file is read or written here.

Unmatched parts (plots only; the metrics never use this rule): every edge is cut into pieces of at
most ``step`` pixels (default 2); a piece is *unmatched* when its midpoint lies farther than
``distance`` metres (default 11.1111 m, TOPO's marble-hole matching distance) from every sample
point of the other graph's pieces. Unmatched ground truth is drawn red ("missed"), unmatched
proposal magenta ("false"), the rest blue (ground truth) and orange (proposal).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.spatial import cKDTree

from linegraph2road.errors import GeoreferenceError
from linegraph2road.graph import RoadGraph
from linegraph2road.overlay import COLORS, draw_graph, make_canvas

from .protocols import EvaluationError, Protocol, mean_skip_nan, pooled_f1
from .topo import DEG, topo

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = [
    "APLS_VARIANTS",
    "COSMIQ_PRESETS",
    "METRICS",
    "EvalSettings",
    "ImageScores",
    "comparison_canvas",
    "evaluate_pair",
    "json_safe",
    "parse_metrics",
    "summarize",
    "unmatched_segments",
]

METRICS: tuple[str, ...] = ("topo", "apls")
APLS_VARIANTS: tuple[str, ...] = ("sat2graph", "cosmiq")
#: Named parameter sets of the CosmiQ variant (:func:`~.apls_cosmiq.apls_cosmiq` keywords).
#: ``spacenet``: the SpaceNet scorer as described (midpoints every 50 m on every edge, 1000
#: sampled control points); ``apls-cli``: the defaults of CosmiQ's ``apls.py`` command line, with
#: which CosmiQ published its sample output (midpoints every 200 m, only on edges curved by more
#: than 12 %, 500 sampled control points).
COSMIQ_PRESETS: dict[str, dict[str, Any]] = {
    "spacenet": {"midpoint_spacing": 50.0, "is_curved_eps": -1.0, "max_control_points": 1000},
    "apls-cli": {"midpoint_spacing": 200.0, "is_curved_eps": 0.12, "max_control_points": 500},
}
MATCH_DISTANCE = 0.0001 * DEG  # metres: TOPO's marble-hole matching distance (11.1111 m)


def parse_metrics(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"topo,apls"`` (or a list) -> ``("topo", "apls")`` in canonical order, duplicates merged.

    Raises
    ------
    EvaluationError
        An empty list or an unknown name (the message lists the known ones).
    """
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    wanted = {n.strip().lower() for n in names if n.strip()}
    unknown = sorted(wanted - set(METRICS))
    if unknown:
        raise EvaluationError(
            f"unknown metric {', '.join(map(repr, unknown))}; expected a comma-separated list "
            f"of: {', '.join(METRICS)}"
        )
    if not wanted:
        raise EvaluationError(f"no metric given; expected some of: {', '.join(METRICS)}")
    return tuple(m for m in METRICS if m in wanted)


@dataclass(frozen=True)
class EvalSettings:
    """What to compute for every pair (picklable, so worker processes get it as is).

    Attributes
    ----------
    metrics : tuple of str
        Some of :data:`METRICS`.
    apls_variant : str
        ``"sat2graph"`` (City-scale / Global-scale literature) or ``"cosmiq"`` (SpaceNet's
        official scorer).
    small_tiles : bool
        Sat2Graph APLS small-tile parameters (SpaceNet 400 px tiles).
    topo_radius : float or None
        TOPO propagation radius in metres; None: the reference's rule.
    gsd : float or None
        Metres per pixel of pixel graphs (None: 1 m, the benchmarks' convention).
    seed : int
        Seed of the APLS variants' random choices.
    apls_preset : str or None
        CosmiQ variant only: a name of :data:`COSMIQ_PRESETS` (None: ``"spacenet"``).
    """

    metrics: tuple[str, ...] = METRICS
    apls_variant: str = "sat2graph"
    small_tiles: bool = False
    topo_radius: float | None = None
    gsd: float | None = None
    seed: int = 0
    apls_preset: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", parse_metrics(self.metrics))
        if self.apls_variant not in APLS_VARIANTS:
            raise EvaluationError(
                f"unknown APLS variant {self.apls_variant!r}; expected one of "
                f"{', '.join(APLS_VARIANTS)}"
            )
        if self.apls_preset is not None:
            if self.apls_variant != "cosmiq":
                raise EvaluationError(
                    f"--apls-preset {self.apls_preset} applies to the cosmiq APLS variant only "
                    "(add --apls-variant cosmiq)"
                )
            if self.apls_preset not in COSMIQ_PRESETS:
                raise EvaluationError(
                    f"unknown CosmiQ APLS preset {self.apls_preset!r}; expected one of "
                    f"{', '.join(COSMIQ_PRESETS)}"
                )
        elif self.apls_variant == "cosmiq":
            object.__setattr__(self, "apls_preset", "spacenet")
        for name in ("topo_radius", "gsd"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise EvaluationError(f"{name} must be a positive number, got {v}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        d = asdict(self)
        d["metrics"] = list(self.metrics)
        return d


@dataclass(frozen=True)
class ImageScores:
    """Scores of one pair: ``scores[metric]`` is a flat dict of numbers (``"apls"`` also holds
    ``variant``); ``params[metric]`` every parameter the metric ran with."""

    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)


def _defaults(func: Any) -> dict[str, Any]:
    return {
        k: p.default
        for k, p in inspect.signature(func).parameters.items()
        if p.kind is p.KEYWORD_ONLY and p.default is not p.empty
    }


def _apls(gt: RoadGraph, pred: RoadGraph, s: EvalSettings) -> Any:
    if s.apls_variant == "sat2graph":
        from .apls_sat2graph import apls_sat2graph

        return apls_sat2graph(gt, pred, small_tiles=s.small_tiles, gsd=s.gsd, seed=s.seed)
    try:
        from .apls_cosmiq import apls_cosmiq
    except ImportError as exc:  # pragma: no cover - the module ships with the package
        raise EvaluationError("the CosmiQ APLS variant is not available in this build") from exc
    preset = COSMIQ_PRESETS[s.apls_preset or "spacenet"]
    return apls_cosmiq(gt, pred, gsd=s.gsd, seed=s.seed, **preset)


def evaluate_pair(gt: RoadGraph, pred: RoadGraph, *, settings: EvalSettings) -> ImageScores:
    """Score ``pred`` against ``gt`` with ``settings.metrics``.

    Parameters
    ----------
    gt, pred : RoadGraph
        Both in pixels or both georeferenced (an empty graph goes with either). Not modified.
    settings : EvalSettings, keyword-only

    Returns
    -------
    ImageScores
        ``scores["topo"]``: precision, recall, f1, n_starts, n_paired, n_kept,
        propagation_radius (metres). ``scores["apls"]``: score, gt_to_prop, prop_to_gt, variant
        and the pair / control-point counts. NaN where the metric is undefined (see the metrics).

    Raises
    ------
    GeoreferenceError
        One graph georeferenced and the other in pixels, or ``gsd`` given for georeferenced ones.
    """
    out = ImageScores()
    if "topo" in settings.metrics:
        t = topo(gt, pred, gsd=settings.gsd, propagation_radius=settings.topo_radius)
        out.scores["topo"] = t.to_dict()
        out.params["topo"] = {
            **_defaults(topo),
            "gsd": settings.gsd,
            "propagation_radius": settings.topo_radius,
        }
    if "apls" in settings.metrics:
        a = _apls(gt, pred, settings).to_dict()
        out.params["apls"] = dict(a.pop("params", {}))
        out.scores["apls"] = a
    return out


def summarize(
    rows: Sequence[dict[str, Any]], *, protocol: Protocol, settings: EvalSettings
) -> dict[str, Any]:
    """Pool per-image rows into the report summary with the protocol's aggregation.

    Parameters
    ----------
    rows : sequence of dict
        Per-image rows holding ``"topo"`` / ``"apls"`` score dicts (as in
        :attr:`ImageScores.scores`) and ``"missing_prediction"``.
    protocol : Protocol, keyword-only
    settings : EvalSettings, keyword-only

    Returns
    -------
    dict
        ``{"topo": {"precision", "recall", "f1", "n_images", "aggregation"}, "apls": {"score",
        "gt_to_prop", "prop_to_gt", "variant", "n_images", "aggregation"}, "n_images",
        "n_missing_predictions"}``; ``n_images`` inside a metric counts the images pooled.
    """
    summary: dict[str, Any] = {}
    if "topo" in settings.metrics:
        t = [r["topo"] for r in rows]
        prec, rec, f1s = ([x[k] for x in t] for k in ("precision", "recall", "f1"))
        if protocol.aggregation == "pooled":
            p, r, f, n = pooled_f1(prec, rec)
            rule = "F1 of the mean precision and mean recall over images with P + R > 0"
        else:
            (p, n), (r, _), (f, _) = mean_skip_nan(prec), mean_skip_nan(rec), mean_skip_nan(f1s)
            rule = "mean of per-image precision, recall and F1 (NaN skipped)"
        summary["topo"] = {"precision": p, "recall": r, "f1": f, "n_images": n, "aggregation": rule}
    if "apls" in settings.metrics:
        kept = [r["apls"] for r in rows if math.isfinite(r["apls"]["score"])]
        s, n = mean_skip_nan([a["score"] for a in kept])
        summary["apls"] = {
            "score": s,
            "gt_to_prop": mean_skip_nan([a["gt_to_prop"] for a in kept])[0],
            "prop_to_gt": mean_skip_nan([a["prop_to_gt"] for a in kept])[0],
            "variant": settings.apls_variant,
            "preset": settings.apls_preset,
            "n_images": n,
            "aggregation": "mean of per-image APLS (NaN skipped)",
        }
    summary["n_images"] = len(rows)
    summary["n_missing_predictions"] = sum(bool(r.get("missing_prediction")) for r in rows)
    return summary


def json_safe(value: Any) -> Any:
    """A copy of nested dicts/lists/tuples with non-finite floats as None and numpy scalars as
    Python numbers (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- comparison plots --------------------------------------------------------------------------
def _pieces(
    nodes: NDArray[np.float64], edges: NDArray[np.int64], step: float
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Every edge cut into ``ceil(length / step)`` equal pieces: (points, (K, 2) piece ends)."""
    if len(edges) == 0:
        return np.zeros((0, 2)), np.zeros((0, 2), dtype=np.int64)
    p0, p1 = nodes[edges[:, 0]], nodes[edges[:, 1]]
    k = np.maximum(1, np.ceil(np.hypot(*(p1 - p0).T) / step)).astype(np.int64)
    counts = k + 1
    edge_of = np.repeat(np.arange(len(edges)), counts)
    j = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    pts = p0[edge_of] + (p1 - p0)[edge_of] * (j / k[edge_of])[:, None]
    first = np.flatnonzero(j < k[edge_of])
    return pts, np.stack([first, first + 1], axis=1)


def unmatched_segments(
    nodes: ArrayLike,
    edges: ArrayLike,
    other_nodes: ArrayLike,
    other_edges: ArrayLike,
    *,
    distance: float,
    step: float = 2.0,
) -> tuple[RoadGraph, NDArray[np.bool_]]:
    """Pieces of a graph and whether each lies farther than ``distance`` from the other graph.

    Parameters
    ----------
    nodes, other_nodes : (N, 2) float64
        Positions ``(x, y)`` in one common frame (pixels of the plot).
    edges, other_edges : (E, 2) int64
    distance : float, keyword-only
        Threshold in the same units.
    step : float, default 2.0
        Longest piece.

    Returns
    -------
    pieces : RoadGraph
        One edge per piece.
    unmatched : (K,) bool
        True where the piece's midpoint has no sample point of the other graph within
        ``distance``.
    """
    pts, seg = _pieces(np.asarray(nodes, float).reshape(-1, 2), _edges(edges), step)
    opts, oseg = _pieces(np.asarray(other_nodes, float).reshape(-1, 2), _edges(other_edges), step)
    pieces = RoadGraph(pts, seg)
    if len(seg) == 0:
        return pieces, np.zeros(0, dtype=bool)
    if len(oseg) == 0:
        return pieces, np.ones(len(seg), dtype=bool)
    mid = (pts[seg[:, 0]] + pts[seg[:, 1]]) / 2.0
    d, _ = cKDTree(opts).query(mid, distance_upper_bound=distance)
    return pieces, ~np.isfinite(d) | (d > distance)


def _edges(edges: ArrayLike) -> NDArray[np.int64]:
    return np.asarray(edges, dtype=np.int64).reshape(-1, 2)


def _plot_frame(
    gt: RoadGraph, pred: RoadGraph, gsd: float | None
) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """Both graphs in the ground truth's pixel grid, and metres per pixel of that grid."""
    if gt.georef is None and pred.georef is None:
        return np.asarray(gt.nodes), np.asarray(pred.nodes), 1.0 if gsd is None else float(gsd)
    if gt.num_nodes and pred.num_nodes and (gt.georef is None or pred.georef is None):
        raise GeoreferenceError(
            "one graph is georeferenced and the other is in pixels; give both in the same "
            "coordinate system (use `l2r convert --like RASTER` for the pixel one)"
        )
    ref = gt if gt.georef is not None else pred
    grid = ref.georef
    if grid is None:  # unreachable: one of the two is georeferenced here
        return np.asarray(gt.nodes), np.asarray(pred.nodes), 1.0

    def onto(g: RoadGraph) -> NDArray[np.float64]:
        if g.georef is None or g.georef == grid or g.num_nodes == 0:
            return np.asarray(g.nodes)
        return grid.lonlat_to_pixel(g.georef.pixel_to_lonlat(g.nodes))

    at = tuple(ref.nodes[0]) if ref.num_nodes else (0.0, 0.0)
    return onto(gt), onto(pred), grid.gsd(at=(float(at[0]), float(at[1])))


def comparison_canvas(
    gt: RoadGraph,
    pred: RoadGraph,
    *,
    image: ArrayLike | None = None,
    shape: tuple[int, int] | None = None,
    gsd: float | None = None,
    distance: float = MATCH_DISTANCE,
    step: float = 2.0,
    flip_y: float | None = None,
    max_side: int = 8192,
) -> NDArray[np.uint8]:
    """An (H, W, 3) uint8 picture of ``gt`` and ``pred`` drawn over each other.

    Parameters
    ----------
    gt, pred : RoadGraph
        Pixel graphs, or georeferenced ones (drawn in the ground truth's pixel grid).
    image : (H, W) or (H, W, C) array, optional, keyword-only
        The tile, drawn dimmed underneath; its size sets the canvas.
    shape : (H, W), optional, keyword-only
        Canvas size without ``image``; default: the graphs' extent.
    gsd : float, optional, keyword-only
        Metres per pixel of pixel graphs (default 1).
    distance : float, keyword-only
        Matching distance in metres (default: TOPO's 11.1111 m); see the module docstring.
    step : float, keyword-only
        Longest piece in pixels (default 2).
    flip_y : float, optional, keyword-only
        Draw ``y`` as ``flip_y - y`` (SAM-Road SpaceNet pickles read in their stored frame).
    max_side : int, keyword-only
        Canvases are never larger than this on a side (graphs are clipped to it).

    Raises
    ------
    GeoreferenceError
        One graph georeferenced, the other in pixels.
    """
    g_xy, p_xy, metres_per_px = _plot_frame(gt, pred, gsd)
    if flip_y is not None:
        g_xy = np.stack([g_xy[:, 0], flip_y - g_xy[:, 1]], axis=1) if len(g_xy) else g_xy
        p_xy = np.stack([p_xy[:, 0], flip_y - p_xy[:, 1]], axis=1) if len(p_xy) else p_xy
    if image is not None:
        canvas = make_canvas(np.asarray(image).shape[:2], image)
    else:
        if shape is None:
            both = np.concatenate([g_xy, p_xy]) if len(g_xy) + len(p_xy) else np.ones((1, 2))
            top = np.ceil(both.max(axis=0)).astype(int) + 1
            shape = (int(top[1]), int(top[0]))
        shape = (min(max(int(shape[0]), 1), max_side), min(max(int(shape[1]), 1), max_side))
        canvas = make_canvas(shape)
    threshold = distance / metres_per_px
    g_pieces, missed = unmatched_segments(
        g_xy, gt.edges, p_xy, pred.edges, distance=threshold, step=step
    )
    p_pieces, false = unmatched_segments(
        p_xy, pred.edges, g_xy, gt.edges, distance=threshold, step=step
    )
    canvas = draw_graph(canvas, g_pieces, COLORS["gt"], width=3, edges=~missed)
    canvas = draw_graph(canvas, p_pieces, COLORS["pred"], width=1, edges=~false)
    canvas = draw_graph(canvas, g_pieces, COLORS["missed"], width=3, edges=missed)
    return draw_graph(canvas, p_pieces, COLORS["false"], width=2, edges=false)
