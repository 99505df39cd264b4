"""Segmentation-only checkpoints: a trained front-end without a topology head.

A front-end trained with its own paper's recipe (``l2r train`` with ``task: segmentation``)
has no topology head; ``l2r segment`` writes its road probability and ``l2r extract`` turns that
into a graph with ``mask2graph``. Such a file is a safetensors file whose tensors are the
front-end's state dict (plus ``refiner.*`` for an FCtL refinement network) and whose metadata
holds

* ``format = "linegraph2road-frontend"``, ``format_version = "1"``;
* ``architecture``: JSON of :meth:`MaskFrontend.describe` (``frontend``, ``size``,
  ``window_size``, and the family's own keys: ``mask_channels``, ``num_classes``...);
* ``refiner``: JSON of the refinement network's widths, or ``null``;
* ``config``: the resolved training config.

Experts front-ends keep their own format (:mod:`.experts.checkpoint`, ``l2r-experts``);
:func:`save_frontend` writes it and :func:`load_frontend` reads it. :func:`checkpoint_kind`
tells the three kinds of l2r checkpoint apart from the metadata alone.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from linegraph2road.errors import CheckpointError, InputFileError, ParameterError
from linegraph2road.frontends.base import MaskFrontend, variant_of
from linegraph2road.frontends.experts.checkpoint import (
    EXPERTS_FORMAT,
    load_experts,
    read_experts_config,
    save_experts,
)
from linegraph2road.frontends.experts.model import ExpertsFrontend
from linegraph2road.frontends.fctl import FCTL_SIZES, FCtLFrontend, RefinementNet
from linegraph2road.frontends.nl_linknet.build import build_nl_linknet
from linegraph2road.io._atomic import atomic_path

__all__ = [
    "FRONTEND_FORMAT",
    "FrontendCheckpoint",
    "checkpoint_gsd",
    "checkpoint_kind",
    "checkpoint_thresholds",
    "checkpoint_variant",
    "frontend_from_description",
    "load_frontend",
    "save_frontend",
    "training_config",
]

FRONTEND_FORMAT = "linegraph2road-frontend"
FRONTEND_VERSION = "1"
_MODEL_FORMAT = "linegraph2road"  # LineGraph2Road model checkpoints (linegraph2road.model)

CheckpointKind = Literal["model", "frontend", "experts"]


class FrontendCheckpoint(NamedTuple):
    """What :func:`load_frontend` returns: the front-end (CPU, eval mode), the FCtL refinement
    network or None, and the stored config."""

    frontend: MaskFrontend
    refiner: RefinementNet | None
    config: dict[str, Any]


def _metadata(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise InputFileError(f"checkpoint not found: {path}")
    try:
        with safe_open(os.fspath(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read checkpoint {path}: not a safetensors file ({e})") from e


def checkpoint_kind(path: str | os.PathLike[str]) -> CheckpointKind:
    """Which kind of l2r checkpoint ``path`` is, from its metadata.

    Returns
    -------
    {"model", "frontend", "experts"}
        A LineGraph2Road model (front-end + topology head), a segmentation-only front-end, or an
        experts front-end.

    Raises
    ------
    InputFileError, CheckpointError
        Missing, unreadable, or not an l2r checkpoint (an official SAM ``.pth`` included).
    """
    path = Path(path)
    fmt = _metadata(path).get("format")
    kinds: dict[str | None, CheckpointKind] = {
        _MODEL_FORMAT: "model",
        FRONTEND_FORMAT: "frontend",
        EXPERTS_FORMAT: "experts",
    }
    if fmt not in kinds:
        raise CheckpointError(
            f"{path.name} is not a linegraph2road checkpoint (format {fmt!r}); pass a file "
            "written by `l2r train` (an official SAM .pth goes to --sam-checkpoint)"
        )
    return kinds[fmt]


def training_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The resolved training config stored in any kind of l2r checkpoint (``{}`` if none).

    Raises
    ------
    InputFileError, CheckpointError
        Missing, unreadable, not an l2r checkpoint, or damaged config metadata.
    """
    path = Path(path)
    if checkpoint_kind(path) == "experts":
        return dict(read_experts_config(path).get("training") or {})
    try:
        config = json.loads(_metadata(path).get("config", "{}"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path.name} has damaged config metadata ({e})") from e
    return config if isinstance(config, dict) else {}


def checkpoint_gsd(path: str | os.PathLike[str]) -> float | None:
    """The ground sampling distance (m/px) a checkpoint was trained at; None if not recorded.

    ``l2r train`` records ``data.gsd`` from the labels (``l2r prep`` writes them at the model's
    GSD); checkpoints from before that record none.
    """
    data = training_config(path).get("data")
    gsd = data.get("gsd") if isinstance(data, dict) else None
    try:
        value = None if gsd is None else float(gsd)
    except (TypeError, ValueError):
        return None
    return value if value is not None and value > 0 else None


#: The topology method's thresholds, as checkpoints record them.
THRESHOLD_KEYS = ("t_k", "t_r", "t_topo")


def _threshold_values(record: Any) -> dict[str, float] | None:
    if not isinstance(record, dict):
        return None
    try:
        values = {k: float(record[k]) for k in THRESHOLD_KEYS}
    except (KeyError, TypeError, ValueError):
        return None
    ok = all(math.isfinite(v) and 0.0 <= v < 1.0 for v in values.values())
    return values if ok else None


def checkpoint_thresholds(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The keypoint, road and topology thresholds a checkpoint of any kind records.

    ``l2r train`` stores the thresholds its validation selected (SAM-Road's best-F1 rule) under
    ``thresholds`` in the config metadata, and ``l2r thresholds`` re-selects them; a checkpoint
    without a selection falls back to the thresholds its training config validated with
    (``validation.t_k``, ``t_r``, ``t_topo``: the SpaceNet config's 0.195 / 0.341 / 0.705, say).

    Returns
    -------
    dict or None
        ``{"t_k", "t_r", "t_topo"}`` floats, ``"source"`` (a phrase saying where they come
        from) and ``"record"`` (the stored selection, or None); None when the checkpoint records
        neither (older checkpoints, segmentation-only ones).

    Raises
    ------
    InputFileError, CheckpointError
        Missing, unreadable, not an l2r checkpoint, or damaged config metadata.
    """
    config = training_config(path)
    record = config.get("thresholds")
    values = _threshold_values(record)
    if values is not None and isinstance(record, dict):
        where = f"{record.get('tiles', '?')} tile(s), {record.get('windows', '?')} window(s)"
        return {**values, "source": f"selected on {where}, best F1", "record": record}
    values = _threshold_values(config.get("validation"))
    if values is not None:
        return {**values, "source": "the training config's validation thresholds", "record": None}
    return None


def _architecture(path: Path) -> dict[str, Any]:
    try:
        arch = json.loads(_metadata(path)["architecture"])
    except (KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path.name} has damaged architecture metadata ({e})") from e
    if not isinstance(arch, dict):
        raise CheckpointError(f"{path.name} has damaged architecture metadata")
    return arch


def checkpoint_variant(path: str | os.PathLike[str]) -> str:
    """The model variant a checkpoint of any kind holds (:data:`~.base.VARIANTS`).

    ``"overpass"`` (keypoint, road and overpass heads: the paper's "Ours w/ Overpass"),
    ``"no-overpass"`` (keypoint and road: "Ours", the ablation baseline) or ``"road-only"``
    (segmentation front-ends trained on the road mask alone). Read from the architecture the
    checkpoint records: its front-end is rebuilt on the ``meta`` device (no memory, no weights)
    and its ``trained_channels`` named.

    Raises
    ------
    InputFileError, CheckpointError
        Missing, unreadable or damaged checkpoint, or an architecture this version cannot build.
    """
    from linegraph2road.frontends.experts.model import parse_size

    path = Path(path)
    kind = checkpoint_kind(path)
    try:
        if kind == "experts":
            road = parse_size(str(read_experts_config(path)["size"])).expert.out_channels == 1
            return variant_of((1,) if road else (0, 1, 2))
        arch = _architecture(path)
        description = arch.get("frontend", {}) if kind == "model" else arch
        with torch.device("meta"):
            frontend = frontend_from_description(dict(description))
    except (KeyError, TypeError, ValueError, ParameterError) as e:
        raise CheckpointError(
            f"{path.name} describes a front-end this version cannot build: {e}"
        ) from e
    return variant_of(frontend.trained_channels)


def frontend_from_description(description: dict[str, Any]) -> MaskFrontend:
    """A fresh (random) front-end of the architecture :meth:`MaskFrontend.describe` gave.

    Raises
    ------
    ParameterError
        A family or size this version cannot build.
    """
    from linegraph2road.frontends.registry import build_frontend, normalize_description

    description = normalize_description(description)
    name = description.get("frontend")
    size = str(description.get("size"))
    window = int(description.get("window_size", 512))
    frontend: MaskFrontend
    if name == "nl-linknet":
        frontend = build_nl_linknet(
            size, window, mask_channels=int(description.get("mask_channels", 3))
        )
    elif name == "fctl":
        if size not in FCTL_SIZES:
            raise ParameterError(f"unknown FCtL size {size!r}")
        spec = replace(FCTL_SIZES[size], num_classes=int(description.get("num_classes", 3)))
        frontend = FCtLFrontend(spec=spec, window_size=window)
    else:
        overpass = bool(description.get("overpass", True))
        frontend = build_frontend(str(name), size, window_size=window, overpass=overpass)
    if frontend.describe() != description:
        raise ParameterError(
            f"this version builds {frontend.describe()} for the stored description {description}"
        )
    return frontend


def save_frontend(
    frontend: MaskFrontend,
    path: str | os.PathLike[str],
    *,
    refiner: RefinementNet | None = None,
    config: dict[str, Any] | None = None,
) -> Path:
    """Write a segmentation-only front-end (and an FCtL refiner) to ``path`` atomically.

    Parameters
    ----------
    frontend : MaskFrontend
        Any front-end; an :class:`ExpertsFrontend` is written in the experts format.
    path : path
        Output ``.safetensors`` file.
    refiner : RefinementNet or None
        FCtL's contextual refinement network, stored under ``refiner.*``.
    config : dict or None
        Resolved training config (JSON-serialisable; other values become strings).

    Returns
    -------
    Path
    """
    if isinstance(frontend, ExpertsFrontend):
        if refiner is not None:
            raise ParameterError("a refiner belongs to an FCtL front-end, not to experts")
        return save_experts(frontend, path, extra={"training": config or {}})
    state = {k: v.detach().cpu().contiguous() for k, v in frontend.state_dict().items()}
    if refiner is not None:
        state.update(
            {f"refiner.{k}": v.detach().cpu().contiguous() for k, v in refiner.state_dict().items()}
        )
    metadata = {
        "format": FRONTEND_FORMAT,
        "format_version": FRONTEND_VERSION,
        "architecture": json.dumps(frontend.describe()),
        "refiner": json.dumps(None if refiner is None else refiner.describe()),
        "config": json.dumps(config or {}, default=str),
    }
    with atomic_path(path) as tmp:
        save_file(state, os.fspath(tmp), metadata=metadata)
    return Path(path)


def load_frontend(path: str | os.PathLike[str]) -> FrontendCheckpoint:
    """Rebuild a segmentation-only front-end from its checkpoint alone.

    Parameters
    ----------
    path : path
        Written by :func:`save_frontend` (or :func:`~.experts.checkpoint.save_experts`).

    Returns
    -------
    FrontendCheckpoint
        Front-end on the CPU in eval mode with ``weights_description`` naming the file.

    Raises
    ------
    InputFileError, CheckpointError
        Missing or unreadable file; a LineGraph2Road model checkpoint (load those with
        :func:`linegraph2road.model.load_checkpoint`); tensors that do not fit the stored
        architecture.
    """
    path = Path(path)
    kind = checkpoint_kind(path)
    if kind == "experts":
        training = read_experts_config(path).get("training", {})
        return FrontendCheckpoint(load_experts(path), None, dict(training or {}))
    if kind == "model":
        raise CheckpointError(
            f"{path.name} is a LineGraph2Road model checkpoint (front-end + topology head), not a "
            "segmentation-only front-end; load it with linegraph2road.model.load_checkpoint"
        )
    meta = _metadata(path)
    if meta.get("format_version") != FRONTEND_VERSION:
        raise CheckpointError(
            f"{path.name} has front-end checkpoint version {meta.get('format_version')!r}; this "
            f"linegraph2road reads version {FRONTEND_VERSION}"
        )
    try:
        arch = json.loads(meta["architecture"])
        refiner_desc = json.loads(meta.get("refiner", "null"))
        config = json.loads(meta.get("config", "{}"))
    except (KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path.name} has damaged architecture metadata ({e})") from e
    try:
        frontend = frontend_from_description(arch)
        refiner = None
        if refiner_desc is not None:
            refiner = RefinementNet(
                num_classes=int(refiner_desc["num_classes"]),
                widths=tuple(int(w) for w in refiner_desc["widths"]),
            )
    except (KeyError, TypeError, ValueError, ParameterError) as e:
        raise CheckpointError(
            f"{path.name} describes a front-end this version cannot build ({arch}): {e}"
        ) from e
    try:
        state = load_file(os.fspath(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read checkpoint tensors from {path}: {e}") from e
    refiner_state = {k[8:]: v for k, v in state.items() if k.startswith("refiner.")}
    frontend_state = {k: v for k, v in state.items() if not k.startswith("refiner.")}
    _load_strict(frontend, frontend_state, path)
    if refiner is not None:
        _load_strict(refiner, refiner_state, path)
        refiner.eval()
    elif refiner_state:
        raise CheckpointError(f"{path.name} holds refiner tensors but no refiner description")
    frontend.weights_description = (
        f"front-end checkpoint {path.name} ({arch['frontend']}/{arch['size']})"
    )
    return FrontendCheckpoint(frontend.eval(), refiner, config)


def _load_strict(module: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        first = str(e).strip().splitlines()[-1].strip()
        raise CheckpointError(
            f"checkpoint {path.name} does not fit its architecture: {first}"
        ) from e
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"checkpoint {path.name} does not fit its architecture: missing "
            f"{result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]}"
        )
