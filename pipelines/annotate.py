"""``l2r annotate``: serve the annotation app, and export a project (orchestration only).

* :func:`run_server` opens an :class:`~linegraph2road.annotate.AnnotationSession`, makes an
  access token, builds the app (:func:`~linegraph2road.annotate.server.create_app`) and serves
  it with uvicorn, printing the URL (and opening the browser).
* :func:`export_project` writes what a project holds: the graph (GeoJSON / GeoPackage / GraphML /
  any :data:`~linegraph2road.io.GRAPH_FORMATS`, through :func:`~linegraph2road.io.write_graph`
  exactly as ``l2r extract`` writes it) or the accepted area as ``l2r prep`` training labels
  (:func:`export_labels`). The page's export button and ``l2r annotate --export`` both run it.

Training labels: one tile per accepted view (each view was accepted whole, so every pixel of
the tile has a label; overlapping views give overlapping tiles), id ``{stem}_c{col}_r{row}``
from the view's corner in the processed image. Each tile gets the labels ``l2r prep`` writes
(:func:`~linegraph2road.pipelines.prep.write_tile`: road / keypoint / overpass masks, candidate
edges, graph, ``{id}_labels.json``) of the project's *final* graph clipped to the view -- later
edits, deletions and drawn roads included -- plus the tile's processed RGB image as
``{id}_image.tif`` (uint8, at the processing GSD, georeferenced; ``.png`` for a raster without
georeference), recorded with the GSD as ``image`` and ``gsd`` in ``{id}_labels.json`` exactly as
``l2r prep`` records them, so that :func:`~linegraph2road.training.dataset.find_tiles` finds it
and training knows its scale; and a ``manifest.json``.
Roads drawn outside every accepted view are in the graph export but in no label tile.
"""

from __future__ import annotations

import json
import os
import secrets
import webbrowser
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from affine import Affine

from linegraph2road.annotate import AnnotationSession, SessionOptions
from linegraph2road.annotate.server import EXPORT_FORMATS, bind_socket, create_app, serve
from linegraph2road.data_prep.grid import TileGrid, clip_to_grid
from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.errors import FormatError, ParameterError
from linegraph2road.georef import Georeference
from linegraph2road.io import GRAPH_FORMATS, guess_format
from linegraph2road.io._atomic import atomic_path
from linegraph2road.pipelines.prep import PrepReport, write_tile

__all__ = [
    "LOOPBACK_HOSTS",
    "default_project",
    "export_labels",
    "export_project",
    "page_export",
    "run_server",
]

PathLike = str | os.PathLike[str]
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def default_project(image: PathLike) -> Path:
    """``./{image stem}_annotate``: the project folder when ``--project`` is not given."""
    return Path.cwd() / f"{Path(image).name.split('.')[0]}_annotate"


def export_format(out: PathLike, fmt: str | None) -> str:
    """``fmt``, else ``labels`` for a path without extension (a folder), else from the
    extension (:func:`~linegraph2road.io.guess_format`)."""
    if fmt is not None:
        if fmt != "labels" and fmt not in GRAPH_FORMATS:
            raise ParameterError(f"unknown export format {fmt!r}: labels or one of {GRAPH_FORMATS}")
        return fmt
    p = Path(out)
    if p.is_dir() or not p.suffix:
        return "labels"
    try:
        return guess_format(p)
    except FormatError as exc:
        raise FormatError(f"{exc}; or give --format labels for training labels") from exc


