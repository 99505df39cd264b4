"""The mask front-end interface: what every segmentation model plugs in as.

Every front-end (SAM, and later NL-LinkNet, FCtL, location-specific experts) is a
:class:`MaskFrontend`: a :class:`torch.nn.Module` that maps one batch of image windows to

* ``masks``: ``(B, K, H, W)`` float logits, one channel per name in :attr:`MaskFrontend.mask_names`
  (``("keypoint", "road", "overpass")``), at the input resolution; ``sigmoid`` gives the
  probability maps that coupled NMS consumes;
* ``features``: ``(B, D, H / s, W / s)`` float feature map with ``D =`` :attr:`feature_dim` and
  ``s =`` :attr:`stride`, from which the topology head samples candidate-edge features. Feature
  cell ``(i, j)`` (row, col) covers input pixels ``[j s, (j + 1) s) x [i s, (i + 1) s)``; its
  centre is the image point ``(x, y) = ((j + 0.5) s, (i + 0.5) s)``.

Contract
--------
* ``forward`` takes *normalised* float32 images ``(B, 3, H, W)``, RGB, with ``H = W =``
  :attr:`window_size` (front-ends that accept other sizes say so). Turn ``uint8`` (or 0-255
  float) images into that with :meth:`MaskFrontend.normalize`, which uses the front-end's own
  mean/std; never normalise by hand.
* ``forward`` has no side effects and does not switch train/eval mode.
* :attr:`weights_description` says which weights it runs with (``"random init (no
  checkpoint)"``, ``"SAM ViT-B from sam_vit_b_01ec64.pth"``,
  ``"l2r checkpoint model.safetensors"``); whatever loads weights updates it; the CLI prints it.
* :meth:`encoder_parameters` lists the pre-trained backbone parameters that the optimiser gives a
  reduced learning rate (paper: x0.05); every other trainable parameter gets the base rate.
* Parameters that can never receive a gradient have ``requires_grad=False`` (so PyTorch DDP works
  without ``find_unused_parameters``).

A new front-end subclasses :class:`MaskFrontend`, sets the class attributes, implements
``forward`` returning :class:`FrontendOutput`, registers a builder in
:mod:`linegraph2road.frontends.registry`, and passes ``tests/frontends/test_base.py``'s contract
checks.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch
from torch import nn

from linegraph2road.errors import CheckpointError, ParameterError

__all__ = [
    "ABSENT_LOGIT",
    "MASK_NAMES",
    "VARIANTS",
    "CheckpointError",
    "FrontendOutput",
    "MaskFrontend",
    "variant_of",
]

#: Output channels of every front-end, in order.
MASK_NAMES: tuple[str, ...] = ("keypoint", "road", "overpass")
#: Logit of a mask channel a front-end does not predict (probability ~2e-9: "none"): the
#: overpass channel of the non-overpass variant, keypoint and overpass of road-only models.
ABSENT_LOGIT = -20.0
#: Model variants by the mask channels they predict (:attr:`MaskFrontend.trained_channels`):
#: the paper's "Ours w/ Overpass", "Ours" (no overpass head; Tables 1-3) and the segmentation
#: papers' road-only models.
VARIANTS: dict[tuple[int, ...], str] = {
    (0, 1, 2): "overpass",
    (0, 1): "no-overpass",
    (1,): "road-only",
}


def variant_of(trained_channels: tuple[int, ...] | list[int]) -> str:
    """The :data:`VARIANTS` name of a front-end's ``trained_channels``."""
    return VARIANTS.get(tuple(trained_channels), "channels " + ",".join(map(str, trained_channels)))


class FrontendOutput(NamedTuple):
    """What :meth:`MaskFrontend.forward` returns.

    Attributes
    ----------
    masks : torch.Tensor
        ``(B, K, H, W)`` float logits, channels in :data:`MASK_NAMES` order, input resolution.
    features : torch.Tensor
        ``(B, D, H / stride, W / stride)`` float feature map for candidate-edge features.
    stride : int
        Input pixels per feature cell along each axis.
    """

    masks: torch.Tensor
    features: torch.Tensor
    stride: int


