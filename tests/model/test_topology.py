"""Edge-feature sampling and the line-graph topology head on hand-made candidate graphs."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import TransformerConv

from linegraph2road.errors import GraphError, ParameterError
from linegraph2road.model import (
    TopologyHead,
    canonical_edges,
    edge_features,
    edge_sample_points,
    sample_feature_map,
)

STRIDE = 16


def coordinate_map(h: int = 4, w: int = 4, s: int = STRIDE) -> torch.Tensor:
    """``(2, h, w)`` map whose channels are the (x, y) pixel centres of the cells."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([(xs + 0.5) * s, (ys + 0.5) * s]).float()


def test_sampling_uses_library_pixel_convention() -> None:
    """Bilinear sampling reproduces a linear map exactly: the sample equals the point itself."""
    fmap = coordinate_map()
    pts = torch.tensor([[8.0, 8.0], [20.5, 33.25], [56.0, 8.0], [31.9, 40.0]])
    torch.testing.assert_close(sample_feature_map(fmap, pts, stride=STRIDE), pts)
    # within half a cell of the border the edge cell's value is used (border padding)
    edge = torch.tensor([[0.0, 0.0], [63.9, 2.0]])
    torch.testing.assert_close(
        sample_feature_map(fmap, edge, stride=STRIDE), torch.tensor([[8.0, 8.0], [56.0, 8.0]])
    )


def stripes(h: int = 4, w: int = 64) -> torch.Tensor:
    """``(1, h, w)`` map of alternating 0 / 100 columns: every fraction of a cell shows."""
    return (100.0 * (torch.arange(w) % 2)).float().expand(1, h, w).contiguous()


def test_bf16_maps_are_sampled_at_the_fp32_positions() -> None:
    """A bf16 x near 1000 px is only good to +-4 px; sampling must not round the positions."""
    gen = torch.Generator().manual_seed(0)
    pts = torch.rand(500, 2, generator=gen) * torch.tensor([64.0 * STRIDE, 4.0 * STRIDE])
    fmap = stripes()  # 0 / 100: exact in bf16, so only the positions can differ
    want = sample_feature_map(fmap, pts, stride=STRIDE).bfloat16()
    got = sample_feature_map(fmap.bfloat16(), pts, stride=STRIDE)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # how extract_graph runs --precision bf16
        auto = sample_feature_map(fmap.bfloat16(), pts, stride=STRIDE)
    torch.testing.assert_close(auto, want, rtol=0, atol=0)
    # what rounding the positions to bf16 would have given: far off on this map
    rounded = sample_feature_map(fmap, pts.bfloat16().float(), stride=STRIDE).bfloat16()
    assert (rounded.float() - want.float()).abs().max() > 5.0
    # the edge features of the head take the same path
    verts, edges = pts[:40], torch.stack([torch.arange(0, 40, 2), torch.arange(1, 40, 2)], 1)
    torch.testing.assert_close(
        edge_features(fmap.bfloat16(), verts, edges, stride=STRIDE),
        edge_features(fmap, verts, edges, stride=STRIDE).bfloat16(),
        rtol=0,
        atol=0,
    )


def test_edge_points_include_both_ends_in_canonical_order() -> None:
    verts = torch.tensor([[40.0, 10.0], [10.0, 40.0], [10.0, 10.0]])
    edges = torch.tensor([[0, 1], [2, 1], [1, 2]])
    assert canonical_edges(verts, edges).tolist() == [[1, 0], [2, 1], [2, 1]]
    pts = edge_sample_points(verts, edges, n_sampled=4)
    assert pts.shape == (3, 4, 2)
    torch.testing.assert_close(
        pts[0], torch.tensor([[10.0, 40.0], [20.0, 30.0], [30.0, 20.0], [40.0, 10.0]])
    )
    torch.testing.assert_close(pts[1], pts[2])
    feats = edge_features(coordinate_map(), verts, edges, stride=STRIDE, n_sampled=4)
    assert feats.shape == (3, 8)
    torch.testing.assert_close(feats[0], pts[0].reshape(-1))  # concatenated end 1 -> end 2


def square_graph() -> tuple[torch.Tensor, torch.Tensor]:
    """4 corners of a square, its 4 sides and one diagonal, plus a far pair (own component)."""
    verts = torch.tensor(
        [[8.0, 8.0], [40.0, 8.0], [40.0, 40.0], [8.0, 40.0], [56.0, 56.0], [60.0, 50.0]]
    )
    edges = torch.tensor([[0, 1], [1, 2], [2, 3], [0, 3], [0, 2], [4, 5]])
    return verts, edges


def make_head(**kw: object) -> TopologyHead:
    torch.manual_seed(0)
    return TopologyHead(feature_dim=8, hidden_dim=32, **kw).eval()  # type: ignore[arg-type]


def features(batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, 8, 4, 4, generator=torch.Generator().manual_seed(1))


def test_paper_configuration() -> None:
    head = TopologyHead()
    assert head.describe() == {
        "feature_dim": 128,
        "hidden_dim": 128,
        "n_sampled": 4,
        "num_layers": 3,
        "heads": 4,
        "dropout": 0.1,
        "ffn_dim": 128,
        "gnn": "transformer",
        "use_line_graph": True,
    }
    assert len(head.layers) == 3
    conv = head.layers[0].attn
    assert isinstance(conv, TransformerConv)
    assert (conv.heads, conv.out_channels, conv.concat, conv.root_weight) == (4, 32, True, False)
    assert head.input_mlp[0].in_features == 4 * 128


