"""AnnotationSession: the library API the server's handlers call, on a synthetic road raster."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from linegraph2road.annotate import AnnotationSession, SessionOptions, StaleGraphError
from linegraph2road.errors import FormatError, InputFileError, ParameterError
from linegraph2road.inference import RasterSource
from linegraph2road.io import read_graph
from linegraph2road.pipelines.annotate import export_project
from linegraph2road.training.dataset import find_tiles, load_tile
from tests.annotate.conftest import road_image, write_tif


def dist_to_graph(graph, point) -> float:  # type: ignore[no-untyped-def]
    """Distance in pixels from ``point`` to the nearest edge of ``graph``."""
    if graph.num_edges == 0:
        return float("inf")
    a, b = graph.nodes[graph.edges[:, 0]], graph.nodes[graph.edges[:, 1]]
    p = np.asarray(point, dtype=float)
    t = np.clip(((p - a) * (b - a)).sum(1) / np.maximum(((b - a) ** 2).sum(1), 1e-12), 0, 1)
    return float(np.hypot(*(a + (b - a) * t[:, None] - p).T).min())


def annotated(road_tif: Path, project: Path) -> AnnotationSession:
    """A session with one scribble on the horizontal road, predicted and accepted."""
    s = AnnotationSession(road_tif, project)
    s.add_prompt("scribble", [[20, 100.5], [200, 100.5]], True)
    out = s.predict(200, 160)
    assert out["rect"] == [0, 0, 400, 320] and out["road_pixels"] > 500
    s.accept()
    return s


def test_the_workflow_and_its_persistence(road_tif: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    s = annotated(road_tif, project)
    g = s.graph()
    assert g.georef is not None and g.edge_prob is not None
    assert dist_to_graph(g, (300, 100.5)) < 3 and dist_to_graph(g, (250.5, 250)) < 3
    assert s.store.pending() is None
    # draw a road where there is none, then delete an edge of the horizontal road
    s.draw_road([[330, 180], [390, 300]])
    assert dist_to_graph(s.graph(), (360, 240)) < 3
    g = s.graph()
    k = int(np.argmin([dist_to_graph(g.subgraph_edges(np.arange(g.num_edges) == i), (330, 100.5))
                       for i in range(g.num_edges)]))  # fmt: skip
    mid = g.nodes[g.edges[k]].mean(axis=0)
    with pytest.raises(StaleGraphError):
        s.delete_edge(k, s.graph_revision - 1)
    s.delete_edge(k, s.graph_revision)
    assert dist_to_graph(s.graph(), mid) > 5
    after_delete = s.graph()
    s.undo()
    assert dist_to_graph(s.graph(), mid) < 3
    s.redo()
    state = s.state()
    nodes = s.graph().nodes.copy()
    s.close()
    # reopening shows exactly the same state
    s = AnnotationSession(road_tif, project)
    again = s.state()
    for key in ("revision", "prompts", "can_undo", "can_redo", "accepted"):
        assert again[key] == state[key], key
    assert np.array_equal(s.graph().nodes, nodes) and np.array_equal(nodes, after_delete.nodes)
    s.close()


def test_exports_read_back(road_tif: Path, tmp_path: Path) -> None:
    s = annotated(road_tif, tmp_path / "project")
    n = s.graph().num_edges
    s.close()
    for ext in ("geojson", "gpkg", "graphml"):
        kind, graph = export_project(tmp_path / "project", tmp_path / f"roads.{ext}")
        assert kind == ext
        back = read_graph(tmp_path / f"roads.{ext}")
        assert back.num_edges == graph.num_edges == n
    kind, report = export_project(tmp_path / "project", tmp_path / "labels")
    assert kind == "labels" and len(report.tiles) == 1
    records = find_tiles(tmp_path / "labels")
    assert len(records) == 1 and records[0].window is None
    tile = load_tile(records[0])
    assert tile.image.shape == (3, 320, 400) and tile.image.dtype == np.uint8
    assert np.array_equal(tile.image, road_image())  # the processed image, 1 m/px already
    assert tile.masks[1].sum() > 1000 and len(tile.vertices) > 5
    doc = json.loads((tmp_path / "labels" / f"{records[0].tile_id}_labels.json").read_text())
    assert doc["image"] == f"{records[0].tile_id}_image.tif"  # where l2r prep records it
    assert doc["gsd"] == 1.0 and records[0].gsd == 1.0
    assert doc["source"]["view"] == [0, 0, 400, 320]
    with pytest.raises(ParameterError, match="nothing accepted"):
        s2 = AnnotationSession(road_tif, tmp_path / "fresh", with_model=False)
        try:
            export_project(tmp_path / "fresh", tmp_path / "l2", session=s2)
        finally:
            s2.close()


def test_export_finds_the_image_or_says_so(road_tif: Path, tmp_path: Path) -> None:
    annotated(road_tif, tmp_path / "project").close()
    moved = tmp_path / "moved.tif"
    road_tif.rename(moved)
    with pytest.raises(InputFileError, match="pass the image"):
        export_project(tmp_path / "project", tmp_path / "r.geojson")
    export_project(tmp_path / "project", tmp_path / "r.geojson", image=moved)
    assert (tmp_path / "r.geojson").is_file()


@pytest.mark.parametrize("kind", ["uint16", "grey"])
def test_tiles_have_the_extract_stretch(kind: str, tmp_path: Path) -> None:
    rgb = road_image((300, 300))
    data = (rgb.astype(np.uint16) * 40 + 1000).astype(np.uint16) if kind == "uint16" else rgb[:1]
    path = write_tif(tmp_path / f"{kind}.tif", data)
    with AnnotationSession(path, tmp_path / "p", with_model=False) as s:
        png = Image.open(io.BytesIO(s.image_tile(0, 1, 0)))
        tile = np.asarray(png)
    with RasterSource(path) as src:
        expect, _ = src.read(0, 256, 256, 44)
    assert tile.shape == (256, 44, 4) and (tile[..., 3] == 255).all()
    assert np.array_equal(np.moveaxis(tile[..., :3], -1, 0), expect)


def test_misuse_is_refused(road_tif: Path, tmp_path: Path) -> None:
    not_raster = tmp_path / "notes.tif"
    not_raster.write_text("not a raster")
    with pytest.raises(FormatError):
        AnnotationSession(not_raster, tmp_path / "p1")
    assert not (tmp_path / "p1").exists()
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(road_tif.read_bytes()[:3000])
    # a truncated GeoTIFF may open (its header is there): its pixels are refused when read
    with pytest.raises(FormatError), AnnotationSession(corrupt, tmp_path / "p2") as s:
        s.image_tile(0, 0, 0)
    annotated(road_tif, tmp_path / "project").close()
    other = write_tif(tmp_path / "other.tif", road_image(seed=3))
    with pytest.raises(ParameterError, match=r"project for roads\.tif"):
        AnnotationSession(other, tmp_path / "project")
    with pytest.raises(ParameterError, match="gsd"):
        AnnotationSession(road_tif, tmp_path / "project", options=SessionOptions(gsd=2.0))
    with AnnotationSession(road_tif, tmp_path / "project") as s:
        rev = s.store.revision
        for bad in ([[1, 2], [500, 2]], [[float("nan"), 1], [2, 2]], [[1, 2, 3]], "x", []):
            with pytest.raises(ParameterError):
                s.add_prompt("scribble", bad, True)
        with pytest.raises(ParameterError):
            s.add_prompt("lasso", [[1, 2]], True)
        with pytest.raises(ParameterError, match="nothing to accept"):
            s.accept()
        assert s.store.revision == rev and len(s.state()["prompts"]) == 1
        assert s.view_at(-50, 1e6).as_list() == [0, 0, 400, 320]
