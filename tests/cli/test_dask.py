"""Scale-out on Dask through the real CLI: equality of the chunked path with one process on the
Vegas raster, resuming after a killed worker and a SIGKILLed client on a real cluster (a
``dask scheduler`` and ``dask worker`` processes on 127.0.0.1), many inputs with a corrupt one,
and the bad inputs refused before any work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from click.testing import Result

from linegraph2road.graph import RoadGraph
from linegraph2road.io import read_graph
from tests.cli.conftest import one_line_error

L2R = Callable[..., Result]
VEGAS = "spacenet_vegas/RGB-PanSharpen_AOI_2_Vegas_img0.tif"
DASK = str(Path(sys.executable).parent / "dask")
# tiny random weights: thresholds that give a few dozen vertices at 2 m/px; 1 torch thread each
METHOD = ("--gsd", "2", "--t-k", "0.509", "--t-r", "0.511", "--d-nei", "24", "--no-progress")
CHUNK = ("--chunk", "96", "--threads", "1")  # 2 x 2 chunks on the 176 px image
N_CHUNKS = 4
# servers bind 127.0.0.1 only, their HTTP endpoints included
LOCAL_HTTP = ("--no-dashboard", "--dashboard-address", "127.0.0.1:0")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from linegraph2road.model import build_model, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_checkpoint(build_model("tiny", window_size=64), path, {})
    return path


@pytest.fixture(scope="module")
def vegas(fixtures_dir: Path) -> Path:
    return fixtures_dir / VEGAS


@pytest.fixture(scope="module")
def reference(
    l2r: L2R, ckpt: Path, vegas: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Uninterrupted runs in this process: single-process extract and the chunked path."""
    out = tmp_path_factory.mktemp("ref")
    threads = torch.get_num_threads()
    try:
        single = l2r("extract", vegas, "-o", out / "single.gpkg", "--checkpoint", ckpt, *METHOD)
        assert single.exit_code == 0, single.output
        chunked = l2r("extract", vegas, "-o", out / "ref.parquet", "--checkpoint", ckpt,
                      *METHOD, *CHUNK)  # fmt: skip
        assert chunked.exit_code == 0, chunked.output
    finally:
        torch.set_num_threads(threads)
    assert f"{N_CHUNKS} chunks ({N_CHUNKS} computed, 0 kept" in chunked.stderr
    return {"single": out / "single.gpkg", "chunked": out / "ref.parquet"}


def _segments(g: RoadGraph) -> dict[tuple[tuple[float, ...], ...], float]:
    assert g.edge_prob is not None
    ends = g.nodes[g.edges].round(6).tolist()
    return {tuple(sorted(map(tuple, e))): float(p) for e, p in zip(ends, g.edge_prob, strict=True)}


def _same_graph(a: Path, b: Path) -> None:
    sa, sb = _segments(read_graph(a)), _segments(read_graph(b))
    assert sa.keys() == sb.keys()
    assert max((abs(sa[k] - sb[k]) for k in sa), default=0.0) < 1e-6


def test_chunked_equals_single_process_on_the_vegas_raster(reference: dict[str, Path]) -> None:
    from linegraph2road.metrics.evaluate import EvalSettings, evaluate_pair

    single, chunked = read_graph(reference["single"]), read_graph(reference["chunked"])
    assert single.num_edges > 20
    _same_graph(reference["single"], reference["chunked"])
    # our metrics between them (SpaceNet small-tile protocol: the tile is 352 m wide)
    scores = evaluate_pair(single, chunked, settings=EvalSettings(small_tiles=True)).scores
    assert scores["topo"]["f1"] >= 0.99 and scores["apls"]["score"] >= 0.98


