"""``l2r annotate`` on the command line: export, and misuse ending in one clear line (exit 2).

Serving is tested with real processes in tests/annotate/test_process.py; every case here fails
or exports before a server would start, so it runs in process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyogrio
import pytest
from click.testing import Result

from linegraph2road.annotate import AnnotationSession
from linegraph2road.annotate.store import ProjectStore
from linegraph2road.training.dataset import find_tiles
from tests.annotate.conftest import road_image, write_tif
from tests.cli.conftest import one_line_error


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    image = write_tif(tmp_path / "roads.tif", road_image())
    with AnnotationSession(image, tmp_path / "project") as s:
        s.add_prompt("scribble", [[20, 100.5], [200, 100.5]], True)
        s.predict(200, 160)
        s.accept()
    return image, tmp_path / "project"


def test_export_graphs_and_labels(
    l2r: Callable[..., Result], project: tuple[Path, Path], tmp_path: Path
) -> None:
    _, folder = project
    for name in ("roads.geojson", "roads.gpkg", "roads.graphml"):
        r = l2r("annotate", "--export", tmp_path / name, "--project", folder)
        assert r.exit_code == 0, r.output
        assert "wrote" in r.stderr and "edges" in r.stderr
    assert pyogrio.read_info(tmp_path / "roads.gpkg", layer="edges")["features"] > 0
    r = l2r("annotate", "--export", tmp_path / "labels", "--project", folder)
    assert r.exit_code == 0 and "1 training tile" in r.stderr
    assert len(find_tiles(tmp_path / "labels")) == 1
    r = l2r("annotate", "--export", tmp_path / "x.json", "--format", "geojson", "--project", folder)
    assert r.exit_code == 0


def test_misuse(l2r: Callable[..., Result], project: tuple[Path, Path], tmp_path: Path) -> None:
    image, folder = project
    notes = tmp_path / "notes.tif"
    notes.write_text("hello")
    assert "not an image GDAL can read" in one_line_error(
        l2r("annotate", notes, "--project", tmp_path / "a", "--no-browser")
    )
    assert "no such file" in one_line_error(l2r("annotate", tmp_path / "missing.tif"))
    other = write_tif(tmp_path / "other.tif", road_image(seed=5))
    line = one_line_error(l2r("annotate", other, "--project", folder, "--no-browser"))
    assert "project for roads.tif, not this image" in line
    with ProjectStore(folder):  # holds the lock, as a running server does
        line = one_line_error(l2r("annotate", image, "--project", folder, "--no-browser"))
        assert "open in another l2r annotate" in line
    line = one_line_error(
        l2r("annotate", image, "--project", folder, "--host", "203.0.113.7", "--no-browser")
    )
    assert "cannot listen on 203.0.113.7" in line
    assert "needs --project" in one_line_error(l2r("annotate", "--export", tmp_path / "o.geojson"))
    assert "give the IMAGE" in one_line_error(l2r("annotate"))
    assert "--format applies to --export" in one_line_error(
        l2r("annotate", image, "--format", "gpkg")
    )
    assert "no annotation project" in one_line_error(
        l2r("annotate", "--export", tmp_path / "o.geojson", "--project", tmp_path / "none")
    )
    line = one_line_error(l2r("annotate", "--export", tmp_path / "o.xyz", "--project", folder))
    assert "--format labels" in line
    assert not (tmp_path / "o.geojson").exists() and not (tmp_path / "none").exists()
