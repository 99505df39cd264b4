"""VGG16 blocks conv1 to conv3 (Simonyan & Zisserman 2015) in torch alone, torchvision's layout.

FCtL (paper 001, 3.1.2) extracts the features of the patch and of every context with "Conv1 to
Conv3 of the pretrained VGG16"; the released code cuts ``vgg16.features[:17]`` (up to and
including ``pool3``, stride 8, 256 channels) with ``ceil_mode`` max pooling. This module builds
exactly that slice as an ``nn.Sequential`` named ``features`` whose indices are torchvision's
(convolutions at 0, 2, 5, 7, 10, 12, 14; ReLUs in between; pools at 4, 9, 16), so the
``features.*`` tensors of a user's converted ``vgg16`` state dict load unchanged with
:func:`load_vgg16_weights`. No weights are bundled or downloaded: without a checkpoint the
network starts from random (Kaiming) initialisation.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from linegraph2road.errors import CheckpointError, InputFileError, ParameterError

__all__ = ["VGG16_WIDTHS", "VGG16Conv3", "load_vgg16_weights"]

#: Channels of VGG16's conv1, conv2, conv3 blocks.
VGG16_WIDTHS: tuple[int, int, int] = (64, 128, 256)
#: Convolutions per block (VGG16: 2, 2, 3).
_BLOCK_DEPTHS = (2, 2, 3)


class VGG16Conv3(nn.Module):
    """VGG16 ``features[:17]``: conv1_1 .. pool3 (stride 8), optionally narrowed.

    Parameters
    ----------
    widths : tuple of 3 ints
        Channels of blocks conv1, conv2, conv3 (VGG16: ``(64, 128, 256)``; test/CPU variants use
        narrower ones, which cannot load ImageNet weights).
    in_channels : int
        Input channels (3 for RGB; the refinement network does not use this class).

    Notes
    -----
    :meth:`forward` returns the three pooled block outputs ``(pool1, pool2, pool3)`` at strides
    2, 4, 8 (``ceil_mode`` pooling: an input side ``n`` gives ``ceil(n / 2)``, ...; 508 px ->
    254, 127, 64), which the FCtL decoder uses as skips.
    """

    def __init__(self, *, widths: tuple[int, int, int] = VGG16_WIDTHS, in_channels: int = 3):
        super().__init__()
        if len(widths) != 3 or min(widths) <= 0:
            raise ParameterError(f"VGG widths must be 3 positive ints, got {widths}")
        self.widths = tuple(int(w) for w in widths)
        layers: list[nn.Module] = []
        self._pool_index: list[int] = []
        channels = in_channels
        for width, depth in zip(self.widths, _BLOCK_DEPTHS, strict=True):
            for _ in range(depth):
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
                channels = width
            self._pool_index.append(len(layers))
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        for m in self.features:
            if isinstance(m, nn.Conv2d) and m.bias is not None:  # torchvision's VGG init
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    @property
    def out_channels(self) -> int:
        """Channels of ``pool3`` (256 for VGG16)."""
        return self.widths[-1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pooled outputs of the three blocks.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, in_channels, H, W)`` float, normalised with ImageNet statistics.

        Returns
        -------
        tuple of torch.Tensor
            ``pool1 (B, w1, ceil(H/2), .)``, ``pool2 (B, w2, ceil(H/4), .)``,
            ``pool3 (B, w3, ceil(H/8), .)`` (ceil applied at each pool).
        """
        outs: list[torch.Tensor] = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._pool_index:
                outs.append(x)
        return outs[0], outs[1], outs[2]


def _read_state_dict(source: str | Path | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    if not path.is_file():
        raise InputFileError(f"VGG16 checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, zipfile.BadZipFile) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot read VGG16 checkpoint {path}: {first}") from e
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise CheckpointError(f"{path} is not a VGG16 state dict of tensors")
    return dict(obj)


def load_vgg16_weights(
    vgg: VGG16Conv3, source: str | Path | Mapping[str, torch.Tensor]
) -> list[str]:
    """Copy conv1_1 .. conv3_3 from a torchvision-layout ``vgg16`` state dict into ``vgg``.

    Parameters
    ----------
    vgg : VGG16Conv3
        Target with VGG16 widths ``(64, 128, 256)``; modified in place.
    source : str, Path or mapping
        A ``.pth`` file (``torch.load(weights_only=True)``; a ``{"state_dict": ...}`` wrapper
        and a ``module.`` prefix are accepted) or an in-memory state dict. Only the
        ``features.{0,2,5,7,10,12,14}.{weight,bias}`` tensors are used; conv4/5 and the
        classifier are ignored.

    Returns
    -------
    list of str
        The 14 parameter names loaded (``features.0.weight`` ...).

    Raises
    ------
    InputFileError
        The file does not exist.
    CheckpointError
        Unreadable file, not a state dict, a missing conv tensor or a shape mismatch (e.g. a
        narrowed model, or another network's checkpoint).
    """
    sd = {k.removeprefix("module."): v for k, v in _read_state_dict(source).items()}
    own = vgg.state_dict()
    missing = [k for k in own if k not in sd]
    if missing:
        raise CheckpointError(
            f"not a torchvision vgg16 state dict: {len(missing)} of {len(own)} conv1-3 tensors "
            f"missing, e.g. {missing[0]!r}"
        )
    for key, value in own.items():
        if sd[key].shape != value.shape:
            raise CheckpointError(
                f"VGG16 tensor {key} has shape {tuple(sd[key].shape)} but the model needs "
                f"{tuple(value.shape)} (only full VGG16 widths {VGG16_WIDTHS} load ImageNet "
                "weights)"
            )
    vgg.load_state_dict({k: sd[k].to(v.dtype) for k, v in own.items()})
    return sorted(own)
