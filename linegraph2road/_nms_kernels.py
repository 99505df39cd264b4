"""Numba kernels behind :mod:`linegraph2road.nms` (private: call the functions in ``nms.py``).

Greedy non-maximum suppression with a uniform grid of square cells. Every cell side is at least
the suppression radius, so all points within the radius of a query lie in its own cell or in one
of the 8 cells around it. Kept points are chained per cell in ``int32`` linked lists (``head``
per cell, ``nxt`` per kept point), which makes one query cost O(kept points in 9 cells) and the
whole pass O(n) after the O(n log n) sort done by the caller.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = ["grid_greedy_nms"]

# A cell a little larger than the radius keeps floating-point rounding in ``floor((x - x0) / c)``
# from ever putting two points closer than the radius two cells apart.
_CELL_SLACK = 1.0 + 1e-6


@numba.njit(cache=True)
def _greedy_kernel(
    xs: Any,
    ys: Any,
    order: Any,
    seed_x: Any,
    seed_y: Any,
    r2: float,
    inclusive: bool,
    x0: float,
    y0: float,
    cell: float,
    ncols: int,
    nrows: int,
) -> Any:
    n_seed = seed_x.shape[0]
    n = order.shape[0]
    head = np.full(ncols * nrows, -1, dtype=np.int32)
    nxt = np.empty(n_seed + n, dtype=np.int32)
    kx = np.empty(n_seed + n, dtype=np.float64)
    ky = np.empty(n_seed + n, dtype=np.float64)
    kept = np.empty(n, dtype=np.int64)
    k = 0  # slots used in kx/ky/nxt (seeds first)
    n_kept = 0
    for t in range(n_seed + n):
        if t < n_seed:
            x = seed_x[t]
            y = seed_y[t]
            i = -1
        else:
            i = order[t - n_seed]
            x = xs[i]
            y = ys[i]
        cx = min(max(int(np.floor((x - x0) / cell)), 0), ncols - 1)
        cy = min(max(int(np.floor((y - y0) / cell)), 0), nrows - 1)
        if i >= 0:
            suppressed = False
            for gy in range(max(cy - 1, 0), min(cy + 2, nrows)):
                for gx in range(max(cx - 1, 0), min(cx + 2, ncols)):
                    j = head[gy * ncols + gx]
                    while j >= 0:
                        dx = kx[j] - x
                        dy = ky[j] - y
                        d2 = dx * dx + dy * dy
                        if d2 < r2 or (inclusive and d2 == r2):
                            suppressed = True
                            break
                        j = nxt[j]
                    if suppressed:
                        break
                if suppressed:
                    break
            if suppressed:
                continue
            kept[n_kept] = i
            n_kept += 1
        c = cy * ncols + cx
        kx[k] = x
        ky[k] = y
        nxt[k] = head[c]
        head[c] = k
        k += 1
    return kept[:n_kept]


def grid_greedy_nms(
    xs: np.ndarray,
    ys: np.ndarray,
    order: np.ndarray,
    radius: float,
    *,
    inclusive: bool = False,
    seed_x: np.ndarray | None = None,
    seed_y: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy NMS of the points ``order`` visits, optionally pre-seeded with fixed points.

    Parameters
    ----------
    xs, ys : (N,) float64
        Point coordinates in pixels.
    order : (n,) int64
        Indices into ``xs``/``ys`` in visiting order (descending score); points not listed are
        ignored.
    radius : float
        Suppression radius in pixels; a visited point is dropped when a kept or seed point lies at
        squared distance ``< radius**2`` (``<=`` when ``inclusive``).
    seed_x, seed_y : (S,) float64 or None
        Points that count as already kept (they suppress, but are not returned).

    Returns
    -------
    (K,) int64 indices into ``xs`` of the kept points, in visiting order.
    """
    xs = np.ascontiguousarray(xs, dtype=np.float64)
    ys = np.ascontiguousarray(ys, dtype=np.float64)
    order = np.ascontiguousarray(order, dtype=np.int64)
    sx = np.zeros(0) if seed_x is None else np.ascontiguousarray(seed_x, dtype=np.float64)
    sy = np.zeros(0) if seed_y is None else np.ascontiguousarray(seed_y, dtype=np.float64)
    if order.size == 0:
        return np.zeros(0, dtype=np.int64)
    px = np.concatenate([xs[order], sx])
    py = np.concatenate([ys[order], sy])
    x0, x1 = float(px.min()), float(px.max())
    y0, y1 = float(py.min()), float(py.max())
    # Cells of at least the radius; larger when the points are so spread out that radius-sized
    # cells would need far more memory than there are points (the result does not change).
    n_total = px.size
    max_cells = 4 * n_total + 1024
    area = max(x1 - x0, 1e-12) * max(y1 - y0, 1e-12)
    cell = max(float(radius), float(np.sqrt(area / max_cells)), 1e-9) * _CELL_SLACK
    ncols = int((x1 - x0) // cell) + 1
    nrows = int((y1 - y0) // cell) + 1
    while ncols * nrows > 2 * max_cells:  # extremely elongated point sets
        cell *= 2.0
        ncols = int((x1 - x0) // cell) + 1
        nrows = int((y1 - y0) // cell) + 1
    result: np.ndarray = _greedy_kernel(
        xs, ys, order, sx, sy, float(radius) ** 2, bool(inclusive), x0, y0, cell, ncols, nrows
    )
    return result
