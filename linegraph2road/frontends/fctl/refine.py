"""Contexts, patch merging and the contextual semantics refinement network (paper 001, 3, 3.2).

Ultra-high-resolution pipeline (paper Fig. 2)
---------------------------------------------
1. :func:`patch_origins` lays ``p x p`` patches over the image so that neighbours overlap by at
   least ``overlap`` px (paper: 120 of 508) and the last patch ends at the image edge.
2. Each patch is segmented with its contexts (:func:`extract_contexts`).
3. The patch probabilities are merged by averaging over the overlaps (the "crude" mask).
4. Optionally, :class:`RefinementNet` refines every patch of the crude mask from the local mask
   and a centred context mask (paper's best: 1016 px) rescaled to the patch size, and the
   refined patches are merged the same way (:func:`segment_large` does 1-4).

Contexts and image borders
--------------------------
A context is the square of side ``s`` centred on the patch centre (top-left
``row - (s - p) // 2``), resized to ``p x p`` (bilinear, antialiased; identity when ``s = p``).
Near the border a context sticks out of the image; the outside is filled with ``pad_value``
(0 in normalised units, i.e. the mean colour, as the released code pads with a constant). The
paper requires every context to fit in the image (``w_u <= W``, ``h_u <= H``): an image smaller
than the largest context is refused with :class:`~linegraph2road.errors.ParameterError`
("image smaller than the FCtL context (1524 px) ..."), because a context that is mostly padding
is not the input the model was trained on; choose smaller context scales or windows instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.base import FrontendOutput
from linegraph2road.frontends.fctl.model import locality_aware_correlation

__all__ = ["RefinementNet", "extract_contexts", "patch_origins", "segment_large"]

#: ``model(patches (B, 3, p, p), contexts (B, T, 3, p, p)) -> logits (B, K, p, p)`` or output.
PatchModel = Callable[[torch.Tensor, torch.Tensor], "torch.Tensor | FrontendOutput"]


def _check_fits(shape: tuple[int, int], size: int) -> None:
    h, w = shape
    if size > h or size > w:
        raise ParameterError(
            f"image smaller than the FCtL context ({size} px): got {h} x {w} px; use smaller "
            "context scales or window, or a larger image"
        )


def extract_contexts(
    image: torch.Tensor,
    *,
    row: int,
    col: int,
    patch: int,
    context_sizes: Sequence[int],
    pad_value: float = 0.0,
) -> torch.Tensor:
    """Centred contexts of one patch, rescaled to the patch size.

    Parameters
    ----------
    image : torch.Tensor
        ``(C, H, W)`` float, the full image (normalised, or masks for the refinement network).
    row, col : int
        Top-left pixel of the patch; the patch must lie inside the image.
    patch : int
        Patch side ``p`` in pixels.
    context_sizes : sequence of int
        Context sides in pixels, each ``>= p`` (paper, Inria: 508, 1016, 1524).
    pad_value : float
        Fill for the parts of a context outside the image (default 0).

    Returns
    -------
    torch.Tensor
        ``(T, C, p, p)`` float, contexts in ``context_sizes`` order.

    Raises
    ------
    ParameterError
        The image is smaller than the largest context, the patch is outside the image, or a
        context is smaller than the patch.
    """
    if image.ndim != 3:
        raise ParameterError(f"image must be (C, H, W), got {tuple(image.shape)}")
    h, w = int(image.shape[1]), int(image.shape[2])
    sizes = [int(s) for s in context_sizes]
    if not sizes or min(sizes) < patch:
        raise ParameterError(f"context sizes must be >= the patch ({patch} px), got {sizes}")
    _check_fits((h, w), max(sizes))
    if not (0 <= row <= h - patch and 0 <= col <= w - patch):
        raise ParameterError(f"patch at ({row}, {col}) of {patch} px is outside {h} x {w}")
    out = []
    for s in sizes:
        top, left = row - (s - patch) // 2, col - (s - patch) // 2
        r0, c0 = max(top, 0), max(left, 0)
        r1, c1 = min(top + s, h), min(left + s, w)
        crop = F.pad(
            image[:, r0:r1, c0:c1],
            (c0 - left, left + s - c1, r0 - top, top + s - r1),
            value=pad_value,
        )
        if s != patch:
            crop = F.interpolate(
                crop[None],
                size=(patch, patch),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )[0]
        out.append(crop)
    return torch.stack(out)


def patch_origins(size: int, *, patch: int, overlap: int) -> list[int]:
    """Patch starts along one axis: neighbours overlap by ``>= overlap`` px, last ends at ``size``.

    Parameters
    ----------
    size : int
        Image side in pixels (``>= patch``).
    patch : int
        Patch side in pixels.
    overlap : int
        Minimum overlap of neighbours, ``0 <= overlap < patch`` (paper: 120 of 508).

    Returns
    -------
    list of int
        Increasing origins, evenly spaced (rounded), first 0, last ``size - patch``.
    """
    if not 0 <= overlap < patch:
        raise ParameterError(f"overlap must be in [0, patch={patch}), got {overlap}")
    if size < patch:
        raise ParameterError(f"image side {size} px is smaller than the patch ({patch} px)")
    if size == patch:
        return [0]
    n = math.ceil((size - patch) / (patch - overlap)) + 1
    return [round(i * (size - patch) / (n - 1)) for i in range(n)]


def _activate(logits: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "sigmoid":
        return torch.sigmoid(logits)
    if activation == "softmax":
        return torch.softmax(logits, dim=1)
    return logits


def _merge(
    run: Callable[[list[tuple[int, int]]], torch.Tensor],
    shape: tuple[int, int],
    *,
    patch: int,
    overlap: int,
    batch_size: int,
) -> torch.Tensor:
    """Average ``run(origins) -> (B, K, p, p)`` over all patches; float64 accumulation."""
    h, w = shape
    origins = [
        (r, c)
        for r in patch_origins(h, patch=patch, overlap=overlap)
        for c in patch_origins(w, patch=patch, overlap=overlap)
    ]
    total: torch.Tensor | None = None
    count = torch.zeros((1, h, w), dtype=torch.float64)
    for i in range(0, len(origins), batch_size):
        chunk = origins[i : i + batch_size]
        probs = run(chunk).detach().to("cpu", torch.float64)
        if total is None:
            total = torch.zeros((probs.shape[1], h, w), dtype=torch.float64)
        for (r, c), p in zip(chunk, probs, strict=True):
            total[:, r : r + patch, c : c + patch] += p
            count[:, r : r + patch, c : c + patch] += 1
    if total is None:  # pragma: no cover - patch_origins never returns an empty grid
        raise ParameterError("no patches")
    return (total / count).float()


class _Block(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1),
            nn.ReLU(inplace=True),
        )


class RefinementNet(nn.Module):
    """Contextual semantics refinement network (paper 3.2, Fig. 4): a two-stream U-Net.

    A local stream encodes the local mask and a context stream (own weights, same shape) the
    context mask; at the bottleneck the local-context relevance module
    (:func:`~.model.locality_aware_correlation` of the two streams' features, the same
    operation as the segmentation model's) enhances the local features, joined residually; the
    decoder upsamples (bilinear x2 + concatenated local-stream skip + two 3x3 convs per level,
    as in U-Net) to ``num_classes`` logits.

    Parameters
    ----------
    num_classes : int
        ``K`` mask channels in and out (default 1).
    widths : tuple of int
        Channels per level; ``len(widths) - 1`` max pools, so the relevance runs at stride
        ``2 ** (len(widths) - 1)`` (default ``(16, 32, 64, 128)``: stride 8, 64 x 64 cells at
        508 px).
    """

    def __init__(
        self, *, num_classes: int = 1, widths: tuple[int, ...] = (16, 32, 64, 128)
    ) -> None:
        super().__init__()
        if num_classes <= 0 or len(widths) < 2 or min(widths) <= 0:
            raise ParameterError(f"need num_classes > 0 and >= 2 positive widths, got {widths}")
        self.num_classes = int(num_classes)
        self.widths = tuple(int(w) for w in widths)
        chans = (self.num_classes, *self.widths)

        def stream() -> nn.ModuleList:
            return nn.ModuleList(_Block(chans[i], chans[i + 1]) for i in range(len(self.widths)))

        self.local_stream = stream()
        self.context_stream = stream()
        self.decoder = nn.ModuleList(
            _Block(self.widths[i + 1] + self.widths[i], self.widths[i])
            for i in reversed(range(len(self.widths) - 1))
        )
        self.classifier = nn.Conv2d(self.widths[0], self.num_classes, 1)

    def describe(self) -> dict[str, object]:
        """Constructor keywords (JSON-serialisable): ``RefinementNet(**describe())`` rebuilds it."""
        return {"num_classes": self.num_classes, "widths": list(self.widths)}

    @staticmethod
    def _encode(stream: nn.ModuleList, x: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        for i, block in enumerate(stream):
            if i:
                x = F.max_pool2d(x, 2, ceil_mode=True)
            x = block(x)
            skips.append(x)
        return skips

    def forward(self, local_mask: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
        """Refined logits of local masks.

        Parameters
        ----------
        local_mask : torch.Tensor
            ``(B, K, p, p)`` float probabilities: the patch's crop of the crude merged mask.
        context_mask : torch.Tensor
            ``(B, K, p, p)``: the centred context crop of the crude mask, rescaled to ``p``.

        Returns
        -------
        torch.Tensor
            ``(B, K, p, p)`` float refined logits.
        """
        if local_mask.shape != context_mask.shape or local_mask.shape[1:2] != (self.num_classes,):
            raise ParameterError(
                f"local and context masks must both be (B, {self.num_classes}, p, p), got "
                f"{tuple(local_mask.shape)} and {tuple(context_mask.shape)}"
            )
        skips = self._encode(self.local_stream, local_mask)
        bottom = self._encode(self.context_stream, context_mask)[-1]
        x = skips[-1] + locality_aware_correlation(skips[-1], bottom)
        for block, skip in zip(self.decoder, reversed(skips[:-1]), strict=True):
            up = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([up, skip], 1))
        return self.classifier(x)


@torch.no_grad()
def segment_large(
    model: PatchModel,
    image: torch.Tensor,
    *,
    patch: int = 508,
    overlap: int = 120,
    context_sizes: Sequence[int] = (508, 1016, 1524),
    activation: Literal["sigmoid", "softmax", "identity"] = "sigmoid",
    refiner: nn.Module | None = None,
    refine_context: int = 1016,
    batch_size: int = 1,
) -> torch.Tensor:
    """Segment an ultra-high-resolution image patch by patch and merge (module docstring).

    Parameters
    ----------
    model : callable
        ``model(patches (B, 3, p, p), contexts (B, T, 3, p, p))`` returning logits
        ``(B, K, p, p)`` or a :class:`FrontendOutput` (its ``masks`` are used), e.g. an
        :class:`~.model.FCtLFrontend` or :class:`~.model.FCtLNet` in eval mode (this function
        does not switch modes; it runs under ``torch.no_grad``).
    image : torch.Tensor
        ``(3, H, W)`` float, already normalised (``frontend.normalize(raw)[0]``), ``H, W >=``
        the largest context.
    patch : int
        Patch side (paper 508; must equal a front-end's ``window_size``).
    overlap : int
        Minimum overlap of neighbouring patches in pixels (paper: 120).
    context_sizes : sequence of int
        Context sides in pixels (a front-end's ``context_sizes``).
    activation : {"sigmoid", "softmax", "identity"}
        Logits -> probabilities before merging (sigmoid for masks, softmax for land cover).
    refiner : RefinementNet or None
        Refine each patch of the crude merged mask (its ``num_classes`` must be ``K``) with a
        ``refine_context``-px context mask (paper's best: 1016); None (default): plain average.
    batch_size : int
        Patches per model call.

    Returns
    -------
    torch.Tensor
        ``(K, H, W)`` float32 merged probabilities, on the CPU.

    Raises
    ------
    ParameterError
        Image smaller than the patch or a context (incl. ``refine_context`` with a refiner).
    """
    if image.ndim != 3 or not image.dtype.is_floating_point:
        raise ParameterError(f"image must be a (3, H, W) float tensor, got {tuple(image.shape)}")
    shape = (int(image.shape[1]), int(image.shape[2]))
    _check_fits(shape, max(patch, *context_sizes))
    if refiner is not None:
        _check_fits(shape, refine_context)

    def run(origins: list[tuple[int, int]]) -> torch.Tensor:
        patches = torch.stack([image[:, r : r + patch, c : c + patch] for r, c in origins])
        contexts = torch.stack(
            [
                extract_contexts(image, row=r, col=c, patch=patch, context_sizes=context_sizes)
                for r, c in origins
            ]
        )
        out = model(patches, contexts)
        return _activate(out.masks if isinstance(out, FrontendOutput) else out, activation)

    merged = _merge(run, shape, patch=patch, overlap=overlap, batch_size=batch_size)
    if refiner is None:
        return merged
    device = next(refiner.parameters()).device

    def refine(origins: list[tuple[int, int]]) -> torch.Tensor:
        local = torch.stack([merged[:, r : r + patch, c : c + patch] for r, c in origins])
        ctx = torch.stack(
            [
                extract_contexts(merged, row=r, col=c, patch=patch, context_sizes=[refine_context])[
                    0
                ]
                for r, c in origins
            ]
        )
        return _activate(refiner(local.to(device), ctx.to(device)), activation)

    return _merge(refine, shape, patch=patch, overlap=overlap, batch_size=batch_size)
