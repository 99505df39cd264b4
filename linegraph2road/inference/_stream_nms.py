"""Coupled NMS on masks that arrive in row strips, with exactly the result of the whole-image pass.

Greedy NMS is global: whether a candidate survives depends on chains of higher-scored candidates
that can run far across the image. So rows are not decided by a fixed margin; instead every
candidate gets one of three states, decided greedily in the global order (descending float32
score, ties in row-major pixel order, as :func:`linegraph2road.nms.coupled_nms`):

* **suppressed**: a *kept* point lies within the radius (certain whatever comes later);
* **undecided**: no kept point, but it lies within the radius of rows not yet seen (a higher-scored
  candidate may come) or of an undecided point (which may turn out kept);
* **kept**: neither (certain: every higher-scored point that could suppress it is known).

Undecided candidates are carried to the next strip and visited again with the new candidates;
kept points near them take part as fixed suppressors (they outrank everything they touch). Once
the last strip is in, nothing is undecided and the kept sets equal the whole-image result, in the
same order. The coupling of Algorithm 1 carries over: keypoint and overpass points (``V_k``) are
decided first; a road candidate within ``d_r`` of a kept ``V_k`` vertex is removed, and one within
``d_r`` of an undecided ``V_k`` vertex is undecided.

Memory holds only candidates of the current strip, undecided candidates and kept vertices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from linegraph2road.nms import KEYPOINT, OVERPASS, ROAD, Vertices

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["StreamingCoupledNMS"]

_SUPPRESSED, _KEPT, _UNDECIDED = 0, 1, 2
_CELL_SLACK = 1.0 + 1e-6


@numba.njit(cache=True)
def _insert(head: Any, nxt: Any, gx: Any, gy: Any, k: int, x: float, y: float, c: int) -> None:
    gx[k] = x
    gy[k] = y
    nxt[k] = head[c]
    head[c] = k


@numba.njit(cache=True)
def _near(head: Any, nxt: Any, gx: Any, gy: Any, cx: int, cy: int, ncols: int, nrows: int,
          x: float, y: float, r2: float) -> bool:  # fmt: skip
    for yy in range(max(cy - 1, 0), min(cy + 2, nrows)):
        for xx in range(max(cx - 1, 0), min(cx + 2, ncols)):
            j = head[yy * ncols + xx]
            while j >= 0:
                dx = gx[j] - x
                dy = gy[j] - y
                if dx * dx + dy * dy < r2:
                    return True
                j = nxt[j]
    return False


@numba.njit(cache=True)
def _tri_state_kernel(xs: Any, ys: Any, order: Any, near: Any, kept_x: Any, kept_y: Any,
                      maybe_x: Any, maybe_y: Any, r2: float, x0: float, y0: float, cell: float,
                      ncols: int, nrows: int) -> Any:  # fmt: skip
    n = xs.shape[0]
    state = np.full(n, 0, dtype=np.int8)
    size = n + kept_x.shape[0] + maybe_x.shape[0]
    heads = np.full((2, ncols * nrows), -1, dtype=np.int32)  # 0: kept, 1: maybe
    nxt = np.empty((2, size), dtype=np.int32)
    gx = np.empty((2, size), dtype=np.float64)
    gy = np.empty((2, size), dtype=np.float64)
    used = np.zeros(2, dtype=np.int64)
    for t in range(kept_x.shape[0] + maybe_x.shape[0]):
        g = 0 if t < kept_x.shape[0] else 1
        x = kept_x[t] if g == 0 else maybe_x[t - kept_x.shape[0]]
        y = kept_y[t] if g == 0 else maybe_y[t - kept_x.shape[0]]
        cx = min(max(int(np.floor((x - x0) / cell)), 0), ncols - 1)
        cy = min(max(int(np.floor((y - y0) / cell)), 0), nrows - 1)
        _insert(heads[g], nxt[g], gx[g], gy[g], used[g], x, y, cy * ncols + cx)
        used[g] += 1
    for t in range(order.shape[0]):
        i = order[t]
        x = xs[i]
        y = ys[i]
        cx = min(max(int(np.floor((x - x0) / cell)), 0), ncols - 1)
        cy = min(max(int(np.floor((y - y0) / cell)), 0), nrows - 1)
        if _near(heads[0], nxt[0], gx[0], gy[0], cx, cy, ncols, nrows, x, y, r2):
            continue  # suppressed
        g = 1
        if near[i] or _near(heads[1], nxt[1], gx[1], gy[1], cx, cy, ncols, nrows, x, y, r2):
            state[i] = _UNDECIDED
        else:
            state[i] = _KEPT
            g = 0
        _insert(heads[g], nxt[g], gx[g], gy[g], used[g], x, y, cy * ncols + cx)
        used[g] += 1
    return state


class _PointSet:
    """Candidates of one mask: ``pix`` int64 row-major pixel index, ``score`` float32."""

    def __init__(self, pix: NDArray[np.int64], score: NDArray[np.float32]) -> None:
        self.pix = pix
        self.score = score

    @staticmethod
    def empty() -> _PointSet:
        return _PointSet(np.zeros(0, np.int64), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.pix)

    def cat(self, other: _PointSet) -> _PointSet:
        return _PointSet(
            np.concatenate([self.pix, other.pix]), np.concatenate([self.score, other.score])
        )

    def take(self, idx: NDArray[Any]) -> _PointSet:
        return _PointSet(self.pix[idx], self.score[idx])

    def xy(self, width: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        rows, cols = np.divmod(self.pix, width)
        return cols + 0.5, rows + 0.5


def _tri_state(
    points: _PointSet,
    width: int,
    radius: float,
    final_rows: int | None,
    kept_seeds: _PointSet,
    maybe_seeds: _PointSet,
) -> NDArray[np.int8]:
    """States of ``points`` (see module docstring); rows ``>= final_rows`` are unknown."""
    if len(points) == 0:
        return np.zeros(0, dtype=np.int8)
    xs, ys = points.xy(width)
    near = (
        np.zeros(len(points), dtype=bool)
        if final_rows is None
        else (final_rows + 0.5) - ys < radius
    )
    order = np.lexsort((points.pix, -points.score.astype(np.float64)))
    kx, ky = kept_seeds.xy(width)
    mx, my = maybe_seeds.xy(width)
    allx = np.concatenate([xs, kx, mx])
    ally = np.concatenate([ys, ky, my])
    x0, y0 = float(allx.min()), float(ally.min())
    cell = max(float(radius), 1.0) * _CELL_SLACK
    ncols = int((float(allx.max()) - x0) // cell) + 1
    nrows = int((float(ally.max()) - y0) // cell) + 1
    result: NDArray[np.int8] = _tri_state_kernel(
        xs, ys, order, near, kx, ky, mx, my, float(radius) ** 2, x0, y0, cell, ncols, nrows
    )
    return result


class StreamingCoupledNMS:
    """Coupled NMS (Algorithm 1) fed with finished mask rows from top to bottom.

    Parameters
    ----------
    width : int
        Mask width in pixels.
    t_k, t_r, t_o : float
        Keypoint, road and overpass thresholds (pixels ``> t`` are candidates).
    d_k, d_r : float
        Keypoint and road suppression radii in pixels.
    overpass : bool
        False: the model has no overpass head (non-overpass variant); its overpass channel is
        ignored and ``V_k`` holds the keypoints alone (:func:`~linegraph2road.nms.coupled_nms`
        with ``overpass=None``).

    Call :meth:`push` with consecutive row strips, the last one with ``last=True``, then
    :meth:`result`. :attr:`final_rows` says how far down the vertex set is already final.
    """

    def __init__(
        self,
        *,
        width: int,
        t_k: float,
        t_r: float,
        t_o: float,
        d_k: float,
        d_r: float,
        overpass: bool = True,
    ) -> None:
        self.width = int(width)
        self.overpass = bool(overpass)
        self.thresholds = (t_k, t_o, t_r)  # KEYPOINT, OVERPASS, ROAD order of nms.py
        self.radii = (d_k, d_k, d_r)
        self.pending = [_PointSet.empty() for _ in range(3)]
        self.kept: list[list[_PointSet]] = [[], [], []]
        self.rows_seen = 0
        self.done = False

    @property
    def final_rows(self) -> int:
        """Rows ``[0, final_rows)`` hold only final vertices (all rows once done)."""
        rows = [int(p.pix.min()) // self.width for p in self.pending if len(p)]
        return min([self.rows_seen, *rows])

    def _recent_kept(self, kinds: tuple[int, ...], from_row: float) -> _PointSet:
        out = _PointSet.empty()
        start = max(0.0, np.floor(from_row)) * self.width
        parts = [c.take(c.pix >= start) for kind in kinds for c in self.kept[kind] if len(c)]
        for part in parts:
            out = out.cat(part)
        return out

    def push(self, masks: NDArray[np.float32], *, row0: int, last: bool = False) -> None:
        """Add finished rows ``[row0, row0 + h)`` of the stitched ``(3, h, width)`` masks.

        ``masks`` channels are ``[keypoint, road, overpass]`` (the model's order); ``row0`` must
        continue the previous strip. ``last=True`` says no rows follow.
        """
        if self.done or row0 != self.rows_seen or masks.shape[2] != self.width:
            raise ValueError("strips must be consecutive rows of the declared width, before last")
        planes = (masks[0], masks[2], masks[1])  # KEYPOINT, OVERPASS, ROAD
        new = []
        for kind, (plane, t) in enumerate(zip(planes, self.thresholds, strict=True)):
            if kind == OVERPASS and not self.overpass:
                new.append(_PointSet.empty())
                continue
            flat = np.flatnonzero(plane > t)
            new.append(
                _PointSet(flat + row0 * self.width, plane.reshape(-1)[flat].astype(np.float32))
            )
        self.rows_seen = row0 + masks.shape[1]
        final = None if last else self.rows_seen
        for kind in (KEYPOINT, OVERPASS, ROAD):
            points = self.pending[kind].cat(new[kind])
            radius = self.radii[kind]
            reach = (
                int(points.pix.min()) // self.width if len(points) else self.rows_seen
            ) - radius
            if kind == ROAD:
                kept_seeds = self._recent_kept((KEYPOINT, OVERPASS, ROAD), reach - 1)
                maybe = self.pending[KEYPOINT].cat(self.pending[OVERPASS])
            else:
                kept_seeds = self._recent_kept((kind,), reach - 1)
                maybe = _PointSet.empty()
            state = _tri_state(points, self.width, radius, final, kept_seeds, maybe)
            self.kept[kind].append(points.take(state == _KEPT))
            self.pending[kind] = points.take(state == _UNDECIDED)
        self.done = last

    def vertices_between(self, row_start: int, row_stop: int) -> tuple[NDArray[Any], NDArray[Any]]:
        """Kept vertices in rows ``[row_start, row_stop)``: ``pix (K,) int64``, ``kind (K,) int8``.

        Only meaningful for ``row_stop <= final_rows``. A keypoint at an overpass vertex's pixel
        is left out (reported once, as OVERPASS, as :func:`~linegraph2road.nms.coupled_nms` does).
        """
        lo, hi = row_start * self.width, row_stop * self.width
        pix, kind = [], []
        for k in (KEYPOINT, OVERPASS, ROAD):
            for chunk in self.kept[k]:
                sel = (chunk.pix >= lo) & (chunk.pix < hi)
                pix.append(chunk.pix[sel])
                kind.append(np.full(int(sel.sum()), k, dtype=np.int8))
        p, kd = np.concatenate(pix), np.concatenate(kind)
        dup = (kd == KEYPOINT) & np.isin(p, p[kd == OVERPASS])
        return p[~dup], kd[~dup]

    def result(self) -> tuple[Vertices, NDArray[np.int64]]:
        """All vertices, ordered exactly as :func:`~linegraph2road.nms.coupled_nms` orders them.

        Returns
        -------
        vertices : Vertices
            Keypoint, overpass, road vertices, each by descending score (ties row-major).
        pix : (M,) int64
            Row-major pixel index of each vertex.
        """
        if not self.done:
            raise ValueError("push the last strip (last=True) before asking for the result")
        sets = []
        for k in (KEYPOINT, OVERPASS, ROAD):
            s = _PointSet.empty()
            for chunk in self.kept[k]:
                s = s.cat(chunk)
            sets.append(s.take(np.lexsort((s.pix, -s.score.astype(np.float64)))))
        dup = np.isin(sets[KEYPOINT].pix, sets[OVERPASS].pix)
        sets[KEYPOINT] = sets[KEYPOINT].take(~dup)
        pix = np.concatenate([s.pix for s in sets])
        xs, ys = _PointSet(pix, np.zeros(len(pix), np.float32)).xy(self.width)
        kinds = np.repeat(
            np.array([KEYPOINT, OVERPASS, ROAD], dtype=np.int8), [len(s) for s in sets]
        )
        vertices = Vertices(
            np.column_stack([xs, ys]), np.concatenate([s.score for s in sets]), kinds
        )
        return vertices, pix
