"""Sliding-window extraction on CPU: time per 2048 x 2048 image by stage, the paper's two window
layouts (5 x 5 and 16 x 16), bf16 vs fp32, peak RSS.

What it measures
----------------
1. A synthetic 2048 x 2048 GeoTIFF (textured ground, a road grid, 1 m/px, EPSG:32611) through
   :class:`~linegraph2road.inference.RasterSource` + :func:`~linegraph2road.inference.extract_graph`
   with the real ViT-B front-end (random weights; ``--size`` picks another), 5 x 5 windows of
   512 px, in fp32 and in bf16: seconds per image split into encoder / decoder / NMS / candidates
   / line-graph scoring / I/O (read + write), and the share outside the encoder.
   Random weights give near-constant masks (every pixel ~0.5), which would make every pixel a road
   candidate and a candidate graph no trained model produces. So after the real encoder + decoder
   ran, the window's mask probabilities are replaced by the road grid drawn in the image (roads
   0.9, crossings 0.9 on the keypoint mask): NMS, candidates and scoring then see a City-scale-like
   vertex count, and every network cost stays real.
2. The two window layouts on the same image, each in its own process, in ``--layout-precision``
   (fp32, the CPU default): ``auto`` (5 x 5 windows, the paper's reduced layout of appendix G)
   and ``sam-road`` (SAM-Road's 16 x 16 with a 64 px margin, behind the paper's City-scale and
   Global-scale numbers; its Table 8 has 87.19 vs 10.51 s per City-scale image on an A100):
   seconds per image by stage, and the ratio.
3. bf16 vs fp32 agreement of the *network's own* masks on 4 windows: IoU of the masks thresholded
   at the fp32 mask's 90 % quantile (road-like fraction; keypoint: 99 %), plus the mean absolute
   difference. bf16 is the CPU default only if both IoUs are >= 0.99. With random weights the
   masks are nearly constant (std ~0.01), so this is harsh; ``--checkpoint`` uses a trained model.
4. Peak RSS (``ru_maxrss``) of the 2048 run and of a synthetic 8192 x 8192 GeoTIFF (16 x the
   area, 21 x 21 windows), each in its own subprocess, with ``--mem-size`` (default ``tiny``: the
   8192 run with ViT-B would take ~441 windows x 1-2 s). The ratio must stay <= 1.5.

Usage::

    python bench/bench_extract.py                      # everything (ViT-B timing, tiny memory)
    python bench/bench_extract.py --size small --skip-memory   # layouts etc. with a small model
    python bench/bench_extract.py --mem-size vit_b     # the memory check with ViT-B (slow)
    python bench/bench_extract.py --skip-timing --mem-size vit_b --mem-precision bf16
    python bench/bench_extract.py --skip-timing        # memory check only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from affine import Affine
from rasterio.windows import Window

from linegraph2road.inference import RasterSource, extract_graph
from linegraph2road.io import write_graph
from linegraph2road.model import LineGraph2Road, WindowPrediction, build_model, load_checkpoint

ROAD_PERIOD = 190  # px between parallel roads of the synthetic grid
ROAD_WIDTH = 7


def write_scene(path: Path, size: int) -> None:
    """A synthetic RGB GeoTIFF: noisy ground, a road grid (R = 230), crossings marked in G = 255."""
    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8",
        "crs": "EPSG:32611", "transform": Affine(1.0, 0, 500000.0, 0, -1.0, 4000000.0),
        "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate",
    }  # fmt: skip
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, size, 512):
            h = min(512, size - r0)
            rows = np.arange(r0, r0 + h)[:, None]
            cols = np.arange(size)[None, :]
            on_row = (rows % ROAD_PERIOD) < ROAD_WIDTH
            on_col = ((cols + rows // 9) % ROAD_PERIOD) < ROAD_WIDTH  # slanted roads
            road = on_row | on_col
            img = rng.integers(40, 150, (3, h, size), dtype=np.uint8)
            img[0][road] = 230
            img[1][on_row & on_col] = 255
            dst.write(img, window=Window(0, r0, size, h))


def realistic_masks(model: LineGraph2Road) -> LineGraph2Road:
    """Run the real network, then put the image's drawn roads in place of the random masks."""
    original = model.predict_window

    def predict_window(self: Any, images: torch.Tensor) -> WindowPrediction:
        pred = original(images)
        x = images.float()
        road = (x[:, 0] > 200).float() * 0.9
        keypoint = (x[:, 1] > 250).float() * 0.9
        masks = torch.stack([keypoint, road, torch.zeros_like(road)], 1).to(pred.mask_probs)
        return WindowPrediction(masks, pred.features, pred.stride)

    model.predict_window = types.MethodType(predict_window, model)  # type: ignore[method-assign]
    return model


