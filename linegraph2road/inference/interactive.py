"""Interactive segmentation with RoadGIE: one round on a view, or rounds over a whole raster.

A round is RoadGIE's eq. 1: ``mask_t = sigmoid(f(image, mask_{t-1}, prompt maps))`` with
``mask_0 = 0`` and the prompt maps of *all* prompts given so far
(:func:`~linegraph2road.prompts.rasterize_prompts`).

* :func:`predict_round` runs one round on an in-memory view of any size (the annotation app's
  512 x 512 view): the view is padded at the bottom/right to a multiple of the network's input
  multiple (edge-replicated image, zero previous mask and prompt maps) and the padding is cut
  off again.
* :func:`segment_with_prompts` runs ``rounds`` rounds over a whole image or raster for ``l2r
  segment/extract --prompts``: windows of the network's ``window_size`` on the grid of
  :func:`~.windows.window_grid` (overlap at least ``min_overlap``, default window / 8), read one
  at a time from the :class:`~.imagery.RasterSource`, probabilities averaged where windows
  overlap; each round reads the windows again and feeds them the previous round's stitched
  probability. Pixels outside the raster's valid area get 0.

Both can apply topo-semantic instantiation (:mod:`linegraph2road.frontends.roadgie.instantiate`)
to the final probabilities (``instantiate=True``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.roadgie.instantiate import instantiate_roads
from linegraph2road.frontends.roadgie.model import RoadGIEFrontend
from linegraph2road.inference._stitch import as_source
from linegraph2road.inference.extract import PRECISIONS
from linegraph2road.inference.segment import SegmentResult
from linegraph2road.inference.windows import window_grid
from linegraph2road.prompts import CLICK_RADIUS, SCRIBBLE_WIDTH, Prompt, rasterize_prompts

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.georef import Georeference

__all__ = ["check_prompts", "predict_round", "segment_with_prompts"]


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _check_model(model: Any, device: str | torch.device | None, precision: str) -> torch.device:
    if not isinstance(model, RoadGIEFrontend):
        raise ParameterError(
            f"interactive prompts need a RoadGIE front-end, got {type(model).__name__} "
            "(train one with `l2r train roadgie`)"
        )
    if precision not in PRECISIONS:
        raise ParameterError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    param = next(model.parameters())
    dev = param.device if device is None else torch.device(device)
    if dev.type != param.device.type:
        raise ParameterError(f"the model is on {param.device} but device={str(dev)!r}")
    return dev


def check_prompts(prompts: Sequence[Prompt], shape: tuple[int, int]) -> list[Prompt]:
    """``prompts`` as a list after checking they are Prompts inside an ``(H, W)`` image.

    Raises
    ------
    ParameterError
        Not a Prompt, or a point outside ``[0, W] x [0, H]`` (pixels).
    """
    h, w = shape
    out = list(prompts)
    for i, p in enumerate(out):
        if not isinstance(p, Prompt):
            raise ParameterError(f"prompt {i} is a {type(p).__name__}, not a Prompt")
        x, y = p.points[:, 0], p.points[:, 1]
        if (x < 0).any() or (x > w).any() or (y < 0).any() or (y > h).any():
            raise ParameterError(
                f"prompt {i} ({p.kind} at pixel {p.points[0].tolist()}) lies outside the "
                f"{w} x {h} px image"
            )
    return out


def _network(
    model: RoadGIEFrontend,
    images: NDArray[np.uint8],
    previous: NDArray[np.float32],
    maps: NDArray[np.float32],
    dev: torch.device,
    precision: str,
) -> NDArray[np.float32]:
    """``(B, H, W)`` probabilities of padded ``(B, 3, H, W)`` windows (eval mode, no grad)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _autocast(dev, precision):
            x = model.normalize(torch.from_numpy(images).to(dev))
            prev = torch.from_numpy(previous).to(dev)[:, None]
            logits = model.interact(x, prev, torch.from_numpy(maps).to(dev))
            return torch.sigmoid(logits.float())[:, 0].cpu().numpy()
    finally:
        model.train(was_training)


