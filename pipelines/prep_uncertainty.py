"""``l2r prep uncertainty``: cache the experts' uncertainty (RoadGIE eq. 4) beside the labels.

Wires library calls only: the tiles (:func:`~linegraph2road.training.road_masks.find_road_tiles`:
``l2r prep`` output or a DeepGlobe-layout folder), each checkpoint's front-end (loaded once,
:func:`~linegraph2road.pipelines.segment.load_segmenter`), its whole-tile road probability
(:func:`~linegraph2road.training.segmentation.common.road_probability`), eq. 4
(:func:`~linegraph2road.frontends.roadgie.uncertainty.expert_uncertainty`) and the cache files
``{id}_uncertainty.png`` (atomic), plus ``uncertainty.json`` recording the checkpoints and tiles.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.roadgie.uncertainty import expert_uncertainty, write_uncertainty
from linegraph2road.io._atomic import atomic_path
from linegraph2road.training import resolve_device
from linegraph2road.training.road_masks import find_road_tiles, load_road_tile, uncertainty_path
from linegraph2road.training.segmentation.common import road_probability

__all__ = ["UncertaintyReport", "prep_uncertainty"]

PathLike = str | os.PathLike[str]


@dataclass
class UncertaintyReport:
    """Tiles written (``(tile_id, mean U)``), the experts' descriptions, the index file."""

    tiles: list[tuple[str, float]] = field(default_factory=list)
    experts: list[str] = field(default_factory=list)
    index: Path | None = None


def prep_uncertainty(
    folder: PathLike,
    checkpoints: Sequence[PathLike],
    *,
    images: PathLike | None = None,
    split: str | None = None,
    device: str = "auto",
    batch_size: int = 4,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> UncertaintyReport:
    """Write ``{id}_uncertainty.png`` for every tile of ``folder`` (see the module docstring).

    Parameters
    ----------
    folder : path
        ``l2r prep`` output or a DeepGlobe-layout folder; the caches are written into it.
    checkpoints : sequence of path
        Trained l2r checkpoints (front-ends or LineGraph2Road models), at least one.
    images, split
        As :func:`~linegraph2road.training.road_masks.find_road_tiles`.
    device : str
        ``auto`` (CUDA when available), ``cpu``, ``cuda``...
    batch_size : int
        Windows per network call.
    progress : bool
        A progress bar over the tiles.
    echo : callable, optional
        Receives one-line messages.

    Raises
    ------
    ParameterError, InputFileError, CheckpointError, FormatError
        No checkpoint, unusable checkpoints, missing or malformed tiles.
    """
    from linegraph2road.pipelines.segment import load_segmenter

    say = echo if echo is not None else (lambda message: None)
    if not checkpoints:
        raise ParameterError("give at least one trained checkpoint (--checkpoint) as an expert")
    records = find_road_tiles(folder, images=images, split=split)
    dev = resolve_device(device)
    experts = [load_segmenter(c) for c in checkpoints]
    for seg in experts:
        seg.frontend.to(dev)
        if seg.refiner is not None:
            seg.refiner.to(dev)
        say(f"expert: {seg.description}")
    report = UncertaintyReport(experts=[s.description for s in experts])
    for record in tqdm(records, desc="tiles", disable=not progress):
        tile = load_road_tile(record)
        probs = [
            road_probability(s.frontend, tile.image, refiner=s.refiner, device=dev,
                             batch_size=batch_size)
            for s in experts
        ]  # fmt: skip
        u = expert_uncertainty(probs, tile.road)
        write_uncertainty(uncertainty_path(record), u)
        report.tiles.append((record.tile_id, float(u.mean())))
    index = Path(folder) / "uncertainty.json"
    doc = {
        "equation": "U = mean over experts of |p_m - y| (RoadGIE eq. 4), stored as round(255 U)",
        "checkpoints": [os.fspath(Path(c).resolve()) for c in checkpoints],
        "experts": report.experts,
        "tiles": [{"tile_id": t, "mean_uncertainty": m} for t, m in report.tiles],
    }
    with atomic_path(index) as tmp:
        tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    report.index = index
    return report
