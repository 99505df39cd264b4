"""Whole-image segmentation with any mask front-end (``l2r segment``, and ``l2r extract`` for
front-ends trained without a topology head).

Two ways over the image, picked by the front-end:

* **sliding windows** (SAM, NL-LinkNet, experts): windows of the front-end's size on the grid of
  :func:`~.windows.window_grid`, read one batch at a time (:class:`~.imagery.RasterSource`
  windowed reads), probabilities averaged where windows overlap. NL-LinkNet can add its paper's
  test-time augmentation (8 dihedral flips, optional scales; :func:`~linegraph2road.frontends.
  nl_linknet.tta`); an experts front-end routes every window to its nearest expert.
* **FCtL patch merging** (:func:`~linegraph2road.frontends.fctl.segment_large`): patches with
  their local / medium / large contexts cut from the whole image, merged with the paper's 120 px
  overlap, then optionally refined by the contextual refinement network. Contexts need the
  whole image in memory, and an image smaller than the largest context is refused.

Pixels outside the raster's valid area (nodata, alpha) get probability 0; mask channels that a
road-only model does not predict are 0 as well (:attr:`SegmentResult.trained_channels`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.base import MaskFrontend
from linegraph2road.frontends.nl_linknet.recipe import tta
from linegraph2road.inference._stitch import ImageArraySource, as_source
from linegraph2road.inference.extract import PRECISIONS
from linegraph2road.inference.imagery import RasterSource
from linegraph2road.inference.windows import window_grid

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.frontends.fctl import RefinementNet
    from linegraph2road.georef import Georeference

__all__ = [
    "FCTL_OVERLAP",
    "SegmentResult",
    "check_image_size",
    "fctl_overlap",
    "segment_image",
]

#: Overlap of neighbouring FCtL patches (paper 001, section 4.2: 120 px of 508 px patches).
FCTL_OVERLAP = 120


def fctl_overlap(patch: int) -> int:
    """The paper's patch overlap scaled to a patch side: 120 px at 508 px."""
    return max(0, min(patch - 1, round(FCTL_OVERLAP * patch / 508)))


