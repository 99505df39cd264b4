"""Topology head: candidate-edge classification with a Graph Transformer on the line graph.

Paper section 3.4 and appendix 0.B:

1. every candidate edge gets ``N_sampled = 4`` bilinear feature vectors along it (both ends
   included, canonical direction; :mod:`.edge_features`), concatenated (``4 x 128``) and mapped by
   an MLP (``Linear -> ReLU -> Linear``) to ``hidden = 128``;
2. the line graph ``L(G)`` of the candidate graph (nodes = candidate edges, adjacent iff they share
   a vertex; :func:`~linegraph2road.line_graph.line_graph_edge_index`) carries the features;
3. 3 layers of ``torch_geometric.nn.TransformerConv`` with 4 heads (equations 1-2): per-head width
   ``hidden / heads = 32`` and ``concat=True``, so the heads are concatenated back to 128 as in
   equation 2; ``root_weight=False`` (no ``W_skip x_i`` term, which equation 2 does not have)
   because equation 3 adds the residual itself. Attention-coefficient dropout is 0; the paper's
   dropout sits where equation 3 puts it. Each layer is
   followed by equation 3: ``H = LN(X + DO(attn))``, ``X' = LN(H + DO(W2 ReLU(W1 H)))`` with dropout
   0.1 and an FFN of width ``hidden`` (as SAM-Road's topology transformer);
4. ``Linear(hidden, 1)``: one logit per candidate edge (train with BCE-with-logits; ``sigmoid``
   gives the probability at inference).

Ablation switches (paper Table 3):

* ``gnn="mlp"`` (variant D): every layer keeps the residual/LayerNorm/FFN structure but replaces
  attention over neighbours by a per-node linear layer, i.e. no message passing;
* ``gnn="none"`` (variant C): the edge features go straight to the final linear layer;
* ``use_line_graph=False`` (variant G): the same Graph Transformer runs on the *original*
  candidate graph, whose node features are the bilinear features at the vertices (MLP to
  ``hidden``); an edge is scored by a 3-layer MLP on the concatenated outputs of its two canonical
  endpoints;
* ``n_sampled`` (variants E, F): points sampled per edge.

Candidate-edge order does not matter: the head is permutation equivariant over the rows of each
window's candidate edges (checked by the tests in eval mode), and the orientation of a row does
not change its score (canonical direction, see :mod:`.edge_features`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch_geometric.nn import TransformerConv

from linegraph2road.errors import ParameterError
from linegraph2road.line_graph import line_graph_edge_index
from linegraph2road.model.edge_features import canonical_edges, edge_features, sample_feature_map

__all__ = ["GraphTransformerLayer", "TopologyHead"]

GnnKind = Literal["transformer", "mlp", "none"]


class GraphTransformerLayer(nn.Module):
    """One Graph Transformer layer with the residual/LayerNorm/FFN of the paper's equation 3.

    Parameters
    ----------
    hidden_dim : int
        Node feature width (paper: 128); divisible by ``heads``.
    heads : int
        Attention heads (paper: 4); each of width ``hidden_dim / heads``, concatenated.
    dropout : float
        Dropout of equation 3 (paper: 0.1).
    ffn_dim : int
        Hidden width of the FFN ``W2 ReLU(W1 .)``.
    message_passing : bool
        False replaces the attention over neighbours by a per-node linear layer (ablation D).
    """

    def __init__(
        self,
        *,
        hidden_dim: int = 128,
        heads: int = 4,
        dropout: float = 0.1,
        ffn_dim: int = 128,
        message_passing: bool = True,
    ) -> None:
        super().__init__()
        if hidden_dim % heads:
            raise ParameterError(f"hidden_dim {hidden_dim} is not divisible by heads {heads}")
        self.message_passing = message_passing
        self.attn: nn.Module
        if message_passing:
            self.attn = TransformerConv(
                hidden_dim, hidden_dim // heads, heads=heads, concat=True, root_weight=False
            )
            # PyG builds ``lin_skip`` even with root_weight=False; it is never used, so freeze it
            # (DDP would otherwise need find_unused_parameters).
            self.attn.lin_skip.requires_grad_(False)
        else:
            self.attn = nn.Linear(hidden_dim, hidden_dim)
        self.norm1 = nn.LayerNorm(hidden_dim)
        self.ffn = nn.Sequential(
            nn.Linear(hidden_dim, ffn_dim), nn.ReLU(), nn.Linear(ffn_dim, hidden_dim)
        )
        self.norm2 = nn.LayerNorm(hidden_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``(n, hidden)`` node features, ``(2, m)`` int64 edges -> ``(n, hidden)``."""
        h = self.attn(x, edge_index) if self.message_passing else self.attn(x)
        h = self.norm1(x + self.dropout(h))
        return self.norm2(h + self.dropout(self.ffn(h)))


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(a, b))
    return nn.Sequential(*layers)


