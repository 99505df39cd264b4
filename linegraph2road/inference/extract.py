"""Sliding-window graph extraction with a LineGraph2Road model (SPEC "Data flow" 3-7).

One pass over the windows, window row by window row, top to bottom:

1. read each window (:class:`~.imagery.RasterSource` windowed reads, or an in-memory array),
   run :meth:`~linegraph2road.model.LineGraph2Road.predict_window`, add its mask probabilities to
   a band accumulator, and keep its feature map;
2. rows no later window touches are finished: their mean masks go to a streaming coupled NMS
   (:mod:`._stream_nms`) whose vertices equal those of :func:`~linegraph2road.nms.coupled_nms`
   on the whole stitched masks;
3. a window whose rows hold only final vertices is scored: the candidate edges with both ends in
   it (pairs within ``d_nei``, :func:`~linegraph2road.candidates.candidate_edges`) go through
   :meth:`~linegraph2road.model.LineGraph2Road.score_edges` with that window's features; then its
   features are dropped.

An edge scored in several windows gets the mean probability; edges above ``t_topo`` form the
graph. Memory holds the model, one band of window rows of masks (``3 x (window + overlap) x W``
float32), the feature maps of windows waiting to be scored, and the vertices: it grows with the
raster's width, not its area. ``keep_masks=True`` also keeps the whole ``(3, H, W)`` masks.

``nms="plain"`` replaces coupled NMS by SAM-Road's separate-then-merge NMS
(:func:`~linegraph2road.nms.plain_nms`; the paper's Table 4 ablation). It decides vertices on the
whole stitched masks (:mod:`._plain_nms`), so it keeps them and every window's features until
the end: memory then grows with the image area.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from linegraph2road.candidates import candidate_edges
from linegraph2road.errors import CandidateGraphTooLargeError, ParameterError
from linegraph2road.graph import RoadGraph
from linegraph2road.inference._plain_nms import WholeImagePlainNMS
from linegraph2road.inference._stitch import BandStitcher, as_source, coverage
from linegraph2road.inference._stream_nms import StreamingCoupledNMS
from linegraph2road.inference.windows import WINDOW_LAYOUTS, layout_grid

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.georef import Georeference
    from linegraph2road.model import LineGraph2Road
    from linegraph2road.nms import Vertices

__all__ = [
    "NMS_MODES",
    "PRECISIONS",
    "TIMING_KEYS",
    "ExtractResult",
    "extract_graph",
    "window_layout",
]

PRECISIONS = ("fp32", "bf16")
#: Vertex extraction: the paper's coupled NMS (Algorithm 1) or SAM-Road's plain NMS (Table 4).
NMS_MODES = ("coupled", "plain")
#: Keys of :attr:`ExtractResult.timings`, seconds.
TIMING_KEYS = ("read", "encoder", "decoder", "stitch", "nms", "candidates", "scoring", "total")
_NMS_STRIP_PIXELS = 1 << 20  # finished rows go to the NMS in strips of about this many pixels


@dataclass(frozen=True)
class ExtractResult:
    """What :func:`extract_graph` returns.

    Attributes
    ----------
    graph : RoadGraph
        Kept edges (mean probability ``> t_topo``) and their end vertices, in processed-image
        pixels ``(x, y)``, ``edge_prob`` = mean probability, with the image's georeference.
    masks : (3, H, W) float32 or None
        Stitched probabilities ``[keypoint, road, overpass]`` (0 at invalid pixels and where no
        window lies: the sam-road layout's margin) when ``keep_masks``.
    vertices : Vertices
        Every coupled-NMS vertex (graph nodes are the subset with a kept edge).
    timings : dict of str to float
        Seconds per stage, keys :data:`TIMING_KEYS` (``encoder`` is the image encoder when the
        front-end has one, ``decoder`` the rest of the front-end).
    stats : dict of str to int
        ``windows``, ``candidate_edges``, ``scored_edges`` (scored at least once),
        ``unscored_edges`` (in no window), ``kept_edges``.
    """

    graph: RoadGraph
    masks: NDArray[np.float32] | None
    vertices: Vertices
    timings: dict[str, float]
    stats: dict[str, int] = field(default_factory=dict)


class _Clock:
    """Stage timers; the image encoder is timed through forward hooks when it exists."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.t = dict.fromkeys(TIMING_KEYS, 0.0)
        self._enc_start = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def __call__(self, key: str) -> Iterator[None]:
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.t[key] += time.perf_counter() - start

    @contextlib.contextmanager
    def encoder_hooks(self, model: LineGraph2Road) -> Iterator[None]:
        encoder = getattr(model.frontend, "image_encoder", None)
        if not isinstance(encoder, torch.nn.Module):
            yield
            return

        def pre(*_: Any) -> None:
            self._sync()
            self._enc_start = time.perf_counter()

        def post(*_: Any) -> None:
            self._sync()
            elapsed = time.perf_counter() - self._enc_start
            self.t["encoder"] += elapsed
            self.t["decoder"] -= elapsed  # the front-end call is timed as "decoder"

        handles = [encoder.register_forward_pre_hook(pre), encoder.register_forward_hook(post)]
        try:
            yield
        finally:
            for h in handles:
                h.remove()


def _check(t_k: float, t_r: float, t_topo: float, d_k: float, d_r: float, d_nei: float) -> None:
    for name, v in (("t_k", t_k), ("t_r", t_r), ("t_topo", t_topo)):
        if not np.isfinite(v) or not 0.0 <= v < 1.0:
            raise ParameterError(f"{name} must be a probability threshold in [0, 1), got {v}")
    for name, v in (("d_k", d_k), ("d_r", d_r), ("d_nei", d_nei)):
        if not np.isfinite(v) or v < 0:
            raise ParameterError(f"{name} must be a distance >= 0 pixels, got {v}")


def _resolve_device(model: LineGraph2Road, device: str | torch.device | None) -> torch.device:
    param = next(model.parameters())
    if device is None:
        return param.device
    dev = torch.device(device)
    if dev.type != param.device.type or (
        dev.index is not None and param.device.index not in (None, dev.index)
    ):
        raise ParameterError(
            f"the model is on {param.device} but device={str(dev)!r}; move it first "
            f"(model.to({str(dev)!r}))"
        )
    return param.device


def _edges_valid(
    points: NDArray[np.float64], edges: NDArray[np.int64], valid: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """Edges whose points at 1/4, 1/2, 3/4 of their length lie on valid window pixels."""
    ok = np.ones(len(edges), dtype=bool)
    h, w = valid.shape
    for f in (0.25, 0.5, 0.75):
        p = points[edges[:, 0]] * (1 - f) + points[edges[:, 1]] * f
        c = np.clip(np.floor(p[:, 0]).astype(np.int64), 0, w - 1)
        r = np.clip(np.floor(p[:, 1]).astype(np.int64), 0, h - 1)
        ok &= valid[r, c]
    return ok


def extract_graph(
    model: LineGraph2Road,
    image: Any,
    *,
    window: int | None = None,
    n_windows: int | None = None,
    layout: str = "auto",
    nms: str = "coupled",
    t_k: float = 0.248,
    t_r: float = 0.364,
    t_topo: float = 0.5,
    d_k: float = 8.0,
    d_r: float = 16.0,
    d_nei: float = 64.0,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    georef: Georeference | None = None,
    valid: Any = None,
    keep_masks: bool = False,
    batch_size: int = 1,
    progress: bool = False,
) -> ExtractResult:
    """Extract a road graph from an image with a LineGraph2Road model (sliding windows).

    Parameters
    ----------
    model : LineGraph2Road
        Trained model; put in eval mode during the call (its mode is restored afterwards).
    image : (3, H, W) uint8 array or RasterSource
        RGB image on the 0-255 scale, or an opened raster (windowed reads, its own georeference
        and validity). An image smaller than a window is padded with invalid pixels.
    window : int or None
        Window side in pixels; None = the model's (512 for SAM).
    n_windows : int or None
        Windows per axis. Auto layout: None = the fewest with overlap ``> d_nei`` (5 x 5 for
        2048 px); windows not larger than ``2 d_nei`` (test models) overlap by half a window
        instead, and candidate edges that fit in no window get no score
        (``stats["unscored_edges"]``). Sam-road layout: None = 16.
    layout : {"auto", "sam-road"}
        Window layout (:mod:`.windows`): ``"auto"`` (default, the paper's fast 5 x 5 on 2048
        px) or ``"sam-road"`` (SAM-Road's 16 x 16 with a 64 px uncovered margin, the paper's
        headline City-scale / Global-scale layout; about 10x the windows).
    nms : {"coupled", "plain"}
        Vertex extraction: ``"coupled"`` (default, Algorithm 1) or ``"plain"`` (SAM-Road's NMS,
        the "w/ NMS" rows of Table 4; keeps the whole masks and all window features, see the
        module docstring).
    t_k, t_r : float
        Keypoint (also overpass) and road mask thresholds (SAM-Road City-scale: 0.248, 0.364).
    t_topo : float
        Topology threshold: edges with mean probability ``> t_topo`` are kept (default 0.5).
    d_k, d_r : float
        Coupled-NMS radii in pixels (8 and 16).
    d_nei : float
        Candidate-edge radius in pixels (64).
    device : str, torch.device or None
        Where the model runs; None = where its parameters are (the model is never moved).
    precision : {"fp32", "bf16"}
        ``"bf16"`` runs the network under :func:`torch.autocast` with bfloat16.
    georef : Georeference or None
        Georeference of an array image (a RasterSource brings its own).
    valid : (H, W) bool or None
        Validity of an array image (False = nodata: no vertices, no edges); None = all valid.
    keep_masks : bool
        Return the stitched ``(3, H, W)`` float32 masks (memory grows with the image area).
    batch_size : int
        Windows per network call.
    progress : bool
        Show a tqdm progress bar over the windows.

    Returns
    -------
    ExtractResult
        Graph (pixel coordinates of the processed image, georeferenced), masks, vertices,
        per-stage timings and counts.

    Raises
    ------
    ParameterError
        Bad thresholds, radii, precision, image array, device, or window layout.
    """
    _check(t_k, t_r, t_topo, d_k, d_r, d_nei)
    if layout not in WINDOW_LAYOUTS:
        raise ParameterError(f"unknown window layout {layout!r}; choose one of {WINDOW_LAYOUTS}")
    if nms not in NMS_MODES:
        raise ParameterError(f"unknown NMS {nms!r}; choose one of {NMS_MODES}")
    if precision not in PRECISIONS:
        raise ParameterError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if batch_size < 1:
        raise ParameterError(f"batch_size must be >= 1, got {batch_size}")
    source = as_source(image, georef, valid)
    dev = _resolve_device(model, device)
    win = int(window or model.window_size)
    if win != model.window_size:
        raise ParameterError(f"the model takes {model.window_size} px windows, not {win}")
    was_training = model.training
    model.eval()
    try:
        return _Extraction(
            model, source, win, (layout, n_windows), (t_k, t_r, t_topo, d_k, d_r, d_nei), dev,
            precision, keep_masks, batch_size, progress, nms,
        ).run()  # fmt: skip
    finally:
        model.train(was_training)


def window_layout(
    shape: tuple[int, int],
    *,
    window: int,
    n_windows: int | None,
    d_nei: float,
    layout: str = "auto",
) -> tuple[list[int], list[int]]:
    """Window rows and columns :func:`extract_graph` uses on a ``(H, W)`` image.

    :func:`~.windows.layout_grid` on the image (at least one window a side). The ``"auto"``
    layout overlaps windows by ``d_nei + 1`` px, or half a window when windows are not larger
    than ``2 d_nei`` (test models: edges that fit in no window then go unscored); ``"sam-road"``
    is SAM-Road's fixed grid with its margin.

    Returns
    -------
    (list of int, list of int)
        Sorted row offsets and column offsets of the windows (the grid is their product).
    """
    height, width = shape
    canvas = (max(height, window), max(width, window))
    overlap = min(int(d_nei) + 1, window // 2)
    grid = layout_grid(*canvas, window=window, layout=layout, n=n_windows, min_overlap=overlap)
    return sorted({r for r, _ in grid}), sorted({c for _, c in grid})


class _Extraction:
    """State of one :func:`extract_graph` call (see the module docstring for the flow)."""

    def __init__(
        self,
        model: LineGraph2Road,
        source: Any,  # RasterSource, ImageArraySource or chunks.RegionSource (windowed reads)
        win: int,
        windows: tuple[str, int | None],
        params: tuple[float, ...],
        device: torch.device,
        precision: str,
        keep_masks: bool,
        batch_size: int,
        progress: bool,
        nms: str = "coupled",
        grid: tuple[list[int], list[int]] | None = None,
        scored: Callable[[int, int], bool] | None = None,
    ) -> None:
        """``windows``: layout name and windows per axis (:func:`window_layout`); ``grid``:
        window rows and columns instead (a chunk's); ``scored(row0, col0)``: whether a window's
        candidate edges are scored (default: all)."""
        self.model, self.source, self.win = model, source, win
        self.t_k, self.t_r, self.t_topo, self.d_k, self.d_r, self.d_nei = params
        self.device, self.batch_size, self.progress = device, batch_size, progress
        self.autocast = precision == "bf16"
        self.height, self.width = source.shape
        layout, n_windows = windows
        self.rows, self.cols = grid or window_layout(
            source.shape, window=win, n_windows=n_windows, d_nei=self.d_nei, layout=layout
        )
        self.scored = scored
        self.n_windows = len(self.rows) * len(self.cols)
        self.stitch = BandStitcher(
            height=self.height,
            width=self.width,
            rows=win + self.rows[0],  # rows above the first window (a margin) are held too
            row_cover=coverage(self.height, self.rows, win),
            col_cover=coverage(self.width, self.cols, win),
        )
        nms_params: dict[str, Any] = {
            "width": self.width, "t_k": self.t_k, "t_r": self.t_r, "t_o": self.t_k,
            "d_k": self.d_k, "d_r": self.d_r, "overpass": 2 in model.trained_channels,
        }  # fmt: skip
        self.nms: StreamingCoupledNMS | WholeImagePlainNMS = (
            StreamingCoupledNMS(**nms_params)
            if nms == "coupled"
            else WholeImagePlainNMS(height=self.height, **nms_params)
        )
        self.masks = np.zeros((3, *source.shape), np.float32) if keep_masks else None
        self.waiting: dict[tuple[int, int], tuple[torch.Tensor, NDArray[np.bool_]]] = {}
        self.edge_keys: list[NDArray[np.int64]] = []
        self.edge_probs: list[NDArray[np.float32]] = []
        self.clock = _Clock(device)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.autocast:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def run(self) -> ExtractResult:
        start = time.perf_counter()
        self.run_windows()
        vertices, pix = self.nms.result()
        graph, stats = self._graph(vertices, pix)
        self.clock.t["total"] = time.perf_counter() - start
        return ExtractResult(graph, self.masks, vertices, dict(self.clock.t), stats)

    def run_windows(self) -> None:
        """Every window: masks stitched, NMS streamed, candidate edges scored (the raw scores
        stay in :attr:`edge_keys` / :attr:`edge_probs`, the vertices in :attr:`nms`)."""
        bar = tqdm(total=self.n_windows, desc="windows", unit="win", disable=not self.progress)
        with bar, self.clock.encoder_hooks(self.model):
            for i, row0 in enumerate(self.rows):
                for k in range(0, len(self.cols), self.batch_size):
                    self._predict(row0, self.cols[k : k + self.batch_size])
                    bar.update(len(self.cols[k : k + self.batch_size]))
                last = i + 1 == len(self.rows)
                self._finish_rows(self.height if last else min(self.rows[i + 1], self.height), last)
                self._score_ready(last)

    def _predict(self, row0: int, cols: list[int]) -> None:
        with self.clock("read"):
            reads = [self.source.read(row0, c, self.win, self.win) for c in cols]
            batch = torch.from_numpy(np.stack([im for im, _ in reads])).to(self.device)
        with self.clock("decoder"), self._autocast():
            pred = self.model.predict_window(batch)
        with self.clock("stitch"):
            probs = pred.mask_probs.float().cpu().numpy()
            for b, (col0, (_, valid)) in enumerate(zip(cols, reads, strict=True)):
                self.stitch.add(row0, col0, probs[b], valid)
                if self.scored is None or self.scored(row0, col0):
                    self.waiting[(row0, col0)] = (pred.features[b], valid)

    def _finish_rows(self, stop: int, last: bool) -> None:
        """Rows up to ``stop`` are final: their mean masks go to the NMS in strips."""
        step = max(4 * int(np.ceil(self.d_r)) + 1, _NMS_STRIP_PIXELS // self.width)
        while True:
            start = self.stitch.start
            end = min(start + step, stop)
            with self.clock("stitch"):
                masks, _ = self.stitch.pop(end)
                if self.masks is not None:
                    self.masks[:, start:end] = masks
            with self.clock("nms"):
                self.nms.push(masks, row0=start, last=last and end == stop)
            if end == stop:
                return

    def _score_ready(self, last: bool) -> None:
        final = self.height if last else self.nms.final_rows
        for row0, col0 in sorted(self.waiting):
            if not last and row0 + self.win > final:
                continue
            features, valid = self.waiting.pop((row0, col0))
            self._score_window(row0, col0, features, valid)

    def _score_window(
        self, row0: int, col0: int, features: torch.Tensor, valid: NDArray[np.bool_]
    ) -> None:
        with self.clock("candidates"):
            pix, kind = self.nms.vertices_between(row0, min(row0 + self.win, self.height))
            rows, cols = np.divmod(pix, self.width)
            inside = (cols >= col0) & (cols < col0 + self.win)
            pix, kind = pix[inside], kind[inside]
            local = np.column_stack([cols[inside] - col0 + 0.5, rows[inside] - row0 + 0.5])
            edges = candidate_edges(local, d_nei=self.d_nei)
            edges = edges[_edges_valid(local, edges, valid)]
        if len(edges) == 0:
            return
        _check_line_graph_size(edges, len(local), row0, col0)
        with self.clock("scoring"), self._autocast():
            verts = torch.from_numpy(local).to(self.device, torch.float32)
            (prob,) = self.model.score_edges(
                features[None], [verts], [torch.from_numpy(edges).to(self.device)]
            )
        keys = pix * 4 + kind  # unique per vertex (one vertex per pixel and kind)
        pairs = np.sort(keys[edges], axis=1)
        self.edge_keys.append(pairs)
        self.edge_probs.append(prob.float().cpu().numpy())

    def _graph(
        self, vertices: Vertices, pix: NDArray[np.int64]
    ) -> tuple[RoadGraph, dict[str, int]]:
        with self.clock("scoring"):
            keys = pix * 4 + vertices.kind.astype(np.int64)
            order = np.argsort(keys)
            if self.edge_keys:
                pairs = np.concatenate(self.edge_keys)
                probs = np.concatenate(self.edge_probs).astype(np.float64)
            else:
                pairs, probs = np.zeros((0, 2), np.int64), np.zeros(0)
            uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
            inverse = inverse.reshape(-1)
            mean = np.bincount(inverse, probs, len(uniq)) / np.bincount(inverse, None, len(uniq))
            ends = order[np.searchsorted(keys, uniq.reshape(-1), sorter=order)].reshape(-1, 2)
            keep = mean > self.t_topo
            ends, mean = ends[keep], mean[keep].astype(np.float32)
            used, local = np.unique(ends, return_inverse=True)
            graph = RoadGraph.from_edges(
                vertices.points[used],
                local.reshape(-1, 2),
                np.clip(mean, 0.0, 1.0),
                georef=self.source.georef,
            )
        n_cand = len(candidate_edges(vertices.points, d_nei=self.d_nei))
        stats = {
            "windows": self.n_windows,
            "vertices": len(vertices),
            "candidate_edges": n_cand,
            "scored_edges": len(uniq),
            "unscored_edges": max(0, n_cand - len(uniq)),
            "kept_edges": graph.num_edges,
        }
        return graph, stats


#: Largest line graph (directed edges) scored for one window. Real road windows give tens of
#: thousands (about 50 k on average for the City-scale example tile); near-flat masks from an
#: untrained model or far too low thresholds give millions and tens of GB of attention memory.
MAX_WINDOW_LINE_GRAPH_EDGES = 2_000_000


def _check_line_graph_size(edges: NDArray[np.int64], n_vertices: int, row0: int, col0: int) -> None:
    deg = np.bincount(edges.ravel(), minlength=n_vertices).astype(np.int64)
    size = int((deg * (deg - 1)).sum())
    if size > MAX_WINDOW_LINE_GRAPH_EDGES:
        raise CandidateGraphTooLargeError(
            f"the window at row {row0}, col {col0} has {n_vertices} vertices and {len(edges)} "
            f"candidate edges (line graph of {size} edges, limit {MAX_WINDOW_LINE_GRAPH_EDGES}): "
            "the masks are nearly flat, so the keypoint/road thresholds are too low for this "
            "checkpoint or it is barely trained; raise --t-k/--t-r"
        )
