"""The HTTP layer in process (starlette's TestClient): access, errors, and thin handlers."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from linegraph2road.annotate import AnnotationSession
from linegraph2road.annotate.server import MAX_BODY, STATIC_DIR, create_app
from linegraph2road.errors import ParameterError
from linegraph2road.pipelines.annotate import page_export

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture
def client(road_tif: Path, tmp_path: Path) -> Iterator[TestClient]:
    with AnnotationSession(road_tif, tmp_path / "project") as session:
        app = create_app(session, token=TOKEN, exporter=page_export)
        with TestClient(app, headers={"X-L2R-Token": TOKEN}) as c:
            yield c


def test_every_request_needs_the_token(road_tif: Path, tmp_path: Path) -> None:
    with AnnotationSession(road_tif, tmp_path / "p", with_model=False) as session:
        app = create_app(session, token=TOKEN, exporter=page_export)
        bare = TestClient(app)
        for path in ("/", "/api/state", "/api/tile/0/0/0.png", "/static/app.js", "/nowhere"):
            r = bare.get(path)
            assert r.status_code == 403 and "token" in r.json()["error"], path
            assert bare.get(path, params={"token": TOKEN + "x"}).status_code == 403
        assert bare.post("/api/undo", headers={"X-L2R-Token": "wrong"}).status_code == 403
        page = bare.get("/", params={"token": TOKEN})
        assert page.status_code == 200 and f'content="{TOKEN}"' in page.text
        assert bare.get("/static/app.js", params={"token": TOKEN}).status_code == 200
        with pytest.raises(ParameterError):
            create_app(session, token="short", exporter=page_export)


def test_the_page_loads_nothing_from_the_network() -> None:
    for f in STATIC_DIR.iterdir():
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", text), f.name
        assert "import(" not in text and "https://" not in text and "http://" not in text, f.name


def test_tiles_outside_or_with_paths_are_404(client: TestClient) -> None:
    ok = client.get("/api/tile/0/1/1.png")
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/png"
    for path in (
        "/api/tile/0/2/0.png",
        "/api/tile/9/0/0.png",
        "/api/tile/0/-1/0.png",
        "/api/tile/0/..%2F..%2Fetc%2Fpasswd/0.png",
        "/api/tile/0/0/0.png/../../../../etc/passwd",
        "/static/../store.py",
        "/static/%2e%2e/store.py",
    ):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "error" in r.json()
    assert client.get("/api/overlay/0/0/0.png").status_code == 204  # nothing accepted yet


def test_bad_requests_are_400_and_change_nothing(client: TestClient) -> None:
    rev = client.get("/api/state").json()["revision"]
    bad = [
        ("/api/prompts", b"{not json"),
        ("/api/prompts", b"[1, 2]"),
        ("/api/prompts", b'{"kind": "scribble", "points": [[1, 2], [3, 4]], "positive": 1}'),
        ("/api/prompts", b'{"kind": "click", "points": [[1e9, 2]], "positive": true}'),
        ("/api/prompts", b'{"kind": "click", "points": "here", "positive": true}'),
        ("/api/predict", b'{"x": "a", "y": 1}'),
        ("/api/roads", b'{"points": [[1, 2]]}'),
        ("/api/edges/delete", b'{"edge": 0, "revision": 0}'),
        ("/api/accept", b""),
        ("/api/undo", b""),
    ]
    for path, body in bad:
        r = client.post(path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400, (path, body, r.text)
        assert r.json()["error"], path
    big = b'{"points": [' + b"[1, 2]," * (MAX_BODY // 6) + b"[1, 2]]}"
    assert client.post("/api/roads", content=big).status_code == 413
    assert client.get("/api/prompts").status_code == 405
    assert client.get("/api/export", params={"format": "shp"}).status_code == 400
    assert client.get("/api/state").json()["revision"] == rev


def test_a_session_over_http(client: TestClient) -> None:
    scribble = {"kind": "scribble", "points": [[20, 100.5], [200, 100.5]], "positive": True}
    r = client.post("/api/prompts", json=scribble)
    assert r.status_code == 200 and r.json()["id"] == 1
    r = client.post("/api/predict", json={"x": 200, "y": 160})
    assert r.status_code == 200 and r.json()["model"] == "live pixel classifier"
    assert client.get("/api/pending.png").headers["content-type"] == "image/png"
    state = client.get("/api/state").json()
    assert state["pending"]["rect"] == [0, 0, 400, 320]
    assert "random forest" in state["model_description"]
    assert client.post("/api/accept").status_code == 200
    assert client.get("/api/overlay/0/0/0.png").status_code == 200
    graph = client.get("/api/graph").json()
    assert len(graph["edges"]) > 0
    stale = client.post("/api/edges/delete", json={"edge": 0, "revision": graph["revision"] - 1})
    assert stale.status_code == 409
    ok = client.post("/api/edges/delete", json={"edge": 0, "revision": graph["revision"]})
    assert ok.status_code == 200
    assert client.post("/api/undo").json()["undone"] == "delete_edge"
    assert client.post("/api/redo").json()["redone"] == "delete_edge"
    r = client.get("/api/export", params={"format": "geojson"})
    assert r.status_code == 200 and r.json()["type"] == "FeatureCollection"
    assert r.headers["x-l2r-path"].endswith("roads_roads.geojson")
    r = client.get("/api/export", params={"format": "labels"})
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert "labels/manifest.json" in names and any(n.endswith("_image.tif") for n in names)


def test_the_static_files_ship_in_the_package() -> None:
    """pyproject's package-data globs cover every file the page loads (a wheel holds them)."""
    import fnmatch
    import tomllib

    repo = Path(__file__).resolve().parents[2]
    config = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = config["package-data"]["linegraph2road.annotate"]
    files = sorted(p.relative_to(STATIC_DIR.parent).as_posix() for p in STATIC_DIR.iterdir())
    assert {"static/index.html", "static/app.js", "static/app.css"} <= set(files)
    for f in files:
        assert any(fnmatch.fnmatch(f, g) for g in globs), f