class Cluster:
    """A ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None) -> None:
        self.folder, self.env = folder, {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[object] = []
        sched = folder / "scheduler.json"
        cmd = [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file",
               str(sched), *LOCAL_HTTP]  # fmt: skip
        self._spawn(cmd, "scheduler")
        deadline = time.monotonic() + 60
        while not sched.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.address = json.loads(sched.read_text())["address"]

    def _spawn(self, cmd: list[str], name: str) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 (closed in close())
        self.logs.append(log)
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=self.env)
        self.procs.append(proc)
        return proc

    def worker(self, name: str) -> subprocess.Popen[bytes]:
        cmd = [DASK, "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
               "--no-nanny", "--name", name, *LOCAL_HTTP]  # fmt: skip
        return self._spawn(cmd, name)

    def client(self) -> object:
        from distributed import Client

        return Client(self.address, timeout="30s", set_as_default=False)

    def wait_for(self, n: int) -> None:
        with self.client() as c:  # type: ignore[attr-defined]
            c.wait_for_workers(n, timeout=90)

    def close(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in self.logs:
            log.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        c.worker("w1")
        c.worker("w2")
        c.wait_for(2)
        yield c
    finally:
        c.close()


def _client_cmd(vegas: Path, out: Path, ckpt: Path, address: str) -> list[str]:
    return [sys.executable, "-m", "linegraph2road", "extract", str(vegas), "-o", str(out),
            "--checkpoint", str(ckpt), *METHOD, *CHUNK, "--scheduler", address]  # fmt: skip


def _completions(out: Path) -> list[str]:
    log = out.with_name(out.name + ".parts") / "completions.log"
    return [ln.split("\t")[0] for ln in log.read_text().splitlines()] if log.is_file() else []


def _wait(cond: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_worker_killed_mid_run_loses_nothing(
    cluster: Cluster, reference: dict[str, Path], vegas: Path, ckpt: Path, tmp_path: Path
) -> None:
    victim = cluster.worker("victim")
    cluster.wait_for(3)
    out = tmp_path / "k.parquet"
    proc = subprocess.Popen(_client_cmd(vegas, out, ckpt, cluster.address),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    with cluster.client() as c:  # type: ignore[attr-defined]

        def victim_busy() -> bool:
            return any(
                keys and info.get("name") == "victim"
                for addr, keys in c.processing().items()
                for info in [c.scheduler_info()["workers"].get(addr, {})]
            )

        _wait(victim_busy, "a task on the victim worker")
        victim.send_signal(signal.SIGKILL)  # mid-task
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    _same_graph(out, reference["chunked"])
    assert sorted(Counter(_completions(out)).values()) == [1] * N_CHUNKS  # no chunk completed twice


def test_a_client_killed_mid_run_resumes(
    l2r: L2R,
    cluster: Cluster,
    reference: dict[str, Path],
    vegas: Path,
    ckpt: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "c.parquet"
    proc = subprocess.Popen(_client_cmd(vegas, out, ckpt, cluster.address),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    _wait(lambda: len(_completions(out)) >= 1, "a finished chunk")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    assert 1 <= len(_completions(out)) < N_CHUNKS
    res = l2r("extract", vegas, "-o", out, "--checkpoint", ckpt, *METHOD, *CHUNK,
              "--scheduler", cluster.address)  # fmt: skip
    assert res.exit_code == 0, res.output
    import re

    # tasks the dead client had started may finish on their workers meanwhile: kept as well
    found = re.search(r"\((\d+) computed, (\d+) kept from an earlier run\)", res.stderr)
    assert found is not None, res.stderr
    computed, kept = int(found[1]), int(found[2])
    assert computed + kept == N_CHUNKS and kept >= 1
    _same_graph(out, reference["chunked"])
    assert sorted(Counter(_completions(out)).values()) == [1] * N_CHUNKS


def test_eval_on_the_cluster_gives_the_in_process_report(
    l2r: L2R, cluster: Cluster, fixtures_dir: Path, tmp_path: Path
) -> None:
    small = fixtures_dir / "spacenet_small_json"
    pair = ("--gt", small / "gt.json", "--pred", small / "prop.json", "--small-tiles")
    here = l2r("eval", *pair, "--json", tmp_path / "here.json")
    there = l2r("eval", *pair, "--json", tmp_path / "there.json", "--scheduler", cluster.address)
    assert here.exit_code == 0 and there.exit_code == 0, there.output
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("here.json", "there.json"))
    assert a["summary"] == b["summary"] and a["images"] == b["images"]


def test_an_unreachable_scheduler_is_one_line_before_any_work(
    l2r: L2R, ckpt: Path, vegas: Path, tmp_path: Path
) -> None:
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        res = l2r("extract", vegas, "-o", tmp_path / "g.parquet", "--checkpoint", ckpt,
                  *METHOD, *CHUNK, "--scheduler", "tcp://127.0.0.1:9")  # fmt: skip
    line = one_line_error(res)
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in line
    assert not (tmp_path / "g.parquet").exists()


def test_a_worker_that_cannot_import_l2r_is_refused(
    l2r: L2R, ckpt: Path, vegas: Path, tmp_path: Path
) -> None:
    shadow = tmp_path / "shadow" / "linegraph2road"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not installed on this worker')\n")
    broken = Cluster(tmp_path, env={"PYTHONPATH": str(shadow.parent)})
    try:
        broken.worker("broken")
        broken.wait_for(1)
        res = l2r("extract", vegas, "-o", tmp_path / "g.parquet", "--checkpoint", ckpt,
                  *METHOD, *CHUNK, "--scheduler", broken.address)  # fmt: skip
        line = one_line_error(res)
    finally:
        broken.close()
    assert "a Dask worker cannot run l2r tasks" in line and "install linegraph2road" in line
    assert not (tmp_path / "g.parquet.parts" / "results").exists()


def test_a_chunk_smaller_than_a_window_is_one_line(
    l2r: L2R, ckpt: Path, vegas: Path, tmp_path: Path
) -> None:
    line = one_line_error(l2r("extract", vegas, "-o", tmp_path / "g.gpkg", "--checkpoint", ckpt,
                              *METHOD, "--chunk", "32", "--workers", "2"))  # fmt: skip
    assert "--chunk 32 px is smaller than the model's 64 px window" in line
    assert list(tmp_path.iterdir()) == []


def test_plain_nms_in_chunks_is_one_line(l2r: L2R, ckpt: Path, vegas: Path, tmp_path: Path) -> None:
    line = one_line_error(l2r("extract", vegas, "-o", tmp_path / "g.gpkg", "--checkpoint", ckpt,
                              *METHOD, "--chunk", "96", "--nms", "plain"))  # fmt: skip
    assert "--nms plain" in line and "cannot run in chunks" in line
    assert list(tmp_path.iterdir()) == []


def _tile(path: Path, seed: int) -> None:
    data = np.random.default_rng(seed).integers(0, 256, (3, 80, 80), dtype=np.uint8)
    profile = {"driver": "GTiff", "width": 80, "height": 80, "count": 3, "dtype": "uint8",
               "crs": "EPSG:32611", "transform": Affine(1, 0, 5e5, 0, -1, 4e6)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


@pytest.mark.parametrize("command", ["extract", "segment"])
def test_a_corrupt_tile_among_many_is_named_and_the_others_finish(
    l2r: L2R, ckpt: Path, tmp_path: Path, command: str
) -> None:
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    for i in range(3):
        _tile(tiles / f"t{i}.tif", i)
    (tiles / "bad.tif").write_bytes(b"II*\x00 not really a tiff")
    out = tmp_path / "out"
    args = (command, tiles, "-o", out, "--checkpoint", ckpt, "--no-progress")
    extra = ("--t-k", "0.509", "--t-r", "0.511") if command == "extract" else ()
    res = l2r(*args, *extra)
    assert res.exit_code == 2
    assert "1 of 4 input(s) failed" in res.stderr.splitlines()[-1] and "bad.tif" in res.stderr
    ext = ".gpkg" if command == "extract" else ".tif"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        [f"t{i}{ext}" for i in range(3)] + ["summary.json"]
    )
    summary = json.loads((out / "summary.json").read_text())
    status = {Path(e["image"]).name: e["status"] for e in summary["inputs"]}
    assert status == {"bad.tif": "failed", "t0.tif": "done", "t1.tif": "done", "t2.tif": "done"}
    again = l2r(*args, *extra)  # resumes: the good tiles are kept, the bad one is tried again
    assert again.exit_code == 2 and again.stderr.count("  kept t") == 3
    other = l2r(*args, *extra, "--gsd", "0.5")  # another option: computed afresh, nothing kept
    assert other.exit_code == 2 and "kept" not in other.stderr
    assert other.stderr.count("  done t") == 3
