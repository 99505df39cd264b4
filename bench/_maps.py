"""Probability maps rendered from the real City-scale ground truth, shared by the benchmarks.

The tile is ``fixtures/cityscale_example/gt.p`` (2048 x 2048 px, 3,696 nodes). Maps imitate a
model's output: the road map is the centerlines drawn 3 px wide (as SAM-Road's labels), blurred
with a Gaussian (sigma 2 px) and normalised to a peak of 1; the keypoint map is radius-3 discs at
nodes of degree != 2, blurred the same way; the overpass map holds a few small blobs. Seeded
Gaussian noise (sigma 0.05) is added to every map and values are clipped to ``[0, 1]``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from linegraph2road.graph import RoadGraph
from linegraph2road.io import read_graph
from linegraph2road.rasterize import draw_discs, render_road_mask

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("L2R_FIXTURES", REPO.parent / "shared" / "fixtures"))
GT_PICKLE = FIXTURES / "cityscale_example" / "gt.p"
SIZE = 2048


def _blur(mask: np.ndarray, sigma: float) -> np.ndarray:
    m = ndimage.gaussian_filter(mask.astype(np.float32), sigma=sigma)
    peak = float(m.max())
    return m / peak if peak > 0 else m


def load_gt() -> RoadGraph:
    """The real City-scale ground-truth graph of the example tile."""
    if not GT_PICKLE.is_file():
        raise SystemExit(f"fixture not found: {GT_PICKLE} (set L2R_FIXTURES)")
    return read_graph(GT_PICKLE)


def make_maps(
    seed: int = 0, *, noise: float = 0.05, sigma: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, RoadGraph]:
    """(keypoint, road, overpass) (2048, 2048) float32 maps in [0, 1] and the source graph."""
    g = load_gt()
    shape = (SIZE, SIZE)
    rng = np.random.default_rng(seed)
    road = _blur(render_road_mask(g, shape, width=3), sigma)
    deg = g.degrees()
    keypoint = _blur(draw_discs(g.nodes[deg != 2], shape, radius=3.0), sigma)
    crossing_like = g.nodes[deg >= 4]
    pick = rng.choice(len(crossing_like), size=min(6, len(crossing_like)), replace=False)
    overpass = _blur(draw_discs(crossing_like[pick], shape, radius=2.0), sigma)
    out = []
    for m in (keypoint, road, overpass):
        noisy = m + rng.normal(0.0, noise, size=shape).astype(np.float32)
        out.append(np.clip(noisy, 0.0, 1.0).astype(np.float32))
    return out[0], out[1], out[2], g
