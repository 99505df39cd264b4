"""Bilinear sampling of candidate-edge features from a front-end feature map (paper 3.4, app. 0.B).

Coordinates
-----------
Points are library points: ``(x, y) = (col, row)`` float pixels of the window, origin at the
top-left *corner* of the top-left pixel, so a pixel's centre is ``(col + 0.5, row + 0.5)``. A
feature map of stride ``s`` has cell ``(i, j)`` covering pixels ``[j s, (j + 1) s)`` horizontally;
its centre is ``x = (j + 0.5) s``. The point ``x`` therefore sits at continuous cell coordinate
``x / s - 0.5``, which is exactly :func:`torch.nn.functional.grid_sample` with
``align_corners=False`` and the normalised coordinate ``2 x / (w s) - 1`` (``-1`` = left edge of the
map, ``+1`` = right edge). SAM-Road samples the same way (``x / PATCH_SIZE * 2 - 1``). Within half a
cell of the border we use ``padding_mode="border"`` (the edge cell's value) instead of SAM-Road's
zero padding, so features do not fade towards a window's edge.

Sampling along an edge
----------------------
``N_sampled`` points evenly spaced *including both ends*: ``p_k = a + k / (N - 1) (b - a)``,
``k = 0..N-1`` (paper: "at both endpoints, as well as at a series of uniformly interpolated
points"; with ``N = 2`` only the endpoints, like SAM-Road's pair features). The vectors are
concatenated from end 1 to end 2, giving ``N * D`` values.

Orientation
-----------
The concatenation is ordered, so an edge and its reverse would get different features. We make
the direction canonical *by geometry*: end 1 is the endpoint that comes first in ``(x, y)``
lexicographic order. The feature is then independent of the candidate's ``(i, j)`` order and of
how vertices are numbered (unlike an ``i < j`` rule, which depends on the numbering).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from linegraph2road.errors import GraphError, ParameterError

__all__ = [
    "canonical_edges",
    "canonical_endpoints",
    "edge_features",
    "edge_sample_points",
    "sample_feature_map",
]


def _check_graph(vertices: torch.Tensor, edges: torch.Tensor) -> None:
    if vertices.ndim != 2 or vertices.shape[1] != 2:
        raise GraphError(f"vertices must be (M, 2) (x, y) pixels, got {tuple(vertices.shape)}")
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise GraphError(f"candidate edges must be (C, 2) vertex indices, got {tuple(edges.shape)}")
    if edges.dtype.is_floating_point:
        raise GraphError(f"candidate edges must hold integer indices, got {edges.dtype}")
    if edges.numel() and (int(edges.min()) < 0 or int(edges.max()) >= len(vertices)):
        raise GraphError(
            f"candidate edges refer to vertex {int(edges.max())} (or a negative index) but there "
            f"are {len(vertices)} vertices"
        )


def sample_feature_map(
    feature_map: torch.Tensor, points: torch.Tensor, *, stride: int
) -> torch.Tensor:
    """Bilinearly sample ``feature_map`` at pixel points.

    Parameters
    ----------
    feature_map : torch.Tensor
        ``(D, h, w)`` float feature map of one window.
    points : torch.Tensor
        ``(..., 2)`` float ``(x, y)`` pixels of the window (library convention).
    stride : int
        Window pixels per feature cell (SAM: 16).

    Returns
    -------
    torch.Tensor
        ``(..., D)`` sampled features, dtype of ``feature_map``. The sample positions and the
        interpolation are float32 (float64 for a float64 map) whatever the map's dtype and any
        autocast: a bf16 map (the CUDA default) is sampled at exactly the fp32 positions.
    """
    if feature_map.ndim != 3:
        raise ParameterError(f"feature_map must be (D, h, w), got {tuple(feature_map.shape)}")
    if points.shape[-1:] != (2,):
        raise ParameterError(f"points must be (..., 2) (x, y), got {tuple(points.shape)}")
    d, h, w = feature_map.shape
    lead = points.shape[:-1]
    # Positions are never rounded to the map's dtype: a bf16 x near 500 px is only good to
    # +-1 px (8 significant bits), so reduced-precision maps are sampled in float32, outside
    # autocast, and only the sampled values are cast back.
    dtype = torch.promote_types(feature_map.dtype, torch.float32)
    dev = feature_map.device
    size = torch.tensor([w * stride, h * stride], dtype=dtype, device=dev)
    grid = points.to(device=dev, dtype=dtype).reshape(1, -1, 1, 2) * (2.0 / size) - 1.0
    with torch.autocast(dev.type, enabled=False):
        out = F.grid_sample(
            feature_map.to(dtype).unsqueeze(0),
            grid,
            mode="bilinear",
            padding_mode="border",
            align_corners=False,
        )  # (1, D, P, 1)
    return out[0, :, :, 0].t().reshape(*lead, d).to(feature_map.dtype)


def canonical_edges(vertices: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Orient every edge so that end 1 comes first in ``(x, y)`` lexicographic order.

    Parameters
    ----------
    vertices : torch.Tensor
        ``(M, 2)`` float ``(x, y)`` pixels.
    edges : torch.Tensor
        ``(C, 2)`` int64 vertex indices (either orientation).

    Returns
    -------
    torch.Tensor
        ``(C, 2)`` int64 on ``vertices``' device: the same edges, rows in the same order, each
        ``(end 1, end 2)``. Coincident endpoints keep their given order.
    """
    _check_graph(vertices, edges)
    e = edges.to(device=vertices.device, dtype=torch.int64)
    p, q = vertices[e[:, 0]], vertices[e[:, 1]]
    swap = (p[:, 0] > q[:, 0]) | ((p[:, 0] == q[:, 0]) & (p[:, 1] > q[:, 1]))
    return torch.where(swap.unsqueeze(1), e.flip(1), e)


