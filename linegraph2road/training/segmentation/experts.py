"""The location-specific experts' training recipe (paper 003) on ``l2r prep`` output.

``samples_per_tile`` window-sized crops per tile (:class:`~.dataset.TileDataset`, epoch 0)
are the training images; each carries the location of its tile (:func:`tile_locations`), and
:func:`~linegraph2road.frontends.experts.train_location_experts` trains the embedding network
on location triplets, clusters the embeddings (k-means, k from the size) and trains one expert
per cluster (Adam 1e-4, weight decay 5e-4, poly 0.9, alpha BCE + (1 - alpha) soft Jaccard,
random flips).

With a single location there is nothing location-specific to learn (the triplet loss needs an
anchor and a negative from different locations): the paper's "no embedding" baseline, one
expert of the same networks trained on all crops (k = 1,
:func:`~linegraph2road.frontends.experts.train_single_model`), is trained instead, and the
result's ``notes`` say so. (``bench/learn_experts.py`` fakes a second location by a colour
cast; a router trained on that would learn the cast, which real images do not have.)

The networks train on ``device``; k-means runs on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.experts import (
    parse_size,
    train_location_experts,
    train_single_model,
)
from linegraph2road.training.dataset import TileDataset, TileRecord
from linegraph2road.training.segmentation.common import (
    RunLog,
    SegmentationResult,
    experts_size,
    trained_channels,
)
from linegraph2road.training.segmentation.config import ExpertsRecipe

__all__ = ["check_locations", "tile_locations", "train_experts"]


def tile_locations(
    tiles_per_source: Sequence[Sequence[TileRecord]], *, mode: str = "source"
) -> list[str]:
    """The location of every tile, in order (sources concatenated).

    Parameters
    ----------
    tiles_per_source : sequence of sequences of TileRecord
        The tiles of each ``data.train`` entry.
    mode : {"source", "folder"}
        ``source``: the image the tile was cut from (``l2r prep osm``: its raster, shared by
        all the raster's tiles; ``l2r prep dataset``: the tile's own image file); ``folder``:
        the ``data.train`` entry (one ``l2r prep`` folder per city).

    Returns
    -------
    list of str
        One location key per tile.
    """
    if mode not in ("source", "folder"):
        raise ParameterError(f"locations must be source or folder, got {mode!r}")
    out = []
    for j, tiles in enumerate(tiles_per_source):
        for t in tiles:
            out.append(str(t.image.resolve()) if mode == "source" else f"data.train[{j}]")
    return out


def check_locations(data: TileDataset, locations: Sequence[str], *, k: int) -> None:
    """Check that the crops of ``data`` can train ``k`` experts on these tile locations.

    Raises
    ------
    ParameterError
        Not one location per tile; with >= 2 locations, a location with a single crop (the
        triplet loss needs an anchor and a positive) or fewer crops than clusters.
    """
    if len(locations) != len(data.tiles):
        raise ParameterError(f"{len(locations)} locations for {len(data.tiles)} tiles")
    keys, counts = np.unique(np.asarray(locations), return_counts=True)
    if len(keys) < 2:
        return
    counts = counts * data.samples_per_tile
    if counts.min() < 2:
        raise ParameterError(
            f"location {keys[int(counts.argmin())]} has a single crop; the triplet loss needs "
            ">= 2 per location: raise data.samples_per_tile"
        )
    if len(data) < k:
        raise ParameterError(f"{len(data)} crops cannot make k = {k} clusters")


def _crops(data: TileDataset, chans: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """All samples of epoch 0: ``(N, 3, S, S)`` uint8 images, ``(N, C, S, S)`` uint8 0/1 masks
    (the recipe batches them together as float)."""
    images, targets = [], []
    for i in range(len(data)):
        s = data[i]
        images.append(s.image.numpy())
        targets.append(s.masks[list(chans)].numpy().astype(np.uint8))
    return np.stack(images), np.stack(targets)


def train_experts(
    data: TileDataset,
    locations: Sequence[str],
    run: RunLog,
    *,
    size: str,
    window_size: int,
    mask_channels: int = 1,
    recipe: ExpertsRecipe,
    seed: int = 0,
    device: str | torch.device = "cpu",
    max_steps: int | None = None,
) -> SegmentationResult:
    """The experts recipe on ``samples_per_tile`` crops per tile (module docstring).

    Parameters
    ----------
    data : TileDataset
        ``crop = window_size``; the crops of its epoch 0 are the training set (the recipe's
        own flips augment them).
    locations : sequence of str
        One location key per tile of ``data`` (:func:`tile_locations`).
    run : RunLog
    size : str
        Experts size (``resnet34``, ``resnet34-k5``, ``tiny-k2``...); ``-road`` is added for
        ``mask_channels=1``.
    recipe : ExpertsRecipe
        Steps (or epochs), batch, Adam, poly, alpha, margin.
    device : str or torch.device
        Where the networks train (k-means runs on the CPU).
    max_steps : int or None
        Caps the embedding network's steps and each expert's.

    Returns
    -------
    SegmentationResult
        ``notes`` says when a single location made it train the k = 1 baseline.

    Raises
    ------
    ParameterError
        Fewer crops than experts, or a location with a single crop.
    """

    name = experts_size(size, mask_channels)
    spec = parse_size(name)
    check_locations(data, locations, k=spec.k)
    images, targets = _crops(data, trained_channels(mask_channels))
    keys = sorted(set(locations))
    per_crop = np.repeat([keys.index(k) for k in locations], data.samples_per_tile)
    n, b = len(images), recipe.batch_size
    cap = max_steps if max_steps is not None else math.inf
    notes: list[str] = []
    if len(keys) < 2:
        steps = recipe.expert_steps or math.ceil(recipe.epochs * n / b)
        steps = int(min(cap, steps))
        single = f"{name.split('-')[0]}-k1" + ("-road" if mask_channels == 1 else "")
        notes.append(
            f"all {len(data.tiles)} training tile(s) come from one location ({keys[0]}); the "
            f"embedding needs >= 2 locations, so this trains the paper's 'no embedding' "
            f"baseline: one expert on all {n} crops (size {single}, k = 1) instead of {name}"
        )
        frontend, log = train_single_model(
            images,
            targets,
            size=name,
            window_size=window_size,
            steps=steps,
            batch_size=b,
            lr=recipe.lr,
            weight_decay=recipe.weight_decay,
            alpha=recipe.alpha,
            power=recipe.poly_power,
            seed=seed,
            device=device,
        )
        logs = [("expert0", log)]
    else:
        emb_steps = int(min(cap, recipe.embedding_steps or math.ceil(recipe.epochs * n / b)))
        expert_steps = recipe.expert_steps or math.ceil(recipe.epochs * n / (spec.k * b))
        trained = train_location_experts(
            images,
            targets,
            per_crop,
            size=name,
            window_size=window_size,
            embedding_steps=emb_steps,
            expert_steps=int(min(cap, expert_steps)),
            batch_size=b,
            lr=recipe.lr,
            weight_decay=recipe.weight_decay,
            margin=recipe.margin,
            alpha=recipe.alpha,
            power=recipe.poly_power,
            seed=seed,
            device=device,
        )
        frontend = trained.frontend
        notes.append(f"{len(keys)} locations; k-means made clusters of {trained.clusters} crops")
        logs = [("embedding", trained.embedding_log)]
        logs += [(f"expert{c}", lg) for c, lg in enumerate(trained.expert_logs)]
    for phase, lg in logs:
        for i, (loss, lr) in enumerate(zip(lg.losses, lg.lrs, strict=True)):
            run.train_row(phase, None, loss, lr, phase_step=i + 1, last=i == len(lg.losses) - 1)
    run.save(frontend)
    return run.result(frontend, None, 0, notes)
