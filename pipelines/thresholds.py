"""``l2r thresholds``: re-select a checkpoint's keypoint, road and topology thresholds.

Orchestration only: the checkpoint (:func:`~linegraph2road.model.load_checkpoint`), the labelled
tiles (:func:`~linegraph2road.pipelines.train.collect_tiles`,
:func:`~linegraph2road.training.load_tile`), the selection
(:func:`~linegraph2road.training.thresholds.select_thresholds`: SAM-Road's best-F1 rule), and
a copy of the checkpoint with the selection recorded
(:func:`~linegraph2road.model.rewrite_checkpoint_config`). The input checkpoint is never
modified unless ``in_place`` says so; every write is atomic.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.checkpoint import (
    checkpoint_gsd,
    checkpoint_kind,
    checkpoint_thresholds,
)
from linegraph2road.io import check_writable
from linegraph2road.model import load_checkpoint, rewrite_checkpoint_config
from linegraph2road.pipelines.extract import resolve_device, resolve_precision
from linegraph2road.pipelines.options import DEFAULT_THRESHOLDS, GSD_WARN_TOLERANCE
from linegraph2road.pipelines.train import collect_tiles
from linegraph2road.training import DataSource, load_tile, tiles_gsd
from linegraph2road.training.thresholds import ThresholdSelection, select_thresholds

__all__ = ["ThresholdRun", "run_thresholds"]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class ThresholdRun:
    """What :func:`run_thresholds` did.

    Attributes
    ----------
    selection : ThresholdSelection
        The selected thresholds and their best-F1 points.
    previous : dict or None
        The thresholds the checkpoint recorded before
        (:func:`~linegraph2road.frontends.checkpoint.checkpoint_thresholds`).
    written : Path or None
        The checkpoint written, or None (``output`` None and not ``in_place``).
    """

    selection: ThresholdSelection
    previous: dict[str, Any] | None
    written: Path | None


def run_thresholds(
    checkpoint: PathLike,
    sources: list[DataSource],
    *,
    output: PathLike | None = None,
    in_place: bool = False,
    max_tiles: int | None = None,
    device: str = "auto",
    precision: str | None = None,
    batch_size: int = 4,
    echo: Callable[[str], None] = print,
) -> ThresholdRun:
    """Select thresholds for ``checkpoint`` on labelled tiles; optionally write them into a copy.

    Parameters
    ----------
    checkpoint : path
        A LineGraph2Road model checkpoint (front-end + topology head).
    sources : list of DataSource
        ``l2r prep`` folders (labels, images, split) at the model's GSD.
    output : path or None
        Write a copy of the checkpoint with the selection recorded here (atomically).
    in_place : bool
        Replace ``checkpoint`` itself (atomically) instead; excludes ``output``.
    max_tiles : int or None
        Use at most this many tiles (the first ones).
    device, precision : str
        As ``l2r extract`` (``auto``; None = bf16 on CUDA, fp32 on CPU).
    batch_size : int
        Windows per forward pass.
    echo : callable
        Receives notes for the user.

    Returns
    -------
    ThresholdRun

    Raises
    ------
    ParameterError
        Not a model checkpoint, ``output`` and ``in_place`` together, ``output`` equal to the
        input without ``in_place``, no tile.
    InputFileError, CheckpointError, FormatError, OutputError
        Unreadable inputs or an output that cannot be written.
    """
    src = Path(checkpoint)
    kind = checkpoint_kind(src)
    if kind != "model":
        raise ParameterError(
            f"{src.name} is a segmentation-only ({kind}) checkpoint: it has no topology head and "
            "no keypoint/road/topology thresholds to select (its graph comes from mask2graph's "
            "--road-threshold)"
        )
    if output is not None and in_place:
        raise ParameterError("give -o/--output or --in-place, not both")
    target = src if in_place else None if output is None else Path(output)
    if target is not None and not in_place and target.resolve() == src.resolve():
        raise ParameterError(
            f"-o {target} is the input checkpoint; pass --in-place to overwrite it (atomically)"
        )
    if target is not None:
        check_writable(target)
    if max_tiles is not None and max_tiles < 1:
        raise ParameterError(f"max_tiles must be >= 1, got {max_tiles}")
    tiles = collect_tiles(sources)[:max_tiles]
    if not tiles:
        raise ParameterError("no labelled tile found in the given folders (l2r prep output)")
    trained, labels = checkpoint_gsd(src), tiles_gsd(tiles)
    if trained and labels and abs(labels / trained - 1) > GSD_WARN_TOLERANCE:
        echo(
            f"warning: the labels are at {labels:g} m/px but the model was trained at "
            f"{trained:g} m/px: roads have another width in pixels, the thresholds will not fit"
        )
    previous = checkpoint_thresholds(src)
    fallback = tuple(
        float(previous[k]) if previous is not None else DEFAULT_THRESHOLDS[k]
        for k in ("t_k", "t_r", "t_topo")
    )
    model, config = load_checkpoint(src)
    dev = resolve_device(device)
    model.to(dev)
    echo(f"selecting thresholds on {len(tiles)} tile(s) with {src.name} on {dev}")
    selection = select_thresholds(
        model,
        [load_tile(t) for t in tiles],
        fallback=(fallback[0], fallback[1], fallback[2]),
        device=dev,
        precision=resolve_precision(dev, precision),
        batch_size=batch_size,
    )
    if target is not None:
        rewrite_checkpoint_config(src, target, {**config, "thresholds": selection.to_dict()})
    return ThresholdRun(selection, previous, target)
