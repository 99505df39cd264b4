"""``l2r prep osm`` and ``l2r prep dataset``: bad input, real OSM data, determinism, atomicity."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import Result
from rasterio.errors import NotGeoreferencedWarning

from linegraph2road.pipelines.prep import tile_seed
from tests.cli.conftest import one_line_error
from tests.data_prep.test_datasets import write_cityscale, write_spacenet

Run = Callable[..., Result]
FINLAND_BOUNDS = ("26.93", "60.52", "26.97", "60.54")


@pytest.fixture
def finland(fixtures_dir: Path) -> Path:
    return fixtures_dir / "osm" / "finland_motorway_test.osm.pbf"


def _tif(
    path: Path, *, crs: str | None, west: float = 0.0, north: float = 0.0, size: int = 64
) -> Path:
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8"}
    if crs is not None:
        profile.update(crs=crs, transform=Affine(1.0, 0.0, west, 0.0, -1.0, north))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as ds:
            ds.write(np.full((3, size, size), 90, np.uint8))
    return path


def _files(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` (hidden temp dirs included)."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _untouched(out: Path) -> bool:
    return not out.exists() or not any(out.iterdir())


# -- bad input: one line, exit 2, nothing written ----------------------------------------------
def test_raster_without_crs(l2r: Run, finland: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    raster = _tif(tmp_path / "bare.tif", crs=None)
    line = one_line_error(l2r("prep", "osm", "--osm", finland, "--raster", raster, "-o", out))
    assert "raster has no CRS; lon/lat OSM data cannot be placed on it" in line
    assert _untouched(out)


def test_truncated_pbf(l2r: Run, finland: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.osm.pbf"
    cut.write_bytes(finland.read_bytes()[:60000])
    out = tmp_path / "out"
    line = one_line_error(l2r("prep", "osm", "--osm", cut, "--bounds", *FINLAND_BOUNDS, "-o", out))
    assert "cut.osm.pbf" in line and "truncated or corrupt" in line
    assert _untouched(out)


def test_no_overlap_at_all(l2r: Run, finland: Path, tmp_path: Path) -> None:
    vegas = _tif(tmp_path / "vegas.tif", crs="EPSG:32611", west=660000, north=4010000)
    out = tmp_path / "out"
    line = one_line_error(l2r("prep", "osm", "--osm", finland, "--raster", vegas, "-o", out))
    assert "do not overlap" in line
    assert _untouched(out)


@pytest.mark.parametrize(
    "args",
    [
        (),  # neither --raster nor --bounds
        ("--raster", "x.tif", "--bounds", *FINLAND_BOUNDS),  # both
    ],
)
def test_raster_or_bounds(l2r: Run, finland: Path, tmp_path: Path, args: tuple) -> None:
    line = one_line_error(l2r("prep", "osm", "--osm", finland, *args, "-o", tmp_path / "o"))
    assert "--raster" in line and "--bounds" in line


def test_missing_inputs(l2r: Run, finland: Path, tmp_path: Path) -> None:
    line = one_line_error(
        l2r(
            "prep",
            "osm",
            "--osm",
            tmp_path / "nope.pbf",
            "--bounds",
            *FINLAND_BOUNDS,
            "-o",
            tmp_path / "o",
        )
    )
    assert "no such file" in line
    line = one_line_error(
        l2r(
            "prep",
            "dataset",
            "--format",
            "cityscale",
            "--root",
            tmp_path / "none",
            "-o",
            tmp_path / "o",
        )
    )
    assert "no such dataset folder" in line
    (tmp_path / "empty").mkdir()
    line = one_line_error(
        l2r(
            "prep",
            "dataset",
            "--format",
            "spacenet",
            "--root",
            tmp_path / "empty",
            "-o",
            tmp_path / "o",
        )
    )
    assert "no spacenet tiles" in line


def test_tile_seed_is_stable() -> None:
    assert tile_seed(0, "region_1") == tile_seed(0, "region_1")
    assert len({tile_seed(s, t) for s in (0, 1) for t in ("region_1", "region_2")}) == 4
    assert 0 <= tile_seed(7, "r000_c000") < 2**32


# -- runs that build labels ---------------------------------------------------------------------
def test_no_roads_in_bounds(l2r: Run, finland: Path, tmp_path: Path) -> None:
    """Extents overlap but no road is in the raster: empty labels, a warning, exit 0."""
    lake = _tif(tmp_path / "lake.tif", crs="EPSG:32635", west=496160, north=6709400)
    out = tmp_path / "out"
    r = l2r("prep", "osm", "--osm", finland, "--raster", lake, "-o", out)
    assert r.exit_code == 0, r.output
    warn = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    assert len(warn) == 1 and "no roads" in warn[0] and "lake.tif" in warn[0]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(t["tile_id"], t["edges"]) for t in manifest["tiles"]] == [("lake", 0)]
    assert manifest["tiles"][0]["files"]
    assert all((out / f).is_file() for f in manifest["tiles"][0]["files"])


def test_finland_bounds_tiled(l2r: Run, finland: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = l2r(
        "prep",
        "osm",
        "--osm",
        finland,
        "--bounds",
        *FINLAND_BOUNDS,
        "--gsd",
        "1",
        "--tile-size",
        "1024",
        "-o",
        out,
    )
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "manifest.json").read_text())
    tiles = manifest["tiles"]
    assert len(tiles) == 9  # about 2200 x 2230 px at 1 m/px in 1024 px tiles
    assert manifest["grid"]["georef"]["crs"] == "EPSG:32635"
    assert sum(t["bridges"] for t in tiles) >= 5
    assert sum(t["edges"] for t in tiles) > 781  # edges crossing tile borders are split
    for t in tiles:
        assert t["files"] and all((out / f).is_file() for f in t["files"])
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp leftovers


def _cityscale_run(l2r: Run, root: Path, out: Path, workers: int, *extra: str) -> Result:
    return l2r(
        "prep",
        "dataset",
        "--format",
        "cityscale",
        "--root",
        root,
        "-o",
        out,
        "--workers",
        workers,
        *extra,
    )


def test_dataset_deterministic_across_workers(l2r: Run, tmp_path: Path) -> None:
    root = write_cityscale(tmp_path / "cs", list(range(6)), size=96)
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = _cityscale_run(l2r, root, one, 1, "--seed", "3")
    r2 = _cityscale_run(l2r, root, two, 2, "--seed", "3")
    assert r1.exit_code == 0 and r2.exit_code == 0, (r1.output, r2.output)
    assert _files(one) == _files(two)  # same bytes, whatever the number of workers
    manifest = json.loads((one / "manifest.json").read_text())
    assert [t["tile_id"] for t in manifest["tiles"]] == [f"region_{i}" for i in range(6)]
    assert [t["split"] for t in manifest["tiles"]] == ["train"] * 6
    r3 = _cityscale_run(l2r, root, tmp_path / "three", 1, "--seed", "4")
    assert r3.exit_code == 0
    assert _files(tmp_path / "three") != _files(one)


def test_dataset_split_and_spacenet(l2r: Run, tmp_path: Path) -> None:
    root = write_spacenet(tmp_path / "sn", {"train": ["a"], "validation": ["b"], "test": ["c"]})
    out = tmp_path / "out"
    r = l2r(
        "prep",
        "dataset",
        "--format",
        "spacenet",
        "--root",
        root,
        "-o",
        out,
        "--split",
        "test",
        "--d-nei",
        "48",
    )
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(t["tile_id"], t["split"]) for t in manifest["tiles"]] == [("c", "test")]
    assert manifest["label_params"] == {"d_nei": 48.0}


def test_failed_tile_leaves_nothing_half_written(
    l2r: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from linegraph2road.data_prep import tile as tile_mod

    root = write_cityscale(tmp_path / "cs", [0, 1], size=64)
    out = tmp_path / "out"

    def broken(labels: object, out_dir: Path, tile_id: str, **kw: object) -> list[Path]:
        Path(out_dir, f"{tile_id}_partial.png").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tile_mod, "write_tile_labels", broken)
    with pytest.raises(OSError, match="No space left"):
        _cityscale_run(l2r, root, out, 1)
    assert _untouched(out)  # no partial file, no temp folder, no manifest


def test_spacenet_geojson_centerlines_on_their_tile(
    l2r: Run, tmp_path: Path, fixtures_dir: Path
) -> None:
    """`--osm` takes any road source: the real SpaceNet Vegas GeoJSON on its own GeoTIFF."""
    d = fixtures_dir / "spacenet_vegas"
    out = tmp_path / "vegas"
    res = l2r(
        "prep", "osm", "--osm", d / "AOI_2_Vegas_img0_gt.geojson",
        "--raster", d / "RGB-PanSharpen_AOI_2_Vegas_img0.tif", "-o", out,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    labels = json.loads(next(out.glob("*_labels.json")).read_text())
    assert labels["counts"]["positives"] > 0 and labels["counts"]["keypoints"] > 0
    assert next(out.glob("*_road.tif")).exists()