def _write_manifest(out: Path, report: PrepReport, header: dict[str, Any]) -> None:
    """``manifest.json`` of the export: every tile, and ``complete`` (all were written)."""
    # Written once, after every tile: an export is quick and is never resumed, so it needs none
    # of the resumable manifest that `l2r prep` keeps (pipelines/prep.py), only its format.
    tiles = [{**asdict(t), "files": list(t.files)} for t in report.tiles]
    doc = {**header, "complete": True, "tiles": tiles}
    with atomic_path(out / "manifest.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def export_labels(
    session: AnnotationSession,
    out_dir: PathLike,
    *,
    seed: int = 0,
    label_params: dict[str, Any] | None = None,
) -> PrepReport:
    """Write the accepted views as ``l2r prep`` training tiles (see the module docstring).

    Raises
    ------
    ParameterError
        Nothing accepted yet.
    """
    views = session.accepted_views()
    if not views:
        raise ParameterError(
            "nothing accepted yet: accept a predicted view before exporting labels"
        )
    graph = session.graph()
    pixel_graph = TaggedGraph.untagged(graph.with_georef(None))
    georef = session.source.georef
    stem = session.image_path.name.split(".")[0]
    out = Path(out_dir)
    report = PrepReport()
    for rect in views:
        tid = f"{stem}_c{rect.col0:06d}_r{rect.row0:06d}"
        g = None
        if georef is not None:
            g = Georeference(
                georef.crs, georef.transform @ Affine.translation(rect.col0, rect.row0)
            )
        tile = TileGrid(rect.width, rect.height, g, rect.col0, rect.row0, tid)
        image, _ = session.read(rect.row0, rect.col0, rect.height, rect.width)
        source = {
            "kind": "annotate",
            "annotated_image": session.image_path.name,
            "view": rect.as_list(),
            "gsd": session.options.gsd,
        }
        report.tiles.append(
            write_tile(
                clip_to_grid(pixel_graph, tile),
                tile,
                out,
                tid,
                seed=seed,
                label_params=label_params,
                source=source,
                image=image,
                gsd=session.options.gsd,
            )
        )
    header = {
        "command": "annotate",
        "seed": int(seed),
        "label_params": label_params or {},
        "image": session.image_path.name,
        "gsd": session.options.gsd,
    }
    _write_manifest(out, report, header)
    return report


def export_project(
    project: PathLike,
    out: PathLike,
    *,
    image: PathLike | None = None,
    fmt: str | None = None,
    session: AnnotationSession | None = None,
) -> tuple[str, Any]:
    """Export a project's graph or training labels to ``out``.

    Parameters
    ----------
    project : path
        The project folder. Opened without its lock, so a running server does not stop an
        export (the store is read in a consistent snapshot).
    out : path
        Graph file, or a folder for ``labels``.
    image : path or None
        The project's image when it has moved since the project was made.
    fmt : str or None
        ``labels`` or a graph format; None: from ``out`` (:func:`export_format`).
    session : AnnotationSession or None
        An open session to export from (the server's), instead of opening the project.

    Returns
    -------
    (str, RoadGraph or PrepReport)
        The format and what was written.
    """
    kind = export_format(out, fmt)
    own = session is None
    s = session or AnnotationSession(image, project, with_model=False, lock=False)
    try:
        if kind == "labels":
            return kind, export_labels(s, out)
        return kind, s.export_graph(out, kind)
    finally:
        if own:
            s.close()


def page_export(session: AnnotationSession, fmt: str) -> Path:
    """The page's export: into ``PROJECT/exports/`` (``{stem}_roads.{ext}`` or ``labels/``)."""
    if fmt not in EXPORT_FORMATS:
        raise ParameterError(f"export format must be one of {EXPORT_FORMATS}, got {fmt!r}")
    folder = session.store.folder / "exports"
    folder.mkdir(exist_ok=True)
    stem = session.image_path.name.split(".")[0]
    out = folder / ("labels" if fmt == "labels" else f"{stem}_roads.{fmt}")
    export_project(session.store.folder, out, fmt=fmt, session=session)
    return out


def run_server(
    image: PathLike,
    project: PathLike | None = None,
    *,
    checkpoint: PathLike | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    open_browser: bool = True,
    options: SessionOptions | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Open the session and serve the app until interrupted (see the module docstring)."""
    folder = Path(project) if project is not None else default_project(image)
    sock = bind_socket(host, port)  # first: a taken port fails before anything else is done
    try:
        session = AnnotationSession(image, folder, checkpoint=checkpoint, options=options)
    except BaseException:
        sock.close()
        raise
    with session:
        token = secrets.token_urlsafe(24)
        app = create_app(session, token=token, exporter=page_export)
        for note in session.source.notes:
            echo(f"note: {note}")
        if session.predictor is not None:
            echo(f"model: {session.predictor.description}")
        echo(f"project: {folder}")
        if host not in LOOPBACK_HOSTS:
            echo(
                f"warning: listening on {host}, reachable from other machines; every request "
                "needs the token in the URL below, share it only with people who may edit"
            )

        def ready(bound_host: str, bound_port: int) -> None:
            shown = f"[{bound_host}]" if ":" in bound_host else bound_host
            url = f"http://{shown}:{bound_port}/?token={token}"
            echo(f"l2r annotate: serving {url}  (Ctrl+C to stop)")
            if open_browser:
                webbrowser.open(url)

        serve(app, sock, on_ready=ready)
