"""Training recipe of the location-specific experts (paper 003, sections 2 and 3.2-3.3).

1. **Embedding network** (:func:`train_embedding`): SmoothL1 reconstruction of the (normalised)
   input + triplet margin loss with the cosine distance ``d(a, b) = 1 - cos(a, b)`` (equation 1).
   "A triplet is composed by an anchor sample, a positive sample of the same location as the
   anchor and a negative sample from a different location": :func:`sample_triplets` draws them
   from integer location labels. The margin is not stated in the paper; the default 1.0 is the
   value of its reference [8]'s PyTorch loss (``TripletMarginLoss``).
2. **Clustering** (:func:`train_location_experts`): k-means (k = 3 or 5 in the paper) over the
   embeddings of all training images; each image joins its nearest centroid's training set.
3. **Experts** (:func:`train_expert`): one U-Net per cluster with
   ``alpha * BCE + (1 - alpha) * (1 - soft Jaccard)`` (equations 2-3; the paper writes
   ``alpha L_BCE - (1 - alpha) L_Dice`` with ``L_Dice`` the soft Jaccard *index*, which is the same
   up to a constant). The paper does not state alpha; the default 0.5 weighs both equally. Adam,
   "learning rate of 0.0001 weight decay of 0.0005", "poly" policy ``(1 - step / total) ** 0.9``
   ("We set the hyperparameter power to 0.9"), random horizontal and vertical flips; "the
   embedding network is trained according to the same procedure".
4. **Baselines** (section 3.3.2): :func:`train_single_model` ("no embedding": one network on all
   images, a ``k = 1`` model) and :func:`random_expert` ("random embedding": one of the trained
   experts drawn at random per image).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.experts.embedding import EmbeddingNet, normalize_images
from linegraph2road.frontends.experts.kmeans import kmeans
from linegraph2road.frontends.experts.losses import (
    poly_scheduler,
    segmentation_loss,
    triplet_margin_loss,
)
from linegraph2road.frontends.experts.model import ExpertsFrontend, parse_size
from linegraph2road.frontends.fit import Batch, FitLog, fit

__all__ = [
    "ExpertsTraining",
    "embed_images",
    "random_expert",
    "sample_triplets",
    "train_embedding",
    "train_expert",
    "train_location_experts",
    "train_single_model",
]


def sample_triplets(
    locations: NDArray[np.integer], count: int, *, rng: np.random.Generator
) -> NDArray[np.int64]:
    """``(count, 3)`` indices (anchor, positive, negative): positive of the anchor's location
    (another image), negative of another location; anchors uniform over all images.

    Raises
    ------
    ParameterError
        Fewer than 2 locations, or a location with a single image.
    """
    loc = np.asarray(locations)
    groups = {int(v): np.flatnonzero(loc == v) for v in np.unique(loc)}
    if len(groups) < 2 or min(len(g) for g in groups.values()) < 2:
        raise ParameterError(
            "triplets need >= 2 locations with >= 2 images each; got sizes "
            f"{ {k: len(g) for k, g in groups.items()} }"
        )
    out = np.empty((count, 3), dtype=np.int64)
    for t in range(count):
        a = int(rng.integers(len(loc)))
        same = groups[int(loc[a])]
        p = int(rng.choice(same[same != a]))
        n = int(rng.choice(np.flatnonzero(loc != loc[a])))
        out[t] = (a, p, n)
    return out


def _flip(x: NDArray[np.generic], rng: np.random.Generator) -> NDArray[np.generic]:
    """Random horizontal and vertical flips of a (C, H, W) array (the paper's augmentation)."""
    if rng.random() < 0.5:
        x = x[:, :, ::-1]
    if rng.random() < 0.5:
        x = x[:, ::-1]
    return x


def _to_size(x: torch.Tensor, size: int) -> torch.Tensor:
    if tuple(x.shape[-2:]) == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)


