"""The README's quick start, run literally: prep -> train -> extract -> eval on the real tile.

The ``bash`` block under "## Quick start" is taken from README.md as it is and run by bash in an
empty folder that has ``../shared`` beside it (as the repository has), with the installed ``l2r``
on the PATH. Nothing is added to the commands: if the README changes, this runs the new text.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from linegraph2road.frontends.checkpoint import checkpoint_gsd, checkpoint_thresholds
from linegraph2road.io import read_graph
from linegraph2road.io.raster import read_georef

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_start_block() -> str:
    """The first ```bash block after the "## Quick start" heading."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Quick start", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert match is not None, "README's Quick start has no bash block"
    return match.group(1)


def test_quick_start_block_uses_the_real_fixtures() -> None:
    block = quick_start_block()
    for command in ("l2r prep osm", "l2r train tiny_cpu", "l2r extract", "l2r eval"):
        assert command in block
    assert "../shared/fixtures/spacenet_vegas/" in block


def test_readme_quick_start_literally(tmp_path: Path, fixtures_dir: Path) -> None:
    (tmp_path / "shared").symlink_to(fixtures_dir.parent.resolve(), target_is_directory=True)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", quick_start_block()],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    manifest = json.loads((work / "labels/vegas/manifest.json").read_text())
    assert manifest["complete"] and manifest["gsd"] == 1.0
    ckpt = work / "runs/smoke/checkpoints/last.safetensors"
    assert checkpoint_gsd(ckpt) == 1.0  # the labels' GSD travelled into the checkpoint
    stored = checkpoint_thresholds(ckpt)  # tiny_cpu validates every 10 epochs and selects
    assert stored is not None and stored["source"].startswith("selected on 1 tile(s)")
    assert "thresholds: t_k" in run.stderr and "(checkpoint: selected on 1 tile(s)" in run.stderr

    # roads found at the thresholds the validation selected, on the tile (lon/lat inside it)
    graph = read_graph(work / "vegas_roads.geojson")
    assert graph.num_edges > 0, run.stderr[-2000:]
    tile = fixtures_dir / "spacenet_vegas/RGB-PanSharpen_AOI_2_Vegas_img0.tif"
    tile_georef = read_georef(tile)
    assert tile_georef is not None
    corners = tile_georef.pixel_to_lonlat(np.array([[0.0, 0.0], [1300.0, 1300.0]]))
    lonlat = graph.georef.pixel_to_lonlat(graph.nodes)
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    assert np.all((lonlat >= lo - 1e-6) & (lonlat <= hi + 1e-6))
    assert "resampled from 0.271 m/px" in run.stderr  # extract used the checkpoint's GSD

    lines = run.stdout.splitlines()
    assert any(ln.startswith("TOPO") for ln in lines) and any(ln.startswith("APLS") for ln in lines)
