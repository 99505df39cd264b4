"""NL-LinkNet (paper 000): a ResNet34 LinkNet with non-local blocks, and its l2r front-end.

Architecture (paper Fig. 3 and the authors' ``networks/nllinknet_location.py``)
--------------------------------------------------------------------------------
* **Encoder**: ResNet34 (``linegraph2road.frontends.backbones.resnet34``: 7x7/2 conv, 3x3/2 max
  pool, stages ``layer1..layer4`` of 3, 4, 6, 3 basic blocks, 64/128/256/512 channels at strides
  4/8/16/32), without the classifier.
* **Non-local blocks** (:class:`NonLocalBlock2d`, embedded Gaussian by default). In ResNet
  naming (``conv2_x..conv5_x`` = ``layer1..layer4``) *NLB3* follows ``conv3_x`` (the ``layer2``
  output, 128 channels, stride 8) and *NLB4* follows ``conv4_x`` (the ``layer3`` output, 256
  channels, stride 16); the paper calls these its "4th and 5th stage" when counting the stem.
  The parameter counts of Table II (+0.033 M for NLB3, +0.132 M for NLB4) are those of blocks on
  128 and 256 channels, confirming the position. As in the authors' NL34 model, a block sits on
  the path into the next stage only; the skip connections carry the stage outputs themselves.
  (The authors' separate NL4 class feeds the skip ``d4 = dec4(e4) + e3`` with the block's output
  instead; we use the NL34 wiring for every variant. No parameter count depends on it.)
* **Optional dilation block** (D-LinkNet's centre, ``dilation_block=True``): four 3x3 convs with
  dilations 1, 2, 4, 8 in series on the 512-channel ``layer4`` output, ReLU after each, their
  outputs summed with the input (9.44 M parameters; Table II's D-LinkNet = baseline + this).
* **Decoder** (LinkNet): four blocks ``1x1 conv (c -> c/4) -> 3x3 transposed conv stride 2 ->
  1x1 conv (c/4 -> c_out)``, each followed by BN + ReLU, with skip additions
  ``d4 = dec4(e4) + e3``, ``d3 = dec3(d4) + e2``, ``d2 = dec2(d3) + e1``, ``d1 = dec1(d2)``;
  then a 4x4 stride-2 transposed conv to 32 channels, ReLU, 3x3 conv, ReLU, 3x3 conv to the
  output channels (logits; the paper's sigmoid lives in the loss).

Front-end mapping
-----------------
The paper's network has one output, the road probability. :class:`NLLinkNetFrontend` with
``mask_channels=3`` (default, for l2r) predicts ``(keypoint, road, overpass)`` with the same
network and a 3-channel last conv; with ``mask_channels=1`` (the paper's model; official
checkpoints) the single output is the ``road`` channel and the two others are filled with the
constant logit :data:`UNTRAINED_LOGIT` (probability ~1e-13, no parameters, no gradient).

The feature map for the topology head is ``d2`` (the second-to-last decoder output, 64 channels
at stride 4, after its skip addition with ``layer1``), projected to ``feature_dim`` channels
(default 128, like SAM's ``D_feature``) with a 1x1 conv.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.backbones import BasicBlock, ResNet
from linegraph2road.frontends.base import FrontendOutput, MaskFrontend
from linegraph2road.frontends.nl_linknet.nonlocal_block import PAIRWISE_FUNCTIONS, NonLocalBlock2d

__all__ = ["UNTRAINED_LOGIT", "NLLinkNet", "NLLinkNetFrontend", "NLLinkNetSpec"]

#: Logit of the mask channels a ``mask_channels=1`` model does not predict.
UNTRAINED_LOGIT = -30.0
#: The authors' input scaling ``x / 255 * 3.2 - 1.6`` as mean / std on the 0-255 scale.
NL_LINKNET_MEAN = (127.5, 127.5, 127.5)
NL_LINKNET_STD = (255.0 / 3.2,) * 3
_RESNET34_WIDTHS = (64, 128, 256, 512)


@dataclass(frozen=True)
class NLLinkNetSpec:
    """Hyper-parameters of one NL-LinkNet size (instances in :data:`NL_LINKNET_SIZES`).

    Attributes
    ----------
    name : str
        Registry size name (``"nl34"``, ``"tiny"``...).
    nonlocal_blocks : tuple of int
        Which of NLB3 / NLB4 to use: ``(3, 4)`` (NL34, default), ``(3,)``, ``(4,)`` or ``()``.
    pairwise : str
        ``"embedded_gaussian"`` (default), ``"gaussian"`` or ``"dot_product"`` (Table III).
    dilation_block : bool
        Add D-LinkNet's dilation block at the centre (default False).
    widths : tuple of 4 int
        Encoder stage channels (ResNet34: 64, 128, 256, 512; narrower for the CPU sizes).
    layers : tuple of 4 int
        Basic blocks per stage (ResNet34: 3, 4, 6, 3).
    final_channels : int
        Channels of the final transposed conv and 3x3 conv (paper: 32).
    feature_dim : int
        ``D`` of the front-end's feature map (default 128).
    """

    name: str
    nonlocal_blocks: tuple[int, ...] = (3, 4)
    pairwise: str = "embedded_gaussian"
    dilation_block: bool = False
    widths: tuple[int, int, int, int] = _RESNET34_WIDTHS
    layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    final_channels: int = 32
    feature_dim: int = 128

    def __post_init__(self) -> None:
        if not set(self.nonlocal_blocks) <= {3, 4}:
            raise ParameterError(f"nonlocal_blocks must be a subset of (3, 4), got {self}")
        if self.pairwise not in PAIRWISE_FUNCTIONS:
            raise ParameterError(f"pairwise must be one of {PAIRWISE_FUNCTIONS}, got {self}")
        if (
            min(self.widths) < 4
            or min(self.layers) < 1
            or min(self.final_channels, self.feature_dim) < 1
        ):
            raise ParameterError(f"widths >= 4, layers >= 1 and channels >= 1 needed, got {self}")


class _NarrowResNet(nn.Module):
    """A ResNet trunk with other stage widths, laid out like :class:`ResNet` (for CPU sizes)."""

    def __init__(self, widths: tuple[int, ...], layers: tuple[int, ...]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        previous, stages = widths[0], []
        for i, (n_blocks, width) in enumerate(zip(layers, widths, strict=True)):
            blocks = [BasicBlock(previous, width, stride=1 if i == 0 else 2)]
            blocks += [BasicBlock(width, width) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            previous = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))


class DecoderBlock(nn.Module):
    """LinkNet decoder block: 1x1 conv, 3x3 transposed conv (stride 2), 1x1 conv, BN+ReLU each.

    ``(B, c_in, H, W) -> (B, c_out, 2H, 2W)`` with ``c_in / 4`` inner channels.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = in_channels // 4
        self.conv1 = nn.Conv2d(in_channels, mid, 1)
        self.norm1 = nn.BatchNorm2d(mid)
        self.deconv2 = nn.ConvTranspose2d(mid, mid, 3, stride=2, padding=1, output_padding=1)
        self.norm2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1)
        self.norm3 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm1(self.conv1(x)))
        x = F.relu(self.norm2(self.deconv2(x)))
        return F.relu(self.norm3(self.conv3(x)))