def test_shapes_and_gradients() -> None:
    verts, edges = square_graph()
    head = make_head().train()
    fmap = features(2).requires_grad_()
    out = head(fmap, [verts, verts[:3]], [edges, edges[:2]], stride=STRIDE)
    assert [o.shape for o in out] == [(6,), (2,)]
    torch.cat(out).sum().backward()
    assert fmap.grad is not None and fmap.grad.abs().sum() > 0
    assert all(p.grad is not None for p in head.parameters() if p.requires_grad)
    frozen = [n for n, p in head.named_parameters() if not p.requires_grad]
    assert all(".attn.lin_skip." in n for n in frozen)  # PyG's unused skip when root_weight=False


def test_permuting_candidate_edges_permutes_scores() -> None:
    verts, edges = square_graph()
    head = make_head()
    fmap = features()
    ref = head(fmap, [verts], [edges], stride=STRIDE)[0]
    perm = torch.tensor([3, 5, 0, 4, 2, 1])
    out = head(fmap, [verts], [edges[perm]], stride=STRIDE)[0]
    torch.testing.assert_close(out, ref[perm])
    # reversing rows' orientation and renumbering vertices change nothing either
    flipped = head(fmap, [verts], [edges.flip(1)], stride=STRIDE)[0]
    torch.testing.assert_close(flipped, ref)
    vperm = torch.tensor([5, 2, 0, 4, 1, 3])  # new vertex k is old vertex vperm[k]
    inverse = torch.argsort(vperm)
    renumbered = head(fmap, [verts[vperm]], [inverse[edges]], stride=STRIDE)[0]
    torch.testing.assert_close(renumbered, ref)


def test_scores_use_line_graph_neighbours_only() -> None:
    """An added edge sharing a vertex changes its neighbours' scores; a far one changes none."""
    verts, edges = square_graph()
    fmap = features()
    head = make_head()
    ref = head(fmap, [verts], [edges], stride=STRIDE)[0]
    more = torch.cat([edges, torch.tensor([[1, 3]])])  # other diagonal: touches edges 0-3
    out = head(fmap, [verts], [more], stride=STRIDE)[0]
    assert not torch.allclose(out[:4], ref[:4])
    torch.testing.assert_close(out[5], ref[5])  # the separate component is unaffected
    no_gnn = make_head(gnn="none")
    a = no_gnn(fmap, [verts], [edges], stride=STRIDE)[0]
    b = no_gnn(fmap, [verts], [more], stride=STRIDE)[0]
    torch.testing.assert_close(b[:6], a)  # no message passing: every edge scored alone


@pytest.mark.parametrize(
    "kw",
    [
        {"gnn": "mlp"},
        {"gnn": "none"},
        {"use_line_graph": False},
        {"use_line_graph": False, "gnn": "mlp"},
        {"n_sampled": 2},
        {"n_sampled": 8},
    ],
)
def test_ablation_switches_run(kw: dict[str, object]) -> None:
    verts, edges = square_graph()
    head = make_head(**kw).train()
    out = head(features(2), [verts, verts], [edges, edges[:1]], stride=STRIDE)
    assert [o.shape for o in out] == [(6,), (1,)]
    torch.cat(out).sum().backward()
    # the transformer's attention weights only exist where message passing is on
    has_conv = any(isinstance(m, TransformerConv) for m in head.modules())
    assert has_conv == (kw.get("gnn", "transformer") == "transformer")


def test_vertex_graph_variant_is_equivariant() -> None:
    verts, edges = square_graph()
    head = make_head(use_line_graph=False)
    ref = head(features(), [verts], [edges], stride=STRIDE)[0]
    out = head(features(), [verts], [edges.flip(1)[[1, 0, 2, 3, 4, 5]]], stride=STRIDE)[0]
    torch.testing.assert_close(out, ref[[1, 0, 2, 3, 4, 5]])


def test_empty_candidate_graphs() -> None:
    verts, edges = square_graph()
    head = make_head()
    empty = torch.zeros((0, 2), dtype=torch.int64)
    out = head(features(2), [verts, verts[:0]], [empty, empty], stride=STRIDE)
    assert [o.shape for o in out] == [(0,), (0,)]
    out = head(features(2), [verts, verts], [edges, empty], stride=STRIDE)
    assert [o.shape for o in out] == [(6,), (0,)]


def test_bad_inputs() -> None:
    verts, edges = square_graph()
    head = make_head()
    with pytest.raises(GraphError, match="vertex 9"):
        head(features(), [verts], [torch.tensor([[0, 9]])], stride=STRIDE)
    with pytest.raises(GraphError, match="integer"):
        head(features(), [verts], [edges.float()], stride=STRIDE)
    with pytest.raises(ParameterError, match="B vertex/edge"):
        head(features(2), [verts], [edges], stride=STRIDE)
    with pytest.raises(ParameterError, match="n_sampled"):
        TopologyHead(n_sampled=1)
    with pytest.raises(ParameterError, match="gnn"):
        TopologyHead(gnn="gcn")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="divisible"):
        TopologyHead(hidden_dim=30, heads=4)
