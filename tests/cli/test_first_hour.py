"""What a new user's first hour hit (issue 10), one test each: labels that find their image, the
GSD travelling from labels to checkpoint to extraction, validation that never ends a run, window
layouts that cannot cover the image, outputs checked before the work, interrupts that exit 130 /
143 and clean up, resumable prep, CosmiQ's command-line APLS preset, honest messages."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import Result

from linegraph2road.errors import FormatError, ParameterError
from linegraph2road.frontends.checkpoint import checkpoint_gsd
from linegraph2road.model import build_model, save_checkpoint
from linegraph2road.training import find_tiles, load_tile
from tests.cli.conftest import one_line_error
from tests.cli.test_extract import LOW, geotiff, scene
from tests.data_prep.test_datasets import write_cityscale

L2R = Callable[..., Result]


@pytest.fixture(scope="module")
def vegas_labels(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    from linegraph2road.pipelines.prep import prep_osm

    d = fixtures_dir / "spacenet_vegas"
    out = tmp_path_factory.mktemp("labels") / "vegas"
    prep_osm(
        d / "AOI_2_Vegas_img0_gt.geojson", out, raster=d / "RGB-PanSharpen_AOI_2_Vegas_img0.tif"
    )
    return out


@pytest.fixture(scope="module")
def ckpt_2m(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model whose checkpoint says it was trained on 2 m/px labels."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "two_metres.safetensors"
    return save_checkpoint(build_model("tiny", window_size=64), path, {"data": {"gsd": 2.0}})


# -- 1 + 3: labels record their image and GSD; the checkpoint and extract follow -----------------
def test_prep_writes_the_image_beside_labels_at_model_gsd(vegas_labels: Path) -> None:
    (tile,) = find_tiles(vegas_labels)  # no `images` folder needed
    assert tile.image.name == "RGB-PanSharpen_AOI_2_Vegas_img0_image.tif"
    assert tile.image.parent == vegas_labels and tile.window is None
    assert tile.gsd == 1.0 and tile.shape == (352, 352)  # 1300 px at 0.27 m -> 352 px at 1 m
    data = load_tile(tile)
    assert data.image.shape == (3, 352, 352) and data.image.std() > 10
    doc = json.loads((vegas_labels / "RGB-PanSharpen_AOI_2_Vegas_img0_labels.json").read_text())
    assert doc["gsd"] == 1.0 and doc["image"] in doc["files"]
    manifest = json.loads((vegas_labels / "manifest.json").read_text())
    assert manifest["complete"] and manifest["gsd"] == 1.0
    assert doc["image"] in manifest["tiles"][0]["files"]


def test_train_records_the_labels_gsd_and_refuses_mixed_scales(
    l2r: L2R, vegas_labels: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    res = l2r("train", "tiny_cpu", "-o", run, "--set", f"data.train={vegas_labels}",
              "--max-steps", "2")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert checkpoint_gsd(run / "checkpoints" / "last.safetensors") == 1.0
    line = one_line_error(
        l2r(
            "train",
            "tiny_cpu",
            "-o",
            tmp_path / "other",
            "--set",
            f"data.train={vegas_labels}",
            "--set",
            "data.gsd=0.3",
            "--max-steps",
            "1",
        )
    )
    assert "different ground sampling distances" in line and "0.3" in line


def test_extract_runs_at_the_checkpoint_gsd_and_warns_when_forced(
    l2r: L2R, ckpt_2m: Path, tmp_path: Path
) -> None:
    image = geotiff(tmp_path / "a.tif", scene(192, 192))  # 1 m/px
    res = l2r("extract", image, "-o", tmp_path / "g.geojson", "--checkpoint", ckpt_2m, *LOW)
    assert res.exit_code == 0, res.output
    assert "to 2 m/px (96 x 96)" in res.stderr and "warning" not in res.stderr
    res = l2r("extract", image, "-o", tmp_path / "h.geojson", "--checkpoint", ckpt_2m, "--gsd",
              "1", *LOW)  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "warning: --gsd 1 m/px differs from the 2 m/px the model was trained at" in res.stderr
    res = l2r("segment", image, "-o", tmp_path / "r.tif", "--checkpoint", ckpt_2m, "--no-progress")
    assert res.exit_code == 0 and "to 2 m/px (96 x 96)" in res.stderr


# -- 2: validation never ends a run ---------------------------------------------------------------
def test_validation_skips_an_oversized_candidate_graph(
    l2r: L2R, vegas_labels: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import linegraph2road.inference.extract as extract_mod

    monkeypatch.setattr(extract_mod, "MAX_WINDOW_LINE_GRAPH_EDGES", 0)  # every window too large
    run = tmp_path / "run"
    res = l2r("train", "tiny_cpu", "-o", run, "--set", f"data.train={vegas_labels}",
              "--set", f"data.val={vegas_labels}", "--set", "validation.every=1",
              "--set", "validation.t_k=0.01", "--set", "validation.t_r=0.01",
              "--max-steps", "8")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "validation skipped tile RGB-PanSharpen_AOI_2_Vegas_img0" in res.stderr
    rows = [ln.split(",") for ln in (run / "log.csv").read_text().splitlines()]
    header, val = rows[0], next(r for r in rows if r[0] == "val")
    assert val[header.index("val_topo_f1")] == "" and val[header.index("val_skipped")] == "1.0"
    assert (run / "checkpoints" / "last.safetensors").is_file()


def test_validation_windows_that_cannot_cover_are_refused_before_training(
    l2r: L2R, vegas_labels: Path, tmp_path: Path
) -> None:
    line = one_line_error(
        l2r(
            "train",
            "tiny_cpu",
            "-o",
            tmp_path / "run",
            "--set",
            f"data.train={vegas_labels}",
            "--set",
            f"data.val={vegas_labels}",
            "--set",
            "validation.n_windows=1",
            "--max-steps",
            "1",
        )
    )
    assert "validation.n_windows = 1" in line and "cannot cover 352 px" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


# -- 5: too few windows ---------------------------------------------------------------------------
def test_too_few_windows_are_refused(l2r: L2R, tmp_path: Path) -> None:
    torch.manual_seed(0)
    ckpt = save_checkpoint(build_model("tiny", window_size=64), tmp_path / "m.safetensors")
    image = geotiff(tmp_path / "a.tif", scene(200, 200))
    for command in ("extract", "segment"):
        out = tmp_path / f"out.{'geojson' if command == 'extract' else 'tif'}"
        line = one_line_error(
            l2r(command, image, "-o", out, "--checkpoint", ckpt, "--windows", "2", "--no-progress")
        )
        assert "2 windows of 64 px cannot cover 200 px" in line and "at least 4" in line
        assert not out.exists()


# -- 6: outputs that cannot be written are found before the work ----------------------------------
def test_unwritable_outputs_fail_before_any_work(
    l2r: L2R, ckpt_2m: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    image = geotiff(tmp_path / "a.tif", scene(96, 96))
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    bad = blocker / "out"
    cases = [
        ("extract", image, "-o", bad / "g.geojson", "--checkpoint", ckpt_2m),
        ("extract", image, "-o", tmp_path / "g.geojson", "--checkpoint", ckpt_2m,
         "--save-masks", bad),
        ("segment", image, "-o", bad / "r.tif", "--checkpoint", ckpt_2m),
        ("eval", "--gt", fixtures_dir / "spacenet_small_json" / "gt.json",
         "--pred", fixtures_dir / "spacenet_small_json" / "prop.json", "--json", bad / "r.json"),
        ("eval", "--gt", fixtures_dir / "spacenet_small_json" / "gt.json",
         "--pred", fixtures_dir / "spacenet_small_json" / "prop.json", "--plots", bad / "p"),
    ]  # fmt: skip
    for args in cases:
        line = one_line_error(l2r(*args))
        assert "cannot write" in line or "is a file" in line, line
    assert not (tmp_path / "g.geojson").exists()


# -- 7: interrupts --------------------------------------------------------------------------------
def _l2r_process(*args: Any) -> subprocess.Popen[str]:
    l2r_bin = Path(sys.executable).parent / "l2r"
    # a shell's background job (`cmd &`, as CI may run us) ignores SIGINT and so would the
    # child; give it the default disposition so that Python turns SIGINT into an interrupt
    return subprocess.Popen(
        [str(l2r_bin), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_eval_plots_cleans_up(
    tmp_path: Path, fixtures_dir: Path, sig: signal.Signals, code: int
) -> None:
    plots = tmp_path / "plots"
    cs = fixtures_dir / "cityscale_example"
    proc = _l2r_process("eval", "--gt", cs / "gt.p", "--pred", cs / "prop.p", "--plots", plots,
                        "--json", tmp_path / "r.json")  # fmt: skip
    deadline = time.monotonic() + 120
    while not (plots.is_dir() and any(plots.iterdir())):  # the staging folder is there
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "unfinished ones were not written" in err
    assert not plots.exists() and not (tmp_path / "r.json").exists()


def test_interrupted_prep_resumes(
    l2r: L2R, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import linegraph2road.pipelines.prep as prep_mod

    root = write_cityscale(tmp_path / "cs", list(range(4)), size=64)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    args = ("prep", "dataset", "--format", "cityscale", "--root", root, "-o")
    assert l2r(*args, whole).exit_code == 0

    real, calls = prep_mod._dataset_job, []

    def stop_at_third(*a: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(prep_mod, "_dataset_job", stop_at_third)
    res = l2r(*args, cut)
    assert res.exit_code == 130 and "interrupted" in res.stderr
    manifest = json.loads((cut / "manifest.json").read_text())
    assert manifest["complete"] is False and len(manifest["tiles"]) == 2
    with pytest.raises(FormatError, match="did not finish"):
        find_tiles(cut)
    monkeypatch.setattr(prep_mod, "_dataset_job", real)
    res = l2r(*args, cut)
    assert res.exit_code == 0 and "2 kept from an interrupted run" in res.stderr
    files = sorted(p.relative_to(cut).as_posix() for p in cut.rglob("*"))
    assert files == sorted(p.relative_to(whole).as_posix() for p in whole.rglob("*"))
    for name in files:  # the same bytes as the run that was never interrupted
        assert (cut / name).read_bytes() == (whole / name).read_bytes(), name
    assert len(find_tiles(cut)) == 4  # images found through the manifest's dataset root


# -- 8: CosmiQ's published numbers from the CLI ---------------------------------------------------
def test_cosmiq_command_line_preset_reproduces_the_published_sample(
    l2r: L2R, tmp_path: Path, fixtures_dir: Path
) -> None:
    v = fixtures_dir / "spacenet_vegas"
    gt, pred = v / "AOI_2_Vegas_img0_gt.gpickle", v / "AOI_2_Vegas_img0_prop.gpickle"
    res = l2r("eval", "--gt", gt, "--pred", pred, "--metrics", "apls", "--apls-variant",
              "cosmiq", "--apls-preset", "apls-cli", "--json", tmp_path / "r.json")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "cosmiq (apls-cli preset) variant" in res.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["apls"]["score"] == pytest.approx(0.7362, abs=0.001)
    assert report["summary"]["apls"]["preset"] == "apls-cli"
    params = report["params"]["apls_params"]
    assert (params["midpoint_spacing"], params["is_curved_eps"]) == (200.0, 0.12)
    res = l2r("eval", "--gt", gt, "--pred", pred, "--metrics", "apls", "--apls-variant", "cosmiq")
    assert "cosmiq (spacenet preset) variant" in res.stdout
    line = one_line_error(l2r("eval", "--gt", gt, "--pred", pred, "--apls-preset", "apls-cli"))
    assert "applies to the cosmiq APLS variant only" in line


# -- 9: messages that said the wrong thing --------------------------------------------------------
def test_segment_reports_the_share_at_its_threshold(
    l2r: L2R, ckpt_2m: Path, tmp_path: Path
) -> None:
    image = geotiff(tmp_path / "a.tif", scene(96, 96))
    res = l2r("segment", image, "-o", tmp_path / "r.tif", "--checkpoint", ckpt_2m,
              "--threshold", "0.3", "--no-progress")  # fmt: skip
    assert res.exit_code == 0 and "% road at 0.3)" in res.stderr


def test_convert_says_which_coordinates_the_file_holds(
    l2r: L2R, tmp_path: Path, fixtures_dir: Path
) -> None:
    src = fixtures_dir / "spacenet_vegas" / "AOI_2_Vegas_img0_gt.gpickle"
    res = l2r("convert", src, "-o", tmp_path / "v.geojson")
    assert res.exit_code == 0 and "(lon/lat, EPSG:4326)" in res.stderr
    res = l2r("convert", src, "-o", tmp_path / "v.graphml")
    assert "(CRS EPSG:32611)" in res.stderr
    res = l2r("convert", src, "-o", tmp_path / "v.p")
    assert "(pixel coordinates)" in res.stderr


def test_info_reads_the_crs_of_an_osmnx_saved_graphml(
    l2r: L2R, tmp_path: Path, fixtures_dir: Path
) -> None:
    ox = pytest.importorskip("osmnx", reason="osmnx is a dev/test dependency")
    ours = tmp_path / "v.graphml"
    l2r("convert", fixtures_dir / "spacenet_vegas" / "AOI_2_Vegas_img0_gt.gpickle", "-o", ours)
    lonlat = tmp_path / "lonlat.graphml"
    ox.save_graphml(ox.project_graph(ox.load_graphml(ours), to_crs="EPSG:4326"), lonlat)
    res = l2r("info", lonlat)
    assert res.exit_code == 0
    georef = next(ln for ln in res.stdout.splitlines() if ln.startswith("georef:"))
    assert "UTM zone 11N" in georef and "1.000 m/px" in georef  # lon/lat placed on its UTM grid


def test_windows_error_is_a_parameter_error() -> None:
    from linegraph2road.inference.windows import window_grid

    with pytest.raises(ParameterError, match="at least 3 windows"):
        window_grid(1306, 1306, window=512, n=2)
    assert len(window_grid(1306, 1306, window=512, n=3)) == 9
