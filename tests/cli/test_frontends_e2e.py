"""Every front-end end to end on the CLI: l2r train (tiny) -> checkpoint -> l2r extract
--frontend X on the real Vegas GeoTIFF -> a georeferenced graph inside the tile -> l2r eval.

Models are trained for a handful of steps: this checks the plumbing (checkpoint kinds, the two
graph methods, georeference, formats), not accuracy; ``bench/learn_*.py`` show that they learn.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import rasterio
from click.testing import Result

from linegraph2road.frontends.checkpoint import checkpoint_kind
from tests.cli.test_train import _sparse_thresholds
from tests.training import VEGAS, VEGAS_GT, VEGAS_TIF, make_vegas_labels

L2R = Callable[..., Result]
pytestmark = pytest.mark.skipif(
    not VEGAS.is_dir(), reason="real fixtures not found (set L2R_FIXTURES)"
)


@pytest.fixture(scope="module")
def labels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_vegas_labels(tmp_path_factory.mktemp("vegas") / "labels")


def _inside_and_scored(l2r: L2R, out: Path, tmp_path: Path) -> dict:
    doc = json.loads(out.read_text())
    coords = [
        (x, y)
        for f in doc["features"]
        for x, y in (
            f["geometry"]["coordinates"]
            if f["geometry"]["type"] == "LineString"
            else [p for line in f["geometry"]["coordinates"] for p in line]
        )
    ]
    with rasterio.open(VEGAS_TIF) as ds:
        b = ds.bounds
    eps = 1e-9
    assert all(b.left - eps <= x <= b.right + eps and b.bottom - eps <= y <= b.top + eps
               for x, y in coords)  # fmt: skip
    report = tmp_path / "eval.json"
    r = l2r("eval", "--gt", VEGAS_GT, "--pred", out, "--json", report)
    assert r.exit_code == 0, r.output
    s = json.loads(report.read_text())["summary"]
    for v in (s["topo"]["precision"], s["topo"]["recall"], s["topo"]["f1"], s["apls"]["score"]):
        assert v is None or 0.0 <= v <= 1.0
    return doc


def test_nl_linknet_with_the_topology_head(l2r: L2R, labels: Path, tmp_path: Path) -> None:
    """NL-LinkNet's features feed our coupled NMS + topology head (LineGraph2Road training)."""
    run = tmp_path / "run"
    r = l2r("train", "tiny_cpu", "-o", run, "--max-steps", "3", "--set", f"data.train={labels}",
            "--set", "model.frontend=nl-linknet", "--set", "model.size=tiny",
            "--set", "data.samples_per_tile=4")  # fmt: skip
    assert r.exit_code == 0, r.output
    ckpt = run / "checkpoints" / "last.safetensors"
    assert checkpoint_kind(ckpt) == "model"
    out = tmp_path / "pred.geojson"
    t_k, t_r = _sparse_thresholds(ckpt, labels)  # a barely trained model: its strongest peaks
    r = l2r("extract", VEGAS_TIF, "-o", out, "--checkpoint", ckpt, "--frontend", "nl-linknet",
            "--device", "cpu", "--no-progress", "--t-k", t_k, "--t-r", t_r,
            "--t-topo", "0.0")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "nl-linknet/tiny" in r.stderr and "mask2graph" not in r.stderr
    doc = _inside_and_scored(l2r, out, tmp_path)
    assert doc["features"], "the extracted graph is empty"


@pytest.mark.parametrize(
    ("config", "frontend", "extra"),
    [
        ("nl_linknet_tiny_cpu", "nl-linknet", ()),
        ("fctl_tiny_cpu", "fctl", ("--set", "optim.refiner_epochs=0")),  # 3 refiner steps: flat
        ("experts_tiny_cpu", "experts", ("--set", "data.samples_per_tile=2")),
    ],
)
def test_segmentation_front_ends_through_mask2graph(
    l2r: L2R, labels: Path, tmp_path: Path, config: str, frontend: str, extra: tuple[str, ...]
) -> None:
    """A front-end trained with its paper's recipe (no topology head): its road mask goes
    through mask2graph; the road threshold is a high quantile of the tile's road probability
    whose mask gives a graph, so the barely trained model gives one whatever its calibration."""
    import numpy as np

    from linegraph2road.mask2graph import mask_to_graph

    run = tmp_path / "run"
    r = l2r("train", config, "-o", run, "--max-steps", "3", "--set", f"data.train={labels}",
            *extra)  # fmt: skip
    assert r.exit_code == 0, r.output
    ckpt = run / "checkpoints" / "last.safetensors"
    assert checkpoint_kind(ckpt) == ("experts" if frontend == "experts" else "frontend")
    mask = tmp_path / "road.tif"
    r = l2r("segment", VEGAS_TIF, "-o", mask, "--checkpoint", ckpt, "--frontend", frontend,
            "--device", "cpu", "--no-progress")  # fmt: skip
    assert r.exit_code == 0, r.output
    with rasterio.open(mask) as ds, rasterio.open(VEGAS_TIF) as src:
        assert ds.crs == src.crs and ds.bounds == pytest.approx(src.bounds, abs=1e-4)
        prob = ds.read(1)
    for q in (0.85, 0.75, 0.65, 0.55):
        threshold = f"{float(np.quantile(prob, q)):.6f}"
        if mask_to_graph(prob, threshold=float(threshold)).num_edges:
            break
    out = tmp_path / "pred.gpkg"
    r = l2r("extract", VEGAS_TIF, "-o", out, "--checkpoint", ckpt, "--frontend", frontend,
            "--road-threshold", threshold, "--device", "cpu", "--no-progress")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "mask2graph" in r.stderr
    geojson = tmp_path / "pred.geojson"
    assert l2r("convert", out, "-o", geojson).exit_code == 0
    doc = _inside_and_scored(l2r, geojson, tmp_path)
    assert doc["features"], "the extracted graph is empty"
    assert all(0.0 <= f["properties"]["prob"] <= 1.0 for f in doc["features"])
    other = "fctl" if frontend != "fctl" else "nl-linknet"
    r = l2r("extract", VEGAS_TIF, "-o", tmp_path / "x.geojson", "--checkpoint", ckpt,
            "--frontend", other)  # fmt: skip
    assert r.exit_code == 2 and f"not {other}" in r.stderr