@dataclass(frozen=True)
class SegmentResult:
    """What :func:`segment_image` returns.

    Attributes
    ----------
    masks : (3, H, W) float32
        Probabilities ``[keypoint, road, overpass]`` of the processed image, 0 at invalid pixels
        and in channels the model does not predict.
    valid : (H, W) bool
        Pixels with image data.
    trained_channels : tuple of int
        Channels the model predicts (``(1,)`` for road-only models, ``(0, 1, 2)`` otherwise).
    georef : Georeference or None
        Georeference of the processed image.
    windows : int
        Network windows (patches) run, augmentations not counted.
    timings : dict of str to float
        Seconds: ``read``, ``network``, ``total``.
    """

    masks: NDArray[np.float32]
    valid: NDArray[np.bool_]
    trained_channels: tuple[int, ...]
    georef: Georeference | None
    windows: int
    timings: dict[str, float]

    @property
    def road(self) -> NDArray[np.float32]:
        """``(H, W)`` road probability."""
        return self.masks[1]


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def segment_image(
    frontend: MaskFrontend,
    image: Any,
    *,
    n_windows: int | None = None,
    min_overlap: int | None = None,
    flips: bool = False,
    scales: Sequence[float] = (1.0,),
    refiner: RefinementNet | None = None,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    georef: Georeference | None = None,
    valid: Any = None,
    batch_size: int = 1,
    progress: bool = False,
) -> SegmentResult:
    """Mask probabilities of a whole image with a front-end (see the module docstring).

    Parameters
    ----------
    frontend : MaskFrontend
        Trained front-end; put in eval mode during the call (its mode is restored afterwards).
    image : (3, H, W) uint8 array or RasterSource
        RGB on the 0-255 scale, or an opened raster (its own georeference and validity).
    n_windows : int or None
        Windows per axis for sliding-window front-ends; None = the fewest with ``min_overlap``.
        FCtL does not take it (its patches follow the paper's 120 px overlap).
    min_overlap : int or None
        Least window overlap in pixels when ``n_windows`` is None (default: window / 8).
    flips, scales
        Test-time augmentation (:func:`~linegraph2road.frontends.nl_linknet.tta`): average over
        the 8 dihedral flips and/or input scales (NL-LinkNet only for scales != 1).
    refiner : RefinementNet or None
        FCtL's contextual refinement network (FCtL front-ends only).
    device : str, torch.device or None
        Where the front-end runs; None = where its parameters are (it is never moved).
    precision : {"fp32", "bf16"}
        bf16 runs the network under :func:`torch.autocast`.
    georef, valid
        Georeference and ``(H, W)`` validity of an array image (a RasterSource has its own).
    batch_size : int
        Windows per network call.
    progress : bool
        tqdm progress bar over the windows.

    Returns
    -------
    SegmentResult

    Raises
    ------
    ParameterError
        Bad precision, TTA, device or image; an image smaller than FCtL's largest context; a
        refiner with a front-end other than FCtL.
    """
    if precision not in PRECISIONS:
        raise ParameterError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if batch_size < 1:
        raise ParameterError(f"batch_size must be >= 1, got {batch_size}")
    scales = tuple(float(s) for s in scales)
    if not scales or min(scales) <= 0:
        raise ParameterError(f"scales must be positive, got {scales}")
    name = frontend.describe().get("frontend")
    if scales != (1.0,) and name != "nl-linknet":
        raise ParameterError(
            f"multi-scale test-time augmentation needs a front-end that takes any window size "
            f"(nl-linknet), not {name}"
        )
    is_fctl = hasattr(frontend, "context_sizes")
    if refiner is not None and not is_fctl:
        raise ParameterError(f"a refinement network goes with an FCtL front-end, not {name}")
    source = as_source(image, georef, valid)
    param = next(frontend.parameters())
    dev = param.device if device is None else torch.device(device)
    if dev.type != param.device.type:
        raise ParameterError(f"the front-end is on {param.device} but device={str(dev)!r}")
    was_training = frontend.training
    frontend.eval()
    if refiner is not None:
        refiner.eval()
    try:
        with torch.no_grad(), _autocast(dev, precision):
            if is_fctl:
                if n_windows is not None:
                    raise ParameterError(
                        "FCtL merges patches with the paper's 120 px overlap; drop --windows"
                    )
                return _fctl(frontend, source, refiner, dev, batch_size)
            return _windows(
                frontend, source, n_windows, min_overlap, flips, scales, dev, batch_size, progress
            )
    finally:
        frontend.train(was_training)


def check_image_size(
    frontend: MaskFrontend, shape: tuple[int, int], refiner: RefinementNet | None = None
) -> tuple[int, ...]:
    """Refuse an image smaller than an FCtL front-end's largest context; its context sizes.

    Sliding-window front-ends take any size (small images are padded): they return ``()``.

    Raises
    ------
    ParameterError
        ``shape`` (rows, cols) smaller than the largest context (or the refiner's context).
    """
    sizes = tuple(int(s) for s in getattr(frontend, "context_sizes", ()))
    if not sizes:
        return sizes
    patch = frontend.window_size
    need = max(patch, *sizes, 2 * patch if refiner is not None else 0)
    h, w = shape
    if h < need or w < need:
        raise ParameterError(
            f"the image is {w} x {h} px (after resampling) but this FCtL model's largest context "
            f"is {need} px (patch {patch} px, contexts {list(sizes)}); use a larger image, a "
            "finer --gsd, or a model trained with a smaller window"
        )
    return sizes


def _trained(frontend: MaskFrontend) -> tuple[int, ...]:
    return tuple(frontend.trained_channels)


