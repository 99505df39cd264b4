"""An annotation session: one image, one project store, one predictor (the app's library API).

:class:`AnnotationSession` is what the web server's handlers call, one method per user action;
the CLI's export and the tests call the same methods. Everything the user did lives in the
:class:`~.store.ProjectStore` (each method returns after its change is committed); the session
only caches what can be recomputed (the graph, the classifier's features).

Coordinates are pixels ``(x, y)`` of the *processed* image: the raster resampled to ``gsd``
metres per pixel (default 1.0, the model's), as ``l2r extract`` sees it
(:class:`~linegraph2road.inference.RasterSource`).

Methods are thread-safe: the server runs handlers in a thread pool, so state changes hold one
lock and raster reads another.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linegraph2road.annotate.chunks import Rect, paste_rect, read_rect
from linegraph2road.annotate.edits import ROAD_WIDTH, edge_pixels, polyline_rect, road_stroke
from linegraph2road.annotate.predictors import Predictor, ViewImage, make_predictor
from linegraph2road.annotate.store import ImageIdentity, ProjectStore
from linegraph2road.annotate.tiles import (
    MAX_OVERLAY_LEVEL,
    TILE,
    encode_png,
    levels_for,
    mask_rgba,
    probability_rgba,
    reduce_any,
    tile_rect,
)
from linegraph2road.annotate.vectorize import accepted_graph
from linegraph2road.errors import InputFileError, ParameterError
from linegraph2road.inference.imagery import RasterSource
from linegraph2road.io import write_graph
from linegraph2road.prompts import Prompt

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.graph import RoadGraph

__all__ = ["AnnotationSession", "SessionOptions", "StaleGraphError"]

#: Most points accepted in one prompt or drawn road (a scribble is a few hundred).
MAX_POINTS = 10_000
_MASK_ACTIONS = ("accept", "road", "delete_edge")


class StaleGraphError(ParameterError):
    """An edit named an edge of a graph that has changed since (reload the graph)."""


@dataclass(frozen=True)
class SessionOptions:
    """Options of :class:`AnnotationSession`.

    Attributes
    ----------
    gsd : float or None, default 1.0
        Processing ground sampling distance, m/px (the model's); None keeps the raster's.
    view_size : int, default 512
        Side of the predicted view in pixels (RoadGIE's window).
    road_threshold : float, default 0.5
        A predicted pixel is accepted as road above this probability.
    road_width : int, default 5
        Width in pixels of a road drawn as a polyline.
    delete_radius : float, default 12.0
        Pixels around a deleted edge whose road pixels it owns (see :mod:`.edits`).
    device, precision : str
        Where and how a RoadGIE checkpoint runs (``cpu``/``cuda``, ``fp32``/``bf16``).
    mask2graph : dict
        Keyword arguments of :func:`~linegraph2road.mask2graph.mask_to_graph`.
    """

    gsd: float | None = 1.0
    view_size: int = 512
    road_threshold: float = 0.5
    road_width: int = ROAD_WIDTH
    delete_radius: float = 12.0
    device: str = "cpu"
    precision: str = "fp32"
    mask2graph: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 32 <= int(self.view_size) <= 4096:
            raise ParameterError(f"view size must be 32-4096 px, got {self.view_size}")
        if not 0.0 <= self.road_threshold < 1.0:
            raise ParameterError(f"road threshold must be in [0, 1), got {self.road_threshold}")
        if int(self.road_width) < 1 or not math.isfinite(self.delete_radius):
            raise ParameterError("road width must be >= 1 px and the delete radius finite")
        if self.precision not in ("fp32", "bf16"):
            raise ParameterError(f"precision must be fp32 or bf16, got {self.precision!r}")


def _identity(path: Path, source: RasterSource, gsd: float | None) -> ImageIdentity:
    g = source.georef
    return ImageIdentity.of(
        path,
        width=source.source_shape[1],
        height=source.source_shape[0],
        crs=None if g is None else g.crs.to_wkt(),
        transform=None if g is None else tuple(g.transform)[:6],
        gsd=gsd,
    )


class AnnotationSession:
    """Open ``image`` with the project in ``project`` (see the module docstring).

    Parameters
    ----------
    image : path or None
        The raster (GeoTIFF, PNG...). None: the image recorded in the project (export).
    project : path
        Project folder (created for a new project).
    checkpoint : path or None
        RoadGIE front-end checkpoint; None runs the live pixel classifier.
    options : SessionOptions
    predictor : Predictor or None
        Use this predictor instead of making one (tests, benchmarks).
    with_model : bool, default True
        Load the predictor now (False: export only; predicting is then refused).
    lock : bool, default True
        Hold the project's lock (one server per project). Export does not need it.

    Raises
    ------
    InputFileError, FormatError
        Missing, unreadable or corrupt image; a folder that is no project (with ``image=None``).
    ParameterError
        The project was made for another image or is open elsewhere.
    CheckpointError
        A checkpoint that is not a RoadGIE front-end.
    """

    def __init__(
        self,
        image: str | os.PathLike[str] | None,
        project: str | os.PathLike[str],
        *,
        checkpoint: str | os.PathLike[str] | None = None,
        options: SessionOptions | None = None,
        predictor: Predictor | None = None,
        with_model: bool = True,
        lock: bool = True,
    ) -> None:
        self.options = options or SessionOptions()
        self._lock = threading.RLock()
        self._raster_lock = threading.Lock()
        if image is None:
            probe = ProjectStore(project, lock=False)
            try:
                if probe.image_path is None or not Path(probe.image_path).is_file():
                    raise InputFileError(
                        f"the image of project {project} ({probe.image_path or probe.image.name})"
                        " is not there; pass the image: l2r annotate IMAGE --project DIR ..."
                    )
                image = probe.image_path
                self.options = replace(self.options, gsd=probe.image.gsd)
            finally:
                probe.close()
        self.image_path = Path(image)
        self.source = RasterSource(self.image_path, gsd=self.options.gsd)
        try:
            identity = _identity(self.image_path, self.source, self.options.gsd)
            self.store = ProjectStore(project, image=identity, image_path=image, lock=lock)
        except BaseException:
            self.source.close()
            raise
        self.shape = self.source.shape
        self._graph: RoadGraph | None = None
        self._graph_key: tuple[int, ...] | None = None
        self.graph_revision = -1  # set by graph()
        self.last_timings: dict[str, float] = {}
        self._views: dict[Rect, tuple[NDArray[np.uint8], NDArray[np.bool_]]] = {}
        self.predictor: Predictor | None = None
        if predictor is not None:
            self.predictor = predictor
        elif with_model:
            try:
                self.predictor = make_predictor(
                    self.read,
                    checkpoint=checkpoint,
                    device=self.options.device,
                    precision=self.options.precision,
                )
            except BaseException:
                self.close()
                raise

    # -- reading --------------------------------------------------------------------------------
    def read(
        self, row0: int, col0: int, height: int, width: int
    ) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        """A window of the processed image (:meth:`RasterSource.read`), thread-safe."""
        with self._raster_lock:
            return self.source.read(row0, col0, height, width)

    def _view_pixels(self, rect: Rect) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        """The view's pixels, kept for the next call (rounds repeat on one view)."""
        cached = self._views.get(rect)
        if cached is None:
            cached = self.read(rect.row0, rect.col0, rect.height, rect.width)
            self._views = {rect: cached}
        return cached

    def image_tile(self, z: int, tx: int, ty: int) -> bytes:
        """PNG of map tile ``(z, tx, ty)`` (RGBA, nodata transparent); :class:`TileOutside`
        for an address outside the pyramid."""
        rect, f = tile_rect(z, tx, ty, self.shape)
        out = (-(-rect.height // f), -(-rect.width // f))
        with self._raster_lock:
            img, valid = self.source.read(
                rect.row0, rect.col0, rect.height, rect.width, out_shape=out
            )
        rgba = np.concatenate([np.moveaxis(img, 0, -1), (valid * np.uint8(255))[..., None]], -1)
        return encode_png(rgba)

    def overlay_tile(self, z: int, tx: int, ty: int) -> bytes | None:
        """PNG of the accepted mask on tile ``(z, tx, ty)``; None when it has nothing (or the
        level is coarser than :data:`~.tiles.MAX_OVERLAY_LEVEL`)."""
        rect, f = tile_rect(z, tx, ty, self.shape)
        if z > MAX_OVERLAY_LEVEL:
            return None
        with self._lock:
            road, covered = read_rect(rect, self.store.chunk)
        if not covered.any():
            return None
        return encode_png(mask_rgba(reduce_any(road, f), reduce_any(covered, f)))

    def pending_png(self) -> bytes | None:
        """PNG of the pending prediction (its rectangle is in :meth:`state`), or None."""
        with self._lock:
            pending = self.store.pending()
        if pending is None:
            return None
        return encode_png(probability_rgba(pending.probs, threshold=self.options.road_threshold))

    # -- state ----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What the page shows (JSON-serialisable)."""
        with self._lock:
            pending = self.store.pending()
            g = self.source.georef
            return {
                "image": self.image_path.name,
                "project": str(self.store.folder),
                "width": self.shape[1],
                "height": self.shape[0],
                "tile": TILE,
                "levels": levels_for(self.shape),
                "max_overlay_level": MAX_OVERLAY_LEVEL,
                "view_size": self.options.view_size,
                "gsd": self.options.gsd,
                "crs": None if g is None else g.crs.to_string(),
                "notes": list(self.source.notes),
                "model": None if self.predictor is None else self.predictor.name,
                "model_description": None if self.predictor is None else self.predictor.description,
                "revision": self.store.revision,
                "graph_revision": self._graph_revision(),
                "can_undo": self.store.can_undo(),
                "can_redo": self.store.can_redo(),
                "pending": None
                if pending is None
                else {"rect": pending.rect.as_list(), "model": pending.model},
                "accepted": len(self.store.chunk_index()),
                "prompts": [
                    {
                        "id": sp.id,
                        "kind": sp.prompt.kind,
                        "positive": sp.prompt.positive,
                        "points": sp.prompt.points.tolist(),
                    }
                    for sp in self.store.prompts()
                ],
                "timings": dict(self.last_timings),
            }

    # -- prompts and rounds ---------------------------------------------------------------------
    def _check_points(self, points: Any, what: str) -> NDArray[np.float64]:
        try:
            p = np.asarray(points, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"{what} points must be [[x, y], ...] numbers") from exc
        if p.ndim != 2 or p.shape[1] != 2 or not 1 <= len(p) <= MAX_POINTS:
            raise ParameterError(f"{what} needs 1-{MAX_POINTS} [x, y] points, got {p.shape}")
        h, w = self.shape
        if not np.isfinite(p).all() or (p < 0).any() or (p[:, 0] > w).any() or (p[:, 1] > h).any():
            raise ParameterError(f"{what} points must lie on the {w} x {h} px image")
        return p

    def add_prompt(self, kind: str, points: Any, positive: bool) -> dict[str, Any]:
        """Store a click or scribble (pixel points of the processed image); returns its id."""
        prompt = Prompt(kind, self._check_points(points, kind), positive)  # type: ignore[arg-type]
        with self._lock:
            stored = self.store.add_prompt(prompt)
            return {"id": stored.id, "revision": self.store.revision}

    def view_at(self, x: float, y: float) -> Rect:
        """The ``view_size`` square view centred on pixel ``(x, y)``, kept inside the image."""
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ParameterError(f"view centre must be finite numbers, got ({x}, {y})")
        h, w = self.shape
        vh, vw = min(self.options.view_size, h), min(self.options.view_size, w)
        c0 = int(min(max(round(x - vw / 2), 0), w - vw))
        r0 = int(min(max(round(y - vh / 2), 0), h - vh))
        return Rect(c0, r0, vw, vh)

    def predict(self, x: float, y: float) -> dict[str, Any]:
        """One round on the view centred on ``(x, y)`` with every prompt and the previous mask
        (the pending prediction of the same view, else the accepted mask there, else None);
        the result becomes the pending prediction. Returns the view and timings (ms)."""
        if self.predictor is None:
            raise ParameterError("this session was opened without a model (export only)")
        start = time.perf_counter()
        rect = self.view_at(x, y)
        image, valid = self._view_pixels(rect)
        with self._lock:
            read_ms = (time.perf_counter() - start) * 1e3
            pending = self.store.pending()
            previous = None
            if pending is not None and pending.rect == rect:
                previous = pending.probs
            else:
                road, covered = read_rect(rect, self.store.chunk)
                previous = road.astype(np.float32) if covered.any() else None
            prompts = [sp.prompt for sp in self.store.prompts()]
            t0 = time.perf_counter()
            probs = self.predictor.predict(ViewImage(rect, image, valid), previous, prompts)
            model_ms = (time.perf_counter() - t0) * 1e3
            self.store.set_pending(rect, probs, self.predictor.name)
            total = (time.perf_counter() - start) * 1e3
            self.last_timings = {"read_ms": read_ms, "model_ms": model_ms, "total_ms": total}
            return {
                "rect": rect.as_list(),
                "model": self.predictor.name,
                "road_pixels": int((probs > self.options.road_threshold).sum()),
                "revision": self.store.revision,
                "timings": dict(self.last_timings),
            }

    # -- mask edits -----------------------------------------------------------------------------
    def accept(self) -> dict[str, Any]:
        """Merge the pending prediction into the accepted mask (road where above the threshold,
        added to what was accepted before; the view's valid pixels become accepted area)."""
        with self._lock:
            pending = self.store.pending()
            if pending is None:
                raise ParameterError("nothing to accept: run a prediction on a view first")
            rect = pending.rect
            _, valid = self._view_pixels(rect)
            old_road, old_cov = read_rect(rect, self.store.chunk)
            road = old_road | ((pending.probs > self.options.road_threshold) & valid)
            chunks = paste_rect(rect, self.store.chunk, road=road, covered=old_cov | valid)
            payload = {"rect": rect.as_list(), "model": pending.model}
            self.store.edit_mask("accept", payload, chunks, clear_pending=True)
            return self._after_edit()

    def draw_road(self, points: Any) -> dict[str, Any]:
        """Draw a road polyline (``(N, 2)`` pixel ``(x, y)``, N >= 2) into the accepted mask."""
        p = self._check_points(points, "road")
        width = self.options.road_width
        rect = polyline_rect(p, width, self.shape)
        if rect is None:
            raise ParameterError("the road lies outside the image")
        stroke = road_stroke(p, rect, width=width)
        with self._lock:
            chunks = paste_rect(rect, self.store.chunk, road=stroke, covered=stroke, where=stroke)
            self.store.edit_mask("road", {"points": p.tolist(), "width": width}, chunks)
            return self._after_edit()

    def delete_edge(self, edge: int, graph_revision: int) -> dict[str, Any]:
        """Delete edge ``edge`` of the graph the page got at ``graph_revision``.

        Raises
        ------
        StaleGraphError
            The graph has changed since ``graph_revision``.
        ParameterError
            No such edge, or it has no road pixels left.
        """
        with self._lock:
            graph = self.graph()
            if int(graph_revision) != self.graph_revision:
                raise StaleGraphError(
                    f"the graph changed (revision {self.graph_revision}, the page had "
                    f"{graph_revision}); reload it and select the edge again"
                )
            if not 0 <= int(edge) < graph.num_edges:
                raise ParameterError(f"edge {edge} does not exist ({graph.num_edges} edges)")
            ends = graph.nodes[graph.edges[int(edge)]]
            radius = self.options.delete_radius
            rect = polyline_rect(ends, radius + 2, self.shape)
            if rect is None:
                raise ParameterError(f"edge {edge} lies outside the image")
            road, covered = read_rect(rect, self.store.chunk)
            clear = edge_pixels(graph, int(edge), road, rect, radius=radius)
            if not clear.any():
                raise ParameterError(f"edge {edge} has no road pixels to delete")
            chunks = paste_rect(rect, self.store.chunk, road=road & ~clear, covered=covered)
            payload = {"edge": int(edge), "ends": ends.tolist()}
            self.store.edit_mask("delete_edge", payload, chunks)
            return self._after_edit()

    def undo(self) -> dict[str, Any]:
        """Undo the last action (prompt or mask edit)."""
        with self._lock:
            action = self.store.undo()
            if action is None:
                raise ParameterError("nothing to undo")
            return {"undone": action.kind, **self._after_edit()}

    def redo(self) -> dict[str, Any]:
        """Redo the last undone action."""
        with self._lock:
            action = self.store.redo()
            if action is None:
                raise ParameterError("nothing to redo")
            return {"redone": action.kind, **self._after_edit()}

    def _after_edit(self) -> dict[str, Any]:
        graph = self.graph()
        return {
            "revision": self.store.revision,
            "graph_revision": self.graph_revision,
            "nodes": graph.num_nodes,
            "edges": graph.num_edges,
        }

    # -- graph ----------------------------------------------------------------------------------
    def _graph_revision(self) -> int:
        """The revision :meth:`graph` has now (the graph is rebuilt if a mask action changed)."""
        self.graph()
        return self.graph_revision

    def graph(self) -> RoadGraph:
        """The graph of the accepted mask (rebuilt when a mask action changed; georeferenced
        with the processed image's georeference)."""
        with self._lock:
            key = tuple(a.id for a in self.store.actions() if a.kind in _MASK_ACTIONS)
            if self._graph is None or key != self._graph_key:
                self._graph = accepted_graph(
                    self.store.chunk,
                    self.store.chunk_index(),
                    self.shape,
                    georef=self.source.georef,
                    mask2graph=self.options.mask2graph,
                )
                self._graph_key = key
                # history is linear, so the last active mask action names the graph (ids only
                # grow); stable across restarts
                self.graph_revision = key[-1] if key else 0
            return self._graph

    def graph_json(self) -> dict[str, Any]:
        """The graph for the page: ``nodes`` ``[[x, y], ...]`` pixels, ``edges`` ``[[i, j],
        ...]`` and the ``revision`` to name edges by."""
        with self._lock:
            g = self.graph()
            return {
                "revision": self.graph_revision,
                "nodes": np.round(g.nodes, 2).tolist(),
                "edges": g.edges.tolist(),
            }

    def export_graph(self, path: str | os.PathLike[str], fmt: str | None = None) -> RoadGraph:
        """Write the graph with :func:`linegraph2road.io.write_graph` (as ``l2r extract``)."""
        graph = self.graph()
        write_graph(graph, path, fmt)
        return graph

    def accepted_views(self) -> list[Rect]:
        """The distinct views accepted (active accept actions), in order."""
        with self._lock:
            seen: list[Rect] = []
            for a in self.store.actions():
                if a.kind == "accept":
                    r = Rect.from_list(a.payload["rect"])
                    if r not in seen:
                        seen.append(r)
            return seen

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the raster and the store (releasing the project lock)."""
        self.source.close()
        store = getattr(self, "store", None)
        if store is not None:
            store.close()

    def __enter__(self) -> AnnotationSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
