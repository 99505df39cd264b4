from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from linegraph2road.candidates import candidate_edges
from linegraph2road.errors import ParameterError
from linegraph2road.georef import Georeference
from linegraph2road.inference import extract_graph, window_grid
from linegraph2road.model import WindowPrediction, build_model
from linegraph2road.nms import coupled_nms, plain_nms

ScoreFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class StubModel(nn.Module):
    """Masks read from the image (R = road, G = keypoint, B = overpass, /255); features = image.

    ``score(features (3, w, w), vertices (M, 2), edges (C, 2)) -> (C,)`` gives edge probabilities.
    """

    def __init__(self, score: ScoreFn, window_size: int = 128) -> None:
        super().__init__()
        self.window_size = window_size
        self.trained_channels = (0, 1, 2)
        self.frontend = nn.Identity()
        self.weight = nn.Parameter(torch.zeros(1))
        self.score = score
        self.calls = 0

    def predict_window(self, images: torch.Tensor) -> WindowPrediction:
        x = images.float() / 255.0
        return WindowPrediction(torch.stack([x[:, 1], x[:, 0], x[:, 2]], 1), x, 1)

    def score_edges(self, features: Any, vertices: Any, edges: Any) -> list[torch.Tensor]:
        self.calls += 1
        return [self.score(features[0], vertices[0], edges[0])]


