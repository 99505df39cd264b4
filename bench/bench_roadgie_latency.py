"""How long does one RoadGIE interaction take on this CPU? (Target: <= 150 ms on a 512 px view.)

Run ``python bench/bench_roadgie_latency.py [--threads 2] [--repeats 15] [--size paper]``.

One interaction is what the annotation app does after each click or scribble:
:func:`~linegraph2road.inference.interactive.predict_round` on a 512 x 512 uint8 view with the
previous probability and the prompts so far (rasterising the prompt maps, normalising, the
network, the sigmoid, copying the result out). The prompts: a random scribble of about 512 px
(the paper's runtime setting, 5.4) plus two clicks. Measured for the paper size (3.7 M
parameters) in fp32 and bf16 (``torch.autocast``), median of ``--repeats`` runs after 3 warm-up
runs, with

* the network's GFLOPs (``torch.utils.flop_counter``, multiply-adds counted as 2 FLOPs);
* this machine's measured GEMM rate (2048 x 2048 ``torch.mm``, same threads, same dtype, in the
  same run) and the ratio ``effective FLOP rate / GEMM rate`` (how close the convolutions come
  to the machine's dense peak);
* the load (``uptime``) before and after: the machine is shared, so numbers vary.

The paper reports 39.5 ms on an RTX 3090 GPU.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from linegraph2road.frontends.roadgie import build_roadgie  # noqa: E402
from linegraph2road.inference.interactive import predict_round  # noqa: E402
from linegraph2road.prompts import Prompt  # noqa: E402

TARGET_MS = 150.0


def gemm_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """Dense ``n x n`` matmul rate in GFLOP/s (median)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / float(np.median(times)) / 1e9


def scribble(rng: np.random.Generator, length: float = 512.0, side: int = 512) -> Prompt:
    """A smooth random scribble of about ``length`` px inside the view."""
    pts = [rng.uniform(100, side - 100, 2)]
    heading = rng.uniform(0, 2 * np.pi)
    walked = 0.0
    while walked < length:
        heading += rng.normal(0, 0.3)
        step = np.array([np.cos(heading), np.sin(heading)]) * 8.0
        nxt = np.clip(pts[-1] + step, 1, side - 1)
        walked += float(np.hypot(*(nxt - pts[-1])))
        pts.append(nxt)
    return Prompt.scribble(np.array(pts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--size", default="paper")
    parser.add_argument("--view", type=int, default=512)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    uptime = lambda: subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()  # noqa: E731
    print(f"load before: {uptime()} (shared machine); torch {torch.__version__}, "
          f"{args.threads} thread(s)")  # fmt: skip
    torch.manual_seed(0)
    model = build_roadgie(args.size, args.view).eval()
    n_params = sum(p.numel() for p in model.parameters())
    rng = np.random.default_rng(0)
    view = rng.integers(0, 256, (3, args.view, args.view), dtype=np.uint8)
    previous = rng.random((args.view, args.view), dtype=np.float32)
    prompts = [scribble(rng), Prompt.click(100.5, 200.5), Prompt.click(300, 40, positive=False)]
    x = model.normalize(torch.from_numpy(view))
    zeros = torch.zeros(1, 3, args.view, args.view)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.interact(x, zeros[:, :1], zeros[:, 1:])
    gflop = counter.get_total_flops() / 1e9
    print(f"RoadGIE {args.size}: {n_params} parameters ({n_params / 1e6:.3f} M), "
          f"{gflop:.2f} GFLOP per {args.view} x {args.view} interaction")  # fmt: skip
    ok = True
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        for _ in range(3):
            predict_round(model, view, previous, prompts, precision=precision)
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            predict_round(model, view, previous, prompts, precision=precision)
            times.append(time.perf_counter() - t)
        ms = 1e3 * float(np.median(times))
        gemm = gemm_gflops(dtype)
        rate = gflop / (ms / 1e3)
        print(f"{precision}: median {ms:.1f} ms (min {1e3 * min(times):.1f}, max "
              f"{1e3 * max(times):.1f}) per interaction; {rate:.1f} GFLOP/s effective; GEMM "
              f"{gemm:.1f} GFLOP/s; ratio {rate / gemm:.2f}; target <= {TARGET_MS:.0f} ms: "
              f"{'met' if ms <= TARGET_MS else 'MISSED'}")  # fmt: skip
        ok = ok and (precision != "fp32" or ms <= TARGET_MS)
    print(f"load after: {uptime()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