def predict_round(
    model: RoadGIEFrontend,
    image: NDArray[np.uint8],
    previous: NDArray[np.float32] | None,
    prompts: Sequence[Prompt],
    *,
    device: str | torch.device | None = "cpu",
    precision: str = "fp32",
    instantiate: bool = False,
    click_radius: float = CLICK_RADIUS,
    scribble_width: int = SCRIBBLE_WIDTH,
) -> NDArray[np.float32]:
    """One interaction round on a view (RoadGIE eq. 1).

    Parameters
    ----------
    model : RoadGIEFrontend
        Trained RoadGIE (its train/eval mode is restored afterwards).
    image : (3, H, W) uint8
        RGB view, any ``H``, ``W`` (padded internally).
    previous : (H, W) float32 or None
        The previous round's probability in [0, 1]; None in the first round (zeros).
    prompts : sequence of Prompt
        Every prompt so far, pixel coordinates of the view (may be empty).
    device : str, torch.device or None
        Where the model is (default "cpu"; None: where its parameters are).
    precision : {"fp32", "bf16"}
        bf16 runs the network under :func:`torch.autocast`.
    instantiate : bool
        Apply topo-semantic instantiation to the result.
    click_radius, scribble_width
        Prompt rasterisation (:func:`~linegraph2road.prompts.rasterize_prompts`).

    Returns
    -------
    (H, W) float32
        Road probability ``mask_t``.

    Raises
    ------
    ParameterError
        Not a RoadGIE model; bad image, previous mask, prompts, device or precision.
    """
    dev = _check_model(model, device, precision)
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[0] != 3 or img.dtype != np.uint8 or 0 in img.shape:
        raise ParameterError(f"image must be (3, H, W) uint8 RGB, got {img.dtype} {img.shape}")
    h, w = img.shape[1:]
    prev = np.zeros((h, w), np.float32) if previous is None else np.asarray(previous, np.float32)
    if prev.shape != (h, w) or not np.isfinite(prev).all() or prev.min() < 0 or prev.max() > 1:
        raise ParameterError(
            f"previous must be ({h}, {w}) probabilities in [0, 1], got {prev.shape}"
        )
    plist = check_prompts(prompts, (h, w))
    m = model.spec.multiple
    hp, wp = -(-h // m) * m, -(-w // m) * m
    padded = np.pad(img, ((0, 0), (0, hp - h), (0, wp - w)), mode="edge")
    maps = rasterize_prompts(
        plist, (hp, wp), click_radius=click_radius, scribble_width=scribble_width
    )
    prev_p = np.zeros((hp, wp), np.float32)
    prev_p[:h, :w] = prev
    prob = _network(model, padded[None], prev_p[None], maps[None], dev, precision)[0, :h, :w]
    if instantiate:
        prob = instantiate_roads(prob, plist).probability
    return np.ascontiguousarray(prob, dtype=np.float32)


def _window_prompts(
    prompts: list[Prompt], row0: int, col0: int, size: int, reach: float
) -> list[Prompt]:
    """The prompts near the window, shifted into its pixel frame."""
    out = []
    shift = np.array([col0, row0], dtype=np.float64)
    for p in prompts:
        lo, hi = p.points.min(axis=0) - shift, p.points.max(axis=0) - shift
        if (hi >= -reach).all() and (lo <= size + reach).all():
            out.append(Prompt(p.kind, p.points - shift, p.positive))
    return out


def segment_with_prompts(
    model: RoadGIEFrontend,
    source: Any,
    prompts: Sequence[Prompt],
    *,
    rounds: int = 1,
    device: str | torch.device | None = "cpu",
    precision: str = "fp32",
    windows: int | None = None,
    min_overlap: int | None = None,
    instantiate: bool = False,
    georef: Georeference | None = None,
    valid: Any = None,
    progress: bool = False,
    click_radius: float = CLICK_RADIUS,
    scribble_width: int = SCRIBBLE_WIDTH,
) -> SegmentResult:
    """``rounds`` interaction rounds with fixed prompts over a whole image (module docstring).

    Parameters
    ----------
    model : RoadGIEFrontend
        Trained RoadGIE.
    source : RasterSource or (3, H, W) uint8 array
        The processed image (a RasterSource is read window by window).
    prompts : sequence of Prompt
        Pixel coordinates of the processed image (:func:`~linegraph2road.prompts.read_prompts`
        with the source's ``georef`` and ``shape``); at least one.
    rounds : int
        Rounds, each fed the previous one's probability (default 1).
    device, precision
        As :func:`predict_round`.
    windows : int or None
        Windows per axis; None: the fewest with ``min_overlap``.
    min_overlap : int or None
        Least overlap of neighbouring windows in pixels (default window / 8).
    instantiate : bool
        Topo-semantic instantiation of the final probabilities.
    georef, valid
        Georeference and ``(H, W)`` validity of an array image (a RasterSource has its own).
    progress : bool
        tqdm bar over rounds x windows.
    click_radius, scribble_width
        Prompt rasterisation.

    Returns
    -------
    SegmentResult
        ``masks (3, H, W)`` with the road probability in channel 1 (0 elsewhere and outside the
        valid area), ``trained_channels == (1,)``, ``windows`` = windows x rounds, timings
        ``read``, ``network``, ``total`` seconds.

    Raises
    ------
    ParameterError
        Not a RoadGIE model, no prompts, a prompt outside the image, rounds < 1, bad windows,
        device or precision.
    """
    start = time.perf_counter()
    dev = _check_model(model, device, precision)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ParameterError(f"rounds must be an integer >= 1, got {rounds!r}")
    src = as_source(source, georef, valid)
    h, w = src.shape
    plist = check_prompts(prompts, (h, w))
    if not plist:
        raise ParameterError(
            "no prompts: give at least one click or scribble (or run l2r segment without "
            "--prompts for the prompt-free prediction)"
        )
    win = model.window_size
    overlap = win // 8 if min_overlap is None else int(min_overlap)
    if not 0 <= overlap < win:
        raise ParameterError(f"min_overlap must be in [0, {win}), got {overlap}")
    grid = window_grid(max(h, win), max(w, win), window=win, n=windows, min_overlap=overlap)
    t = {"read": 0.0, "network": 0.0}
    previous = np.zeros((h, w), np.float32)
    valid_all = np.zeros((h, w), bool)
    bar = tqdm(total=rounds * len(grid), desc="rounds x windows", disable=not progress)
    reach = float(click_radius) + float(scribble_width)
    try:
        for _ in range(rounds):
            sums = np.zeros((h, w), np.float32)
            weight = np.zeros((h, w), np.float32)
            for r, c in grid:
                t0 = time.perf_counter()
                img, ok = src.read(r, c, win, win)
                hh, ww = min(win, h - r), min(win, w - c)
                prev = np.zeros((win, win), np.float32)
                prev[:hh, :ww] = previous[r : r + hh, c : c + ww]
                local = _window_prompts(plist, r, c, win, reach)
                maps = rasterize_prompts(
                    local, (win, win), click_radius=click_radius, scribble_width=scribble_width
                )
                t1 = time.perf_counter()
                prob = _network(model, img[None], prev[None], maps[None], dev, precision)[0]
                t2 = time.perf_counter()
                sums[r : r + hh, c : c + ww] += prob[:hh, :ww]
                weight[r : r + hh, c : c + ww] += 1.0
                valid_all[r : r + hh, c : c + ww] |= ok[:hh, :ww]
                t["read"] += t1 - t0
                t["network"] += t2 - t1
                bar.update(1)
            previous = (sums / np.maximum(weight, 1.0)).astype(np.float32)
            previous[~valid_all] = 0.0
    finally:
        bar.close()
    road = instantiate_roads(previous, plist).probability if instantiate else previous
    masks = np.zeros((3, h, w), np.float32)
    masks[1] = road
    masks[:, ~valid_all] = 0.0
    t["total"] = time.perf_counter() - start
    return SegmentResult(masks, valid_all, (1,), src.georef, len(grid) * rounds, t)
