"""Private machinery of Algorithm 3: segment intersection tests and the iterative refiner.

Public entry points live in :mod:`linegraph2road.data_prep.overpass`; the reading of the paper's
pseudo-code is documented there. Everything here works on copies; nothing mutates its inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import rtree
from numpy.typing import NDArray
from scipy.spatial import cKDTree

__all__ = ["PairRule", "Refiner", "segment_intersections"]

#: ``rule(src_a, src_b) -> (K,) bool``: which intersecting input-edge pairs count as crossings.
PairRule = Callable[[NDArray[np.int64], NDArray[np.int64]], NDArray[np.bool_]]


def segment_intersections(
    p1: NDArray[np.float64],
    p2: NDArray[np.float64],
    q1: NDArray[np.float64],
    q2: NDArray[np.float64],
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Row-wise closed-segment intersection of ``p1-p2`` with ``q1-q2`` ((K, 2) float64 each).

    Returns ``(hit (K,) bool, point (K, 2) float64)``. Parallel and collinear pairs never hit
    (an overlap of stacked segments is not a crossing point); touching at an end counts.
    """
    r = p2 - p1
    s = q2 - q1
    qp = q1 - p1
    den = r[:, 0] * s[:, 1] - r[:, 1] * s[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (qp[:, 0] * s[:, 1] - qp[:, 1] * s[:, 0]) / den
        u = (qp[:, 0] * r[:, 1] - qp[:, 1] * r[:, 0]) / den
    hit = (den != 0) & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)
    pts = p1 + r * np.where(hit, t, 0.0)[:, None]
    return hit, pts