def short_edges(_: torch.Tensor, v: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """1.0 for edges between consecutive vertices (< 24 px), 0.0 for longer ones."""
    return ((v[e[:, 0]] - v[e[:, 1]]).norm(dim=1) < 24).float()


def road_line_image(height: int = 300, width: int = 300) -> np.ndarray:
    image = np.zeros((3, height, width), dtype=np.uint8)
    image[0, 99:102, 20:280] = 230  # road mask 0.9 along rows 99-101, x in [20, 280)
    return image


def test_straight_road_gives_a_chain() -> None:
    result = extract_graph(StubModel(short_edges), road_line_image(), keep_masks=True)
    g = result.graph
    assert g.num_nodes >= 14 and g.num_edges == g.num_nodes - 1  # a path
    degree = np.bincount(g.edges.reshape(-1), minlength=g.num_nodes)
    assert sorted(degree)[:2] == [1, 1] and degree.max() == 2
    assert np.all(np.abs(g.nodes[:, 1] - 100.0) <= 1.5)  # on the line
    assert g.nodes[:, 0].min() < 25 and g.nodes[:, 0].max() > 265  # along its whole length
    assert np.allclose(g.edge_prob, 1.0)
    assert result.masks is not None and result.masks.shape == (3, 300, 300)
    assert set(result.timings) >= {"read", "encoder", "decoder", "nms", "candidates", "scoring"}


def test_edge_probability_is_the_mean_over_windows() -> None:
    win = 128

    def by_window_position(_: torch.Tensor, v: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        # depends on where the edge lies in the window, so windows disagree
        return ((v[e[:, 0], 0] + v[e[:, 1], 0]) / 2 / win).clamp(0.01, 1.0)

    image = road_line_image()
    result = extract_graph(StubModel(by_window_position, win), image, t_topo=0.0)
    g = result.graph
    pts = result.vertices.points
    cand = candidate_edges(pts)
    assert g.num_edges == len(cand)
    origins = window_grid(300, 300, window=win)
    for (i, j), prob in zip(g.edges, g.edge_prob, strict=True):
        a, b = g.nodes[i], g.nodes[j]
        seen = [
            min(max(((a[0] + b[0]) / 2 - c0) / win, 0.01), 1.0)
            for r0, c0 in origins
            if all(r0 <= p[1] < r0 + win and c0 <= p[0] < c0 + win for p in (a, b))
        ]
        assert len(seen) >= 2 or i == j
        assert prob == pytest.approx(np.mean(seen), abs=1e-6)


def reference_extract(
    model: Any, image: np.ndarray, *, d_nei: float, nms: str = "coupled", **th: float
) -> Any:
    """The whole-image path: stitch all masks, global NMS, global candidates, per-window scores."""
    h, w = image.shape[1:]
    win = model.window_size
    origins = window_grid(h, w, window=win, min_overlap=int(d_nei) + 1)
    total = np.zeros((3, h, w), np.float32)
    count = np.zeros((h, w), np.float32)
    feats = {}
    for r0, c0 in origins:
        pred = model.predict_window(torch.from_numpy(image[None, :, r0 : r0 + win, c0 : c0 + win]))
        total[:, r0 : r0 + win, c0 : c0 + win] += pred.mask_probs[0].numpy()
        count[r0 : r0 + win, c0 : c0 + win] += 1
        feats[(r0, c0)] = pred.features
    masks = total / count
    vertices = coupled_nms if nms == "coupled" else plain_nms
    v = vertices(masks[0], masks[1], masks[2], t_k=th["t_k"], t_r=th["t_r"])
    cand = candidate_edges(v.points, d_nei=d_nei)
    sums, counts = np.zeros(len(cand)), np.zeros(len(cand))
    for (r0, c0), f in feats.items():
        p = v.points[cand]
        inside = np.all((p[..., 0] >= c0) & (p[..., 0] < c0 + win), axis=1) & np.all(
            (p[..., 1] >= r0) & (p[..., 1] < r0 + win), axis=1
        )
        if not inside.any():
            continue
        local = torch.from_numpy(v.points - [c0, r0]).float()
        (prob,) = model.score_edges(f, [local], [torch.from_numpy(cand[inside])])
        sums[inside] += prob.numpy()
        counts[inside] += 1
    return masks, v, cand, sums / np.maximum(counts, 1)


@pytest.mark.parametrize("nms", ["coupled", "plain"])
def test_streaming_equals_whole_image_path(nms: str) -> None:
    """Coupled NMS streamed strip by strip, and SAM-Road's plain NMS (Table 4) on the kept
    whole masks, both equal the whole-image path."""
    torch.manual_seed(0)
    model = build_model("tiny", window_size=64).eval()
    image = np.random.default_rng(3).integers(0, 256, (3, 170, 150), dtype=np.uint8)
    th = {"t_k": 0.6, "t_r": 0.5}
    with torch.no_grad():
        probe = model.predict_window(torch.from_numpy(image[None, :, :64, :64])).mask_probs
    # thresholds at quantiles of this random model's masks: a sparse, realistic vertex set
    th = {"t_k": float(np.quantile(probe[0, 0], 0.99)), "t_r": float(np.quantile(probe[0, 1], 0.8))}
    masks, v_ref, cand, prob_ref = reference_extract(model, image, d_nei=24.0, nms=nms, **th)
    result = extract_graph(model, image, d_nei=24.0, t_topo=0.0, keep_masks=True, nms=nms, **th)
    assert result.masks is not None and np.array_equal(result.masks, masks)
    v = result.vertices
    assert len(v) > 50
    assert np.array_equal(v.points, v_ref.points) and np.array_equal(v.kind, v_ref.kind)
    # graph edges (as point pairs) and probabilities equal those of the whole-image path
    got = {
        tuple(map(tuple, result.graph.nodes[e])): p
        for e, p in zip(result.graph.edges, result.graph.edge_prob, strict=True)
    }
    want = {tuple(map(tuple, v_ref.points[e])): p for e, p in zip(cand, prob_ref, strict=True)}
    assert got.keys() == want.keys()
    assert all(abs(got[k] - want[k]) < 1e-5 for k in got)


def test_non_overpass_model_gives_no_overpass_vertices() -> None:
    """The variant's overpass channel is not in the coupled NMS: even a threshold of 0, which
    its constant "none" probability (~2e-9) passes, makes no overpass vertex."""
    from linegraph2road.nms import OVERPASS

    image = np.random.default_rng(4).integers(0, 256, (3, 96, 96), dtype=np.uint8)
    kinds = {}
    for overpass in (True, False):
        torch.manual_seed(0)
        model = build_model("tiny", window_size=64, overpass=overpass)
        with torch.no_grad():
            probe = model.predict_window(torch.from_numpy(image[None, :, :64, :64])).mask_probs
        t_r = float(np.quantile(probe[0, 1], 0.9))
        result = extract_graph(model, image, t_k=0.0, t_r=t_r, d_k=16.0, keep_masks=True)
        kinds[overpass] = np.bincount(result.vertices.kind, minlength=3)
        if not overpass:
            assert result.masks is not None and float(result.masks[2].max()) < 1e-8
    assert kinds[True][OVERPASS] > 0
    assert kinds[False][OVERPASS] == 0 and kinds[False][0] > 0


def test_sam_road_layout_leaves_its_margin_empty_and_averages_inside() -> None:
    """SAM-Road's layout on a 400 px image with 128 px windows (4 per axis from 64 to 208): the
    64 px border has no window, so no mask, vertex or edge; inside, the streamed masks are the
    mean of the windows over each pixel, and the road is still found."""
    image = np.zeros((3, 400, 400), dtype=np.uint8)
    image[0, 199:202, 10:390] = 230  # a road across the whole image
    image[0, 10:390, 30:33] = 200  # and one inside the left margin
    model = StubModel(short_edges)
    result = extract_graph(model, image, layout="sam-road", n_windows=4, keep_masks=True)
    assert result.stats["windows"] == 16
    masks = result.masks
    assert masks is not None
    border = np.ones((400, 400), bool)
    border[64:336, 64:336] = False
    assert not masks[:, border].any()
    np.testing.assert_allclose(masks[1, 200, 64:336], 230 / 255, rtol=1e-6)
    x = result.vertices.points
    assert len(x) and np.all((x >= 64) & (x < 336))
    g = result.graph
    assert g.num_edges >= 10 and np.all(np.abs(g.nodes[:, 1] - 200.5) <= 1.5)
    assert g.nodes[:, 0].min() < 80 and g.nodes[:, 0].max() > 320
    with pytest.raises(ParameterError, match="256 px"):  # 128 + 2 x 64
        extract_graph(model, np.zeros((3, 200, 400), np.uint8), layout="sam-road", window=128)
    with pytest.raises(ParameterError, match="layout"):
        extract_graph(model, image, layout="16x16")


def test_nodata_gets_no_vertices_and_model_mode_is_restored() -> None:
    model = StubModel(short_edges)
    model.train()
    valid = np.ones((300, 300), dtype=bool)
    valid[:, 120:180] = False
    result = extract_graph(model, road_line_image(), valid=valid, keep_masks=True)
    assert model.training
    x = result.vertices.points[:, 0]
    assert not np.any((x > 120) & (x < 180))
    assert result.masks is not None and not result.masks[:, :, 120:180].any()
    # no edge jumps over the nodata gap
    a, b = result.graph.nodes[result.graph.edges].transpose(1, 0, 2)
    assert not np.any((np.minimum(a[:, 0], b[:, 0]) < 120) & (np.maximum(a[:, 0], b[:, 0]) > 180))


def test_image_smaller_than_a_window_is_padded() -> None:
    image = np.zeros((3, 40, 90), dtype=np.uint8)
    image[0, 19:22, 5:85] = 230
    georef = Georeference("EPSG:32611", (1.0, 0.0, 500000.0, 0.0, -1.0, 4000000.0))
    result = extract_graph(StubModel(short_edges), image, georef=georef, keep_masks=True)
    assert result.masks is not None and result.masks.shape == (3, 40, 90)
    assert result.graph.num_edges >= 3 and result.graph.georef == georef


def test_bf16_runs_and_bad_parameters_are_refused() -> None:
    torch.manual_seed(0)
    model = build_model("tiny", window_size=64).eval()
    image = np.zeros((3, 64, 64), dtype=np.uint8)
    result = extract_graph(model, image, precision="bf16", t_r=0.99, t_k=0.99)
    assert result.graph.num_nodes == 0
    with pytest.raises(ParameterError, match="precision"):
        extract_graph(model, image, precision="fp16")
    with pytest.raises(ParameterError, match="uint8"):
        extract_graph(model, image.astype(np.float32))
    with pytest.raises(ParameterError, match="t_topo"):
        extract_graph(model, image, t_topo=1.5)


def test_near_flat_masks_are_refused_before_scoring() -> None:
    from linegraph2road.inference.extract import _check_line_graph_size

    # a dense block: every vertex joined to every other one
    n = 1500
    i, j = np.triu_indices(n, k=1)
    with pytest.raises(ParameterError, match="nearly flat"):
        _check_line_graph_size(np.column_stack([i, j]), n, 0, 0)
    _check_line_graph_size(np.array([[0, 1], [1, 2]]), 3, 0, 0)  # a road is fine
