"""Scale-out benchmark (issue 13): batch throughput with 1 and 2 Dask workers, and the memory
of one chunked-extraction worker as the raster grows.

1. ``l2r eval`` over N copies of the real City-scale example pair (``fixtures/cityscale_example``,
   2048 px, TOPO + APLS) and ``l2r prep dataset`` over N City-scale tiles whose graphs are that
   ground truth: seconds with ``--workers 1`` (in this process) and ``--workers 2`` (a local
   Dask cluster, its start-up included), and the ratio.
2. The chunked path on synthetic rasters of S x S px (default 16384 and 32768) tiled from the
   real Vegas raster: written window by window (a tiled, deflated GeoTIFF at 1 m/px; the
   raster is never held in memory), then ``--chunks`` interior chunks of ``--chunk`` px extracted
   by one worker of a local cluster with a tiny SAM model of 512 px windows (random weights,
   thresholds at the 99.5th percentile of its masks). Reported: peak RSS of that worker (it must
   not grow with the raster) and seconds per chunk.
3. Equality: single-process vs chunked on 2 local workers, on the real Vegas raster at 1 m/px
   (352 px, 3 x 3 chunks of 128 px) and a synthetic 704 px raster mirrored from it (3 x 3 of
   256 px), with a tiny 64 px-window model: identical edges, TOPO F1 and APLS between them.

Run:  python bench/bench_dask.py [--tiles 6] [--sizes 16384 32768] [--chunk 4096] [--chunks 2]
The machine may be shared: ``uptime`` is printed with the numbers.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("L2R_FIXTURES", REPO.parent / "shared" / "fixtures"))


def l2r(*args: object) -> float:
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "linegraph2road", *map(str, args)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr}")
    return time.perf_counter() - start


def batch_throughput(work: Path, n: int) -> None:
    from linegraph2road.io import read_graph, write_graph
    from linegraph2road.io.raster import write_raster

    gt = read_graph(FIXTURES / "cityscale_example" / "gt.p")
    prop = FIXTURES / "cityscale_example" / "prop.p"
    gts, preds, root = work / "gt", work / "pred", work / "cityscale"
    for d in (gts, preds, root):
        d.mkdir()
    for i in range(n):
        shutil.copy(FIXTURES / "cityscale_example" / "gt.p", gts / f"region_{i}_graph_gt.pickle")
        shutil.copy(prop, preds / f"region_{i}.p")
        write_raster(root / f"region_{i}_sat.png", np.zeros((3, 2048, 2048), np.uint8))
        write_graph(gt, root / f"region_{i}_refine_gt_graph.p", "cityscale")
    for name, args in (
        ("l2r eval", ("eval", "--gt", gts, "--pred", preds, "--no-progress")),
        ("l2r prep dataset", ("prep", "dataset", "--format", "cityscale", "--root", root)),
    ):
        times = {}
        for w in (1, 2):
            extra = ("-o", work / f"labels{w}") if name == "l2r prep dataset" else ()
            times[w] = l2r(*args, *extra, "--workers", w)
        print(
            f"{name:17s} {n} tiles: 1 worker {times[1]:6.1f} s ({n / times[1]:.3f} tiles/s), "
            f"2 workers {times[2]:6.1f} s ({n / times[2]:.3f} tiles/s), "
            f"speed-up x{times[1] / times[2]:.2f}"
        )


def synthetic_raster(path: Path, size: int) -> None:
    """``size`` x ``size`` px at 1 m/px, mirrored tiles of the Vegas raster, written by blocks
    of 1024 px (memory: one block, whatever ``size``)."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    from linegraph2road.inference import RasterSource

    with RasterSource(FIXTURES / "spacenet_vegas" / "RGB-PanSharpen_AOI_2_Vegas_img0.tif") as src:
        tile, _ = src.read_all()  # 352 x 352 px at 1 m/px
    t = tile.shape[1]
    block = 1024
    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8",
        "crs": "EPSG:32611", "transform": Affine(1, 0, 500000, 0, -1, 4100000), "tiled": True,
        "blockxsize": 512, "blockysize": 512, "compress": "deflate", "BIGTIFF": "YES",
    }  # fmt: skip
    rows = np.arange(block)
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, size, block):
            for c0 in range(0, size, block):
                rr, cc = (r0 + rows) % (2 * t), (c0 + rows) % (2 * t)
                rr = np.where(rr < t, rr, 2 * t - 1 - rr)  # mirrored: no seams in the picture
                cc = np.where(cc < t, cc, 2 * t - 1 - cc)
                h, w = min(block, size - r0), min(block, size - c0)
                dst.write(tile[:, rr[:h]][:, :, cc[:w]], window=Window(c0, r0, w, h))


