"""RoadGIE (paper 004): a lightweight UNet with the Directional Aggregation Module, as a front-end.

Architecture (RoadGIE 4.1)
--------------------------
Input: the normalised image (3 channels), the previous round's road probability (1) and the
positive and negative prompt maps (2) of :func:`linegraph2road.prompts.rasterize_prompts`,
concatenated to 6 channels (eq. 1: ``mask_t = f(image, mask_{t-1}, prompts_t)``,
``mask_0 = 0``). The paper names "a lightweight UNet" (Ronneberger et al., 2015) of 3.7 M
parameters and nothing more; its equations and figure are lost in extraction. Our choices:

* **Encoder**: ``len(widths)`` levels; level ``i`` runs two 3x3 conv + BatchNorm + ReLU at
  ``widths[i]`` channels on a map of stride ``2**i`` (2x2 max pooling between levels).
* **Decoder**: from the deepest level up, bilinear x2 upsampling, concatenation with the
  encoder's skip map of that level and two 3x3 conv + BN + ReLU to the level's width, up to full
  resolution (``widths[0]`` channels).
* **Head**: :class:`~.dam.DirectionalAggregation` on the full-resolution decoder map (eq. 2-3),
  giving one road logit per pixel.

Most parameters sit in the coarse levels and few channels at full resolution (the decoder has
one conv per level), so that one interaction on a 512 x 512 view stays interactive on a CPU
(the paper: 39.5 ms on an RTX 3090; ``bench/bench_roadgie_latency.py`` measures ours). Weights
and inputs use the channels-last memory layout, oneDNN's fast convolution path on CPUs.

=========  ==================================  =====  ==========  =============  ===========
size       widths (stride 1 .. 2**(L-1))       dec.   params      GFLOP @ 512    use
=========  ==================================  =====  ==========  =============  ===========
``paper``  8, 16, 32, 64, 128, 192, 320        1      3.727 M     8.4            the paper
``small``  8, 16, 32, 64, 128                  1      0.443 M     6.7            CPU training
``tiny``   8, 12, 16, 24                       1      0.027 M     3.1            tests
=========  ==================================  =====  ==========  =============  ===========

The paper states 3.7 M parameters; ``paper`` has 3.727 M (+0.7 %). Input sides must be multiples
of ``2 ** (L - 1)`` (64, 16, 8).

Front-end mapping
-----------------
RoadGIE predicts the road mask only: ``trained_channels = (1,)``; the keypoint and overpass
channels of :meth:`RoadGIEFrontend.forward` hold the constant
:data:`~linegraph2road.frontends.nl_linknet.UNTRAINED_LOGIT`. ``forward(image)`` is one
prompt-free first round (previous mask 0, no prompts), so ``l2r segment --frontend roadgie``
without prompts and every other use of the :class:`MaskFrontend` interface work; the feature map
is the stride-4 decoder map (``widths[2]`` channels). :meth:`RoadGIEFrontend.interact` is one
interaction round.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.base import FrontendOutput, MaskFrontend
from linegraph2road.frontends.nl_linknet.model import UNTRAINED_LOGIT
from linegraph2road.frontends.roadgie.dam import DirectionalAggregation

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ROADGIE_SIZES", "RoadGIEFrontend", "RoadGIESpec"]

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
#: Input channels: image (3), previous probability (1), positive and negative prompt maps (2).
IN_CHANNELS = 6
#: Decoder level whose map is the front-end's feature map (stride 4).
FEATURE_LEVEL = 2


@dataclass(frozen=True)
class RoadGIESpec:
    """One RoadGIE size.

    Attributes
    ----------
    name : str
        Registry size name.
    widths : tuple of int
        Channels of encoder (and decoder) level ``i``, stride ``2**i``; at least 3 levels.
    decoder_convs : int
        3x3 conv + BN + ReLU layers per decoder level (the encoder has two per level).
    dam_kernel : int
        DAM 1-D kernel length (odd).
    """

    name: str
    widths: tuple[int, ...]
    decoder_convs: int = 1
    dam_kernel: int = 9

    def __post_init__(self) -> None:
        if len(self.widths) < 3 or min(self.widths) < 1:
            raise ParameterError(f"RoadGIE needs >= 3 levels of >= 1 channel, got {self.widths}")
        if self.decoder_convs not in (1, 2):
            raise ParameterError(f"decoder_convs must be 1 or 2, got {self.decoder_convs}")
        if self.dam_kernel < 1 or self.dam_kernel % 2 == 0:
            raise ParameterError(f"dam_kernel must be odd and positive, got {self.dam_kernel}")

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (``2 ** (levels - 1)``)."""
        return 2 ** (len(self.widths) - 1)


