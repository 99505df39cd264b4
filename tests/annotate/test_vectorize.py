from __future__ import annotations

import numpy as np

from linegraph2road.annotate.chunks import CHUNK, Chunk, Rect, paste_rect
from linegraph2road.annotate.vectorize import accepted_graph, chunk_clusters


def test_clusters_of_chunks() -> None:
    keys = [(0, 0), (1, 1), (5, 5), (5, 6)]
    shape = (10 * CHUNK, 10 * CHUNK - 100)
    rects = chunk_clusters(keys, shape)
    assert rects == [Rect(0, 0, 2 * CHUNK, 2 * CHUNK), Rect(5 * CHUNK, 5 * CHUNK, 2 * CHUNK, CHUNK)]
    assert chunk_clusters([], shape) == []
    assert chunk_clusters([(0, 9)], shape) == [Rect(9 * CHUNK, 0, CHUNK - 100, CHUNK)]


def test_graph_of_two_far_apart_roads() -> None:
    shape = (4 * CHUNK, 4 * CHUNK)
    chunks: dict[tuple[int, int], Chunk] = {}
    for r0, c0 in ((10, 20), (3 * CHUNK + 40, 3 * CHUNK + 30)):
        road = np.zeros((7, 150), dtype=bool)
        road[1:6] = True
        chunks.update(paste_rect(Rect(c0, r0, 150, 7), chunks.get, road=road, covered=road))
    g = accepted_graph(chunks.get, sorted(chunks), shape)
    assert g.num_edges == 2 and g.edge_prob is not None and (g.edge_prob == 1).all()
    ends = np.sort(g.nodes[:, 0])
    assert ends[0] < 30 and 150 < ends[1] < 175 and 3 * CHUNK + 30 <= ends[2] < 3 * CHUNK + 45
    centre = np.where(g.nodes[:, 0] < CHUNK, 13.5, 3 * CHUNK + 43.5)  # rows 11-15, 809-813
    assert np.abs(g.nodes[:, 1] - centre).max() <= 2.0
    empty = accepted_graph(chunks.get, [], shape)
    assert empty.num_nodes == 0 and empty.num_edges == 0
