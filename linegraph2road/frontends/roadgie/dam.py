"""The Directional Aggregation Module (RoadGIE 4.1, eq. 2-3).

For a decoder feature map ``F (B, C, H, W)`` and each direction ``d`` of
``D = {vertical, horizontal, diagonal, anti-diagonal}``, a per-channel (depthwise) 1-D
convolution of odd length ``k`` samples ``F`` along ``d``::

    Y_d[c, y, x] = b_d[c] + sum_{i = -r..r} w_d[c, i] * F[c, y + i * dy, x + i * dx]

with ``r = (k - 1) / 2`` and offsets ``(dx, dy)`` = ``(0, 1)`` vertical, ``(1, 0)`` horizontal,
``(1, 1)`` diagonal (top-left to bottom-right) and ``(1, -1)`` anti-diagonal (bottom-left to
top-right), zero padding outside the map. The four responses are concatenated (``4C``
channels) and a 1x1 convolution maps them to the output logits; RoadGIE's sigmoid (eq. 3) is
applied by the loss and at inference, on the logits this module returns.

Kernel length: the paper's equations were lost in extraction and its text gives no length; we
use ``k = 9``, the strip length of CoANet's strip convolutions (Mei et al., TIP 2021), one of the
three works the paper says it follows. The vertical and horizontal convolutions are ``(k, 1)``
and ``(1, k)`` depthwise convolutions; the diagonal ones are ``k x k`` depthwise convolutions
whose weights live on the (anti-)diagonal only (``torch.diag_embed`` of the ``k`` learnt taps),
so each direction has exactly ``k`` weights and one bias per channel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from linegraph2road.errors import ParameterError

__all__ = ["DIRECTIONS", "DirectionalAggregation"]

#: Directions in the order of the concatenated responses, with their ``(dx, dy)`` offsets.
DIRECTIONS: dict[str, tuple[int, int]] = {
    "vertical": (0, 1),
    "horizontal": (1, 0),
    "diagonal": (1, 1),
    "anti_diagonal": (1, -1),
}


class DirectionalAggregation(nn.Module):
    """DAM: four directional depthwise 1-D convolutions, concatenated, then a 1x1 convolution.

    Parameters
    ----------
    channels : int
        ``C``, channels of the decoder feature map.
    out_channels : int
        Output channels of the 1x1 convolution (1: the road logit).
    kernel_size : int
        Odd 1-D kernel length ``k`` (default 9, see the module docstring).
    """

    def __init__(self, channels: int, out_channels: int = 1, *, kernel_size: int = 9) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ParameterError(f"kernel_size must be a positive odd number, got {kernel_size}")
        if channels < 1 or out_channels < 1:
            raise ParameterError(f"channels must be >= 1, got {channels}, {out_channels}")
        self.channels, self.kernel_size = int(channels), int(kernel_size)
        k = self.kernel_size
        self.weight = nn.Parameter(torch.empty(len(DIRECTIONS), channels, k))
        self.bias = nn.Parameter(torch.zeros(len(DIRECTIONS), channels))
        nn.init.normal_(self.weight, std=1.0 / k**0.5)
        self.fuse = nn.Conv2d(len(DIRECTIONS) * channels, out_channels, 1)

    def directional(self, x: torch.Tensor) -> torch.Tensor:
        """The four responses ``Y_d`` concatenated: ``(B, C, H, W) -> (B, 4C, H, W)``.

        Channel block ``i`` (channels ``i C .. (i + 1) C - 1``) is direction ``i`` of
        :data:`DIRECTIONS`.
        """
        c, k = self.channels, self.kernel_size
        r = k // 2
        w = self.weight.to(x.dtype)
        b = self.bias.to(x.dtype)
        vertical = F.conv2d(x, w[0].view(c, 1, k, 1), b[0], padding=(r, 0), groups=c)
        horizontal = F.conv2d(x, w[1].view(c, 1, 1, k), b[1], padding=(0, r), groups=c)
        # Tap i (offset i - r) of the diagonal sits at (row i, col i) of a k x k kernel; of the
        # anti-diagonal at (row k - 1 - i, col i): offset (dx, dy) = (i - r, r - i).
        diag = torch.diag_embed(w[2]).unsqueeze(1)
        anti = torch.diag_embed(w[3]).flip(-2).unsqueeze(1)
        diagonal = F.conv2d(x, diag, b[2], padding=r, groups=c)
        anti_diagonal = F.conv2d(x, anti, b[3], padding=r, groups=c)
        return torch.cat([vertical, horizontal, diagonal, anti_diagonal], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` decoder features -> ``(B, out_channels, H, W)`` logits."""
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ParameterError(
                f"DAM takes (B, {self.channels}, H, W) features, got {tuple(x.shape)}"
            )
        return self.fuse(self.directional(x))
