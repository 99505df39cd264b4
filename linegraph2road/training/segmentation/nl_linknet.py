"""NL-LinkNet's training recipe (paper 000, III-B) on ``l2r prep`` output.

Random ``data.crop`` windows with quarter turns (:class:`~.dataset.TileDataset`;
``samples_per_tile`` per tile per epoch), BCE on the sigmoid output (or the authors' code's
dice + BCE), Adam at 3e-4 and the plateau schedule (x0.2 when the epoch's mean training loss
stalls, best weights restored, early stop) stepped once per epoch, through the shared
:func:`~linegraph2road.frontends.fit.fit` loop one batch at a time. The paper's other
augmentations (shifts, multi-scaling, flips) are replaced by random crops and quarter turns.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import DataLoader

from linegraph2road.frontends.base import MaskFrontend
from linegraph2road.frontends.fit import fit
from linegraph2road.frontends.nl_linknet import (
    PlateauSchedule,
    bce_loss,
    dice_bce_loss,
    make_optimizer,
)
from linegraph2road.training.dataset import TileDataset, collate_samples
from linegraph2road.training.segmentation.common import (
    RunLog,
    SegmentationResult,
    progress_bar,
    trained_channels,
    validation_due,
)
from linegraph2road.training.segmentation.config import NLLinkNetRecipe

__all__ = ["train_nl_linknet"]


def train_nl_linknet(
    frontend: MaskFrontend,
    data: TileDataset,
    run: RunLog,
    *,
    recipe: NLLinkNetRecipe,
    mask_channels: int = 1,
    device: torch.device | str = "cpu",
    validate_every: int = 1,
    workers: int = 0,
    seed: int = 0,
    max_steps: int | None = None,
    progress: bool = True,
) -> SegmentationResult:
    """NL-LinkNet's recipe on random crops of prepared tiles (module docstring).

    Parameters
    ----------
    frontend : MaskFrontend
        An NL-LinkNet (:func:`build_segmentation_frontend`); moved to ``device``, trained in
        place.
    data : TileDataset
        Random ``crop`` windows (and quarter turns); ``len(data) / batch_size`` steps make an
        epoch.
    run : RunLog
        Log, checkpoints, validation.
    recipe : NLLinkNetRecipe
        Loss, Adam rate, plateau schedule, epochs, batch size.
    mask_channels : {1, 3}
        Road only, or keypoint/road/overpass.
    validate_every : int
        Epochs between validations (0: at the end only).
    max_steps : int or None
        Stop after this many optimiser steps.
    """
    dev = torch.device(device)
    frontend.to(dev)
    chans = trained_channels(mask_channels)
    optimizer = make_optimizer(frontend, lr=recipe.lr)
    schedule = PlateauSchedule(
        optimizer,
        factor=recipe.plateau_factor,
        patience=recipe.plateau_patience,
        stop_patience=recipe.plateau_stop_patience,
        min_lr=recipe.min_lr,
        model=frontend,
    )
    loss_fn = bce_loss if recipe.loss == "bce" else dice_bce_loss
    per_epoch = math.ceil(len(data) / recipe.batch_size)
    total = recipe.epochs * per_epoch
    if max_steps is not None:
        total = min(total, max_steps)
    notes: list[str] = []
    epoch = 0
    bar = progress_bar(total, "nl-linknet", progress)
    try:
        while epoch < recipe.epochs and run.step < total:
            data.set_epoch(epoch)
            loader = DataLoader(
                data,
                batch_size=recipe.batch_size,
                shuffle=True,
                num_workers=workers,
                collate_fn=collate_samples,
                generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch),
            )
            losses: list[float] = []
            for batch in loader:
                images = batch["images"].to(dev)
                targets = batch["masks"][:, list(chans)].to(dev)
                log = fit(
                    frontend,
                    [(images, targets)],
                    loss_fn=loss_fn,
                    optimizer=optimizer,
                    channels=chans,
                )
                losses.append(log.losses[0])
                done = run.step + 1 >= total
                run.train_row(
                    "nl-linknet",
                    epoch + 1,
                    log.losses[0],
                    log.lrs[0],
                    phase_step=len(losses),
                    last=done,
                )
                bar.update(1)
                bar.set_postfix(loss=f"{log.losses[0]:.4f}", epoch=epoch + 1)
                if done:
                    break
            finished = len(losses) == per_epoch
            if finished:
                epoch += 1
            if finished and schedule.step(float(np.mean(losses))) == "stop":
                notes.append(f"the plateau schedule stopped training after epoch {epoch}")
            last = not finished or schedule.stopped or epoch == recipe.epochs or run.step >= total
            run.save(frontend, epoch=epoch, validate=last or validation_due(epoch, validate_every))
            if schedule.stopped:
                break
    finally:
        bar.close()
    return run.result(frontend, None, epoch, notes)