class TopologyHead(nn.Module):
    """Scores candidate edges of image windows (see the module docstring).

    Parameters
    ----------
    feature_dim : int
        ``D`` of the front-end's feature map (SAM ViT-B: 128).
    hidden_dim : int
        Width of edge embeddings and Graph Transformer layers (paper: 128).
    n_sampled : int
        Feature samples per candidate edge, both ends included (paper: 4; >= 2).
    num_layers : int
        Graph Transformer layers (paper: 3).
    heads : int
        Attention heads per layer (paper: 4).
    dropout : float
        Dropout of equation 3 (paper: 0.1).
    ffn_dim : int or None
        FFN width; None = ``hidden_dim``.
    gnn : {"transformer", "mlp", "none"}
        Message passing by ``TransformerConv`` (paper), none per layer (variant D), or no layers
        at all (variant C).
    use_line_graph : bool
        True (paper): nodes are candidate edges on the line graph. False: variant G.
    """

    def __init__(
        self,
        *,
        feature_dim: int = 128,
        hidden_dim: int = 128,
        n_sampled: int = 4,
        num_layers: int = 3,
        heads: int = 4,
        dropout: float = 0.1,
        ffn_dim: int | None = None,
        gnn: GnnKind = "transformer",
        use_line_graph: bool = True,
    ) -> None:
        super().__init__()
        if gnn not in ("transformer", "mlp", "none"):
            raise ParameterError(f"gnn must be 'transformer', 'mlp' or 'none', got {gnn!r}")
        if n_sampled < 2:
            raise ParameterError(f"n_sampled must be >= 2 (both endpoints), got {n_sampled}")
        if min(feature_dim, hidden_dim, num_layers + 1, heads) < 1 or not 0 <= dropout < 1:
            raise ParameterError("feature_dim, hidden_dim, heads must be >= 1, num_layers >= 0")
        self.config: dict[str, object] = {
            "feature_dim": feature_dim,
            "hidden_dim": hidden_dim,
            "n_sampled": n_sampled,
            "num_layers": num_layers,
            "heads": heads,
            "dropout": dropout,
            "ffn_dim": ffn_dim or hidden_dim,
            "gnn": gnn,
            "use_line_graph": use_line_graph,
        }
        self.n_sampled = n_sampled
        self.use_line_graph = use_line_graph
        in_dim = n_sampled * feature_dim if use_line_graph else feature_dim
        self.input_mlp = _mlp([in_dim, hidden_dim, hidden_dim])
        self.layers = nn.ModuleList(
            GraphTransformerLayer(
                hidden_dim=hidden_dim,
                heads=heads,
                dropout=dropout,
                ffn_dim=ffn_dim or hidden_dim,
                message_passing=gnn == "transformer",
            )
            for _ in range(0 if gnn == "none" else num_layers)
        )
        self.output = (
            nn.Linear(hidden_dim, 1)
            if use_line_graph
            else _mlp([2 * hidden_dim, hidden_dim, hidden_dim, 1])
        )

    def describe(self) -> dict[str, object]:
        """Constructor arguments (JSON-serialisable), as stored in checkpoints."""
        return dict(self.config)

    def forward(
        self,
        features: torch.Tensor,
        vertices: Sequence[torch.Tensor],
        candidate_edges: Sequence[torch.Tensor],
        *,
        stride: int,
    ) -> list[torch.Tensor]:
        """Edge logits for the candidate graphs of a batch of windows.

        Parameters
        ----------
        features : torch.Tensor
            ``(B, D, h, w)`` front-end feature maps.
        vertices : sequence of torch.Tensor
            ``B`` tensors ``(M_b, 2)`` float ``(x, y)`` pixels of window ``b``.
        candidate_edges : sequence of torch.Tensor
            ``B`` tensors ``(C_b, 2)`` int64 indices into ``vertices[b]`` (no self loops).
        stride : int
            Window pixels per feature cell.

        Returns
        -------
        list of torch.Tensor
            ``B`` tensors ``(C_b,)`` float logits, in the rows' order.
        """
        if features.ndim != 4 or not len(vertices) == len(candidate_edges) == len(features):
            raise ParameterError(
                f"need features (B, D, h, w) and B vertex/edge tensors, got {tuple(features.shape)}"
                f", {len(vertices)} vertex and {len(candidate_edges)} edge tensors"
            )
        device = features.device
        verts = [torch.as_tensor(v).to(device) for v in vertices]
        edges = [
            canonical_edges(v, torch.as_tensor(e))
            for v, e in zip(verts, candidate_edges, strict=True)
        ]
        counts = [len(e) for e in edges]
        if self.use_line_graph:
            x, graph = self._line_graph_inputs(features, verts, edges, stride)
        else:
            x, graph = self._vertex_graph_inputs(features, verts, edges, stride)
        h = self.input_mlp(x)
        for layer in self.layers:
            h = layer(h, graph)
        if self.use_line_graph:
            logits = self.output(h)[:, 0]
        else:
            offsets = np.cumsum([0] + [len(v) for v in verts[:-1]])
            pairs = torch.cat([e + int(o) for e, o in zip(edges, offsets, strict=True)])
            logits = self.output(torch.cat([h[pairs[:, 0]], h[pairs[:, 1]]], dim=1))[:, 0]
        return list(torch.split(logits, counts))

    def _line_graph_inputs(
        self,
        features: torch.Tensor,
        verts: list[torch.Tensor],
        edges: list[torch.Tensor],
        stride: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        xs, graphs, offset = [], [], 0
        for fmap, v, e in zip(features, verts, edges, strict=True):
            xs.append(edge_features(fmap, v, e, stride=stride, n_sampled=self.n_sampled))
            lg = line_graph_edge_index(e.cpu().numpy(), num_nodes=len(v))
            graphs.append(lg + offset)
            offset += len(e)
        return torch.cat(xs), torch.cat(graphs, dim=1).to(features.device)

    def _vertex_graph_inputs(
        self,
        features: torch.Tensor,
        verts: list[torch.Tensor],
        edges: list[torch.Tensor],
        stride: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        xs, graphs, offset = [], [], 0
        for fmap, v, e in zip(features, verts, edges, strict=True):
            xs.append(sample_feature_map(fmap, v, stride=stride))
            graphs.append(torch.cat([e, e.flip(1)]).t() + offset)  # both directions
            offset += len(v)
        return torch.cat(xs), torch.cat(graphs, dim=1).to(features.device)
