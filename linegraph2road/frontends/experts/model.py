"""Location-specific experts as a mask front-end: an embedding router and k expert U-Nets.

How the interface is filled
---------------------------
* **Routing** (paper section 3.3.1: "extract the image embeddings, determine the distance to the
  nearest cluster centroid and select the corresponding segmentation network"): the frozen
  :class:`~linegraph2road.frontends.experts.embedding.EmbeddingNet` embeds the input (resized to
  its ``input_size`` when the window differs) and the Euclidean-nearest of the ``k`` k-means
  centroids picks the expert (k-means minimises Euclidean distances, so routing uses the same
  metric as the clustering). :meth:`ExpertsFrontend.route` is that decision, explicitly.
* **Granularity**: :meth:`ExpertsFrontend.forward` routes **each batch item**, i.e. each sliding
  window, separately; items routed to the same expert run together. The paper embeds its
  512 px image patches, which is our window size. To route a whole input image once instead
  (one expert for every window), call :meth:`ExpertsFrontend.route` on the image downsampled to
  the window (:meth:`ExpertsFrontend.route_image`) and :meth:`ExpertsFrontend.pin_expert` the
  result for the windows.
* **Masks**: experts with 3 outputs fill ``(keypoint, road, overpass)`` directly. Road-only
  experts (``out_channels = 1``, the paper's binary task) fill the ``road`` channel; ``keypoint``
  and ``overpass`` get the constant logit :data:`EMPTY_LOGIT` (probability ~2e-9), so coupled NMS
  finds road vertices only, and ``mask2graph`` reads the road channel alone.
* **Features**: the routed expert's decoder output at ``feature_stride`` (default 4) projected to
  ``feature_dim`` (default 128), see :mod:`~linegraph2road.frontends.experts.unet`.

Baselines (paper section 3.3.2): "no embedding" is a model with ``k = 1`` (size suffix ``-k1``)
trained on all images; "random embedding" is ``routing="random"``
(:meth:`ExpertsFrontend.with_routing`), which draws the expert uniformly per item.

Training: the embedding network is trained on its own (recipe) and is frozen here
(``requires_grad=False``, always in eval mode). In ``routing="nearest"`` mode only the experts
that received items get gradients (PyTorch DDP then needs ``find_unused_parameters=True``); the
paper trains each expert on its own cluster, which :meth:`ExpertsFrontend.pin_expert` provides.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.base import ABSENT_LOGIT, FrontendOutput, MaskFrontend
from linegraph2road.frontends.experts.embedding import (
    PIXEL_MEAN,
    PIXEL_STD,
    EmbeddingNet,
    EmbeddingSpec,
)
from linegraph2road.frontends.experts.unet import UNetExpert, UNetSpec

__all__ = ["EMPTY_LOGIT", "EXPERTS_SIZES", "ExpertsFrontend", "ExpertsSpec", "parse_size"]

#: Logit of the mask channels a road-only expert does not predict (the front-ends' common value).
EMPTY_LOGIT = ABSENT_LOGIT
ROUTINGS = ("nearest", "random")


@dataclass(frozen=True)
class ExpertsSpec:
    """Sizes of an experts front-end: ``k`` experts, their U-Net, the embedding network.

    Attributes
    ----------
    name : str
        Canonical size name (``"resnet34"``, ``"tiny-k2-road"``...; see :func:`parse_size`).
    k : int
        Number of clusters = experts (paper: 3 and 5; 1 = the "no embedding" baseline).
    embedding : EmbeddingSpec
    expert : UNetSpec
    """

    name: str
    k: int
    embedding: EmbeddingSpec
    expert: UNetSpec


_TINY_DECODER = (32, 16, 16, 8, 8)
#: Base sizes (suffixes ``-kN`` and ``-road`` modify them, see :func:`parse_size`).
EXPERTS_SIZES: dict[str, ExpertsSpec] = {
    # The paper's networks (ResNet34 instead of ResNet101 in the experts: see unet.py).
    "resnet34": ExpertsSpec("resnet34", 3, EmbeddingSpec(), UNetSpec()),
    # CPU training of real data in minutes (ResNet18 trunks, 256 px embedding input).
    "small": ExpertsSpec(
        "small",
        3,
        EmbeddingSpec(layers=(2, 2, 2, 2), input_size=256, hidden_dim=256, embedding_dim=128),
        UNetSpec(layers=(2, 2, 2, 2), decoder_channels=(128, 64, 32, 16, 16), feature_dim=64),
    ),
    # Unit tests: one block per stage, narrow decoders, 16-d embedding at 64 px (2x2 pooling).
    "tiny": ExpertsSpec(
        "tiny",
        3,
        EmbeddingSpec(
            layers=(1, 1, 1, 1),
            input_size=64,
            pool=2,
            hidden_dim=32,
            embedding_dim=16,
            decoder_channels=_TINY_DECODER,
        ),
        UNetSpec(layers=(1, 1, 1, 1), decoder_channels=_TINY_DECODER, feature_dim=16),
    ),
}
_SIZE = re.compile(r"^(?P<base>[a-z0-9]+)(?:-k(?P<k>[0-9]+))?(?P<road>-road)?$")


def parse_size(size: str) -> ExpertsSpec:
    """The spec of a size name: ``BASE[-kN][-road]``.

    ``BASE`` is a key of :data:`EXPERTS_SIZES` (``resnet34``, ``small``, ``tiny``); ``-kN`` sets
    the number of experts (default 3); ``-road`` makes the experts road-only (1 output channel).
    For example ``"resnet34-k5"`` (the paper's second setting) or ``"tiny-k1-road"``.

    Raises
    ------
    ParameterError
        An unknown base, a malformed name or ``k < 1``.
    """
    m = _SIZE.match(size)
    if m is None or m["base"] not in EXPERTS_SIZES:
        raise ParameterError(
            f"unknown experts size {size!r}; use BASE[-kN][-road] with BASE one of "
            f"{sorted(EXPERTS_SIZES)} (e.g. 'resnet34-k5', 'tiny-k2-road')"
        )
    base = EXPERTS_SIZES[m["base"]]
    k = int(m["k"]) if m["k"] else base.k
    if k < 1:
        raise ParameterError(f"an experts model needs k >= 1 experts, got {size!r}")
    road = m["road"] is not None
    name = m["base"] + (f"-k{k}" if k != base.k else "") + ("-road" if road else "")
    expert = replace(base.expert, out_channels=1) if road else base.expert
    return ExpertsSpec(name, k, base.embedding, expert)


class ExpertsFrontend(MaskFrontend):
    """Router (embedding + nearest centroid) and ``k`` expert U-Nets (see the module docstring).

    Parameters
    ----------
    spec : ExpertsSpec
        Sizes (:func:`parse_size`).
    window_size : int
        Input window side in pixels (default 512); a multiple of 32.
    embedder : EmbeddingNet or None
        A trained embedding network (None: a fresh one of ``spec.embedding``). Frozen here.
    experts : sequence of UNetExpert or None
        ``k`` experts (None: fresh ones of ``spec.expert``).
    centroids : torch.Tensor or None
        ``(k, embedding_dim)`` float k-means centroids (None: zeros, i.e. untrained routing that
        always picks expert 0).
    routing : str
        ``"nearest"`` (the paper's method, default) or ``"random"`` (the random-expert baseline).
    seed : int
        Seed of the random-expert draws (default 0).
    """

    centroids: torch.Tensor

    def __init__(
        self,
        *,
        spec: ExpertsSpec,
        window_size: int = 512,
        embedder: EmbeddingNet | None = None,
        experts: Sequence[UNetExpert] | None = None,
        centroids: torch.Tensor | None = None,
        routing: str = "nearest",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if window_size <= 0 or window_size % 32:
            raise ParameterError(
                f"window_size must be a positive multiple of 32, got {window_size}"
            )
        if routing not in ROUTINGS:
            raise ParameterError(f"routing must be one of {ROUTINGS}, got {routing!r}")
        self.spec, self.routing, self.seed = spec, routing, seed
        self.window_size = int(window_size)
        self.stride = spec.expert.feature_stride
        self.trained_channels = (1,) if spec.expert.out_channels == 1 else (0, 1, 2)
        self.feature_dim = spec.expert.feature_dim
        self._set_normalization(mean=PIXEL_MEAN, std=PIXEL_STD)
        self.embedder = embedder if embedder is not None else EmbeddingNet(spec=spec.embedding)
        self.embedder.requires_grad_(False).eval()
        if experts is None:
            experts = [UNetExpert(spec=spec.expert) for _ in range(spec.k)]
        if len(experts) != spec.k:
            raise ParameterError(f"spec {spec.name} has k={spec.k} but {len(experts)} experts")
        self.experts: Sequence[UNetExpert] = nn.ModuleList(experts)  # type: ignore[assignment]
        e = spec.embedding.embedding_dim
        c = torch.zeros(spec.k, e) if centroids is None else torch.as_tensor(centroids).float()
        if tuple(c.shape) != (spec.k, e):
            raise ParameterError(f"centroids must be ({spec.k}, {e}), got {tuple(c.shape)}")
        self.register_buffer("centroids", c.clone())
        self.pinned: int | None = None
        self._generator = torch.Generator().manual_seed(seed)

    def train(self, mode: bool = True) -> ExpertsFrontend:
        """Set the experts' mode; the frozen embedding network always stays in eval mode."""
        super().train(mode)
        self.embedder.eval()
        return self

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable parameters of the experts' ResNet encoders (the backbones that the paper
        initialises from ImageNet; here from an experts checkpoint, when one is loaded)."""
        return (p for e in self.experts for p in e.encoder.parameters() if p.requires_grad)

    def describe(self) -> dict[str, object]:
        """Architecture summary (what a checkpoint must match)."""
        return {
            **super().describe(),
            "frontend": "experts",
            "size": self.spec.name,
            "k": self.spec.k,
            "out_channels": self.spec.expert.out_channels,
            "embedding_dim": self.spec.embedding.embedding_dim,
        }

    def with_routing(self, routing: str, *, seed: int = 0) -> ExpertsFrontend:
        """A front-end sharing this one's networks and centroids with another ``routing``."""
        other = ExpertsFrontend(
            spec=self.spec,
            window_size=self.window_size,
            embedder=self.embedder,
            experts=list(self.experts),
            centroids=self.centroids,
            routing=routing,
            seed=seed,
        )
        other.weights_description = self.weights_description
        return other.train(self.training)

    def pin_expert(self, expert: int | None) -> None:
        """Send every item to ``expert`` (None: route again) and train only that expert.

        The other experts get ``requires_grad=False`` while one is pinned (so every trainable
        parameter receives a gradient); ``None`` makes all experts trainable again.
        """
        if expert is not None and not 0 <= expert < self.spec.k:
            raise ParameterError(f"expert must be in [0, {self.spec.k}), got {expert}")
        self.pinned = expert
        for i, module in enumerate(self.experts):
            module.requires_grad_(expert is None or i == expert)

    @torch.no_grad()
    def embed(self, image: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(B, embedding_dim)`` float32 of normalised ``(B, 3, H, W)`` images,
        resized (bilinear, antialiased) to the embedding network's input size if needed."""
        s = self.spec.embedding.input_size
        if tuple(image.shape[-2:]) != (s, s):
            image = F.interpolate(image, size=(s, s), mode="bilinear", antialias=True)
        return self.embedder.embed(image.float())

    def assign(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Index ``(B,)`` int64 of the Euclidean-nearest centroid of each ``(B, E)`` embedding."""
        if embeddings.ndim != 2 or embeddings.shape[1] != self.centroids.shape[1]:
            raise ParameterError(
                f"embeddings must be (B, {self.centroids.shape[1]}), got {tuple(embeddings.shape)}"
            )
        c = self.centroids.to(embeddings)
        return torch.cdist(embeddings, c).argmin(dim=1)

    def route(self, image: torch.Tensor) -> torch.Tensor:
        """The expert ``(B,)`` int64 of each normalised image ``(B, 3, H, W)`` (any H, W).

        Pinned: the pinned expert; ``routing="random"``: uniform draws from the front-end's own
        seeded generator (its state advances); otherwise the nearest centroid of the embedding.
        """
        b = image.shape[0]
        if self.pinned is not None:
            return torch.full((b,), self.pinned, dtype=torch.int64, device=image.device)
        if self.routing == "random":
            draw = torch.randint(self.spec.k, (b,), generator=self._generator)
            return draw.to(image.device)
        if self.spec.k == 1:
            return torch.zeros(b, dtype=torch.int64, device=image.device)
        return self.assign(self.embed(image))

    def route_image(self, image: torch.Tensor) -> int:
        """One expert for a whole raw image ``(3, H, W)`` (0-255), embedded at the input size."""
        return int(self.route(self.normalize(image))[0])

    def forward(self, image: torch.Tensor) -> FrontendOutput:
        """Masks and features of normalised windows, each routed to its expert.

        Parameters
        ----------
        image : torch.Tensor
            ``(B, 3, W, W)`` float32 from :meth:`normalize`, ``W = window_size``.

        Returns
        -------
        FrontendOutput
            ``masks (B, 3, W, W)`` logits (keypoint, road, overpass), ``features
            (B, feature_dim, W / stride, W / stride)``, ``stride``.
        """
        self.check_input(image)
        choice = self.route(image).tolist()
        masks: list[torch.Tensor] = [image] * len(choice)
        feats: list[torch.Tensor] = [image] * len(choice)
        for c in sorted(set(choice)):
            items = [i for i, ci in enumerate(choice) if ci == c]
            logits, features = self.experts[c](image[items])
            for j, i in enumerate(items):
                masks[i], feats[i] = logits[j : j + 1], features[j : j + 1]
        logits = torch.cat(masks)
        if logits.shape[1] == 1:
            empty = torch.full_like(logits, EMPTY_LOGIT)
            logits = torch.cat([empty, logits, empty], dim=1)
        return FrontendOutput(masks=logits, features=torch.cat(feats), stride=self.stride)
