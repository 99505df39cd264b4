"""Training LineGraph2Road on ``l2r prep`` output (paper section 4.2; ``l2r train``).

* :mod:`.config`: the YAML schema (:class:`TrainConfig` tree), :func:`load_config`,
  :func:`resolve`;
* :mod:`.dataset`: :func:`find_tiles`, :class:`TileDataset` (random crops + quarter turns with the
  candidate graph cropped and rotated consistently), :func:`collate_samples`;
* :mod:`.loss`: :func:`l2r_loss` (mask BCE + 0.1 x edge BCE);
* :mod:`.trainer`: :class:`Trainer` (Adam, MultiStepLR, bf16 autocast on GPU, checkpoints,
  resume, CSV log, DDP under ``torchrun``);
* :mod:`.distributed`: :func:`init_distributed` (``torchrun`` process group),
  :func:`resolve_device`, :func:`autocast_dtype`;
* :mod:`.validation`: :class:`Validator` (TOPO / APLS on held-out tiles each epoch),
  :func:`roc_auc`, :func:`window_scores` (loss and edge AUC on fixed windows).

The orchestration behind ``l2r train`` is :func:`linegraph2road.pipelines.train.train`.
"""

from __future__ import annotations

from linegraph2road.training.config import (
    DataConfig,
    DataSource,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    ValidationConfig,
    config_from_dict,
    load_config,
    resolve,
)
from linegraph2road.training.dataset import (
    Sample,
    TileDataset,
    TileRecord,
    collate_samples,
    crop_sample,
    find_tiles,
    load_tile,
    positive_graph,
    rot90_points,
)
from linegraph2road.training.distributed import (
    DistContext,
    autocast_dtype,
    init_distributed,
    resolve_device,
)
from linegraph2road.training.loss import LossParts, l2r_loss
from linegraph2road.training.trainer import LOG_COLUMNS, Trainer, TrainResult, seed_everything
from linegraph2road.training.validation import Validator, roc_auc, window_scores

__all__ = [
    "LOG_COLUMNS",
    "DataConfig",
    "DataSource",
    "DistContext",
    "LossParts",
    "ModelConfig",
    "OptimConfig",
    "Sample",
    "TileDataset",
    "TileRecord",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "ValidationConfig",
    "Validator",
    "autocast_dtype",
    "collate_samples",
    "config_from_dict",
    "crop_sample",
    "find_tiles",
    "init_distributed",
    "l2r_loss",
    "load_config",
    "load_tile",
    "positive_graph",
    "resolve",
    "resolve_device",
    "roc_auc",
    "rot90_points",
    "seed_everything",
    "window_scores",
]
