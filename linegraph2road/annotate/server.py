"""The annotation web server: a thin Starlette app over :class:`~.session.AnnotationSession`.

Each route parses its request, calls one session method in the thread pool and returns its
result; no algorithm lives here. uvicorn serves it (:func:`serve`).

Access
------
Every request needs the session's access token -- the page, its static files and the API --
given as the ``token`` query parameter or the ``X-L2R-Token`` header; anything else gets 403.
The server binds to 127.0.0.1 by default; the token is also what keeps other users of the
machine, other hosts (with ``--host``) and other web pages in the browser (DNS rebinding,
cross-site requests: a page cannot set the header, and does not know the token) out.

Errors come back as JSON ``{"error": "..."}``: 400 for bad input (a domain error's message),
403 without the token, 404 for unknown paths and tiles outside the image, 409 for an edit of a
graph that changed, 413 for oversized bodies, 500 (logged) for bugs -- the server keeps running.
"""

from __future__ import annotations

import hmac
import html
import io
import json
import logging
import socket
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from linegraph2road.annotate.session import StaleGraphError
from linegraph2road.annotate.tiles import TileOutside
from linegraph2road.errors import L2RError, ParameterError

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from linegraph2road.annotate.session import AnnotationSession

__all__ = ["EXPORT_FORMATS", "STATIC_DIR", "Exporter", "bind_socket", "create_app", "serve"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: What the page can export: graph formats (as ``l2r extract``) and ``labels`` (``l2r prep``).
EXPORT_FORMATS = ("geojson", "gpkg", "graphml", "labels")
#: Largest request body accepted, bytes.
MAX_BODY = 4 << 20
#: ``exporter(session, format) -> path`` of the file or folder written.
Exporter = Callable[["AnnotationSession", str], Path]

log = logging.getLogger("linegraph2road.annotate")


class TokenMiddleware:
    """Refuse every HTTP request without the access token (query ``token`` or header
    ``X-L2R-Token``), comparing in constant time."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = b""
            for name, value in scope.get("headers", []):
                if name == b"x-l2r-token":
                    given = value
            if not given:
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                given = (query.get("token") or [""])[0].encode("latin-1", "replace")
            if not hmac.compare_digest(given, self.token):
                response = JSONResponse(
                    {"error": "access token missing or wrong: open the URL l2r annotate printed"},
                    status_code=403,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _json_body(request: Request) -> dict[str, Any]:
    size = int(request.headers.get("content-length") or 0)
    if size > MAX_BODY:
        raise HTTPException(413, f"request body of {size} bytes is over {MAX_BODY}")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, f"request body of {len(body)} bytes is over {MAX_BODY}")
    if not body:
        return {}
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise ParameterError(f"request body is not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ParameterError("request body must be a JSON object")
    return doc


def _get(doc: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = doc.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _types(kind)):
        raise ParameterError(f"request needs {name!r} of type {_names(kind)}, got {value!r:.60}")
    return value


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _names(kind: type | tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in _types(kind))


def _png(data: bytes | None) -> Response:
    if data is None:
        return Response(status_code=204)
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})


def create_app(session: AnnotationSession, *, token: str, exporter: Exporter) -> Starlette:
    """The ASGI app for ``session`` (see the module docstring).

    Parameters
    ----------
    session : AnnotationSession
    token : str
        The access token every request must carry.
    exporter : callable
        ``exporter(session, format) -> Path`` writes an export (format in
        :data:`EXPORT_FORMATS`) and returns the file or folder; the same function the CLI's
        ``--export`` runs.
    """
    if len(token) < 16:
        raise ParameterError("the access token must have at least 16 characters")
    number = (int, float)

    def call(fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        return run_in_threadpool(fn, *args)

    async def index(request: Request) -> Response:
        text = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(text.replace("__L2R_TOKEN__", html.escape(token, quote=True)))

    async def state(request: Request) -> Response:
        return JSONResponse(await call(session.state))

    async def tile(request: Request) -> Response:
        p = request.path_params
        return _png(await call(session.image_tile, p["z"], p["x"], p["y"]))

    async def overlay(request: Request) -> Response:
        p = request.path_params
        return _png(await call(session.overlay_tile, p["z"], p["x"], p["y"]))

    async def pending(request: Request) -> Response:
        return _png(await call(session.pending_png))

    async def graph(request: Request) -> Response:
        return JSONResponse(await call(session.graph_json))

    async def prompts(request: Request) -> Response:
        doc = await _json_body(request)
        kind = _get(doc, "kind", str)
        points = _get(doc, "points", list)
        positive = _get(doc, "positive", bool)
        return JSONResponse(await call(session.add_prompt, kind, points, positive))

    async def predict(request: Request) -> Response:
        doc = await _json_body(request)
        x, y = float(_get(doc, "x", number)), float(_get(doc, "y", number))
        return JSONResponse(await call(session.predict, x, y))

    async def accept(request: Request) -> Response:
        return JSONResponse(await call(session.accept))

    async def roads(request: Request) -> Response:
        doc = await _json_body(request)
        return JSONResponse(await call(session.draw_road, _get(doc, "points", list)))

    async def delete_edge(request: Request) -> Response:
        doc = await _json_body(request)
        edge, rev = _get(doc, "edge", int), _get(doc, "revision", int)
        return JSONResponse(await call(session.delete_edge, edge, rev))

    async def undo(request: Request) -> Response:
        return JSONResponse(await call(session.undo))

    async def redo(request: Request) -> Response:
        return JSONResponse(await call(session.redo))

    async def export(request: Request) -> Response:
        fmt = request.query_params.get("format", "geojson")
        if fmt not in EXPORT_FORMATS:
            raise ParameterError(f"export format must be one of {EXPORT_FORMATS}, got {fmt!r}")
        path = await call(exporter, session, fmt)
        data, name = await call(_export_bytes, Path(path))
        headers = {
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-L2R-Path": str(path),
        }
        return Response(data, media_type="application/octet-stream", headers=headers)

    async def domain_error(request: Request, exc: Exception) -> Response:
        status = (
            404
            if isinstance(exc, TileOutside)
            else 409
            if isinstance(exc, StaleGraphError)
            else 400
        )
        return JSONResponse({"error": " ".join(str(exc).split())}, status_code=status)

    async def http_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # registered for HTTPException only
            raise exc
        detail = exc.detail
        if exc.status_code == 404:
            detail = f"no such resource: {request.url.path}"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return JSONResponse({"error": detail}, status_code=exc.status_code)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("l2r annotate: %s %s failed", request.method, request.url.path)
        return JSONResponse(
            {"error": f"internal error ({type(exc).__name__}: {exc}); nothing was changed"},
            status_code=500,
        )

    routes = [
        Route("/", index),
        Route("/api/state", state),
        Route("/api/tile/{z:int}/{x:int}/{y:int}.png", tile),
        Route("/api/overlay/{z:int}/{x:int}/{y:int}.png", overlay),
        Route("/api/pending.png", pending),
        Route("/api/graph", graph),
        Route("/api/prompts", prompts, methods=["POST"]),
        Route("/api/predict", predict, methods=["POST"]),
        Route("/api/accept", accept, methods=["POST"]),
        Route("/api/roads", roads, methods=["POST"]),
        Route("/api/edges/delete", delete_edge, methods=["POST"]),
        Route("/api/undo", undo, methods=["POST"]),
        Route("/api/redo", redo, methods=["POST"]),
        Route("/api/export", export),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            L2RError: domain_error,
            HTTPException: http_error,
            Exception: server_error,
        },
    )
    app.add_middleware(TokenMiddleware, token=token)
    return app


def _export_bytes(path: Path) -> tuple[bytes, str]:
    """A file's bytes, or a folder zipped, and the download name."""
    if path.is_file():
        return path.read_bytes(), path.name
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(path.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(path.parent).as_posix())
    return buf.getvalue(), f"{path.name}.zip"


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: a free one).

    Raises
    ------
    ParameterError
        The address cannot be bound (in use, not an address of this machine).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ParameterError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from exc
    return sock


def serve(
    app: ASGIApp,
    sock: socket.socket,
    *,
    on_ready: Callable[[str, int], None] | None = None,
) -> None:
    """Serve ``app`` on the listening ``sock`` (:func:`bind_socket`) with uvicorn until
    interrupted (Ctrl+C / SIGTERM); ``on_ready(host, port)`` is called first, when requests
    already queue, so a URL printed there works at once. The socket is closed at the end."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, timeout_graceful_shutdown=2, lifespan="off"
    )
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(str(host), int(port))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
