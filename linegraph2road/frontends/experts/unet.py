"""The expert segmenter: a U-Net with a ResNet encoder (paper 003, section 2.2).

The paper's experts are U-Nets whose encoder is the convolutional part of an ImageNet-pre-trained
ResNet101, with a final 1x1 convolution to one output channel and a sigmoid. No pre-trained
weights can be had here and our torch-only backbone is the basic-block ResNet of
:mod:`linegraph2road.frontends.backbones`, so the default expert uses a **ResNet34** encoder
(the trunk the paper uses for its embedding network) and trains from scratch; the number of
blocks per stage is a parameter (``(1, 1, 1, 1)`` for the tiny test variant).

Layout (input ``(B, 3, H, W)``, ``H, W`` multiples of 32):

* encoder: ResNet stem conv (stride 2, 64 ch, kept as a skip) -> max pool -> stages 1-4
  (strides 4, 8, 16, 32; 64, 128, 256, 512 channels);
* decoder: five :class:`DecoderBlock` s (x2 nearest upsampling, concatenation with the encoder
  feature of the same stride when there is one, two 3x3 conv + BN + ReLU), back to stride 1;
* head: 1x1 conv to ``out_channels`` logits (the sigmoid is applied by the loss / the caller);
* features for the topology head: the decoder output at ``feature_stride`` (default 4),
  projected by a 1x1 conv to ``feature_dim`` (default 128) channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.backbones import ResNet

__all__ = ["DecoderBlock", "UNetExpert", "UNetSpec"]

#: Output stride of each of the five decoder blocks.
DECODER_STRIDES = (16, 8, 4, 2, 1)


@dataclass(frozen=True)
class UNetSpec:
    """Hyper-parameters of an expert U-Net.

    Attributes
    ----------
    layers : tuple of 4 int
        ResNet blocks per encoder stage (default ``(3, 4, 6, 3)``: ResNet34).
    decoder_channels : tuple of 5 int
        Output channels of the decoder blocks at strides 16, 8, 4, 2, 1
        (default ``(256, 128, 64, 32, 16)``).
    out_channels : int
        Mask logits: 3 (keypoint, road, overpass: l2r's labels, the default) or 1 (road alone,
        the paper's single binary task).
    feature_dim : int
        ``D`` of the feature map for the topology head (default 128, the paper's D_feature).
    feature_stride : int
        Decoder stride the features are taken at: one of 16, 8, 4, 2, 1 (default 4).
    """

    layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    decoder_channels: tuple[int, int, int, int, int] = (256, 128, 64, 32, 16)
    out_channels: int = 3
    feature_dim: int = 128
    feature_stride: int = 4

    def __post_init__(self) -> None:
        if self.out_channels not in (1, 3):
            raise ParameterError(f"out_channels must be 1 (road) or 3, got {self.out_channels}")
        if self.feature_stride not in DECODER_STRIDES:
            raise ParameterError(
                f"feature_stride must be one of {DECODER_STRIDES}, got {self.feature_stride}"
            )
        if len(self.layers) != 4 or min(self.layers) < 1 or len(self.decoder_channels) != 5:
            raise ParameterError(
                f"need 4 stages of >= 1 block and 5 decoder widths, got {self.layers}, "
                f"{self.decoder_channels}"
            )


class DecoderBlock(nn.Module):
    """x2 nearest upsampling, optional skip concatenation, two 3x3 conv + BN + ReLU.

    Parameters
    ----------
    in_channels : int
        Channels of the input (coarser) feature map.
    skip_channels : int
        Channels of the skip feature concatenated after upsampling (0 = no skip).
    out_channels : int
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.skip_channels = skip_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels + skip_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C_in, h, w)`` (+ skip ``(B, C_skip, 2h, 2w)``) -> ``(B, C_out, 2h, 2w)``."""
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv(x)


class UNetExpert(nn.Module):
    """One expert segmenter (see the module docstring for the layout).

    Parameters
    ----------
    spec : UNetSpec
        Sizes (default: ResNet34 encoder, 3 outputs, 128-d features at stride 4).
    """

    def __init__(self, *, spec: UNetSpec | None = None) -> None:
        super().__init__()
        self.spec = spec = spec or UNetSpec()
        self.encoder = ResNet(spec.layers)
        enc = (512, 256, 128, 64, 64)  # channels of e4, then the skips e3, e2, e1, stem
        skips = (*enc[1:], 0)  # the last block (stride 1) has no encoder feature to join
        blocks, previous = [], enc[0]
        for skip, width in zip(skips, spec.decoder_channels, strict=True):
            blocks.append(DecoderBlock(previous, skip, width))
            previous = width
        self.decoder = nn.ModuleList(blocks)
        self.head = nn.Conv2d(spec.decoder_channels[-1], spec.out_channels, 1)
        self._feature_block = DECODER_STRIDES.index(spec.feature_stride)
        self.feature_proj = nn.Conv2d(
            spec.decoder_channels[self._feature_block], spec.feature_dim, 1
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask logits and features of normalised images.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, 3, H, W)`` float, ``H`` and ``W`` multiples of 32.

        Returns
        -------
        logits : torch.Tensor
            ``(B, out_channels, H, W)``.
        features : torch.Tensor
            ``(B, feature_dim, H / feature_stride, W / feature_stride)``.
        """
        if x.ndim != 4 or x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ParameterError(f"U-Net input must be (B, C, H, W), H, W % 32 == 0: {x.shape}")
        r = self.encoder
        stem = r.relu(r.bn1(r.conv1(x)))  # stride 2
        e1 = r.layer1(r.maxpool(stem))
        e2 = r.layer2(e1)
        e3 = r.layer3(e2)
        y = r.layer4(e3)
        features = y
        for i, (block, skip) in enumerate(zip(self.decoder, (e3, e2, e1, stem, None), strict=True)):
            y = block(y, skip)
            if i == self._feature_block:
                features = y
        return self.head(y), self.feature_proj(features)