class DilationBlock(nn.Module):
    """D-LinkNet34's centre: 3x3 convs with dilation 1, 2, 4, 8 in series, outputs summed.

    ``y = x + sum_k a_k`` with ``a_k = ReLU(conv_k(a_{k-1}))``, ``a_0 = x``; biases start at zero.
    """

    def __init__(self, channels: int, *, dilations: tuple[int, ...] = (1, 2, 4, 8)) -> None:
        super().__init__()
        self.dilations = dilations
        for i, d in enumerate(dilations, start=1):
            conv = nn.Conv2d(channels, channels, 3, dilation=d, padding=d)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
            self.add_module(f"dilate{i}", conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, a = x, x
        for i in range(1, len(self.dilations) + 1):
            a = F.relu(getattr(self, f"dilate{i}")(a))
            out = out + a
        return out


class NLLinkNet(nn.Module):
    """The paper's network (see the module docstring); input sides must be multiples of 32.

    Parameters
    ----------
    spec : NLLinkNetSpec
        Size and variant.
    out_channels : int
        Output logit channels (paper: 1, the road mask).

    Module names follow the authors' code where they can (``decoder4``, ``finaldeconv1``...), so
    their checkpoints map onto this one by renaming the encoder and the non-local blocks.
    """

    def __init__(self, *, spec: NLLinkNetSpec, out_channels: int = 1) -> None:
        super().__init__()
        self.spec = spec
        w = spec.widths
        if w == _RESNET34_WIDTHS:
            self.encoder: ResNet | _NarrowResNet = ResNet(spec.layers)
        else:
            self.encoder = _NarrowResNet(w, spec.layers)
        self.nonlocal3 = (
            NonLocalBlock2d(w[1], pairwise=spec.pairwise) if 3 in spec.nonlocal_blocks else None
        )
        self.nonlocal4 = (
            NonLocalBlock2d(w[2], pairwise=spec.pairwise) if 4 in spec.nonlocal_blocks else None
        )
        self.dblock = DilationBlock(w[3]) if spec.dilation_block else None
        self.decoder4 = DecoderBlock(w[3], w[2])
        self.decoder3 = DecoderBlock(w[2], w[1])
        self.decoder2 = DecoderBlock(w[1], w[0])
        self.decoder1 = DecoderBlock(w[0], w[0])
        self.finaldeconv1 = nn.ConvTranspose2d(w[0], spec.final_channels, 4, stride=2, padding=1)
        self.finalconv2 = nn.Conv2d(spec.final_channels, spec.final_channels, 3, padding=1)
        self.finalconv3 = nn.Conv2d(spec.final_channels, out_channels, 3, padding=1)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the stride-4 decoder map.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, 3, H, W)`` float, normalised; ``H``, ``W`` multiples of 32.

        Returns
        -------
        (torch.Tensor, torch.Tensor)
            ``(B, out_channels, H, W)`` logits and ``d2``: ``(B, widths[0], H / 4, W / 4)``.
        """
        enc = self.encoder
        e1 = enc.layer1(enc.stem(x))
        e2 = enc.layer2(e1)
        e3 = enc.layer3(e2 if self.nonlocal3 is None else self.nonlocal3(e2))
        e4 = enc.layer4(e3 if self.nonlocal4 is None else self.nonlocal4(e3))
        if self.dblock is not None:
            e4 = self.dblock(e4)
        d3 = self.decoder3(self.decoder4(e4) + e3) + e2
        d2 = self.decoder2(d3) + e1
        out = F.relu(self.finaldeconv1(self.decoder1(d2)))
        return self.finalconv3(F.relu(self.finalconv2(out))), d2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` normalised -> ``(B, out_channels, H, W)`` logits."""
        return self.forward_with_features(x)[0]


