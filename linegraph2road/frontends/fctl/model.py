"""The FCtL local segmentation model (Li et al., ICCV 2021, paper 001, Sec. 3.1) and its front-end.

Architecture (paper Fig. 3)
---------------------------
* **Inputs**: a local patch ``I`` (``p x p``) and ``T`` contexts ``U^t``: centred crops of side
  ``lambda_t p`` around the patch, rescaled to ``p x p`` (3.1.1; cut by
  :func:`~linegraph2road.frontends.fctl.refine.extract_contexts`). Paper defaults for Inria
  Aerial: ``p = 508``, contexts 508 / 1016 / 1524 px (local, medium, large:
  ``lambda = 1, 2, 3``). A context with ``lambda = 1`` *is* the patch (the "local context"), so
  its features are the patch's and its image is not read.
* **Shared encoder**: VGG16 conv1-conv3 (:class:`~.vgg.VGG16Conv3`, up to ``pool3``, stride 8)
  applied with the same weights to the patch and every context (one batched pass).
* **Locality-aware contextual correlation** (3.1.2), parameter-free, exactly the paper's
  equations: ``R = <X^i, X^u>`` (``N x N`` inner products of the ``C``-channel local and context
  feature vectors, ``N = h_x w_x``), ``Xbar = <Softmax(R), X^i>``. We read the softmax as
  normalising over the context cells, so each local position's attention sums to 1, and apply
  it to the *local* features at those cells (local and context grids coincide because contexts
  are rescaled to the patch size): ``Xbar[:, p] = sum_q softmax_q(R[p, q]) X^i[:, q]``. For the
  local context this is plain non-local self-attention, as the paper notes (4.4). The released
  code differs (learned 1x1 query/key/value projections, values from the *context*, a
  zero-initialised scale, all at VGG ``pool5``); we follow the paper.
* **Adaptive multi-context fusion** (3.1.3, Eq. 1): concatenate the ``T`` locality-aware maps,
  squeeze with a 1x1 conv (``T C -> C`` channels by default), reconstruct with a 1x1 conv
  (``C -> T C``), softmax over the ``T`` contexts per channel and position, weighted sum.
* **Residual join** with the local features, then an **upsampling decoder**: 3x3 conv at stride
  8, bilinear x2 + concatenated ``pool2`` skip + 3x3 conv (stride 4), bilinear x2 + ``pool1``
  skip + 3x3 conv (stride 2), 1x1 classifier, bilinear to the input size. (The released code's
  FCN-8s head needs VGG conv4/5 and fc6/7, which the paper's conv1-3 encoder does not have.)

Front-end use
-------------
:class:`FCtLFrontend` wraps :class:`FCtLNet` as a :class:`~..base.MaskFrontend`. With
``num_classes=3`` the logits are ``(keypoint, road, overpass)``; with ``num_classes=1`` (the
paper's binary setting, a road mask) the logit fills the ``road`` channel and ``keypoint`` /
``overpass`` hold the constant :data:`ABSENT_LOGIT` (probability ~2e-9: "none"), so only
``mask2graph`` (not the coupled NMS) can make a graph from it; :attr:`FCtLFrontend.trained_channels`
says which channels carry predictions. The feature map for the topology head is the stride-4
decoder map projected to ``feature_dim`` (128 by default) by a 1x1 conv. Land-cover
(multi-class) use goes through :class:`FCtLNet` with any ``num_classes`` directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.base import ABSENT_LOGIT, FrontendOutput, MaskFrontend
from linegraph2road.frontends.fctl.vgg import VGG16_WIDTHS, VGG16Conv3

__all__ = [
    "ABSENT_LOGIT",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FCtLFrontend",
    "FCtLNet",
    "FCtLNetOutput",
    "FCtLSpec",
    "MultiContextFusion",
    "locality_aware_correlation",
]

#: ImageNet statistics (0-255 scale), what VGG16 weights expect.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def locality_aware_correlation(local: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """``F_lcc``: ``Softmax(<X^i, X^u>)`` applied to the local features (paper 3.1.2).

    Parameters
    ----------
    local : torch.Tensor
        ``X^i``, ``(B, C, h, w)`` float local-patch features.
    context : torch.Tensor
        ``X^u``, ``(B, C, h, w)`` float context features on the same grid.

    Returns
    -------
    torch.Tensor
        ``(B, C, h, w)``: ``out[b, :, p] = sum_q softmax_q(R[b, p, q]) local[b, :, q]`` with
        ``R[b, p, q] = <local[b, :, p], context[b, :, q]>`` (positions flattened row-major).
    """
    if local.shape != context.shape or local.ndim != 4:
        raise ParameterError(
            f"local and context features must both be (B, C, h, w) of one shape, got "
            f"{tuple(local.shape)} and {tuple(context.shape)}"
        )
    b, c, h, w = local.shape
    xi = local.reshape(b, c, h * w)
    relevance = torch.bmm(xi.transpose(1, 2), context.reshape(b, c, h * w))  # (B, N, N)
    attention = torch.softmax(relevance, dim=-1)
    return torch.bmm(xi, attention.transpose(1, 2)).reshape(b, c, h, w)


class MultiContextFusion(nn.Module):
    """``F_est`` + Eq. 1: squeeze-and-split 1x1 convs, per-position softmax over contexts.

    Parameters
    ----------
    channels : int
        ``C``, channels of each locality-aware map.
    num_contexts : int
        ``T``.
    squeeze_channels : int or None
        Width of the squeezed map; None (default) = ``C`` (a ``T``-fold compression).
    """

    def __init__(
        self, *, channels: int, num_contexts: int, squeeze_channels: int | None = None
    ) -> None:
        super().__init__()
        if channels <= 0 or num_contexts <= 0:
            raise ParameterError(f"need channels, num_contexts > 0, got {channels}, {num_contexts}")
        s = channels if squeeze_channels is None else int(squeeze_channels)
        self.num_contexts = int(num_contexts)
        self.squeeze = nn.Conv2d(num_contexts * channels, s, 1)
        self.split = nn.Conv2d(s, num_contexts * channels, 1)

    def weights(self, maps: torch.Tensor) -> torch.Tensor:
        """Weight maps ``H^t``: ``(B, T, C, h, w)``, non-negative, summing to 1 over ``T``."""
        b, t, c, h, w = maps.shape
        if t != self.num_contexts:
            raise ParameterError(f"fusion built for {self.num_contexts} contexts, got {t}")
        logits = self.split(self.squeeze(maps.reshape(b, t * c, h, w)))
        return torch.softmax(logits.reshape(b, t, c, h, w), dim=1)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """Fuse ``(B, T, C, h, w)`` locality-aware maps into ``(B, C, h, w)``."""
        return (self.weights(maps) * maps).sum(dim=1)


class FCtLNetOutput(NamedTuple):
    """:meth:`FCtLNet.forward` result: ``logits (B, K, H, W)``, ``decoder4 (B, w2, H/4, W/4)``."""

    logits: torch.Tensor
    decoder4: torch.Tensor


def _conv3x3(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True))


def _up(x: torch.Tensor, like: torch.Tensor | tuple[int, int]) -> torch.Tensor:
    size = like if isinstance(like, tuple) else (like.shape[-2], like.shape[-1])
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class FCtLNet(nn.Module):
    """FCtL local segmentation network (see the module docstring).

    Parameters
    ----------
    num_classes : int
        ``K`` output logits (1: binary road; 3: l2r's masks; 7: DeepGlobe land cover...).
    widths : tuple of 3 ints
        VGG block widths (VGG16: ``(64, 128, 256)``); the decoder uses the same widths.
    context_scales : tuple of float
        ``lambda_t`` of the ``T`` contexts, each >= 1 (paper, Inria: ``(1, 2, 3)``). Scale 1 is
        the local context (the patch itself).
    squeeze_channels : int or None
        Fusion squeeze width (None: ``widths[2]``).
    """

    def __init__(
        self,
        *,
        num_classes: int = 1,
        widths: tuple[int, int, int] = VGG16_WIDTHS,
        context_scales: tuple[float, ...] = (1.0, 2.0, 3.0),
        squeeze_channels: int | None = None,
    ) -> None:
        super().__init__()
        if num_classes <= 0:
            raise ParameterError(f"num_classes must be positive, got {num_classes}")
        if not context_scales or min(context_scales) < 1.0:
            raise ParameterError(
                f"context scales must be >= 1 (and at least one), got {context_scales}"
            )
        self.num_classes = int(num_classes)
        self.context_scales = tuple(float(s) for s in context_scales)
        self.encoder = VGG16Conv3(widths=widths)
        w1, w2, w3 = self.encoder.widths
        self.fusion = MultiContextFusion(
            channels=w3, num_contexts=len(self.context_scales), squeeze_channels=squeeze_channels
        )
        self.dec8 = _conv3x3(w3, w2)
        self.dec4 = _conv3x3(2 * w2, w2)
        self.dec2 = _conv3x3(w2 + w1, w1)
        self.classifier = nn.Conv2d(w1, self.num_classes, 1)

    @property
    def is_local(self) -> tuple[bool, ...]:
        """Per context: True for the local context (scale 1), whose features are the patch's."""
        return tuple(s == 1.0 for s in self.context_scales)

    def forward(self, patch: torch.Tensor, contexts: torch.Tensor | None = None) -> FCtLNetOutput:
        """Segment local patches given their contexts.

        Parameters
        ----------
        patch : torch.Tensor
            ``(B, 3, H, W)`` float, ImageNet-normalised.
        contexts : torch.Tensor or None
            ``(B, T, 3, H, W)`` float: the ``T`` contexts rescaled to the patch size, in
            ``context_scales`` order (entries of local contexts are not read). None: every
            context is the patch itself (the local-context-only ablation).

        Returns
        -------
        FCtLNetOutput
            ``logits (B, K, H, W)`` float32 and the stride-4 decoder map ``(B, w2, H/4, W/4)``
            (ceil at each pool).
        """
        b = patch.shape[0]
        t = len(self.context_scales)
        if contexts is not None and (
            contexts.ndim != 5
            or contexts.shape[:2] != (b, t)
            or contexts.shape[2:] != patch.shape[1:]
        ):
            raise ParameterError(
                f"contexts must be (B, T, 3, H, W) = ({b}, {t}, {tuple(patch.shape[1:])}), got "
                f"{tuple(contexts.shape)}"
            )
        stacked, wanted = patch, []
        if contexts is not None:
            wanted = [i for i, loc in enumerate(self.is_local) if not loc]
            stacked = torch.cat([patch, *(contexts[:, i] for i in wanted)])
        pool1, pool2, pool3 = self.encoder(stacked)
        local = pool3[:b]
        context_features = [local] * t
        for k, i in enumerate(wanted, start=1):
            context_features[i] = pool3[k * b : (k + 1) * b]
        maps = torch.stack([locality_aware_correlation(local, u) for u in context_features], 1)
        joined = local + self.fusion(maps)
        d8 = self.dec8(joined)
        d4 = self.dec4(torch.cat([_up(d8, pool2), pool2[:b]], 1))
        d2 = self.dec2(torch.cat([_up(d4, pool1), pool1[:b]], 1))
        logits = _up(self.classifier(d2), (patch.shape[-2], patch.shape[-1]))
        return FCtLNetOutput(logits=logits, decoder4=d4)


@dataclass(frozen=True)
class FCtLSpec:
    """One FCtL front-end size (instances in ``registry.FCTL_SIZES``).

    Attributes
    ----------
    name : str
        Registry name (``"vgg16"``, ``"small"``, ``"tiny"``).
    widths : tuple of 3 ints
        VGG conv1-3 widths (VGG16 ``(64, 128, 256)``; only these load ImageNet weights).
    context_scales : tuple of float
        Context sides as multiples of the window (paper, Inria Aerial: 1, 2, 3).
    feature_dim : int
        ``D`` of the topology-head feature map (default 128).
    num_classes : int
        1 (road only) or 3 (keypoint, road, overpass; default).
    """

    name: str
    widths: tuple[int, int, int] = VGG16_WIDTHS
    context_scales: tuple[float, ...] = (1.0, 2.0, 3.0)
    feature_dim: int = 128
    num_classes: int = 3


class FCtLFrontend(MaskFrontend):
    """FCtL as a mask front-end (see the module docstring for how the masks are filled).

    Parameters
    ----------
    spec : FCtLSpec
        Size.
    window_size : int
        Patch side ``p`` in pixels (paper: 508), a multiple of the stride 4.

    Attributes
    ----------
    context_sizes : tuple of int
        Context sides in pixels, ``round(lambda_t p)`` (508 px: 508, 1016, 1524).
    trained_channels : tuple of int
        Mask channels carrying predictions: ``(0, 1, 2)``, or ``(1,)`` for a road-only model.
    """

    def __init__(self, *, spec: FCtLSpec, window_size: int = 508) -> None:
        super().__init__()
        if spec.num_classes not in (1, 3):
            raise ParameterError(
                f"an FCtL front-end predicts 1 (road) or 3 masks, got num_classes="
                f"{spec.num_classes}; use FCtLNet directly for other class counts"
            )
        if window_size <= 0 or window_size % 4:
            raise ParameterError(
                f"window_size must be a positive multiple of 4 px, got {window_size}"
            )
        self.spec = spec
        self.window_size = int(window_size)
        self.stride = 4
        self.feature_dim = spec.feature_dim
        self._set_normalization(mean=IMAGENET_MEAN, std=IMAGENET_STD)
        self.net = FCtLNet(
            num_classes=spec.num_classes, widths=spec.widths, context_scales=spec.context_scales
        )
        self.feature_proj = nn.Conv2d(self.net.encoder.widths[1], spec.feature_dim, 1)
        self.trained_channels: tuple[int, ...] = (1,) if spec.num_classes == 1 else (0, 1, 2)

    @property
    def context_sizes(self) -> tuple[int, ...]:
        """Context sides in pixels for this window size."""
        return tuple(round(s * self.window_size) for s in self.spec.context_scales)

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """The VGG16 conv1-3 parameters (the part ImageNet weights can initialise)."""
        return (p for p in self.net.encoder.parameters() if p.requires_grad)

    def describe(self) -> dict[str, object]:
        """Architecture summary; adds size, context sizes and the number of predicted masks."""
        return {
            **super().describe(),
            "frontend": "fctl",
            "size": self.spec.name,
            "context_sizes": list(self.context_sizes),
            "num_classes": self.spec.num_classes,
        }

    def forward(self, image: torch.Tensor, contexts: torch.Tensor | None = None) -> FrontendOutput:
        """Masks and features of normalised patches, with their contexts.

        Parameters
        ----------
        image : torch.Tensor
            ``(B, 3, p, p)`` float32 from :meth:`normalize`, ``p = window_size``.
        contexts : torch.Tensor or None
            ``(B, T, 3, p, p)``: :func:`~.refine.extract_contexts` of each patch from the
            *normalised* full image with ``context_sizes``. None (the plain
            :class:`MaskFrontend` call) uses the patch as every context, which works but drops
            the contextual information; :func:`~.refine.segment_large` and the recipe always
            pass real contexts.

        Returns
        -------
        FrontendOutput
            ``masks (B, 3, p, p)`` logits, ``features (B, D, p/4, p/4)``, ``stride 4``.
        """
        self.check_input(image)
        out = self.net(image, contexts)
        logits = out.logits
        if self.spec.num_classes == 1:
            absent = torch.full_like(logits, ABSENT_LOGIT)
            logits = torch.cat([absent, logits, absent], dim=1)
        return FrontendOutput(
            masks=logits, features=self.feature_proj(out.decoder4), stride=self.stride
        )
