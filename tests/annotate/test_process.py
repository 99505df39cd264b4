"""A real ``l2r annotate`` process (uvicorn): kill -9 keeps every acknowledged action, and the
token guards a server bound beyond localhost. Misuse of the command: tests/cli/test_annotate.py."""

from __future__ import annotations

import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any

import httpx2
import pytest


def call(server: Any, method: str, path: str, **kw: Any) -> httpx2.Response:
    return httpx2.request(
        method, f"{server.base}{path}", headers={"X-L2R-Token": server.token}, timeout=60, **kw
    )


def snapshot(server: Any) -> tuple[Any, Any]:
    state = call(server, "GET", "/api/state").json()
    names = ("revision", "prompts", "can_undo", "can_redo", "accepted", "pending")
    keep = {k: state[k] for k in names}
    return keep, call(server, "GET", "/api/graph").json()


def test_kill_9_loses_nothing_acknowledged(
    road_tif: Path, tmp_path: Path, server_factory: Any
) -> None:
    project = tmp_path / "project"
    server = server_factory(road_tif, "--project", project)
    scribble = {"kind": "scribble", "points": [[20, 100.5], [200, 100.5]], "positive": True}
    assert call(server, "POST", "/api/prompts", json=scribble).status_code == 200
    assert call(server, "POST", "/api/predict", json={"x": 200, "y": 160}).status_code == 200
    assert call(server, "POST", "/api/accept").status_code == 200
    road = {"points": [[330, 180], [390, 300]]}
    assert call(server, "POST", "/api/roads", json=road).status_code == 200
    graph = call(server, "GET", "/api/graph").json()
    delete = {"edge": 0, "revision": graph["revision"]}
    assert call(server, "POST", "/api/edges/delete", json=delete).status_code == 200
    click = {"kind": "click", "points": [[300, 250]], "positive": False}
    assert call(server, "POST", "/api/prompts", json=click).status_code == 200
    assert call(server, "POST", "/api/undo").status_code == 200  # the click, now redo-able
    acknowledged = snapshot(server)

    # one more request in flight when the process dies: it may or may not have committed
    def in_flight() -> None:
        with pytest.raises(httpx2.TransportError):
            call(server, "POST", "/api/predict", json={"x": 1, "y": 1})

    late = threading.Thread(target=in_flight)
    late.start()
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    late.join()
    server.close()

    again = server_factory(road_tif, "--project", project)
    state, graph = snapshot(again)
    assert graph == acknowledged[1]
    for key in ("prompts", "can_undo", "can_redo", "accepted"):
        assert state[key] == acknowledged[0][key], key
    assert state["revision"] in (acknowledged[0]["revision"], acknowledged[0]["revision"] + 1)
    assert call(again, "POST", "/api/redo").json()["redone"] == "prompt"


def _lan_address() -> str | None:
    """An address of this machine other than loopback, if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent for UDP connect
            addr = s.getsockname()[0]
    except OSError:
        return None
    return None if addr.startswith("127.") else addr


def test_beyond_localhost_every_request_needs_the_token(
    road_tif: Path, tmp_path: Path, server_factory: Any
) -> None:
    server = server_factory(road_tif, "--project", tmp_path / "p", "--host", "0.0.0.0")
    assert any("reachable from other machines" in line for line in server.lines)
    port = server.base.rsplit(":", 1)[1]
    hosts = ["127.0.0.1", *filter(None, [_lan_address()])]
    for host in hosts:
        base = f"http://{host}:{port}"
        for path in ("/", "/api/state", "/static/app.js", "/api/tile/0/0/0.png"):
            r = httpx2.get(base + path, timeout=30)
            assert r.status_code == 403, (host, path)
        assert httpx2.post(base + "/api/undo", timeout=30).status_code == 403
        assert httpx2.get(base + "/", params={"token": server.token}, timeout=30).status_code == 200
