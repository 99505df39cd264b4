"""The LineGraph2Road network: front-end + line-graph topology head, and its checkpoints.

* :class:`LineGraph2Road`, :func:`build_model` (:mod:`.linegraph2road`): the full model, its
  training ``forward``, inference helpers ``predict_window`` / ``score_edges``, optimiser
  ``param_groups``;
* :class:`TopologyHead` (:mod:`.topology`): Graph Transformer on the line graph of the candidate
  graph, with Table 3 ablation switches;
* :func:`edge_features` (:mod:`.edge_features`): bilinear sampling of candidate-edge features;
* :func:`save_checkpoint` / :func:`load_checkpoint` / :func:`load_weights`: safetensors + config;
  :func:`rewrite_checkpoint_config`: the same tensors with another config (``l2r thresholds``).
"""

from __future__ import annotations

from linegraph2road.frontends.base import CheckpointError
from linegraph2road.model.edge_features import (
    canonical_edges,
    edge_features,
    edge_sample_points,
    sample_feature_map,
)
from linegraph2road.model.linegraph2road import (
    LineGraph2Road,
    ModelOutput,
    WindowPrediction,
    build_model,
    load_checkpoint,
    load_weights,
    read_architecture,
    rewrite_checkpoint_config,
    save_checkpoint,
)
from linegraph2road.model.topology import GraphTransformerLayer, TopologyHead

__all__ = [
    "CheckpointError",
    "GraphTransformerLayer",
    "LineGraph2Road",
    "ModelOutput",
    "TopologyHead",
    "WindowPrediction",
    "build_model",
    "canonical_edges",
    "edge_features",
    "edge_sample_points",
    "load_checkpoint",
    "load_weights",
    "read_architecture",
    "rewrite_checkpoint_config",
    "sample_feature_map",
    "save_checkpoint",
]
