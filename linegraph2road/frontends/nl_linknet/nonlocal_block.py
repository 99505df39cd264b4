"""The 2-D non-local block of NL-LinkNet (paper 000, Sec. II-B/C; Wang et al. 2018).

For an input ``x`` of ``c`` channels at ``N = H W`` positions the block computes

.. math::

    y_i = \\frac{1}{C(x)} \\sum_j f(x_i, x_j)\\, g(x_j), \\qquad z_i = W_z y_i + x_i

with ``g(x) = W_g x`` (a 1x1 conv to ``c / 2`` inner channels, paper: ``c_2 = c_1 / 2``) and one
of the three pairwise functions of the paper's Table III:

=====================  =======================================  ==============================
``pairwise``           ``f(x_i, x_j)``                          ``C(x)``
=====================  =======================================  ==============================
``embedded_gaussian``  ``exp(theta(x_i)^T phi(x_j))`` (eq. 3)   ``sum_j f`` (softmax over j)
``gaussian``           ``exp(x_i^T x_j)`` (eq. 4)               ``sum_j f`` (softmax over j)
``dot_product``        ``theta(x_i)^T phi(x_j)`` (eq. 2)        ``N'`` (number of positions j)
=====================  =======================================  ==============================

``theta`` and ``phi`` (the paper's ``u`` and ``v``) are 1x1 convs to ``c / 2`` channels; the
Gaussian version has neither. ``W_z`` is a 1x1 conv back to ``c`` channels followed by batch norm
whose weight and bias start at zero, so the block is exactly the identity at initialisation (the
paper: "initializing weight matrix as zero"; the authors' code zeroes the BN, which the paper's
parameter counts include: 33 344 parameters at 128 channels, 132 224 at 256).

Like the authors' code (``sub_sample=True``), the keys ``phi(x_j)`` and values ``g(x_j)`` are
2x2 max-pooled, so the ``j`` sum runs over ``N' = N / 4`` positions; this changes no parameter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from linegraph2road.errors import ParameterError

__all__ = ["PAIRWISE_FUNCTIONS", "NonLocalBlock2d"]

#: Pairwise functions of the paper's Table III.
PAIRWISE_FUNCTIONS: tuple[str, ...] = ("embedded_gaussian", "gaussian", "dot_product")


class NonLocalBlock2d(nn.Module):
    """Residual non-local block ``z = BN(W_z y) + x`` (see the module docstring).

    Parameters
    ----------
    channels : int
        ``c``, input and output channels.
    pairwise : str
        ``"embedded_gaussian"`` (default, the paper's best), ``"gaussian"`` or ``"dot_product"``.
    inner_channels : int or None
        Channels of ``theta``, ``phi``, ``g`` (default ``max(channels // 2, 1)``).
    sub_sample : bool
        2x2 max-pool keys and values (default True, as the authors' code).

    Notes
    -----
    Memory grows as ``B N N' = B (H W)^2 / 4`` floats: at 1024 px input and stride 8 (the NLB3
    position) that is 67 M attention weights per image.
    """

    def __init__(
        self,
        channels: int,
        *,
        pairwise: str = "embedded_gaussian",
        inner_channels: int | None = None,
        sub_sample: bool = True,
    ) -> None:
        super().__init__()
        if pairwise not in PAIRWISE_FUNCTIONS:
            raise ParameterError(
                f"unknown pairwise function {pairwise!r}; choose one of {PAIRWISE_FUNCTIONS}"
            )
        if channels < 1:
            raise ParameterError(f"channels must be >= 1, got {channels}")
        inner = max(channels // 2, 1) if inner_channels is None else int(inner_channels)
        if inner < 1:
            raise ParameterError(f"inner_channels must be >= 1, got {inner_channels}")
        self.channels, self.inner_channels = channels, inner
        self.pairwise, self.sub_sample = pairwise, sub_sample
        self.g = nn.Conv2d(channels, inner, 1)
        self.theta: nn.Conv2d | None = None
        self.phi: nn.Conv2d | None = None
        if pairwise != "gaussian":
            self.theta = nn.Conv2d(channels, inner, 1)
            self.phi = nn.Conv2d(channels, inner, 1)
        self.out_conv = nn.Conv2d(inner, channels, 1)
        self.out_bn = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.out_bn.weight)
        nn.init.zeros_(self.out_bn.bias)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, 2) if self.sub_sample else x

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised pairwise weights ``f(x_i, x_j) / C(x)``.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, c, H, W)`` float.

        Returns
        -------
        torch.Tensor
            ``(B, N, N')`` float, ``N = H W`` queries (row-major), ``N'`` keys (``H W / 4``
            with ``sub_sample``, row-major over the pooled grid).
        """
        b = x.shape[0]
        if self.theta is None or self.phi is None:  # Gaussian: the raw features
            query = x.reshape(b, self.channels, -1)
            key = self._pool(x).reshape(b, self.channels, -1)
        else:
            query = self.theta(x).reshape(b, self.inner_channels, -1)
            key = self._pool(self.phi(x)).reshape(b, self.inner_channels, -1)
        f = torch.bmm(query.transpose(1, 2), key)
        if self.pairwise == "dot_product":
            return f / f.shape[-1]
        return torch.softmax(f, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, c, H, W) -> (B, c, H, W)``: ``x`` plus the non-local response.

        With ``sub_sample``, ``H`` and ``W`` should be even (odd sides lose their last row or
        column as keys, as in the authors' code).
        """
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ParameterError(
                f"non-local block takes (B, {self.channels}, H, W), got {tuple(x.shape)}"
            )
        b, _, h, w = x.shape
        value = self._pool(self.g(x)).reshape(b, self.inner_channels, -1)
        y = torch.bmm(self.attention(x), value.transpose(1, 2))  # (B, N, inner)
        y = y.transpose(1, 2).reshape(b, self.inner_channels, h, w)
        return x + self.out_bn(self.out_conv(y))
