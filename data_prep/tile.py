"""All training labels of one tile, and their files (paper, section 3.5; SPEC.md "Training labels").

:func:`build_tile_labels` turns a tile's :class:`~linegraph2road.data_prep.tagged.TaggedGraph`
(pixel coordinates on the tile's grid) into road, keypoint and overpass masks and labelled
candidate edges; :func:`write_tile_labels` writes them per tile id: ``{id}_road.png``,
``{id}_keypoint.png``, ``{id}_overpass.png`` (uint8 0/255; also as ``.tif`` when georeferenced),
``{id}_labels.npz`` (``vertices``, ``vertex_kind``, ``candidate_edges``, ``candidate_labels``,
``keypoint_points``, ``overpass_points``, ``crossing_pairs``, ``crossing_points``),
``{id}_graph.geojson`` (the refined ground truth, lon/lat when georeferenced),
``{id}_labels.json`` (every parameter, the seed, the source, counts, file names, the ground
sampling distance ``gsd`` and the tile's ``image`` when it is written beside the labels as
``{id}_image.tif``) and, optionally, ``{id}_preview.png`` (an overlay for checking OSM against
the imagery).

Every file is written to a temporary name and renamed, so none is ever half-written, and the
bytes depend only on the labels: the ``.npz`` is written with fixed member order and
timestamps (``np.savez`` stamps the current time), so the same seed gives identical files.

Rotation and flip invariance
----------------------------
Training augments tiles with 90-degree rotations, so the labels of a rotated tile should be the
rotated labels -- but Algorithm 4 draws random points and greedy NMS breaks ties by order, and
both would see a rotated graph differently. :func:`build_tile_labels` therefore computes every
label in a *canonical frame*: coordinates are snapped to 1/1024 px (exact under the transforms
below), the graph is put through the 8 rotations/flips of the tile (the dihedral group D4), each
is written in a canonical order (nodes sorted by ``(x, y)``, edges sorted), and the transform
with the smallest ``(shape, nodes, edges, tags)`` key is used; the results are transformed back.
All 8 transforms of a tile have the same canonical frame, so with the same seed the labels of a
rotated (or flipped) tile are exactly the rotated labels: masks pixel for pixel, vertices in
the same order (up to float rounding of the back-transform), the same candidate index pairs and
labels. The one exception is a tile whose graph is itself symmetric under some rotation/flip,
where no random labelling can be equivariant. The output graph's nodes come in the canonical
order, not the input's.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from linegraph2road.data_prep.candidate_labels import label_candidates
from linegraph2road.data_prep.labels import (
    canonical_frame,
    dihedral_mask_inverse,
    dihedral_points,
    keypoint_nodes,
    overpass_mask,
    road_mask,
)
from linegraph2road.data_prep.overpass import find_crossings
from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.errors import FormatError, GraphError
from linegraph2road.graph import RoadGraph
from linegraph2road.io import write_graph
from linegraph2road.io._atomic import atomic_path
from linegraph2road.io.raster import write_raster
from linegraph2road.overlay import COLORS, blend_mask, draw_graph, draw_points, make_canvas
from linegraph2road.rasterize import draw_discs

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from linegraph2road.georef import Georeference

__all__ = ["TileLabels", "build_tile_labels", "preview_canvas", "write_tile_labels"]


@dataclass(frozen=True, eq=False)
class TileLabels:
    """Training labels of one tile (all coordinates ``(x, y)`` pixels of the tile).

    Attributes
    ----------
    road, keypoint, overpass : (H, W) bool
        Masks: centerlines ``road_width`` px wide; discs at keypoints; discs at overpass
        crossing endpoints.
    vertices : (M, 2) float64
        Vertices: coupled NMS of keypoints and Algorithm 4 points, overpass endpoints adjusted.
    vertex_kind : (M,) int8
        ``KEYPOINT`` 0, ``OVERPASS`` 1, ``ROAD`` 2.
    candidate_edges : (C, 2) int64
        Vertex pairs within ``d_nei``, ``i < j``, sorted.
    candidate_labels : (C,) uint8
        1 iff the pair is directly connected along the ground truth.
    graph : TaggedGraph
        The ground truth after the overpass refinement (input georeference kept; nodes in the
        canonical order, see the module docstring).
    keypoint_points : (K, 2) float64
        Centres of the keypoint discs (the input graph's keypoints).
    overpass_points : (J, 2) float64
        Centres of the overpass discs (endpoints of crossing edges in ``graph``).
    crossing_pairs, crossing_points : (X, 2) int64, (X, 2) float64
        Crossing edge pairs (rows of ``graph.graph.edges``) and where they cross.
    crossing_method : str
        ``"tags"`` or ``"algorithm3"``.
    params : dict
        Every label parameter used (``seed`` apart: Algorithm 4's generator seed).
    """

    road: NDArray[np.bool_]
    keypoint: NDArray[np.bool_]
    overpass: NDArray[np.bool_]
    vertices: NDArray[np.float64]
    vertex_kind: NDArray[np.int8]
    candidate_edges: NDArray[np.int64]
    candidate_labels: NDArray[np.uint8]
    graph: TaggedGraph
    keypoint_points: NDArray[np.float64]
    overpass_points: NDArray[np.float64]
    crossing_pairs: NDArray[np.int64]
    crossing_points: NDArray[np.float64]
    crossing_method: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.road.shape[0]), int(self.road.shape[1]))

    def stats(self) -> dict[str, int]:
        """Counts for logs and reports."""
        pos = int(self.candidate_labels.sum())
        return {
            "keypoints": len(self.keypoint_points),
            "overpass_points": len(self.overpass_points),
            "crossings": len(self.crossing_pairs),
            "vertices": len(self.vertices),
            "candidates": len(self.candidate_edges),
            "positives": pos,
            "negatives": len(self.candidate_edges) - pos,
        }


# -- building -------------------------------------------------------------------------------------
def _check(shape: tuple[int, int], params: dict[str, Any]) -> tuple[int, int]:
    try:
        h, w = int(shape[0]), int(shape[1])
    except (TypeError, ValueError, IndexError) as exc:
        raise GraphError(f"tile shape must be (height, width), got {shape!r}") from exc
    if h <= 0 or w <= 0:
        raise GraphError(f"tile shape must be positive, got {shape!r}")
    for name in ("keypoint_radius", "overpass_radius", "d_k", "d_nei"):
        v = float(params[name])
        if not (math.isfinite(v) and v >= 0):
            raise GraphError(f"{name} must be a finite number of pixels >= 0, got {v!r}")
    return h, w


def build_tile_labels(
    tagged: TaggedGraph,
    shape: tuple[int, int],
    *,
    seed: int = 0,
    road_width: int = 3,
    keypoint_radius: float = 3.0,
    turn_min: float = 60.0,
    turn_max: float = 120.0,
    overpass_radius: float = 3.0,
    d_r: float = 16.0,
    d_k: float = 8.0,
    d_nei: float = 64.0,
    crossings: Literal["auto", "tags", "algorithm3"] = "auto",
    tau: float = 6.0,
    gamma: float = 1.0,
    alpha: float = 1.0,
    T: int = 100,
    P: int = 10,
    epsilon: float = 1e-3,
) -> TileLabels:
    """Every training label of one tile.

    Parameters
    ----------
    tagged : TaggedGraph
        The tile's ground truth, pixel coordinates ``(x, y)`` on its grid (e.g. from
        ``clip_to_grid``); not modified.
    shape : (H, W)
        Tile size in pixels.
    seed : int, default 0
        Seed of the numpy Generator for Algorithm 4: same seed, same labels.
    road_width : int, default 3
        Centerline width in the road mask, px (SAM-Road).
    keypoint_radius, overpass_radius : float, default 3
        Disc radii, px (paper).
    turn_min, turn_max : float, default 60 and 120
        Degree-2 nodes whose two edges form an angle in this range (degrees, 180 = straight) are
        keypoints, as are all nodes of degree != 2.
    d_r, d_k : float, default 16 and 8
        Coupled NMS radii, px; ``d_r`` also sets Algorithm 4's gaps ``U(d_r, 2 d_r - 1)``.
    d_nei : float, default 64
        Candidate edge radius, px.
    crossings : {"auto", "tags", "algorithm3"}, default "auto"
        Where overpasses come from: tags when the graph is tagged (OSM), else Algorithm 3.
    tau, gamma, alpha, T, P, epsilon
        Algorithm 3: intersection threshold (6 px), merge gap (1 px), step (1 px), max
        iterations (100), merge period (10), tolerance (1e-3); see
        :mod:`~linegraph2road.data_prep.overpass`.

    Returns
    -------
    TileLabels
    """
    # every label parameter, as plain JSON values (locals() holds exactly the arguments here)
    params: dict[str, Any] = {
        k: (v.item() if isinstance(v, np.generic) else v)
        for k, v in locals().items()
        if k not in ("tagged", "shape", "seed")
    }
    if not isinstance(tagged, TaggedGraph):
        raise GraphError(f"build_tile_labels needs a TaggedGraph, got {type(tagged).__name__}")
    h, w = _check(shape, params)
    canon, code = canonical_frame(tagged, (h, w))
    ch, cw = (h, w) if code % 2 == 0 else (w, h)
    g0 = canon.graph
    kp0 = keypoint_nodes(g0, turn_min=turn_min, turn_max=turn_max)
    road = road_mask(g0, (ch, cw), road_width=road_width)
    keypoint = draw_discs(g0.nodes[kp0], (ch, cw), radius=keypoint_radius)
    found = find_crossings(
        canon, method=crossings, tau=tau, gamma=gamma, alpha=alpha, T=T, P=P, epsilon=epsilon
    )
    g1 = found.graph.graph
    ov_pts = g1.nodes[found.endpoints]
    overpass = overpass_mask(ov_pts, (ch, cw), overpass_radius=overpass_radius)
    cand = label_candidates(
        g1,
        keypoints=keypoint_nodes(g1, turn_min=turn_min, turn_max=turn_max),
        overpass_nodes=found.endpoints,
        rng=np.random.default_rng(int(seed)),
        d_r=d_r,
        d_k=d_k,
        d_nei=d_nei,
        tau=tau,
        alpha=alpha,
        T=T,
        epsilon=epsilon,
    )

    def back(p: NDArray[np.float64]) -> NDArray[np.float64]:
        return dihedral_points(p, (h, w), code, inverse=True)

    out = RoadGraph(back(g1.nodes), g1.edges, None, tagged.graph.georef, tagged.graph.meta)
    return TileLabels(
        road=dihedral_mask_inverse(road, code),
        keypoint=dihedral_mask_inverse(keypoint, code),
        overpass=dihedral_mask_inverse(overpass, code),
        vertices=back(cand.vertices),
        vertex_kind=cand.vertex_kind,
        candidate_edges=cand.edges,
        candidate_labels=cand.labels,
        graph=dataclasses.replace(found.graph, graph=out, tagged=tagged.tagged),
        keypoint_points=back(g0.nodes[kp0]),
        overpass_points=back(ov_pts),
        crossing_pairs=found.pairs,
        crossing_points=back(found.points),
        crossing_method=found.method,
        params=params,
        seed=int(seed),
    )


# -- files ----------------------------------------------------------------------------------------
_MASKS = ("road", "keypoint", "overpass")
_ARRAYS: tuple[str, ...] = ("vertices", "vertex_kind", "candidate_edges", "candidate_labels")
_ARRAYS += ("keypoint_points", "overpass_points", "crossing_pairs", "crossing_points")


def _write_npz(path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    """A ``.npz`` (readable by ``np.load``) with fixed member order and timestamps, atomically."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(info, buf.getvalue())


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def preview_canvas(labels: TileLabels, image: ArrayLike | None = None) -> NDArray[np.uint8]:
    """An (H, W, 3) uint8 overlay of the labels, over a dimmed ``image`` when given.

    Road mask tinted white, keypoint discs yellow, overpass discs magenta; negative candidate
    edges thin grey, positive ones green; overpass endpoints as magenta dots. Roads that miss
    the imagery's roads show an OSM/imagery offset at a glance.
    """
    canvas = make_canvas(labels.shape, image)
    canvas = blend_mask(canvas, labels.road, COLORS["road"], alpha=0.35)
    canvas = blend_mask(canvas, labels.keypoint, COLORS["keypoint"], alpha=0.6)
    canvas = blend_mask(canvas, labels.overpass, COLORS["overpass"], alpha=0.6)
    cand = RoadGraph(labels.vertices, labels.candidate_edges)
    pos = labels.candidate_labels.astype(bool)
    canvas = draw_graph(canvas, cand, COLORS["negative"], width=1, edges=~pos)
    canvas = draw_graph(canvas, cand, COLORS["positive"], width=2, edges=pos)
    return draw_points(canvas, labels.overpass_points, COLORS["overpass"], radius=2.0)


def _check_tile_id(tile_id: str) -> str:
    tid = str(tile_id)
    if not tid or tid in (".", "..") or any(c in tid for c in "/\\\0") or tid != tid.strip():
        raise FormatError(
            f"tile id {tile_id!r} cannot be a file name prefix; use letters, digits, '_' or '-'"
        )
    return tid


def write_tile_labels(
    labels: TileLabels,
    out_dir: str | os.PathLike[str],
    tile_id: str,
    *,
    georef: Georeference | None = None,
    source: dict[str, Any] | None = None,
    preview_image: ArrayLike | None = None,
    preview: bool = False,
    image: str | None = None,
    gsd: float | None = None,
) -> list[Path]:
    """Write one tile's labels (layout in the module docstring).

    Parameters
    ----------
    labels : TileLabels
    out_dir : path
        Created if missing.
    tile_id : str
        File name prefix (no path separators).
    georef : Georeference or None
        The tile's georeference: adds GeoTIFF masks and makes the GeoJSON lon/lat. None keeps
        the graph's own georeference, if any, for the GeoJSON and writes PNG masks only.
    source : dict or None
        What the labels were made from (file names, dataset, tile offsets...), JSON-serialisable;
        copied into ``{id}_labels.json``.
    preview_image : (H, W) or (H, W, C) array or None
        Background of the preview (the tile's imagery); implies ``preview``.
    preview : bool, default False
        Write ``{id}_preview.png`` (:func:`preview_canvas`).
    image : str or None
        File name of the tile's image, relative to ``out_dir`` (``{id}_image.tif``, written by
        the caller), recorded as ``image`` for training to read; None when the image lives
        elsewhere (``source`` says where).
    gsd : float or None
        Ground sampling distance of the labels in metres per pixel, recorded as ``gsd``.

    Returns
    -------
    list of Path
        The files written, in writing order.
    """
    tid = _check_tile_id(tile_id)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in _MASKS:
        mask = getattr(labels, name).astype(np.uint8) * np.uint8(255)
        path = out / f"{tid}_{name}.png"
        write_raster(path, mask)
        written.append(path)
        if georef is not None:
            path = out / f"{tid}_{name}.tif"
            write_raster(path, mask, georef=georef)
            written.append(path)
    path = out / f"{tid}_labels.npz"
    _write_npz(path, {name: getattr(labels, name) for name in _ARRAYS})
    written.append(path)
    graph = labels.graph.graph if georef is None else labels.graph.graph.with_georef(georef)
    path = out / f"{tid}_graph.geojson"
    write_graph(graph, path)
    written.append(path)
    if preview or preview_image is not None:
        path = out / f"{tid}_preview.png"
        write_raster(path, np.moveaxis(preview_canvas(labels, preview_image), 2, 0))
        written.append(path)
    g = georef if georef is not None else graph.georef
    doc = {
        "tile_id": tid,
        "shape": list(labels.shape),
        "seed": labels.seed,
        "params": labels.params,
        "crossing_method": labels.crossing_method,
        "counts": labels.stats(),
        "source": dict(source or {}),
        "georef": None if g is None else g.to_dict(),
        "image": image,
        "gsd": None if gsd is None else float(gsd),
        "files": ([image] if image else []) + [p.name for p in written] + [f"{tid}_labels.json"],
    }
    path = out / f"{tid}_labels.json"
    _write_json(path, doc)
    written.append(path)
    return written