def equality(work: Path, workers: int) -> None:
    """Chunked + distributed vs single-process extract: the real Vegas raster at 1 m/px and a
    synthetic 2 x 2 mirror of it (704 px), a tiny 64 px-window model (random weights)."""
    import torch

    from linegraph2road.io import read_graph
    from linegraph2road.metrics.evaluate import EvalSettings, evaluate_pair
    from linegraph2road.model import build_model, save_checkpoint
    from linegraph2road.parallel import ParallelOptions
    from linegraph2road.pipelines.chunked import run_extract_chunked
    from linegraph2road.pipelines.extract import run_extract
    from linegraph2road.pipelines.options import ExtractOptions

    torch.manual_seed(0)
    ckpt = work / "tiny64.safetensors"
    save_checkpoint(build_model("tiny", window_size=64), ckpt, {})
    # every scored candidate edge kept (t_topo 0): a connected graph, so APLS has paths to score
    options = ExtractOptions(
        checkpoint=str(ckpt), gsd=1.0, t_k=0.509, t_r=0.511, t_topo=0.0, d_nei=24.0
    )
    vegas = FIXTURES / "spacenet_vegas" / "RGB-PanSharpen_AOI_2_Vegas_img0.tif"
    mirror = work / "vegas_2x2.tif"
    synthetic_raster(mirror, 704)
    torch.set_num_threads(1)
    for name, raster, chunk in (("Vegas 352 px", vegas, 128), ("synthetic 704 px", mirror, 256)):
        t0 = time.perf_counter()
        single = run_extract(raster, work / "single.gpkg", options, echo=lambda _: None)
        t1 = time.perf_counter()
        run = run_extract_chunked(
            raster, work / f"chunked_{chunk}.parquet", options,
            ParallelOptions(workers=workers, threads=1), chunk=chunk, echo=lambda _: None,
        )  # fmt: skip
        t2 = time.perf_counter()
        a, b = read_graph(work / "single.gpkg"), read_graph(work / f"chunked_{chunk}.parquet")
        seg = lambda g: {tuple(sorted(map(tuple, g.nodes[e].round(6).tolist()))) for e in g.edges}  # noqa: E731
        same = len(seg(a) & seg(b))
        s = evaluate_pair(a, b, settings=EvalSettings(small_tiles=True)).scores
        print(
            f"equality {name}: {len(run.plan.chunks)} chunks of {chunk} px on {workers} workers; "
            f"single {single.graph.num_edges} edges ({t1 - t0:.1f} s), chunked "
            f"{run.graph.num_edges} edges ({t2 - t1:.1f} s), {same} identical, "
            f"{run.stats['reconciled']} reconciled; TOPO F1 {s['topo']['f1']:.4f}, "
            f"APLS {s['apls']['score']:.4f}"
        )


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def chunk_memory(work: Path, sizes: list[int], chunk: int, n_chunks: int) -> None:
    import torch
    from distributed import Client, LocalCluster

    from linegraph2road.inference.chunks import plan_chunks
    from linegraph2road.model import build_model, save_checkpoint
    from linegraph2road.parallel import StoreRef, file_sha256
    from linegraph2road.pipelines.chunked import _ChunkTask, _run_chunk
    from linegraph2road.pipelines.options import ExtractOptions

    torch.manual_seed(0)
    ckpt = work / "tiny512.safetensors"
    save_checkpoint(build_model("tiny", window_size=512), ckpt, {})
    # random weights give nearly flat masks: thresholds at their 99.5th percentile on one window
    from linegraph2road.inference import RasterSource
    from linegraph2road.model import load_checkpoint

    model, _ = load_checkpoint(ckpt)
    with RasterSource(FIXTURES / "spacenet_vegas" / "RGB-PanSharpen_AOI_2_Vegas_img0.tif") as s:
        window, _ = s.read(0, 0, 512, 512)
    with torch.no_grad():
        probs = model.predict_window(torch.from_numpy(window[None])).mask_probs[0].numpy()
    t_k, t_r = (float(np.quantile(probs[c], 0.995)) for c in (0, 1))
    options = ExtractOptions(checkpoint=str(ckpt), gsd=1.0, t_k=t_k, t_r=t_r, device="cpu")
    for size in sizes:
        raster = work / f"synthetic_{size}.tif"
        start = time.perf_counter()
        synthetic_raster(raster, size)
        made = time.perf_counter() - start
        plan = plan_chunks((size, size), window=512, chunk=chunk)
        k = len(plan.chunks)
        side = int(np.sqrt(k))
        middle = [plan.chunks[(side // 2) * side + side // 2 + j] for j in range(n_chunks)]
        store = StoreRef(str(work / f"parts{size}"), "bench")
        (work / f"parts{size}" / "tasks").mkdir(parents=True)
        cluster = LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
        )
        with cluster, Client(cluster) as client:
            secs = []
            for c in middle:
                task = _ChunkTask(str(raster), 1.0, options, file_sha256(ckpt), c,
                                  str(work / f"parts{size}" / f"{c.name}.npz"),
                                  f"parts{size}/{c.name}.npz", store)  # fmt: skip
                t0 = time.perf_counter()
                out = client.submit(_run_chunk, task, pure=False).result()
                secs.append(time.perf_counter() - t0)
                assert out["status"] == "done"
            peak = max(client.run(_peak_rss_mb).values())
        print(
            f"raster {size} x {size} px ({raster.stat().st_size / 2**20:.0f} MiB on disk, written "
            f"in {made:.0f} s, client peak RSS {_peak_rss_mb():.0f} MiB): {k} chunks of {chunk} "
            f"px; {n_chunks} interior chunk(s) run, {middle[0].windows} windows each; worker peak "
            f"RSS {peak:.0f} MiB; {np.mean(secs):.1f} s per chunk (first includes model load)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=6)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16384, 32768])
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--chunks", type=int, default=2)
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-equality", action="store_true")
    args = parser.parse_args()
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    work = Path(tempfile.mkdtemp(prefix="l2r-bench-dask-"))
    try:
        if not args.skip_batch:
            batch_throughput(work, args.tiles)
        if not args.skip_equality:
            equality(work, 2)
        if not args.skip_memory:
            chunk_memory(work, args.sizes, args.chunk, args.chunks)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