#: The sizes: ``paper`` (the paper's 3.7 M parameters), ``small`` (CPU training), ``tiny``
#: (tests). ``tests/frontends/test_roadgie.py`` checks the counts.
ROADGIE_SIZES: dict[str, RoadGIESpec] = {
    "paper": RoadGIESpec(name="paper", widths=(8, 16, 32, 64, 128, 192, 320)),
    "small": RoadGIESpec(name="small", widths=(8, 16, 32, 64, 128)),
    "tiny": RoadGIESpec(name="tiny", widths=(8, 12, 16, 24)),
}


class ConvBlock(nn.Sequential):
    """``convs`` x (3x3 conv + BatchNorm + ReLU): ``(B, c_in, H, W) -> (B, c_out, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int, convs: int = 2) -> None:
        layers: list[nn.Module] = []
        for i in range(convs):
            layers += [
                nn.Conv2d(
                    in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False
                ),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
        super().__init__(*layers)


class RoadGIEFrontend(MaskFrontend):
    """RoadGIE behind the :class:`MaskFrontend` interface (see the module docstring).

    Parameters
    ----------
    spec : RoadGIESpec
        The size (``ROADGIE_SIZES["paper"]`` is the paper's model).
    window_size : int
        Default window side in pixels (default 512, the paper's image size), a multiple of
        ``spec.multiple``. :meth:`interact` takes any sides that are multiples of it.
    """

    trained_channels = (1,)

    def __init__(self, *, spec: RoadGIESpec, window_size: int = 512) -> None:
        super().__init__()
        if window_size <= 0 or window_size % spec.multiple:
            raise ParameterError(
                f"window_size must be a positive multiple of {spec.multiple} px, got {window_size}"
            )
        self.spec = spec
        self.window_size, self.stride = int(window_size), 2**FEATURE_LEVEL
        self.feature_dim = spec.widths[FEATURE_LEVEL]
        self._set_normalization(mean=IMAGENET_MEAN, std=IMAGENET_STD)
        w = spec.widths
        self.encoder = nn.ModuleList(
            [ConvBlock(IN_CHANNELS if i == 0 else w[i - 1], w[i]) for i in range(len(w))]
        )
        self.decoder = nn.ModuleList(
            [ConvBlock(w[i + 1] + w[i], w[i], spec.decoder_convs) for i in range(len(w) - 1)]
        )
        self.dam = DirectionalAggregation(w[0], 1, kernel_size=spec.dam_kernel)
        # channels-last weights: oneDNN's fast convolution layout on CPUs (3-10x here)
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    # -- the network ----------------------------------------------------------------------------
    def _check(self, image: torch.Tensor, previous: torch.Tensor, prompts: torch.Tensor) -> None:
        m = self.spec.multiple
        if image.ndim != 4 or image.shape[1] != 3 or image.shape[2] % m or image.shape[3] % m:
            raise ParameterError(
                f"RoadGIE takes (B, 3, H, W) images with H and W multiples of {m}, got "
                f"{tuple(image.shape)}"
            )
        if not image.dtype.is_floating_point:
            raise ParameterError(
                f"interact takes normalised float images, got {image.dtype}; call normalize() first"
            )
        b, _, h, w = image.shape
        if tuple(previous.shape) != (b, 1, h, w) or tuple(prompts.shape) != (b, 2, h, w):
            raise ParameterError(
                f"previous must be (B, 1, H, W) and prompt maps (B, 2, H, W) like the image "
                f"{tuple(image.shape)}, got {tuple(previous.shape)} and {tuple(prompts.shape)}"
            )

    def _run(
        self, image: torch.Tensor, previous: torch.Tensor, prompts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([image, previous.to(image.dtype), prompts.to(image.dtype)], dim=1)
        x = x.contiguous(memory_format=torch.channels_last)
        skips = []
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        features = x
        for i in range(len(self.decoder) - 1, -1, -1):
            up = F.interpolate(x, size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            x = self.decoder[i](torch.cat([up, skips[i]], dim=1))
            if i == FEATURE_LEVEL:
                features = x
        return self.dam(x), features

    def interact(
        self, image: torch.Tensor, previous: torch.Tensor, prompts: torch.Tensor
    ) -> torch.Tensor:
        """One interaction round: road logits from the image, previous mask and prompt maps.

        Parameters
        ----------
        image : torch.Tensor
            ``(B, 3, H, W)`` float32 from :meth:`normalize`; ``H``, ``W`` multiples of
            ``spec.multiple`` (16 or 32; pad other sizes, as
            :func:`~linegraph2road.inference.interactive.predict_round` does).
        previous : torch.Tensor
            ``(B, 1, H, W)`` previous road probability in [0, 1] (zeros in the first round).
        prompts : torch.Tensor
            ``(B, 2, H, W)`` positive / negative prompt maps in [0, 1].

        Returns
        -------
        torch.Tensor
            ``(B, 1, H, W)`` road logits (``sigmoid`` gives ``mask_t``).
        """
        self._check(image, previous, prompts)
        return self._run(image, previous, prompts)[0]

    # -- the MaskFrontend interface -------------------------------------------------------------
    def check_input(self, image: torch.Tensor) -> None:
        """Raise ``ParameterError`` unless ``image`` is ``(B, 3, S, S)`` float windows with
        ``S`` a multiple of ``spec.multiple``."""
        m = self.spec.multiple
        if (
            image.ndim != 4
            or image.shape[1] != 3
            or image.shape[2] != image.shape[3]
            or image.shape[2] % m
            or image.shape[2] == 0
        ):
            raise ParameterError(
                f"RoadGIE takes square (B, 3, S, S) windows with S a multiple of {m} (default "
                f"{self.window_size}), got {tuple(image.shape)}"
            )
        if not image.dtype.is_floating_point:
            raise ParameterError(
                f"forward takes normalised float images, got {image.dtype}; call normalize() first"
            )

    def forward(self, image: torch.Tensor) -> FrontendOutput:
        """A prompt-free first round: masks ``(B, 3, S, S)`` logits (road in channel 1) and
        the stride-4 decoder features ``(B, widths[2], S / 4, S / 4)``."""
        self.check_input(image)
        b, _, h, w = image.shape
        zeros = image.new_zeros((b, 3, h, w))
        logits, features = self._run(image, zeros[:, :1], zeros[:, 1:])
        fill = torch.full_like(logits, UNTRAINED_LOGIT)
        masks = torch.cat([fill, logits, fill], dim=1)
        return FrontendOutput(masks=masks, features=features, stride=self.stride)

    def describe(self) -> dict[str, object]:
        """Architecture summary (what a checkpoint must match)."""
        return {
            **super().describe(),
            "frontend": "roadgie",
            "size": self.spec.name,
            "widths": list(self.spec.widths),
            "decoder_convs": self.spec.decoder_convs,
            "dam_kernel": self.spec.dam_kernel,
        }