class MaskFrontend(nn.Module, abc.ABC):
    """Abstract base class of every mask front-end (see the module docstring for the contract).

    Subclasses set, in ``__init__``: :attr:`feature_dim`, :attr:`stride`, :attr:`window_size`,
    :attr:`pixel_mean` / :attr:`pixel_std` (via :meth:`_set_normalization`) and
    :attr:`weights_description`.

    Attributes
    ----------
    mask_names : tuple of str
        ``("keypoint", "road", "overpass")``: the order of the ``masks`` channels.
    feature_dim : int
        ``D``, channels of the feature map.
    stride : int
        Input pixels per feature cell.
    window_size : int
        Side in pixels of the square windows the front-end takes (512 by default for SAM).
    weights_description : str
        Human-readable origin of the current weights.
    trained_channels : tuple of int
        Mask channels the model predicts: ``(0, 1, 2)``; ``(0, 1)`` for the non-overpass variant
        (paper Tables 1-3, "Ours"); ``(1,)`` for road-only models (the segmentation papers'
        task). The other channels hold the constant :data:`ABSENT_LOGIT`.
    """

    mask_names: tuple[str, ...] = MASK_NAMES
    feature_dim: int
    stride: int
    window_size: int
    weights_description: str = "random init (no checkpoint)"
    trained_channels: tuple[int, ...] = (0, 1, 2)
    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def _set_normalization(self, *, mean: Sequence[float], std: Sequence[float]) -> None:
        """Register per-channel mean/std (0-255 scale) as non-persistent buffers."""
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ParameterError(f"mean/std need 3 channels and std > 0, got {mean}, {std}")
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """Normalise raw images with this front-end's mean and std.

        Parameters
        ----------
        image : torch.Tensor
            ``(B, 3, H, W)`` or ``(3, H, W)`` RGB, ``uint8`` or floating point **on the 0-255
            scale** (not 0-1).

        Returns
        -------
        torch.Tensor
            float32 ``(B, 3, H, W)``: ``(image - mean) / std``, on the buffers' device.
        """
        if image.ndim == 3:
            image = image.unsqueeze(0)
        if image.ndim != 4 or image.shape[1] != 3:
            raise ParameterError(f"images must be (B, 3, H, W) RGB, got shape {tuple(image.shape)}")
        if image.dtype != torch.uint8 and not image.dtype.is_floating_point:
            raise ParameterError(f"images must be uint8 or float (0-255), got {image.dtype}")
        x = image.to(device=self.pixel_mean.device, dtype=torch.float32)
        return (x - self.pixel_mean) / self.pixel_std

    def check_input(self, image: torch.Tensor) -> None:
        """Raise :class:`~linegraph2road.errors.ParameterError` unless ``image`` is a window batch.

        Parameters
        ----------
        image : torch.Tensor
            Expected ``(B, 3, window_size, window_size)`` floating point.
        """
        w = self.window_size
        if image.ndim != 4 or image.shape[1] != 3 or tuple(image.shape[2:]) != (w, w):
            raise ParameterError(
                f"{type(self).__name__} takes (B, 3, {w}, {w}) windows, got {tuple(image.shape)}"
            )
        if not image.dtype.is_floating_point:
            raise ParameterError(
                f"forward takes normalised float images, got {image.dtype}; call normalize() first"
            )

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable pre-trained backbone parameters (reduced learning rate); none by default."""
        return iter(())

    def describe(self) -> dict[str, object]:
        """Architecture summary (JSON-serialisable) stored in checkpoints; subclasses extend it."""
        return {
            "frontend": type(self).__name__,
            "feature_dim": self.feature_dim,
            "stride": self.stride,
            "window_size": self.window_size,
            "mask_names": list(self.mask_names),
        }

    @abc.abstractmethod
    def forward(self, image: torch.Tensor) -> FrontendOutput:
        """Masks and features for a batch of normalised windows.

        Parameters
        ----------
        image : torch.Tensor
            ``(B, 3, H, W)`` float32 output of :meth:`normalize`, ``H = W = window_size``.

        Returns
        -------
        FrontendOutput
            ``masks (B, 3, H, W)`` logits, ``features (B, D, H / s, W / s)``, ``stride s``.
        """
