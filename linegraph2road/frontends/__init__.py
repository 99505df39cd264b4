"""Mask front-ends: image windows -> keypoint/road/overpass masks + a feature map.

The interface every front-end implements is :class:`~linegraph2road.frontends.base.MaskFrontend`
(read ``base.py`` first). :func:`build_frontend` builds one by name and size
(sizes in :mod:`~linegraph2road.frontends.registry`); :class:`SamFrontend` is the default
(SAM ViT-B encoder + SAM's prompt-free mask decoder), and :func:`load_sam_checkpoint` loads an
official ``sam_vit_b_01ec64.pth``. Importing this package never imports ``torchvision`` nor the
top-level ``segment_anything`` package (see :mod:`~linegraph2road.frontends._sam_import`).
"""

from __future__ import annotations

from linegraph2road.frontends.base import (
    ABSENT_LOGIT,
    MASK_NAMES,
    VARIANTS,
    CheckpointError,
    FrontendOutput,
    MaskFrontend,
    variant_of,
)
from linegraph2road.frontends.registry import (
    FRONTENDS,
    SAM_SIZES,
    build_frontend,
    normalize_description,
)
from linegraph2road.frontends.sam import (
    SamCheckpointInfo,
    SamFrontend,
    SamSpec,
    load_sam_checkpoint,
)

__all__ = [
    "ABSENT_LOGIT",
    "FRONTENDS",
    "MASK_NAMES",
    "SAM_SIZES",
    "VARIANTS",
    "CheckpointError",
    "FrontendOutput",
    "MaskFrontend",
    "SamCheckpointInfo",
    "SamFrontend",
    "SamSpec",
    "build_frontend",
    "load_sam_checkpoint",
    "normalize_description",
    "variant_of",
]