def train_embedding(
    net: EmbeddingNet,
    images: NDArray[np.uint8],
    locations: NDArray[np.integer],
    *,
    steps: int,
    batch_size: int = 8,
    lr: float = 1e-4,
    weight_decay: float = 5e-4,
    margin: float = 1.0,
    power: float = 0.9,
    seed: int = 0,
) -> FitLog:
    """Train the embedding network end to end: SmoothL1 reconstruction + cosine triplet loss.

    Parameters
    ----------
    net : EmbeddingNet
        Trained in place (left in eval mode).
    images : (N, 3, S, S) uint8
        RGB training images (resized to ``net.spec.input_size`` when ``S`` differs).
    locations : (N,) int
        Location (city) label of each image: triplets take anchor and positive from one location
        and the negative from another.
    steps, batch_size : int
        Optimiser steps; triplets per step (each step sees ``3 * batch_size`` images).
    lr, weight_decay, power : float
        Adam and poly schedule (paper: 1e-4, 5e-4, 0.9).
    margin : float
        Triplet margin (default 1.0).
    seed : int
        Seeds triplet sampling and flips.

    Returns
    -------
    FitLog
        Total loss and learning rate per step.
    """
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = poly_scheduler(opt, total_steps=steps, power=power)
    device = next(net.parameters()).device
    log = FitLog()
    net.train()
    for _ in range(steps):
        idx = sample_triplets(locations, batch_size, rng=rng).T.reshape(-1)
        batch = np.stack([_flip(images[i], rng) for i in idx])
        x = _to_size(normalize_images(torch.from_numpy(batch).to(device)), net.spec.input_size)
        recon, emb = net(x)
        a, p, n = emb.chunk(3)
        loss = F.smooth_l1_loss(recon, x) + triplet_margin_loss(a, p, n, margin=margin)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        log.losses.append(float(loss.detach()))
        log.lrs.append(float(opt.param_groups[0]["lr"]))
    net.eval()
    return log


