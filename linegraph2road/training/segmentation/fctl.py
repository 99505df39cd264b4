"""FCtL's training recipe (paper 001, 3.1.3, 3.2 and 4.2) on ``l2r prep`` output.

* **Segmentation network**: window-sized patches with their local / medium / large contexts
  cut from the whole normalised tile (:func:`~linegraph2road.frontends.fctl.sample_patches`;
  the part of a context outside the tile is zero in normalised units, i.e. the mean colour),
  quarter turns, focal loss (gamma 3), Adam + poly 0.9 per iteration, gradient accumulation
  (paper: mini-batch 6). Patches are drawn tile by tile: each tile is loaded and normalised
  once per epoch and its ``samples_per_tile`` patches follow each other (as the reference code
  cuts the patches of one image at a time); tiles are visited in a random order per epoch.
  Every tile must be at least the largest context (3 windows with the paper's scales).
* **Refinement network** (optional, ``refiner_epochs`` > 0): trained with the same settings on
  the crude merged masks (:func:`~linegraph2road.frontends.fctl.segment_large`) of the model
  as it was after ``refiner_from_epoch`` epochs (paper: 20 of 50, a non-converged model, so
  the refiner does not learn to trust an over-fitted one), with a context of two windows
  (paper: 1016 px of 508; :func:`~linegraph2road.frontends.fctl.refinement_batches`). The
  crude masks of all training tiles are kept in memory as float16.

An epoch is ``floor(ceil(tiles * samples_per_tile / batch_size) / accumulate)`` optimiser
steps.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.fctl import (
    FCtLBatch,
    FCtLFrontend,
    RefinementNet,
    fit_fctl,
    focal_loss,
    make_optimizer,
    poly_schedule,
    refinement_batches,
    sample_patches,
)
from linegraph2road.frontends.fit import FitLog
from linegraph2road.training.dataset import TileDataset
from linegraph2road.training.segmentation.common import (
    RunLog,
    SegmentationResult,
    fctl_probabilities,
    progress_bar,
    validation_due,
)
from linegraph2road.training.segmentation.config import FCtLRecipe

__all__ = ["fctl_epoch_steps", "train_fctl"]


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence(parts).generate_state(1)[0])


def _tile_batches(
    data: TileDataset,
    sources: Sequence[torch.Tensor] | None,
    frontend: FCtLFrontend,
    *,
    chans: tuple[int, ...],
    batch_size: int,
    epoch: int,
    seed: int,
    context: int | None = None,
) -> Iterator[FCtLBatch]:
    """Endless patches, tile by tile in a per-epoch random order; ``sources`` (crude masks)
    replace the normalised images for the refiner (single ``context``)."""
    dev = frontend.pixel_mean.device
    per_tile = math.ceil(data.samples_per_tile / batch_size)
    for cycle in itertools.count():
        rng = np.random.default_rng(_seed(seed, epoch, cycle))
        for i in rng.permutation(len(data.tiles)).tolist():
            tile = data.tile(i)
            targets = torch.from_numpy(tile.masks[list(chans)]).float().to(dev)
            s = _seed(seed, epoch, cycle, i)
            if sources is None:
                image = frontend.normalize(torch.from_numpy(tile.image))[0]
                yield from sample_patches(
                    image,
                    targets,
                    patch=frontend.window_size,
                    context_sizes=frontend.context_sizes,
                    batch_size=batch_size,
                    steps=per_tile,
                    seed=s,
                    rotate=data.rotate,
                )
            else:
                yield from refinement_batches(
                    sources[i].to(dev).float(),
                    targets,
                    patch=frontend.window_size,
                    context_size=int(context or 2 * frontend.window_size),
                    batch_size=batch_size,
                    steps=per_tile,
                    seed=s,
                )


def _fctl_phase(
    model: torch.nn.Module,
    batches: Any,
    *,
    phase: str,
    epoch: int,
    steps: int,
    accumulate: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    gamma: float,
    run: RunLog,
    bar: Any,
    total: int,
    done_before: int,
) -> int:
    """``steps`` optimiser steps of ``fit_fctl``; returns how many ran (``total`` caps)."""
    loss_fn = functools.partial(focal_loss, gamma=gamma)
    ran = 0
    for k in range(steps):
        if done_before + ran >= total:
            break
        chunk = list(itertools.islice(batches, accumulate))
        log: FitLog = fit_fctl(
            model,
            chunk,
            optimizer=optimizer,
            loss_fn=loss_fn,
            scheduler=scheduler,
            accumulate=accumulate,
        )
        ran += 1
        last = k == steps - 1 or done_before + ran >= total
        run.train_row(
            phase, epoch, log.losses[0], log.lrs[0], phase_step=done_before + ran, last=last
        )
        bar.update(1)
        bar.set_postfix(loss=f"{log.losses[0]:.4f}", epoch=epoch)
    return ran


def fctl_epoch_steps(frontend: FCtLFrontend, data: TileDataset, recipe: FCtLRecipe) -> int:
    """Optimiser steps in one epoch, after checking that the tiles can train ``frontend``.

    Raises
    ------
    ParameterError
        A tile smaller than the largest context, or an epoch of less than one step.
    """
    need = max(frontend.context_sizes)
    for t in data.tiles:
        if min(t.shape) < need:
            raise ParameterError(
                f"tile {t.tile_id} is {t.shape[1]} x {t.shape[0]} px, smaller than FCtL's "
                f"largest context ({need} px = {max(frontend.spec.context_scales):g} x window "
                f"{frontend.window_size}); use a smaller model.window_size or larger tiles"
            )
    batches = math.ceil(len(data.tiles) * data.samples_per_tile / recipe.batch_size)
    if batches < recipe.accumulate:
        raise ParameterError(
            f"an FCtL epoch of {batches} batch(es) makes no optimiser step with "
            f"optim.accumulate={recipe.accumulate}; raise data.samples_per_tile"
        )
    return batches // recipe.accumulate


def train_fctl(
    frontend: FCtLFrontend,
    data: TileDataset,
    run: RunLog,
    *,
    recipe: FCtLRecipe,
    device: torch.device | str = "cpu",
    validate_every: int = 1,
    seed: int = 0,
    max_steps: int | None = None,
    progress: bool = True,
    validation_batch_size: int = 4,
) -> SegmentationResult:
    """FCtL's recipe on patches with contexts of prepared tiles, then optionally the refiner.

    Parameters
    ----------
    frontend : FCtLFrontend
        Moved to ``device``; its ``trained_channels`` are trained.
    data : TileDataset
        Its tiles (cached when ``data.cache``), ``samples_per_tile`` patches per tile per epoch
        and ``rotate``; every tile must be at least the largest context.
    run : RunLog
    recipe : FCtLRecipe
        An epoch is ``floor(ceil(tiles * samples_per_tile / batch_size) / accumulate)``
        optimiser steps (at least one).
    max_steps : int or None
        Caps the steps of the segmentation phase and, separately, of the refiner phase.

    Raises
    ------
    ParameterError
        A tile smaller than the largest context, or an epoch of less than one step.
    """
    per_epoch = fctl_epoch_steps(frontend, data, recipe)
    dev = torch.device(device)
    frontend.to(dev)
    chans = tuple(frontend.trained_channels)
    cap = max_steps if max_steps is not None else math.inf
    total = int(min(cap, recipe.epochs * per_epoch))
    optimizer = make_optimizer(frontend, lr=recipe.lr, weight_decay=recipe.weight_decay)
    scheduler = poly_schedule(
        optimizer, total_steps=recipe.epochs * per_epoch, power=recipe.poly_power
    )
    notes: list[str] = []
    snapshot: dict[str, torch.Tensor] | None = None
    done, epoch = 0, 0
    bar = progress_bar(total, "fctl", progress)
    try:
        while epoch < recipe.epochs and done < total:
            batches = _tile_batches(
                data,
                None,
                frontend,
                chans=chans,
                batch_size=recipe.batch_size,
                epoch=epoch,
                seed=seed,
            )
            ran = _fctl_phase(
                frontend,
                batches,
                phase="fctl",
                epoch=epoch + 1,
                steps=per_epoch,
                accumulate=recipe.accumulate,
                optimizer=optimizer,
                scheduler=scheduler,
                gamma=recipe.focal_gamma,
                run=run,
                bar=bar,
                total=total,
                done_before=done,
            )
            done += ran
            if ran == per_epoch:
                epoch += 1
            if recipe.refiner_epochs and epoch == recipe.refiner_from_epoch and ran == per_epoch:
                snapshot = {k: v.detach().clone() for k, v in frontend.state_dict().items()}
            last = ran < per_epoch or epoch == recipe.epochs or done >= total
            run.save(frontend, epoch=epoch, validate=last or validation_due(epoch, validate_every))
    finally:
        bar.close()
    refiner = None
    if recipe.refiner_epochs:
        if snapshot is None:
            notes.append(
                f"the refiner learns from the crude masks of the final model ({epoch} "
                f"epoch(s)), not of the model after optim.refiner_from_epoch="
                f"{recipe.refiner_from_epoch} epoch(s)"
            )
        refiner = _train_refiner(
            frontend,
            snapshot,
            data,
            run,
            recipe=recipe,
            chans=chans,
            dev=dev,
            seed=seed,
            per_epoch=per_epoch,
            cap=cap,
            validate_every=validate_every,
            progress=progress,
            batch_size=validation_batch_size,
        )
    return run.result(frontend, refiner, epoch, notes)


def _train_refiner(
    frontend: FCtLFrontend,
    snapshot: dict[str, torch.Tensor] | None,
    data: TileDataset,
    run: RunLog,
    *,
    recipe: FCtLRecipe,
    chans: tuple[int, ...],
    dev: torch.device,
    seed: int,
    per_epoch: int,
    cap: float,
    validate_every: int,
    progress: bool,
    batch_size: int,
) -> RefinementNet:
    """The refinement network on crude masks (float16, CPU) of every training tile."""
    crude_model = copy.deepcopy(frontend)
    if snapshot is not None:
        crude_model.load_state_dict(snapshot)
    crude = []
    for i in tqdm(range(len(data.tiles)), desc="crude masks", disable=None if progress else True):
        probs = fctl_probabilities(
            crude_model, data.tile(i).image, refiner=None, dev=dev, batch_size=batch_size
        )
        crude.append(torch.from_numpy(probs).half())
    del crude_model
    torch.manual_seed(seed)
    refiner = RefinementNet(num_classes=len(chans), widths=tuple(recipe.refiner_widths)).to(dev)
    optimizer = make_optimizer(refiner, lr=recipe.lr, weight_decay=recipe.weight_decay)
    scheduler = poly_schedule(
        optimizer, total_steps=recipe.refiner_epochs * per_epoch, power=recipe.poly_power
    )
    total = int(min(cap, recipe.refiner_epochs * per_epoch))
    done, epoch = 0, 0
    bar = progress_bar(total, "refiner", progress)
    try:
        while epoch < recipe.refiner_epochs and done < total:
            batches = _tile_batches(
                data,
                crude,
                frontend,
                chans=chans,
                batch_size=recipe.batch_size,
                epoch=epoch,
                seed=seed + 1,
                context=2 * frontend.window_size,
            )
            ran = _fctl_phase(
                refiner,
                batches,
                phase="refiner",
                epoch=epoch + 1,
                steps=per_epoch,
                accumulate=recipe.accumulate,
                optimizer=optimizer,
                scheduler=scheduler,
                gamma=recipe.focal_gamma,
                run=run,
                bar=bar,
                total=total,
                done_before=done,
            )
            done += ran
            if ran == per_epoch:
                epoch += 1
            last = ran < per_epoch or epoch == recipe.refiner_epochs or done >= total
            run.save(
                frontend,
                refiner=refiner,
                epoch=epoch,
                validate=last or validation_due(epoch, validate_every),
            )
    finally:
        bar.close()
    return refiner.eval()
