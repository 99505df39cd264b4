"""The location embedding network F_e (paper 003, section 2.1).

An autoencoder "with a similar architecture than the segmentation network" (our
:class:`~linegraph2road.frontends.experts.unet.UNetExpert`) but with "three output layers" (an
RGB reconstruction) and a ResNet34 encoder. The decoder has **no skip connections**: the paper
relies on "the bottleneck structure in the middle" to force a compressed representation, which
skips would bypass. On the bottleneck (the stride-32 ResNet output, 512 channels) sit a 5x5
average pooling (PyTorch's default stride = kernel, so a 512 px input gives a 16x16 -> 3x3 grid)
and two fully connected layers (``512 * 3 * 3 -> 2048 -> 2048``, ReLU between) whose output is
the location embedding (2048-d in the paper).

The pooled grid size, hence the first FC layer, depends on the input size: the network takes a
fixed ``input_size`` (default 512, the paper's patch size); the experts router resizes other
inputs to it. Losses (SmoothL1 reconstruction + cosine triplet margin) live in
:mod:`~linegraph2road.frontends.experts.recipe`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.backbones import ResNet
from linegraph2road.frontends.experts.unet import DecoderBlock

__all__ = ["PIXEL_MEAN", "PIXEL_STD", "EmbeddingNet", "EmbeddingSpec", "normalize_images"]

#: ImageNet statistics (0-255 scale), the usual ones for ResNet encoders.
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB on the 0-255 scale (uint8 or float) -> float32 ``(x - mean) / std``."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ParameterError(f"images must be (B, 3, H, W) RGB, got {tuple(images.shape)}")
    mean = torch.tensor(PIXEL_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() - mean) / std


@dataclass(frozen=True)
class EmbeddingSpec:
    """Hyper-parameters of the embedding network.

    Attributes
    ----------
    layers : tuple of 4 int
        ResNet blocks per stage (default ``(3, 4, 6, 3)``: ResNet34, as in the paper).
    input_size : int
        Side in pixels of the (square) input; a multiple of 32 (default 512).
    pool : int
        Average-pooling kernel (= stride) on the bottleneck (default 5, the paper's 5x5);
        ``input_size / 32 >= pool``.
    hidden_dim : int
        Width of the first FC layer (default 2048; the paper gives only the output size).
    embedding_dim : int
        Embedding size (default 2048, the paper's).
    decoder_channels : tuple of 5 int
        Reconstruction decoder widths at strides 16, 8, 4, 2, 1 (default the expert U-Net's).
    """

    layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    input_size: int = 512
    pool: int = 5
    hidden_dim: int = 2048
    embedding_dim: int = 2048
    decoder_channels: tuple[int, int, int, int, int] = (256, 128, 64, 32, 16)

    def __post_init__(self) -> None:
        if self.input_size <= 0 or self.input_size % 32:
            raise ParameterError(f"input_size must be a multiple of 32, got {self.input_size}")
        if not 1 <= self.pool <= self.input_size // 32:
            raise ParameterError(
                f"pool {self.pool} does not fit the {self.input_size // 32}x"
                f"{self.input_size // 32} bottleneck of a {self.input_size} px input"
            )
        if min(self.hidden_dim, self.embedding_dim) < 1:
            raise ParameterError("hidden_dim and embedding_dim must be >= 1")

    @property
    def pooled_cells(self) -> int:
        """Cells of the pooled bottleneck grid (9 for 512 px and pool 5)."""
        return (self.input_size // 32 // self.pool) ** 2


class EmbeddingNet(nn.Module):
    """Autoencoder + embedding head (see the module docstring).

    Parameters
    ----------
    spec : EmbeddingSpec
        Sizes (default: the paper's ResNet34, 5x5 pooling, 2048-d embedding at 512 px).
    """

    def __init__(self, *, spec: EmbeddingSpec | None = None) -> None:
        super().__init__()
        self.spec = spec = spec or EmbeddingSpec()
        self.encoder = ResNet(spec.layers)
        blocks, previous = [], 512
        for width in spec.decoder_channels:
            blocks.append(DecoderBlock(previous, 0, width))
            previous = width
        self.decoder = nn.ModuleList(blocks)
        self.reconstruction = nn.Conv2d(previous, 3, 1)
        self.pool = nn.AvgPool2d(spec.pool)
        self.fc = nn.Sequential(
            nn.Linear(512 * spec.pooled_cells, spec.hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(spec.hidden_dim, spec.embedding_dim),
        )

    def _check(self, x: torch.Tensor) -> None:
        s = self.spec.input_size
        if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != (s, s):
            raise ParameterError(
                f"the embedding network takes (B, 3, {s}, {s}) images, got {tuple(x.shape)}"
            )

    def _embed(self, bottleneck: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(bottleneck), 1))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(B, embedding_dim)`` of normalised ``(B, 3, S, S)`` images (no decoder)."""
        self._check(x)
        return self._embed(self.encoder(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction and embedding.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, 3, S, S)`` float, normalised with :func:`normalize_images`,
            ``S = spec.input_size``.

        Returns
        -------
        reconstruction : torch.Tensor
            ``(B, 3, S, S)``: the autoencoder's estimate of ``x`` (normalised scale).
        embedding : torch.Tensor
            ``(B, embedding_dim)``.
        """
        self._check(x)
        bottleneck = self.encoder(x)
        y = bottleneck
        for block in self.decoder:
            y = block(y)
        return self.reconstruction(y), self._embed(bottleneck)