class Refiner:
    """Mutable state of one Algorithm 3 run over a private copy of a graph.

    Nodes are never renumbered during the run (contracted ones are marked dead); edges get new
    ids when contraction joins two of them, each remembering ``src``, the input edge whose tags
    it carries. ``pairs`` maps an intersecting live edge pair ``(a, b)``, ``a < b``, accepted by
    ``rule`` (on the pairs' ``src`` ids), to its crossing point; it is kept current through an
    rtree over edge bounding boxes, updated for every edge whose end moved.
    """

    def __init__(
        self,
        nodes: NDArray[np.float64],
        edges: NDArray[np.int64],
        *,
        rule: PairRule,
        group: NDArray[np.int64],
        movable: NDArray[np.bool_],
    ) -> None:
        self.pos = np.array(nodes, dtype=np.float64, copy=True).reshape(-1, 2)
        self.alive = np.ones(len(self.pos), dtype=bool)
        self.movable = np.asarray(movable, dtype=bool)
        self.rule = rule
        self.group = np.asarray(group, dtype=np.int64)
        e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        self.ends: list[tuple[int, int]] = [(a, b) for a, b in e.tolist()]
        self.src: list[int] = list(range(len(e)))
        self.live: list[bool] = [True] * len(e)
        self.adj: list[set[int]] = [set() for _ in range(len(self.pos))]
        for k, (a, b) in enumerate(self.ends):
            self.adj[a].add(k)
            self.adj[b].add(k)
        pa, pb = self.pos[e[:, 0]], self.pos[e[:, 1]]
        mins = np.ascontiguousarray(np.minimum(pa, pb))
        maxs = np.ascontiguousarray(np.maximum(pa, pb))
        self.boxes: dict[int, tuple[float, float, float, float]] = {
            k: (b[0], b[1], b[2], b[3]) for k, b in enumerate(np.hstack([mins, maxs]).tolist())
        }
        self.pairs: dict[tuple[int, int], NDArray[np.float64]] = {}
        ids = np.arange(len(e), dtype=np.int64)
        self.index = rtree.index.Index((ids, mins, maxs)) if len(e) else rtree.index.Index()
        self._refresh(list(range(len(e))), fresh=True)

    # -- geometry / index ----------------------------------------------------------------------
    def _box(self, k: int) -> tuple[float, float, float, float]:
        a, b = self.ends[k]
        (xa, ya), (xb, yb) = self.pos[a], self.pos[b]
        return (min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb))

    def _refresh(self, dirty: list[int], *, fresh: bool = False) -> None:
        """Recompute every pair involving a ``dirty`` (moved, new or removed) edge."""
        dirty = sorted(set(dirty))
        if not dirty:
            return
        dset = set(dirty)
        self.pairs = {p: x for p, x in self.pairs.items() if p[0] not in dset and p[1] not in dset}
        q = [k for k in dirty if self.live[k]]
        for k in [] if fresh else q:
            old = self.boxes.get(k)
            new = self._box(k)
            if old is not None and old != new:
                self.index.delete(k, old)
                self.index.insert(k, new)
            elif old is None:
                self.index.insert(k, new)
            self.boxes[k] = new
        if not q:
            return
        qa = np.asarray(q, dtype=np.int64)
        b = np.array([self.boxes[k] for k in q], dtype=np.float64)
        ids, counts = self.index.intersection_v(b[:, :2], b[:, 2:])
        ea = np.repeat(qa, np.asarray(counts, dtype=np.int64))
        eb = np.asarray(ids, dtype=np.int64)
        ends = np.asarray(self.ends, dtype=np.int64)
        live = np.asarray(self.live, dtype=bool)
        keep = (ea != eb) & live[eb]
        # a pair of two dirty edges is found from both sides: keep it once
        keep &= ~(np.isin(eb, qa) & (eb < ea))
        ea, eb = ea[keep], eb[keep]
        sa, sb = ends[ea], ends[eb]
        shared = (sa[:, :1] == sb).any(axis=1) | (sa[:, 1:] == sb).any(axis=1)
        ea, eb, sa, sb = ea[~shared], eb[~shared], sa[~shared], sb[~shared]
        if len(ea) == 0:
            return
        hit, pts = segment_intersections(
            self.pos[sa[:, 0]], self.pos[sa[:, 1]], self.pos[sb[:, 0]], self.pos[sb[:, 1]]
        )
        src = np.asarray(self.src, dtype=np.int64)
        hit &= self.rule(src[ea], src[eb])
        for a, b, x in zip(ea[hit].tolist(), eb[hit].tolist(), pts[hit], strict=True):
            self.pairs[(min(a, b), max(a, b))] = x

    def _other(self, k: int, v: int) -> int:
        a, b = self.ends[k]
        return b if a == v else a

    # -- Algorithm 3 steps ---------------------------------------------------------------------
    def displacements(self, tau: float) -> dict[int, NDArray[np.float64]]:
        """Lines 5-14: ``Delta[v]`` for every movable endpoint within ``tau`` of a crossing."""
        delta: dict[int, NDArray[np.float64]] = {}
        for (ea, eb), p in sorted(self.pairs.items()):
            for k in (ea, eb):
                for v in self.ends[k]:
                    if not self.movable[v]:
                        continue
                    d = float(np.hypot(*(self.pos[v] - p)))
                    if d >= tau:
                        continue
                    u = self._direction(v, self._other(k, v), p, d)
                    if u is not None:
                        delta[v] = delta.get(v, np.zeros(2)) + ((tau - d) / tau) * u
        return delta

    def _direction(
        self, v: int, w: int, p: NDArray[np.float64], d: float
    ) -> NDArray[np.float64] | None:
        """Unit vector from ``v`` to the neighbour whose edge points most away from ``p``.

        A dead end (or a node exactly at the crossing) moves towards ``w``, its partner in the
        crossing edge, which pulls an overshooting end back behind the edge it crosses.
        """
        nbrs = sorted(self._other(k, v) for k in self.adj[v])
        target = w
        if d > 0 and len(nbrs) > 1:
            away = (self.pos[v] - p) / d
            vec = self.pos[nbrs] - self.pos[v]
            norm = np.hypot(vec[:, 0], vec[:, 1])
            score = np.where(norm > 0, vec @ away / np.where(norm > 0, norm, 1.0), -np.inf)
            target = nbrs[int(np.argmax(score))]
        vec = self.pos[target] - self.pos[v]
        norm = float(np.hypot(*vec))
        return None if norm == 0 else vec / norm

    def move(self, delta: dict[int, NDArray[np.float64]], *, alpha: float, epsilon: float) -> int:
        """Lines 21-30: step ``alpha`` along each ``Delta[v]`` longer than ``epsilon``.

        A step is refused when it would land within ``alpha / 2`` of another live node (the
        paper's "not overlapping other nodes"). Returns the number of nodes moved.
        """
        todo = [v for v in sorted(delta) if float(np.hypot(*delta[v])) > epsilon]
        if not todo:
            return 0
        live_ids = np.flatnonzero(self.alive)
        tree = cKDTree(self.pos[live_ids])
        clear = 0.5 * alpha
        dirty: list[int] = []
        moved = 0
        for v in todo:
            a = delta[v]
            target = self.pos[v] + alpha * a / float(np.hypot(*a))
            near = live_ids[tree.query_ball_point(target, clear + 2.0 * alpha)]
            near = near[near != v]
            if len(near):
                dist = np.hypot(*(self.pos[near] - target).T)
                if (dist < clear).any():
                    continue
            self.pos[v] = target
            moved += 1
            dirty.extend(self.adj[v])
        self._refresh(dirty)
        return moved

    def contract(self, nodes: list[int], *, gamma: float) -> int:
        """Lines 15-19: remove the degree-2 ``nodes`` lying within ``gamma`` of the straight line
        between their two neighbours (joining the neighbours); returns how many."""
        cand = sorted(nodes)
        removed = 0
        for k in cand:
            if not (self.alive[k] and self.movable[k]) or len(self.adj[k]) != 2:
                continue
            e1, e2 = sorted(self.adj[k])
            n1, n2 = self._other(e1, k), self._other(e2, k)
            if n1 == n2 or self.group[self.src[e1]] != self.group[self.src[e2]]:
                continue
            if any(self._other(e, n1) == n2 for e in self.adj[n1]):
                continue
            if _point_segment_distance(self.pos[k], self.pos[n1], self.pos[n2]) >= gamma:
                continue
            for e in (e1, e2):
                self.live[e] = False
                self.index.delete(e, self.boxes.pop(e))
                self.adj[self._other(e, k)].discard(e)
            self.adj[k].clear()
            self.alive[k] = False
            new = len(self.ends)
            self.ends.append((min(n1, n2), max(n1, n2)))
            self.src.append(self.src[e1])
            self.live.append(True)
            self.adj[n1].add(new)
            self.adj[n2].add(new)
            self._refresh([e1, e2, new])
            removed += 1
        return removed

    # -- result --------------------------------------------------------------------------------
    def compact(self) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], dict]:
        """Live nodes renumbered in order, live edges (i < j, sorted) with their ``src`` ids and a
        map old edge id -> new row."""
        new_id = np.cumsum(self.alive) - 1
        nodes = self.pos[self.alive]
        keep = [k for k in range(len(self.ends)) if self.live[k]]
        if not keep:
            return nodes, np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.int64), {}
        e = new_id[np.asarray([self.ends[k] for k in keep], dtype=np.int64)]
        e = np.sort(e, axis=1)
        order = np.lexsort((e[:, 1], e[:, 0]))
        rows = {keep[int(o)]: r for r, o in enumerate(order)}
        src = np.asarray(self.src, dtype=np.int64)[np.asarray(keep)[order]]
        return nodes, e[order], src, rows


def _point_segment_distance(
    p: NDArray[np.float64], a: NDArray[np.float64], b: NDArray[np.float64]
) -> float:
    ab = b - a
    den = float(ab @ ab)
    t = 0.0 if den == 0 else min(1.0, max(0.0, float((p - a) @ ab) / den))
    return float(np.hypot(*(p - (a + t * ab))))