def run_child(args: argparse.Namespace) -> None:
    """One extraction in this process; prints a JSON line with timings, counts, peak RSS."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = realistic_masks(build_model(args.size).eval())
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    with RasterSource(args.image) as source:
        result = extract_graph(model, source, precision=args.precision, layout=args.layout)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_graph(result.graph, Path(tmp) / "g.geojson")
    timings = dict(result.timings, write=time.perf_counter() - t0)
    timings["total"] = time.perf_counter() - start
    out = {
        "timings": timings,
        "stats": result.stats,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_after_model_mb": rss_model,
    }
    print("RESULT " + json.dumps(out), flush=True)


def child(
    image: Path, size: str, precision: str, threads: int, layout: str = "auto"
) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--image", str(image), "--size", size,
           "--precision", precision, "--threads", str(threads), "--layout", layout]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


def stage_table(runs: dict[str, dict[str, Any]]) -> None:
    stages = [
        ("encoder", ["encoder"]),
        ("decoder (rest of front-end)", ["decoder"]),
        ("mask stitching", ["stitch"]),
        ("coupled NMS", ["nms"]),
        ("candidates", ["candidates"]),
        ("line-graph scoring", ["scoring"]),
        ("I/O (read + write)", ["read", "write"]),
    ]
    names = list(runs)
    w = max(16, *(len(n) + 2 for n in names))
    print(f"\n{'stage':30s}" + "".join(f"{n:>{w}s}" for n in names))
    for label, keys in stages:
        row = [sum(runs[n]["timings"][k] for k in keys) for n in names]
        print(f"{label:30s}" + "".join(f"{v:{w - 1}.2f}s" for v in row))
    tot = [runs[n]["timings"]["total"] for n in names]
    print(f"{'total per image':30s}" + "".join(f"{v:{w - 1}.2f}s" for v in tot))
    outside = [1 - runs[n]["timings"]["encoder"] / runs[n]["timings"]["total"] for n in names]
    print(f"{'share outside the encoder':30s}" + "".join(f"{100 * v:{w - 1}.1f}%" for v in outside))
    print(f"{'peak RSS':30s}" + "".join(f"{runs[n]['rss_mb']:{w - 2}.0f}MB" for n in names))
    for n in names:
        s = runs[n]["stats"]
        print(f"({n}: windows {s['windows']}, vertices {s['vertices']}, candidate edges "
              f"{s['candidate_edges']}, kept {s['kept_edges']})")  # fmt: skip


def bf16_agreement(image: Path, size: str, checkpoint: Path | None = None) -> None:
    torch.manual_seed(0)
    model = build_model(size).eval() if checkpoint is None else load_checkpoint(checkpoint)[0]
    weights = "random weights" if checkpoint is None else f"trained checkpoint {checkpoint.name}"
    w = model.window_size
    with RasterSource(image) as src:
        h_img, w_img = src.shape
        if (h_img, w_img) == (2048, 2048):  # the synthetic scene: windows on and off the roads
            origins = [(0, 0), (384, 768), (1152, 384), (1536, 1536)]
        else:  # the four corner windows
            origins = [(r, c) for r in (0, max(h_img - w, 0)) for c in (0, max(w_img - w, 0))]
        wins = [src.read(r, c, w, w)[0] for r, c in origins]
    batch = torch.from_numpy(np.stack(wins))
    times = {}
    with torch.no_grad():
        model.predict_window(batch[:1])  # warm-up
        t = time.perf_counter()
        p32 = model.predict_window(batch).mask_probs.numpy()
        times["fp32"] = (time.perf_counter() - t) / len(wins)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model.predict_window(batch[:1])
            t = time.perf_counter()
            p16 = model.predict_window(batch).mask_probs.float().numpy()
        times["bf16"] = (time.perf_counter() - t) / len(wins)
    print(f"\nbf16 vs fp32 on {len(wins)} windows of {image.name} ({size}, {weights}):")
    print(f"  front-end per window: fp32 {times['fp32']:.2f} s, bf16 {times['bf16']:.2f} s "
          f"(x{times['fp32'] / times['bf16']:.2f})")  # fmt: skip
    for c, name, q in ((1, "road", 0.90), (0, "keypoint", 0.99)):
        t = np.quantile(p32[:, c], q)
        a, b = p32[:, c] > t, p16[:, c] > t
        iou = (a & b).sum() / max((a | b).sum(), 1)
        mad = np.abs(p32[:, c] - p16[:, c]).mean()
        spread = p32[:, c].std()
        print(f"  {name:8s} IoU at the fp32 {100 * q:.0f} % quantile: {iou:.4f}; mean |dp| "
              f"{mad:.2e} (mask std {spread:.2e})")  # fmt: skip
        if checkpoint is not None:  # a trained model: also at the extraction thresholds
            t = 0.364 if name == "road" else 0.248
            a, b = p32[:, c] > t, p16[:, c] > t
            iou = (a & b).sum() / max((a | b).sum(), 1)
            print(f"  {name:8s} IoU at the extraction threshold {t}: {iou:.4f} "
                  f"({100 * a.mean():.1f} % of pixels above it in fp32)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", default="vit_b", help="front-end size for the timing (vit_b)")
    ap.add_argument("--mem-size", default="tiny", help="front-end size for the RSS check (tiny)")
    ap.add_argument(
        "--mem-precision", default="fp32", help="precision of the RSS check (fp32; bf16 is faster)"
    )
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--checkpoint", type=Path, help="trained l2r checkpoint for the bf16 check")
    ap.add_argument(
        "--agreement-image",
        type=Path,
        help="raster for the bf16 check alone (skips timing and memory), e.g. the Vegas tile "
        "with a checkpoint from `python bench/learn_smoke.py --save smoke.safetensors`",
    )
    ap.add_argument(
        "--layout-precision", default="fp32", help="precision of the layout comparison (fp32)"
    )
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--skip-layouts", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--image", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    ap.add_argument("--layout", default="auto", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_child(args)
        return
    if args.agreement_image is not None:
        bf16_agreement(args.agreement_image, args.size, args.checkpoint)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        img2k = Path(tmp) / "scene2048.tif"
        write_scene(img2k, 2048)
        if not args.skip_timing:
            runs = {p: child(img2k, args.size, p, args.threads) for p in ("fp32", "bf16")}
            print(f"\n2048 x 2048 image, {args.size}, random weights (realistic masks):")
            stage_table(runs)
            ratio = runs["fp32"]["timings"]["total"] / runs["bf16"]["timings"]["total"]
            print(f"bf16 speed-up per image: x{ratio:.2f}")
            if args.threads:
                torch.set_num_threads(args.threads)
            bf16_agreement(img2k, args.size, args.checkpoint)
        if not args.skip_layouts:
            prec = args.layout_precision
            lay = {
                f"5x5 auto {prec}": child(img2k, args.size, prec, args.threads, "auto"),
                f"16x16 sam-road {prec}": child(img2k, args.size, prec, args.threads, "sam-road"),
            }
            print(f"\nwindow layouts, 2048 x 2048 image, {args.size}, {prec}, load average "
                  f"{os.getloadavg()[0]:.1f}:")  # fmt: skip
            stage_table(lay)
            a, b = (v["timings"]["total"] for v in lay.values())
            windows = [v["stats"]["windows"] for v in lay.values()]
            print(f"16x16 / 5x5 seconds per image: x{b / a:.2f} ({windows[1]} vs {windows[0]} "
                  "windows; paper, Table 8, A100: 87.19 / 10.51 s = x8.3)")  # fmt: skip
        if not args.skip_memory:
            img8k = Path(tmp) / "scene8192.tif"
            write_scene(img8k, 8192)
            mem = {
                "2048": child(img2k, args.mem_size, args.mem_precision, args.threads),
                "8192": child(img8k, args.mem_size, args.mem_precision, args.threads),
            }
            print(f"\npeak RSS, {args.mem_size}, {args.mem_precision}, each in its own process:")
            stage_table(mem)
            r = mem["8192"]["rss_mb"] / mem["2048"]["rss_mb"]
            print(
                f"8192 / 2048 peak RSS: x{r:.2f} (target <= 1.5); "
                f"time x{mem['8192']['timings']['total'] / mem['2048']['timings']['total']:.1f}"
            )


if __name__ == "__main__":
    main()
