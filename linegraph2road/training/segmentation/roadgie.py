"""RoadGIE's training recipe (paper 004, 4.2-4.4 and 5.1) on road-mask tiles.

Each optimiser step takes a batch of augmented crops (:class:`~..road_masks.RoadCropDataset`)
and runs ``rounds`` interaction rounds (paper: 5) on it, as the paper's "each batch runs five
interaction rounds using 1-3 visual prompts per round":

1. round ``t``: the simulated user (:func:`~linegraph2road.frontends.roadgie.simulation.
   simulate_round`, expert-guided when the tile has a cached uncertainty map and
   ``expert_guided``) adds 1-3 prompts from the errors of the previous round's prediction
   (``> 0.5``; nothing before round 1); prompts accumulate over the rounds;
2. the network runs on the image, the previous probability (detached) and the prompt maps of
   every prompt so far;
3. the loss of eq. 6 (:func:`~linegraph2road.frontends.roadgie.loss.roadgie_loss`, the
   skeleton recall term on prompt-free pixels) divided by ``rounds`` is back-propagated; the
   gradients of the rounds add up and one AdamW step follows (the paper does not say how rounds
   share a step; this keeps one round's activations in memory at a time).

AdamW at 3e-4 (weight decay 0.01, PyTorch's default: the paper gives none) with a cosine
schedule over all steps (to 0), bf16 autocast on CUDA (``precision: auto``), fp32 on CPU.
Validation (:class:`InteractiveIoU`): road IoU after ``val_rounds`` simulated rounds on each whole
validation tile, pixels of all tiles pooled; it is what ``log.csv`` calls ``val_road_iou`` for
RoadGIE runs, and what picks ``best.safetensors``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.base import MaskFrontend
from linegraph2road.frontends.roadgie.loss import roadgie_loss, tubed_skeleton
from linegraph2road.frontends.roadgie.model import RoadGIEFrontend
from linegraph2road.frontends.roadgie.simulation import SimulationSettings, simulate_round
from linegraph2road.prompts import Prompt, rasterize_prompts
from linegraph2road.training.road_masks import RoadCropDataset, RoadTileRecord, load_road_tile
from linegraph2road.training.segmentation.common import (
    RunLog,
    SegmentationResult,
    progress_bar,
    validation_due,
)
from linegraph2road.training.segmentation.config import RoadGIERecipe

__all__ = ["InteractiveIoU", "simulation_settings", "train_roadgie"]


def simulation_settings(recipe: RoadGIERecipe) -> SimulationSettings:
    """The simulated user of a recipe."""
    return SimulationSettings(
        kinds=tuple(recipe.kinds),
        min_prompts=recipe.min_prompts,
        max_prompts=recipe.max_prompts,
        center_gamma=recipe.center_gamma,
        expert_tau=recipe.expert_tau,
    )


class InteractiveIoU:
    """Road IoU after ``rounds`` simulated rounds on whole validation tiles (pooled pixels).

    Parameters
    ----------
    records : sequence of RoadTileRecord
        Validation tiles (read once, kept in memory).
    rounds : int
        Simulated rounds (default 5).
    settings : SimulationSettings, optional
        The simulated user (default: the training mix).
    threshold : float
        Probability cut (0.5).
    device : torch.device or str or None
        Where the model is.
    seed : int
        Tile ``i`` uses seed ``seed + i`` for its session, the same at every validation.
    """

    def __init__(
        self,
        records: Sequence[RoadTileRecord],
        *,
        rounds: int = 5,
        settings: SimulationSettings | None = None,
        threshold: float = 0.5,
        device: torch.device | str | None = None,
        seed: int = 0,
    ) -> None:
        if not records:
            raise ParameterError("validation needs at least one tile")
        self.tiles = [load_road_tile(r) for r in records]
        self.rounds, self.settings, self.threshold = int(rounds), settings, float(threshold)
        self.device, self.seed = device, int(seed)

    def __call__(self, frontend: MaskFrontend, refiner: Any = None) -> float:
        """Pooled IoU in [0, 1] after the last round (1 when no tile has road or prediction)."""
        from linegraph2road.inference.simulated_user import simulate_session

        if not isinstance(frontend, RoadGIEFrontend):
            raise ParameterError("InteractiveIoU validates RoadGIE front-ends")
        dev = next(frontend.parameters()).device if self.device is None else self.device
        inter = union = 0
        for i, tile in enumerate(self.tiles):
            session = simulate_session(
                frontend, tile.image, tile.road, rounds=self.rounds, settings=self.settings,
                seed=self.seed + i, device=dev,
            )  # fmt: skip
            pred = session[-1].probability > self.threshold
            inter += int(np.logical_and(pred, tile.road).sum())
            union += int(np.logical_or(pred, tile.road).sum())
        return inter / union if union else 1.0


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if device.type == "cuda" and precision in ("auto", "bf16"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def roadgie_step(
    frontend: RoadGIEFrontend,
    batch: dict[str, torch.Tensor],
    *,
    recipe: RoadGIERecipe,
    settings: SimulationSettings,
    seed: tuple[int, ...],
    device: torch.device,
) -> float:
    """Forward and backward passes of one batch over ``recipe.rounds`` rounds (module
    docstring); gradients are accumulated, the optimiser is not stepped. Returns the loss (sum
    over rounds of ``loss / rounds``)."""
    images = batch["image"].to(device)
    gt = batch["road"].numpy() > 0.5
    b, s = gt.shape[0], gt.shape[-1]
    unc = batch["uncertainty"].numpy()
    has_unc = batch["has_uncertainty"].numpy()
    target = batch["road"][:, None].to(device)
    skeleton = torch.from_numpy(np.stack([tubed_skeleton(g) for g in gt])[:, None]).to(device)
    x = frontend.normalize(images)
    previous = torch.zeros((b, 1, s, s), device=device)
    prompts: list[list[Prompt]] = [[] for _ in range(b)]
    total = 0.0
    for t in range(recipe.rounds):
        seen = (previous[:, 0] > 0.5).cpu().numpy()
        maps = np.zeros((b, 2, s, s), np.float32)
        for i in range(b):
            rng = np.random.default_rng((*seed, i, t))
            guided = unc[i] if (recipe.expert_guided and has_unc[i]) else None
            prompts[i] += simulate_round(gt[i], seen[i], rng, settings=settings, uncertainty=guided)
            maps[i] = rasterize_prompts(prompts[i], (s, s))
        maps_t = torch.from_numpy(maps).to(device)
        prompted = (maps_t.amax(dim=1, keepdim=True) > 0).float()
        with _autocast(device, recipe.precision):
            logits = frontend.interact(x, previous, maps_t)
        loss = roadgie_loss(
            logits.float(), target, skeleton, prompted,
            focal_weight=recipe.focal_weight, dice_weight=recipe.dice_weight,
            skeleton_weight=recipe.skeleton_weight, focal_gamma=recipe.focal_gamma,
            exclude=tuple(recipe.exclude),
        ) / recipe.rounds  # fmt: skip
        loss.backward()
        total += float(loss.detach())
        previous = torch.sigmoid(logits.detach().float())
    return total


def train_roadgie(
    frontend: RoadGIEFrontend,
    data: RoadCropDataset,
    run: RunLog,
    *,
    recipe: RoadGIERecipe,
    device: torch.device | str = "cpu",
    validate_every: int = 1,
    workers: int = 0,
    seed: int = 0,
    max_steps: int | None = None,
    progress: bool = True,
) -> SegmentationResult:
    """RoadGIE's recipe (module docstring) for ``recipe.epochs`` epochs of ``len(data) /
    batch_size`` steps (or ``max_steps``); the front-end is moved to ``device`` and trained in
    place. Checkpoints and validation through ``run``."""
    dev = torch.device(device)
    frontend.to(dev)
    frontend.train()
    settings = simulation_settings(recipe)
    optimizer = torch.optim.AdamW(
        frontend.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay
    )
    per_epoch = math.ceil(len(data) / recipe.batch_size)
    total = recipe.epochs * per_epoch
    if max_steps is not None:
        total = min(total, max_steps)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total, 1))
    epoch = 0
    bar = progress_bar(total, "roadgie", progress)
    try:
        while epoch < recipe.epochs and run.step < total:
            data.set_epoch(epoch)
            loader = DataLoader(
                data,
                batch_size=recipe.batch_size,
                shuffle=True,
                num_workers=workers,
                generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch),
            )
            done_in_epoch = 0
            for batch in loader:
                optimizer.zero_grad(set_to_none=True)
                loss = roadgie_step(
                    frontend, batch, recipe=recipe, settings=settings,
                    seed=(seed, run.step), device=dev,
                )  # fmt: skip
                optimizer.step()
                lr = float(optimizer.param_groups[0]["lr"])
                scheduler.step()
                done_in_epoch += 1
                done = run.step + 1 >= total
                run.train_row("roadgie", epoch + 1, loss, lr, phase_step=done_in_epoch, last=done)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", epoch=epoch + 1)
                if done:
                    break
            finished = done_in_epoch == per_epoch
            if finished:
                epoch += 1
            last = not finished or epoch == recipe.epochs or run.step >= total
            run.save(frontend, epoch=epoch, validate=last or validation_due(epoch, validate_every))
    finally:
        bar.close()
    return run.result(frontend, None, epoch)