def canonical_endpoints(
    vertices: torch.Tensor, edges: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Endpoint positions ``a, b`` (each ``(C, 2)``) of :func:`canonical_edges` ``(edges)``."""
    e = canonical_edges(vertices, edges)
    return vertices[e[:, 0]], vertices[e[:, 1]]


def edge_sample_points(
    vertices: torch.Tensor, edges: torch.Tensor, *, n_sampled: int = 4
) -> torch.Tensor:
    """Evenly spaced sample points along each candidate edge, both ends included.

    Parameters
    ----------
    vertices : torch.Tensor
        ``(M, 2)`` float ``(x, y)`` pixels.
    edges : torch.Tensor
        ``(C, 2)`` int64 vertex indices.
    n_sampled : int
        Points per edge, >= 2 (paper: 4).

    Returns
    -------
    torch.Tensor
        ``(C, n_sampled, 2)`` float ``(x, y)`` pixels, from canonical end 1 to end 2.
    """
    if n_sampled < 2:
        raise ParameterError(f"n_sampled must be >= 2 (both endpoints), got {n_sampled}")
    a, b = canonical_endpoints(vertices, edges)
    t = torch.linspace(0.0, 1.0, n_sampled, dtype=a.dtype, device=a.device).view(1, -1, 1)
    return a.unsqueeze(1) + t * (b - a).unsqueeze(1)


def edge_features(
    feature_map: torch.Tensor,
    vertices: torch.Tensor,
    edges: torch.Tensor,
    *,
    stride: int,
    n_sampled: int = 4,
) -> torch.Tensor:
    """Concatenated bilinear features along each candidate edge.

    Parameters
    ----------
    feature_map : torch.Tensor
        ``(D, h, w)`` feature map of one window.
    vertices : torch.Tensor
        ``(M, 2)`` float ``(x, y)`` window pixels.
    edges : torch.Tensor
        ``(C, 2)`` int64 vertex indices.
    stride : int
        Window pixels per feature cell.
    n_sampled : int
        Samples per edge including both ends (paper: 4).

    Returns
    -------
    torch.Tensor
        ``(C, n_sampled * D)``: the ``n_sampled`` vectors concatenated from end 1 to end 2.
    """
    pts = edge_sample_points(vertices.to(feature_map.device), edges, n_sampled=n_sampled)
    sampled = sample_feature_map(feature_map, pts, stride=stride)  # (C, N, D)
    return sampled.reshape(len(edges), n_sampled * feature_map.shape[0])