def _finish(
    sums: NDArray[np.float32],
    valid: NDArray[np.bool_],
    frontend: MaskFrontend,
    source: RasterSource | ImageArraySource,
    windows: int,
    timings: dict[str, float],
) -> SegmentResult:
    chans = _trained(frontend)
    for c in range(sums.shape[0]):
        if c not in chans:
            sums[c] = 0.0
    sums[:, ~valid] = 0.0
    return SegmentResult(sums, valid, chans, source.georef, windows, timings)


def _windows(
    frontend: MaskFrontend,
    source: RasterSource | ImageArraySource,
    n_windows: int | None,
    min_overlap: int | None,
    flips: bool,
    scales: tuple[float, ...],
    dev: torch.device,
    batch_size: int,
    progress: bool,
) -> SegmentResult:
    start = time.perf_counter()
    t = {"read": 0.0, "network": 0.0}
    h, w = source.shape
    win = frontend.window_size
    overlap = win // 8 if min_overlap is None else int(min_overlap)
    if not 0 <= overlap < win:
        raise ParameterError(f"min_overlap must be in [0, {win}), got {overlap}")
    grid = window_grid(max(h, win), max(w, win), window=win, n=n_windows, min_overlap=overlap)
    sums = np.zeros((3, h, w), np.float32)
    weight = np.zeros((h, w), np.float32)
    valid = np.zeros((h, w), bool)
    augment = flips or scales != (1.0,)
    for k in tqdm(range(0, len(grid), batch_size), desc="windows", disable=not progress):
        origins = grid[k : k + batch_size]
        t0 = time.perf_counter()
        reads = [source.read(r, c, win, win) for r, c in origins]
        batch = torch.from_numpy(np.stack([im for im, _ in reads])).to(dev)
        t1 = time.perf_counter()
        x = frontend.normalize(batch)
        if augment:
            probs = tta(frontend, x, flips=flips, scales=scales)
        else:
            probs = torch.sigmoid(frontend(x).masks.float())
        probs_np = probs.float().cpu().numpy()
        t2 = time.perf_counter()
        for (r, c), (_, ok), p in zip(origins, reads, probs_np, strict=True):
            hh, ww = min(win, h - r), min(win, w - c)
            sums[:, r : r + hh, c : c + ww] += p[:, :hh, :ww]
            weight[r : r + hh, c : c + ww] += 1.0
            valid[r : r + hh, c : c + ww] |= ok[:hh, :ww]
        t["read"] += t1 - t0
        t["network"] += t2 - t1
    sums /= np.maximum(weight, 1.0)
    t["total"] = time.perf_counter() - start
    return _finish(sums, valid, frontend, source, len(grid), t)


def _fctl(
    frontend: MaskFrontend,
    source: RasterSource | ImageArraySource,
    refiner: RefinementNet | None,
    dev: torch.device,
    batch_size: int,
) -> SegmentResult:
    from linegraph2road.frontends.fctl import patch_origins, segment_large

    start = time.perf_counter()
    h, w = source.shape
    patch = frontend.window_size
    sizes = check_image_size(frontend, (h, w), refiner)
    t0 = time.perf_counter()
    img, valid = source.read(0, 0, h, w)
    t1 = time.perf_counter()
    x = frontend.normalize(torch.from_numpy(img).to(dev))[0]
    chans = list(_trained(frontend))

    def model(patches: torch.Tensor, contexts: torch.Tensor) -> torch.Tensor:
        return frontend(patches, contexts).masks[:, chans].float()

    probs = segment_large(
        model,
        x,
        patch=patch,
        overlap=fctl_overlap(patch),
        context_sizes=sizes,
        refiner=refiner,
        refine_context=2 * patch,
        batch_size=batch_size,
    )
    sums = np.zeros((3, h, w), np.float32)
    sums[chans] = probs.float().cpu().numpy()
    windows = len(patch_origins(h, patch=patch, overlap=fctl_overlap(patch))) * len(
        patch_origins(w, patch=patch, overlap=fctl_overlap(patch))
    )
    t2 = time.perf_counter()
    timings = {"read": t1 - t0, "network": t2 - t1, "total": t2 - start}
    return _finish(sums, valid, frontend, source, windows, timings)
