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