class NLLinkNetFrontend(MaskFrontend):
    """NL-LinkNet as an l2r mask front-end (see the module docstring for the mapping).

    Parameters
    ----------
    spec : NLLinkNetSpec
        Size and variant (``NL_LINKNET_SIZES["nl34"]`` is the paper's model).
    window_size : int
        Default/training window side in pixels (default 1024, the paper's crop), a multiple of 32.
        Being fully convolutional, ``forward`` also takes any other square side that is a
        multiple of 32 (multi-scale test-time augmentation uses this).
    mask_channels : int
        3 (default): keypoint, road and overpass predicted. 1: the paper's single road output,
        the two other channels set to :data:`UNTRAINED_LOGIT`.
    """

    def __init__(
        self, *, spec: NLLinkNetSpec, window_size: int = 1024, mask_channels: int = 3
    ) -> None:
        super().__init__()
        if window_size <= 0 or window_size % 32:
            raise ParameterError(
                f"window_size must be a positive multiple of 32 px, got {window_size}"
            )
        if mask_channels not in (1, len(self.mask_names)):
            raise ParameterError(f"mask_channels must be 1 (road only) or 3, got {mask_channels}")
        self.spec, self.mask_channels = spec, mask_channels
        self.trained_channels = (1,) if mask_channels == 1 else (0, 1, 2)
        self.window_size, self.stride, self.feature_dim = int(window_size), 4, spec.feature_dim
        self._set_normalization(mean=NL_LINKNET_MEAN, std=NL_LINKNET_STD)
        self.net = NLLinkNet(spec=spec, out_channels=mask_channels)
        self.feature_proj = nn.Conv2d(spec.widths[0], spec.feature_dim, 1)
        self.encoder_pretrained = False

    def check_input(self, image: torch.Tensor) -> None:
        """Raise ``ParameterError`` unless ``image`` is ``(B, 3, S, S)`` float, ``S % 32 == 0``."""
        if (
            image.ndim != 4
            or image.shape[1] != 3
            or image.shape[2] != image.shape[3]
            or image.shape[2] % 32
            or image.shape[2] == 0
        ):
            raise ParameterError(
                f"NL-LinkNet takes square (B, 3, S, S) windows with S a multiple of 32 "
                f"(default {self.window_size}), got {tuple(image.shape)}"
            )
        if not image.dtype.is_floating_point:
            raise ParameterError(
                f"forward takes normalised float images, got {image.dtype}; call normalize() first"
            )

    def forward(self, image: torch.Tensor) -> FrontendOutput:
        """Masks ``(B, 3, S, S)`` logits and features ``(B, feature_dim, S / 4, S / 4)``.

        Parameters
        ----------
        image : torch.Tensor
            ``(B, 3, S, S)`` float32 from :meth:`normalize`, ``S`` a multiple of 32.
        """
        self.check_input(image)
        logits, d2 = self.net.forward_with_features(image)
        if self.mask_channels == 1:
            fill = torch.full_like(logits, UNTRAINED_LOGIT)
            logits = torch.cat([fill, logits, fill], dim=1)
        return FrontendOutput(masks=logits, features=self.feature_proj(d2), stride=self.stride)

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """The ResNet encoder's parameters once pre-trained weights were loaded; else none.

        The paper fine-tunes everything at one learning rate (``recipe.make_optimizer``); this
        list serves l2r's trainer, which gives pre-trained backbones a reduced rate.
        """
        if not self.encoder_pretrained:
            return iter(())
        return (p for p in self.net.encoder.parameters() if p.requires_grad)

    def describe(self) -> dict[str, object]:
        """Architecture summary: registry name, size, variant (what a checkpoint must match)."""
        spec = asdict(self.spec)
        return {
            **super().describe(),
            "frontend": "nl-linknet",
            "size": self.spec.name,
            "mask_channels": self.mask_channels,
            "nonlocal_blocks": list(spec["nonlocal_blocks"]),
            "pairwise": self.spec.pairwise,
            "dilation_block": self.spec.dilation_block,
        }

    def load_encoder_weights(self, path: str | Path) -> list[str]:
        """Load a torchvision-layout ResNet34 ``state_dict`` (e.g. ImageNet) into the encoder.

        Returns the loaded tensor names; see :func:`~.checkpoint.load_encoder_weights`.
        """
        from linegraph2road.frontends.nl_linknet.checkpoint import load_encoder_weights

        return load_encoder_weights(self, path)

    def load_checkpoint(self, path: str | Path) -> str:
        """Load a full NL-LinkNet checkpoint (ours or the authors'); returns its layout name.

        See :func:`~.checkpoint.load_nl_linknet_checkpoint`.
        """
        from linegraph2road.frontends.nl_linknet.checkpoint import load_nl_linknet_checkpoint

        return load_nl_linknet_checkpoint(self, path)
