"""Missing pieces joined into whole roads, with a connection status and a confidence.

The pieces of the prediction classified ``missing_from_ref`` form a graph of their own. A *road*
is a maximal chain of it: a path between nodes that are not simple continuations of one road in
the prediction (dead ends, junctions, the cut at the border of the compared area), or a closed
loop. Each road gets

* ``connection``: ``"both_ends"``, ``"one_end"`` or ``"isolated"``: how many of its two ends
  connect to the existing network. An end connects when it lies within the tolerance of a
  reference road, touches a predicted piece that the map has (``matched``), lies on the border of
  the compared area (the road goes on where nothing was compared), or is a junction of missing
  roads whose group connects somewhere (through another end of the group). A closed loop
  connects at both "ends" when any of its nodes connects;
* ``confidence``: the length-weighted mean of the prediction's edge probabilities along it (NaN
  when the prediction has none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.mapdiff.frame import Segments

__all__ = ["CONNECTIONS", "MissingRoads", "join_missing"]

CONNECTIONS: tuple[str, ...] = ("both_ends", "one_end", "isolated")
_BORDER = 1e-3  # metres: an end this close to the area's outline lies on the border


@dataclass(frozen=True)
class MissingRoads:
    """Roads of the prediction that the reference lacks.

    Attributes
    ----------
    nodes : list of (K_i,) int64
        Each road's node ids (of the prediction's :class:`~.frame.Segments`), in order along it.
    pieces : list of (K_i - 1,) int64
        Each road's pieces (indices into the prediction's segments), in the same order.
    xy : list of (K_i, 2) float64
        Each road's vertices, metres.
    length : (R,) float64
        Metres.
    confidence : (R,) float64
        Length-weighted mean edge probability, NaN without probabilities.
    ends_connected : (R,) int64
        0, 1 or 2.
    ends_at_border : (R,) int64
        How many of the two ends lie on the border of the compared area.
    group : (R,) int64
        Connected group of missing roads each road belongs to.
    """

    nodes: list[NDArray[np.int64]]
    pieces: list[NDArray[np.int64]]
    xy: list[NDArray[np.float64]]
    length: NDArray[np.float64]
    confidence: NDArray[np.float64]
    ends_connected: NDArray[np.int64]
    ends_at_border: NDArray[np.int64]
    group: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def connection(self) -> NDArray[Any]:
        """(R,) object: ``"both_ends"``, ``"one_end"`` or ``"isolated"``."""
        names = np.array(["isolated", "one_end", "both_ends"], dtype=object)
        return names[self.ends_connected]

    def lines(self) -> NDArray[Any]:
        """(R,) shapely LineStrings of the roads."""
        return np.array([shapely.linestrings(p) for p in self.xy], dtype=object)


def _chains(
    ends: NDArray[np.int64], n_nodes: int, stop: NDArray[np.bool_]
) -> tuple[list[NDArray[np.int64]], list[NDArray[np.int64]]]:
    """Maximal chains of the graph of (P, 2) piece ``ends``: node and piece sequences.

    A chain goes on through nodes of degree 2 unless ``stop`` (N,) marks them.
    """
    p = len(ends)
    deg = np.bincount(ends.reshape(-1), minlength=n_nodes)
    deg[stop & (deg == 2)] = -2  # degree 2, but a chain ends here
    # adjacency as CSR over (node -> piece slots)
    owner = np.concatenate([ends[:, 0], ends[:, 1]])
    piece = np.concatenate([np.arange(p), np.arange(p)])
    order = np.argsort(owner, kind="stable")
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n_nodes), out=indptr[1:])
    slot_piece = piece[order].tolist()
    ip = indptr.tolist()
    e0, e1 = ends[:, 0].tolist(), ends[:, 1].tolist()
    degl = deg.tolist()
    used = [False] * p
    nodes_out: list[NDArray[np.int64]] = []
    pieces_out: list[NDArray[np.int64]] = []

    def walk(start: int, first: int) -> None:
        seq_n, seq_p = [start], []
        cur, pc = start, first
        while True:
            used[pc] = True
            seq_p.append(pc)
            cur = e1[pc] if e0[pc] == cur else e0[pc]
            seq_n.append(cur)
            if degl[cur] != 2 or cur == start:
                break
            nxt = [q for q in slot_piece[ip[cur] : ip[cur + 1]] if not used[q]]
            if not nxt:
                break
            pc = nxt[0]
        nodes_out.append(np.asarray(seq_n, dtype=np.int64))
        pieces_out.append(np.asarray(seq_p, dtype=np.int64))

    for node in range(n_nodes):
        if degl[node] == 0 or degl[node] == 2:
            continue
        for q in slot_piece[ip[node] : ip[node + 1]]:
            if not used[q]:
                walk(node, q)
    for q in range(p):  # what is left are closed loops of degree-2 nodes
        if not used[q]:
            walk(e0[q], q)
    return nodes_out, pieces_out


def join_missing(
    segs: Segments,
    missing: NDArray[np.bool_],
    matched: NDArray[np.bool_],
    prob: NDArray[np.float32] | None,
    ref_xy: NDArray[np.float64],
    area: shapely.Polygon,
    *,
    tolerance: float,
) -> MissingRoads:
    """Join the prediction's missing pieces into roads (see the module docstring).

    Parameters
    ----------
    segs : Segments
        The prediction's pieces.
    missing, matched : (P,) bool
        Inside pieces classified ``missing_from_ref`` / ``matched`` (band pieces are neither).
    prob : (E,) float32 or None
        The prediction's edge probabilities (indexed by ``segs.edge``).
    ref_xy : (M, 2) float64
        Sample points of the reference (its roads), metres.
    area : shapely Polygon
        The compared area.
    tolerance : float
        Metres.
    """
    n = segs.num_nodes
    sel = np.flatnonzero(missing)
    # roads also end where they meet roads the map has (a missing road crossing a mapped one is
    # two roads, each connected at that end)
    full_degree = np.bincount(segs.node.reshape(-1), minlength=n)
    chains_n, chains_p = _chains(segs.node[sel], n, full_degree != 2)
    chains_p = [sel[c] for c in chains_p]
    xy_all = segs.node_xy()
    seg_len = segs.lengths()
    r = len(chains_n)
    # which nodes touch the existing network
    touch = np.zeros(n, dtype=bool)
    touch[segs.node[matched].reshape(-1)] = True
    ends = np.unique(
        np.concatenate([[c[0], c[-1]] for c in chains_n]) if r else np.zeros(0, np.int64)
    )
    if len(ends) and len(ref_xy):
        d, _ = cKDTree(ref_xy).query(xy_all[ends], distance_upper_bound=tolerance)
        touch[ends[np.isfinite(d) & (d <= tolerance)]] = True
    border = np.zeros(n, dtype=bool)
    if len(ends):
        dist = shapely.distance(area.exterior, shapely.points(xy_all[ends]))
        border[ends[dist <= _BORDER]] = True
    # groups of missing roads and whether each connects anywhere
    deg = np.bincount(segs.node[sel].reshape(-1), minlength=n)
    a, b = segs.node[sel, 0], segs.node[sel, 1]
    adj = coo_matrix((np.ones(len(sel)), (a, b)), shape=(n, n))
    _, label = connected_components(adj, directed=False)
    group_touch = np.zeros(int(label.max()) + 1 if n else 0, dtype=bool)
    np.logical_or.at(group_touch, label, touch | border)
    connected = touch | border | ((deg >= 3) & group_touch[label])
    length = np.array([seg_len[p].sum() for p in chains_p], dtype=np.float64)
    if prob is None:
        confidence = np.full(r, np.nan)
    else:
        pe = np.asarray(prob, dtype=np.float64)
        confidence = np.array(
            [
                float(np.sum(pe[segs.edge[p]] * seg_len[p]) / max(seg_len[p].sum(), 1e-12))
                for p in chains_p
            ],
            dtype=np.float64,
        )
    first = np.array([c[0] for c in chains_n], dtype=np.int64)
    last = np.array([c[-1] for c in chains_n], dtype=np.int64)
    ends_connected = connected[first].astype(np.int64) + connected[last].astype(np.int64)
    for i, c in enumerate(chains_n):  # a loop connects (at both "ends") wherever it touches
        if c[0] == c[-1]:
            ends_connected[i] = 2 if connected[c].any() else 0
    ends_at_border = border[first].astype(np.int64) + border[last].astype(np.int64)
    return MissingRoads(
        chains_n,
        chains_p,
        [xy_all[c] for c in chains_n],
        length,
        confidence,
        ends_connected.reshape(-1),
        ends_at_border.reshape(-1),
        label[first].astype(np.int64) if r else np.zeros(0, np.int64),
    )
