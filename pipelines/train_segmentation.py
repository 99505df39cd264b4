"""``l2r train`` with a ``task: segmentation`` config: a front-end alone, its paper's recipe.

Wires the library together and nothing more: the tiles
(:func:`~linegraph2road.training.find_tiles`), the front-end
(:func:`~linegraph2road.training.segmentation.build_segmentation_frontend`), the samples
(:class:`~linegraph2road.training.TileDataset`), validation
(:class:`~linegraph2road.training.segmentation.RoadIoU`), the run folder
(:class:`~linegraph2road.training.segmentation.RunLog`) and the family's loop; the resolved
config is written as ``OUT/config.yaml`` before the first step. RoadGIE reads road-mask tiles
(:func:`~linegraph2road.training.road_masks.find_road_tiles`: ``l2r prep`` output or
DeepGlobe-layout folders) and validates with
:class:`~linegraph2road.training.segmentation.roadgie.InteractiveIoU`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.experts import parse_size
from linegraph2road.frontends.fctl import FCtLFrontend
from linegraph2road.training import TileDataset, find_tiles, resolve_device, seed_everything
from linegraph2road.training.segmentation.common import (
    RoadIoU,
    RunLog,
    SegmentationResult,
    build_segmentation_frontend,
    experts_size,
)
from linegraph2road.training.segmentation.config import (
    ExpertsRecipe,
    FCtLRecipe,
    NLLinkNetRecipe,
    RoadGIERecipe,
    SegmentationConfig,
    resolve_segmentation,
)
from linegraph2road.training.segmentation.experts import (
    check_locations,
    tile_locations,
    train_experts,
)
from linegraph2road.training.segmentation.fctl import fctl_epoch_steps, train_fctl
from linegraph2road.training.segmentation.nl_linknet import train_nl_linknet

__all__ = ["train_segmentation"]

PathLike = str | os.PathLike[str]


def train_segmentation(
    config: SegmentationConfig,
    out_dir: PathLike,
    *,
    max_steps: int | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> SegmentationResult:
    """Train a segmentation-only front-end as ``config`` says, writing into ``out_dir``.

    Parameters
    ----------
    config : SegmentationConfig
        From :func:`~linegraph2road.training.config.load_any_config` (``task: segmentation``).
    out_dir : path
        Run folder: ``config.yaml``, ``log.csv``, ``checkpoints/{last,best}.safetensors``; a
        folder that already holds a run is refused (these runs do not resume).
    max_steps : int, optional
        Stop each training phase after this many optimiser steps.
    progress : bool
        Progress bars (terminals only).
    echo : callable, optional
        Receives one-line messages for the user.

    Raises
    ------
    ParameterError, InputFileError, FormatError, CheckpointError
        Bad config values, missing data, unusable weights.
    """
    say = echo if echo is not None else (lambda message: None)
    cfg = resolve_segmentation(config)
    out = Path(out_dir)
    if not cfg.data.train:
        raise ParameterError("no training data: set data.train to l2r prep output folder(s)")
    if (out / "checkpoints" / "last.safetensors").exists():
        raise ParameterError(
            f"{out} already holds a training run; choose another -o (segmentation runs do not "
            "resume)"
        )
    m, d, v, o = cfg.model, cfg.data, cfg.validation, cfg.optim
    device = resolve_device(cfg.device)
    if isinstance(o, RoadGIERecipe):
        return _train_roadgie(cfg, o, out, device, max_steps, progress, say)
    per_source = [find_tiles(s.labels, images=s.images, split=s.split) for s in d.train]
    train_tiles = [t for tiles in per_source for t in tiles]
    val_tiles = [t for s in d.val for t in find_tiles(s.labels, images=s.images, split=s.split)]
    val_tiles = val_tiles[: v.max_tiles]
    seed_everything(cfg.seed)
    window = m.window_size
    crop = d.crop if d.crop is not None else window
    data = TileDataset(
        train_tiles,
        crop=crop,
        rotate=d.rotate,
        samples_per_tile=d.samples_per_tile,
        seed=cfg.seed,
        cache=d.cache,
    )
    validator = None
    if val_tiles:
        validator = RoadIoU(
            val_tiles, threshold=v.threshold, device=device, batch_size=v.batch_size
        )
    run = RunLog(out, config=cfg.to_dict(), log_every=cfg.log_every, validator=validator)
    where = f"{len(train_tiles)} tile(s), {len(val_tiles)} validation tile(s), {device}"
    if isinstance(o, ExpertsRecipe):
        name = experts_size(m.size, m.mask_channels)
        locations = tile_locations(per_source, mode=o.locations)
        check_locations(data, locations, k=parse_size(name).k)
        resolve_segmentation(cfg, out)
        say(f"training experts/{name} (random init) on {where}; {len(set(locations))} location(s)")
        result = train_experts(
            data,
            locations,
            run,
            size=m.size,
            window_size=window,
            mask_channels=m.mask_channels,
            recipe=o,
            seed=cfg.seed,
            max_steps=max_steps,
            device=device,
        )
    else:
        frontend = build_segmentation_frontend(
            m.frontend,
            m.size,
            window_size=window,
            mask_channels=m.mask_channels,
            checkpoint=m.checkpoint,
        )
        if isinstance(o, FCtLRecipe) and isinstance(frontend, FCtLFrontend):
            fctl_epoch_steps(frontend, data, o)  # tile sizes, steps per epoch
        resolve_segmentation(cfg, out)
        say(f"training {m.frontend}/{m.size} ({frontend.weights_description}) on {where}")
        if isinstance(o, NLLinkNetRecipe):
            result = train_nl_linknet(
                frontend,
                data,
                run,
                recipe=o,
                mask_channels=m.mask_channels,
                device=device,
                validate_every=v.every,
                workers=d.workers,
                seed=cfg.seed,
                max_steps=max_steps,
                progress=progress,
            )
        elif isinstance(o, FCtLRecipe) and isinstance(frontend, FCtLFrontend):
            result = train_fctl(
                frontend,
                data,
                run,
                recipe=o,
                device=device,
                validate_every=v.every,
                seed=cfg.seed,
                max_steps=max_steps,
                progress=progress,
                validation_batch_size=v.batch_size,
            )
        else:  # pragma: no cover - segmentation_config_from_dict pairs recipe and family
            raise ParameterError(f"no recipe for front-end {m.frontend!r}")
    for note in result.notes:
        say(note)
    return result


def _train_roadgie(
    cfg: SegmentationConfig,
    o: RoadGIERecipe,
    out: Path,
    device: Any,
    max_steps: int | None,
    progress: bool,
    say: Callable[[str], None],
) -> SegmentationResult:
    """RoadGIE: road-mask tiles, the interactive recipe, interactive validation."""
    from linegraph2road.frontends.roadgie import RoadGIEFrontend
    from linegraph2road.training.road_masks import (
        RoadCropDataset,
        find_road_tiles,
        uncertainty_path,
    )
    from linegraph2road.training.segmentation.roadgie import (
        InteractiveIoU,
        simulation_settings,
        train_roadgie,
    )

    m, d, v = cfg.model, cfg.data, cfg.validation
    train = [r for s in d.train for r in find_road_tiles(s.labels, images=s.images, split=s.split)]
    val = [r for s in d.val for r in find_road_tiles(s.labels, images=s.images, split=s.split)]
    val = val[: v.max_tiles]
    seed_everything(cfg.seed)
    frontend = build_segmentation_frontend(
        m.frontend, m.size, window_size=m.window_size, mask_channels=1, checkpoint=m.checkpoint
    )
    if not isinstance(frontend, RoadGIEFrontend):  # pragma: no cover - the config pairs them
        raise ParameterError(f"model.frontend {m.frontend!r} is not roadgie")
    data = RoadCropDataset(
        train,
        crop=d.crop if d.crop is not None else m.window_size,
        samples_per_tile=d.samples_per_tile,
        seed=cfg.seed,
        cache=d.cache,
        augment=o.augment,
    )
    validator = None
    if val:
        validator = InteractiveIoU(
            val, rounds=o.val_rounds, settings=simulation_settings(o), threshold=v.threshold,
            device=device, seed=cfg.seed,
        )  # fmt: skip
    run = RunLog(out, config=cfg.to_dict(), log_every=cfg.log_every, validator=validator)
    resolve_segmentation(cfg, out)
    guided = sum(uncertainty_path(r).is_file() for r in train)
    expert = f"{guided} with expert uncertainty" if o.expert_guided else "expert guidance off"
    say(
        f"training roadgie/{m.size} ({frontend.weights_description}) on {len(train)} tile(s) "
        f"({expert}), {len(val)} validation tile(s), {device}"
    )
    if o.expert_guided and 0 < guided < len(train):
        say(f"{len(train) - guided} tile(s) have no {{id}}_uncertainty.png: plain prompts there")
    return train_roadgie(
        frontend, data, run, recipe=o, device=device, validate_every=v.every,
        workers=d.workers, seed=cfg.seed, max_steps=max_steps, progress=progress,
    )  # fmt: skip
