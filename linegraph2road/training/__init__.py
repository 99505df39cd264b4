"""Training on ``l2r prep`` output (``l2r train``): LineGraph2Road (paper section 4.3), or a
segmentation front-end alone with its own paper's recipe (``task: segmentation``).

* :mod:`.config`: the YAML schema (:class:`TrainConfig` tree), :func:`load_config`,
  :func:`load_any_config` (either task), :func:`resolve`;
* :mod:`.dataset`: :func:`find_tiles`, :class:`TileDataset` (random crops + quarter turns with the
  candidate graph cropped and rotated consistently), :func:`collate_samples`;
* :mod:`.loss`: :func:`l2r_loss` (mask BCE + 0.1 x edge BCE);
* :mod:`.trainer`: :class:`Trainer` (Adam, MultiStepLR, bf16 autocast on GPU, checkpoints,
  resume, CSV log, DDP under ``torchrun``);
* :mod:`.distributed`: :func:`init_distributed` (``torchrun`` process group),
  :func:`resolve_device`, :func:`autocast_dtype`;
* :mod:`.thresholds`: :func:`select_thresholds` (SAM-Road's best-F1 threshold selection on
  labelled tiles), :class:`ThresholdSelection`;
* :mod:`.validation`: :class:`Validator` (TOPO / APLS on held-out tiles each epoch),
  :func:`roc_auc`, :func:`window_scores` (loss and edge AUC on fixed windows).

Segmentation-only front-ends (``task: segmentation``):

* :mod:`.segmentation.config`: :class:`SegmentationConfig` with one recipe section per family
  (:class:`NLLinkNetRecipe`, :class:`FCtLRecipe`, :class:`ExpertsRecipe`);
* :mod:`.segmentation.common`: :func:`build_segmentation_frontend`, :class:`RoadIoU` validation,
  :class:`RunLog` (log.csv, ``checkpoints/{last,best}.safetensors``);
* :mod:`.segmentation.nl_linknet`, :mod:`.segmentation.fctl`, :mod:`.segmentation.experts`:
  :func:`train_nl_linknet`, :func:`train_fctl` (and its refiner), :func:`train_experts`
  (:func:`tile_locations`).

The orchestration behind ``l2r train`` is :func:`linegraph2road.pipelines.train.train` and
:func:`linegraph2road.pipelines.train_segmentation.train_segmentation`.
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
    load_any_config,
    load_config,
    resolve,
)
from linegraph2road.training.dataset import (
    Sample,
    TileData,
    TileDataset,
    TileRecord,
    collate_samples,
    crop_sample,
    find_tiles,
    load_tile,
    positive_graph,
    rot90_points,
    tiles_gsd,
)
from linegraph2road.training.distributed import (
    DistContext,
    autocast_dtype,
    init_distributed,
    resolve_device,
)
from linegraph2road.training.loss import LossParts, l2r_loss
from linegraph2road.training.segmentation.common import (
    RoadIoU,
    RunLog,
    SegmentationResult,
    build_segmentation_frontend,
)
from linegraph2road.training.segmentation.config import (
    ExpertsRecipe,
    FCtLRecipe,
    NLLinkNetRecipe,
    SegmentationConfig,
    resolve_segmentation,
)
from linegraph2road.training.segmentation.experts import tile_locations, train_experts
from linegraph2road.training.segmentation.fctl import train_fctl
from linegraph2road.training.segmentation.nl_linknet import train_nl_linknet
from linegraph2road.training.thresholds import ThresholdSelection, select_thresholds
from linegraph2road.training.trainer import LOG_COLUMNS, Trainer, TrainResult, seed_everything
from linegraph2road.training.validation import Validator, roc_auc, window_scores

__all__ = [
    "LOG_COLUMNS",
    "DataConfig",
    "DataSource",
    "DistContext",
    "ExpertsRecipe",
    "FCtLRecipe",
    "LossParts",
    "ModelConfig",
    "NLLinkNetRecipe",
    "OptimConfig",
    "RoadIoU",
    "RunLog",
    "Sample",
    "SegmentationConfig",
    "SegmentationResult",
    "ThresholdSelection",
    "TileData",
    "TileDataset",
    "TileRecord",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "ValidationConfig",
    "Validator",
    "autocast_dtype",
    "build_segmentation_frontend",
    "collate_samples",
    "config_from_dict",
    "crop_sample",
    "find_tiles",
    "init_distributed",
    "l2r_loss",
    "load_any_config",
    "load_config",
    "load_tile",
    "positive_graph",
    "resolve",
    "resolve_device",
    "resolve_segmentation",
    "roc_auc",
    "rot90_points",
    "seed_everything",
    "select_thresholds",
    "tile_locations",
    "tiles_gsd",
    "train_experts",
    "train_fctl",
    "train_nl_linknet",
    "window_scores",
]