@torch.no_grad()
def embed_images(
    net: EmbeddingNet, images: NDArray[np.uint8], *, batch_size: int = 16
) -> NDArray[np.float64]:
    """Embeddings ``(N, E)`` float64 of ``(N, 3, S, S)`` uint8 images (eval mode, no grad)."""
    net.eval()
    device = next(net.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        x = normalize_images(torch.from_numpy(images[start : start + batch_size]).to(device))
        out.append(net.embed(_to_size(x, net.spec.input_size)).double().cpu().numpy())
    return np.concatenate(out)


def _batches(
    images: NDArray[np.uint8],
    targets: NDArray[np.generic],
    *,
    steps: int,
    batch_size: int,
    rng: np.random.Generator,
) -> Iterator[Batch]:
    for _ in range(steps):
        idx = rng.integers(len(images), size=batch_size)
        pairs = [_flip(np.concatenate([images[i], targets[i]]), rng) for i in idx]
        both = torch.from_numpy(np.ascontiguousarray(np.stack(pairs))).float()
        yield both[:, :3], both[:, 3:]


def train_expert(
    frontend: ExpertsFrontend,
    expert: int,
    images: NDArray[np.uint8],
    targets: NDArray[np.generic],
    *,
    steps: int,
    batch_size: int = 8,
    lr: float = 1e-4,
    weight_decay: float = 5e-4,
    alpha: float = 0.5,
    power: float = 0.9,
    seed: int = 0,
) -> FitLog:
    """Train expert ``expert`` of ``frontend`` on its cluster's images (paper section 3.2).

    Parameters
    ----------
    frontend : ExpertsFrontend
        Trained in place; the expert is pinned during training and unpinned after.
    images : (N, 3, W, W) uint8
        RGB crops of the window size.
    targets : (N, C, W, W) bool or float in {0, 1}
        ``C = 3`` (keypoint, road, overpass) for 3-output experts, ``C = 1`` (road) for
        road-only experts.
    steps, batch_size, lr, weight_decay, alpha, power, seed
        As in the paper: Adam 1e-4 / 5e-4, alpha BCE + (1 - alpha) soft Jaccard, poly 0.9.
    """
    out = frontend.spec.expert.out_channels
    if targets.ndim != 4 or targets.shape[1] != out or len(targets) != len(images):
        raise ParameterError(
            f"targets must be (N={len(images)}, {out}, H, W) for {out}-output experts, got "
            f"{targets.shape}"
        )
    frontend.pin_expert(expert)
    try:
        params = frontend.experts[expert].parameters()
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        batches = _batches(
            images, targets, steps=steps, batch_size=batch_size, rng=np.random.default_rng(seed)
        )
        return fit(
            frontend,
            batches,
            loss_fn=lambda x, y: segmentation_loss(x, y, alpha=alpha),
            optimizer=opt,
            scheduler=poly_scheduler(opt, total_steps=steps, power=power),
            channels=(1,) if out == 1 else (0, 1, 2),
        )
    finally:
        frontend.pin_expert(None)


@dataclass
class ExpertsTraining:
    """What :func:`train_location_experts` returns: the model, cluster sizes and logs."""

    frontend: ExpertsFrontend
    labels: NDArray[np.int64]
    clusters: list[int]
    embedding_log: FitLog
    expert_logs: list[FitLog] = field(default_factory=list)


def train_location_experts(
    images: NDArray[np.uint8],
    targets: NDArray[np.generic],
    locations: NDArray[np.integer],
    *,
    size: str = "resnet34",
    window_size: int = 512,
    embedding_steps: int,
    expert_steps: int,
    batch_size: int = 8,
    lr: float = 1e-4,
    weight_decay: float = 5e-4,
    margin: float = 1.0,
    alpha: float = 0.5,
    power: float = 0.9,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> ExpertsTraining:
    """The whole method: embedding network, k-means (k from ``size``), one expert per cluster.

    Parameters
    ----------
    images : (N, 3, W, W) uint8
        Training crops at the window size ``W = window_size``.
    targets : (N, C, W, W)
        Their masks (see :func:`train_expert`).
    locations : (N,) int
        Location label per crop, for the triplets.
    size : str
        Experts size (:func:`~linegraph2road.frontends.experts.model.parse_size`).
    embedding_steps, expert_steps : int
        Steps of the embedding network and of *each* expert.

    Returns
    -------
    ExpertsTraining
        The routed front-end (eval mode), k-means labels ``(N,)``, cluster sizes, logs. An empty
        cluster's expert stays untrained (its size is 0).
    """
    spec = parse_size(size)
    torch.manual_seed(seed)
    embedder = EmbeddingNet(spec=spec.embedding).to(device)
    emb_log = train_embedding(
        embedder,
        images,
        locations,
        steps=embedding_steps,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        margin=margin,
        power=power,
        seed=seed,
    )
    result = kmeans(embed_images(embedder, images), spec.k, seed=seed)
    frontend = ExpertsFrontend(
        spec=spec,
        window_size=window_size,
        embedder=embedder,
        centroids=torch.from_numpy(result.centroids).float(),
        seed=seed,
    ).to(device)
    training = ExpertsTraining(
        frontend, result.labels, np.bincount(result.labels, minlength=spec.k).tolist(), emb_log
    )
    for c in range(spec.k):
        members = np.flatnonzero(result.labels == c)
        if len(members) == 0:
            training.expert_logs.append(FitLog())
            continue
        training.expert_logs.append(
            train_expert(
                frontend,
                c,
                images[members],
                targets[members],
                steps=expert_steps,
                batch_size=batch_size,
                lr=lr,
                weight_decay=weight_decay,
                alpha=alpha,
                power=power,
                seed=seed + 1 + c,
            )
        )
    frontend.eval()
    return training


def train_single_model(
    images: NDArray[np.uint8],
    targets: NDArray[np.generic],
    *,
    size: str = "resnet34",
    window_size: int = 512,
    steps: int,
    batch_size: int = 8,
    lr: float = 1e-4,
    weight_decay: float = 5e-4,
    alpha: float = 0.5,
    power: float = 0.9,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[ExpertsFrontend, FitLog]:
    """Baseline 1 ("no embedding"): one expert of ``size`` trained on all images (``k = 1``),
    on ``device``."""
    base = parse_size(size)
    road = "-road" if base.expert.out_channels == 1 else ""
    torch.manual_seed(seed)
    single = ExpertsFrontend(
        spec=parse_size(f"{base.name.split('-')[0]}-k1{road}"), window_size=window_size
    ).to(device)
    log = train_expert(
        single,
        0,
        images,
        targets,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        alpha=alpha,
        power=power,
        seed=seed,
    )
    return single.eval(), log


def random_expert(frontend: ExpertsFrontend, *, seed: int = 0) -> ExpertsFrontend:
    """Baseline 2 ("random embedding"): the same experts, one drawn uniformly per image."""
    return frontend.with_routing("random", seed=seed)
