"""``l2r train``: a resolved :class:`~linegraph2road.training.TrainConfig` -> a training run.

Wires the library together and nothing more: the process group (under ``torchrun``), the
model (:func:`~linegraph2road.model.build_model`), the tiles
(:func:`~linegraph2road.training.find_tiles`), the dataset, the validator and the
:class:`~linegraph2road.training.Trainer`; rank 0 writes the resolved config as
``OUT/config.yaml`` before the first step.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import torch

from linegraph2road.errors import ParameterError
from linegraph2road.model import build_model
from linegraph2road.training import (
    DataSource,
    TileDataset,
    TileRecord,
    TrainConfig,
    Trainer,
    TrainResult,
    Validator,
    autocast_dtype,
    find_tiles,
    init_distributed,
    resolve,
    resolve_device,
    seed_everything,
    tiles_gsd,
)

__all__ = ["collect_tiles", "train"]

PathLike = str | os.PathLike[str]


def collect_tiles(sources: list[DataSource]) -> list[TileRecord]:
    """The tiles of every source, in order (:func:`~linegraph2road.training.find_tiles`)."""
    tiles: list[TileRecord] = []
    for s in sources:
        tiles += find_tiles(s.labels, images=s.images, split=s.split)
    return tiles


def train(
    config: TrainConfig,
    out_dir: PathLike,
    *,
    resume: bool = False,
    max_steps: int | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train (or continue training) as ``config`` says, writing into ``out_dir``.

    Parameters
    ----------
    config : TrainConfig
        From :func:`~linegraph2road.training.load_config`.
    out_dir : path
        Run folder: ``config.yaml``, ``log.csv``, ``checkpoints/``.
    resume : bool
        Continue from ``out_dir/checkpoints/last`` (model, optimiser, scheduler, epoch, step,
        RNG). Without it, a folder that already holds a run is refused.
    max_steps : int, optional
        Stop after this many optimiser steps in all (counted from the run's start).
    progress : bool
        Progress bar (terminals only).
    echo : callable, optional
        Receives one-line messages for the user (rank 0 only).

    Raises
    ------
    ParameterError, InputFileError, FormatError, CheckpointError
        Bad config values, missing data, an unusable checkpoint.
    """
    import torch.distributed as dist

    cfg = resolve(config)
    out = Path(out_dir)
    if not cfg.data.train:
        raise ParameterError("no training data: set data.train to l2r prep output folder(s)")
    if not resume and (out / "checkpoints" / "last.safetensors").exists():
        raise ParameterError(
            f"{out} already holds a training run; continue it with --resume or choose another -o"
        )
    wants_cuda = cfg.device.startswith("cuda") or (
        cfg.device == "auto" and torch.cuda.is_available()
    )
    ctx = init_distributed(cuda=wants_cuda)
    owns_group = ctx.distributed
    try:
        device = resolve_device(cfg.device, local_rank=ctx.local_rank)
        amp = autocast_dtype(cfg.precision, device)
        train_tiles = collect_tiles(cfg.data.train)
        val_tiles = collect_tiles(cfg.data.val)[: cfg.validation.max_tiles]
        gsd = tiles_gsd(train_tiles + val_tiles, cfg.data.gsd)
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, gsd=gsd))
        seed_everything(cfg.seed)
        m = cfg.model
        model = build_model(
            m.size,
            frontend=m.frontend,
            window_size=m.window_size,
            sam_checkpoint=m.sam_checkpoint,
            overpass=m.overpass,
            **m.head,
        )
        crop = cfg.data.crop if cfg.data.crop is not None else m.window_size
        data = TileDataset(
            train_tiles,
            crop=crop,
            rotate=cfg.data.rotate,
            samples_per_tile=cfg.data.samples_per_tile,
            seed=cfg.seed,
            cache=cfg.data.cache,
        )
        v = cfg.validation
        validator = None
        if val_tiles and v.every > 0:
            validator = Validator(
                val_tiles,
                t_k=v.t_k,
                t_r=v.t_r,
                t_topo=v.t_topo,
                d_k=v.d_k,
                d_r=v.d_r,
                d_nei=v.d_nei,
                n_windows=v.n_windows,
                layout=v.layout,
                nms=v.nms,
                apls_small_tiles=v.apls_small_tiles,
                select_thresholds=v.select_thresholds,
                device=device,
                precision="bf16" if amp is not None else "fp32",
                echo=echo if ctx.is_main else None,
                window_size=m.window_size,
            )
        o = cfg.optim
        trainer = Trainer(
            model,
            train_data=data,
            out_dir=out,
            validator=validator,
            lr=o.lr,
            encoder_lr_factor=o.encoder_lr_factor,
            epochs=o.epochs,
            milestones=o.milestones,
            gamma=o.gamma,
            batch_size=o.batch_size,
            lambda_edge=o.lambda_edge,
            device=device,
            precision=cfg.precision,
            seed=cfg.seed,
            workers=cfg.data.workers,
            validate_every=v.every,
            log_every=cfg.log_every,
            config=cfg.to_dict(),
            dist=ctx,
            progress=progress,
        )
        if resume:
            trainer.load_last()
        if ctx.is_main:
            resolve(cfg, out)
            if echo is not None:
                where = f"{ctx.world_size} processes" if ctx.distributed else str(device)
                echo(
                    f"training {m.frontend}/{m.size} {model.variant} "
                    f"({model.weights_description}) on "
                    f"{len(train_tiles)} tile(s), {len(val_tiles)} validation tile(s), {where}, "
                    f"{'bf16' if amp is not None else 'fp32'}"
                    + (f"; resuming at step {trainer.step}" if resume else "")
                )
        return trainer.fit(max_steps=max_steps)
    finally:
        if owns_group and dist.is_initialized():
            dist.destroy_process_group()
