"""``l2r extract``: image -> road graph with a trained checkpoint of any front-end.

Orchestration only. A LineGraph2Road checkpoint (front-end + topology head): load the model
(:func:`load_extract_model`), open the raster (:class:`~linegraph2road.inference.RasterSource`),
run :func:`~linegraph2road.inference.extract_graph`. A segmentation-only front-end (NL-LinkNet,
FCtL, experts trained with their papers' recipes): segment
(:func:`~linegraph2road.inference.segment.segment_image`), then
:func:`~linegraph2road.mask2graph.mask_to_graph`. Then write the graph and the optional masks.
Every output is written after the extraction finished, each atomically: an interrupted or failed
run leaves no partial file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from linegraph2road.errors import FormatError, ParameterError
from linegraph2road.frontends import MASK_NAMES, SamFrontend, load_sam_checkpoint
from linegraph2road.frontends.checkpoint import checkpoint_kind, checkpoint_thresholds
from linegraph2road.graph import RoadGraph
from linegraph2road.inference import ExtractResult, RasterSource, extract_graph
from linegraph2road.inference.segment import SegmentResult, check_image_size
from linegraph2road.inference.windows import check_window_count
from linegraph2road.io import GRAPH_FORMATS, check_writable, guess_format, write_graph
from linegraph2road.io.raster import write_raster
from linegraph2road.mask2graph import mask_to_graph
from linegraph2road.model import LineGraph2Road, load_checkpoint, read_architecture
from linegraph2road.parallel.cache import cached_model
from linegraph2road.pipelines.options import ExtractOptions, resolve_thresholds
from linegraph2road.pipelines.segment import (
    check_frontend_name,
    check_segment_windows,
    checkpoint_frontend_name,
    load_model_gsd,
    load_prompts,
    load_segmenter,
    prompts_need_roadgie,
    segment_source,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.georef import Georeference

__all__ = [
    "CPU_DEFAULT_PRECISION",
    "NO_CHECKPOINT_MESSAGE",
    "OUTPUT_FORMATS",
    "ExtractOptions",
    "ExtractRun",
    "load_extract_model",
    "resolve_device",
    "resolve_precision",
    "run_extract",
]

PathLike = str | os.PathLike[str]

#: Graph formats ``l2r extract`` writes.
OUTPUT_FORMATS: tuple[str, ...] = GRAPH_FORMATS
#: Default precision on CPU. ``bench/bench_extract.py`` found bf16 2.6x faster per 2048 image with
#: ViT-B, but its thresholded masks do not agree with fp32 at IoU >= 0.99: random ViT-B weights
#: gave 0.983 (road) / 0.959 (keypoint), and the tiny model trained by ``bench/learn_smoke.py
#: --save`` gave 0.985 / 0.939 at the extraction thresholds on the Vegas tile (``--checkpoint
#: smoke.safetensors --agreement-image <Vegas tif>``). So fp32 stays the CPU default; CUDA
#: defaults to bf16 (the paper's training precision).
CPU_DEFAULT_PRECISION = "fp32"

NO_CHECKPOINT_MESSAGE = (
    "no weights: l2r extract needs a trained l2r checkpoint (--checkpoint model.safetensors); "
    "none ships with l2r and random weights are never run. Train one: download SAM's "
    "sam_vit_b_01ec64.pth (segment-anything), make labels with `l2r prep`, then "
    "`l2r train CONFIG.yaml` (its config points at the SAM file); the checkpoint it writes "
    "goes to --checkpoint"
)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without a GPU is refused."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError("--device cuda: no CUDA GPU is available here; use --device cpu")
    return dev


def resolve_precision(device: torch.device, precision: str | None) -> str:
    """``precision``, or the default: bf16 on CUDA, :data:`CPU_DEFAULT_PRECISION` elsewhere."""
    return precision or ("bf16" if device.type == "cuda" else CPU_DEFAULT_PRECISION)


def _find_key(config: Any, key: str) -> Any:
    if isinstance(config, dict):
        if config.get(key):
            return config[key]
        for value in config.values():
            found = _find_key(value, key)
            if found:
                return found
    return None


def load_extract_model(
    checkpoint: PathLike | None, *, sam_checkpoint: PathLike | None = None
) -> tuple[LineGraph2Road, str]:
    """The model of an l2r checkpoint and a one-line description of its weights.

    Parameters
    ----------
    checkpoint : path or None
        l2r checkpoint (safetensors written by ``l2r train``). None is refused with
        :data:`NO_CHECKPOINT_MESSAGE`.
    sam_checkpoint : path or None
        Official SAM ``.pth``. An l2r checkpoint holds the trained encoder, so this file is only
        checked (it must be a SAM of the model's size); its weights are not used.

    Returns
    -------
    (LineGraph2Road, str)
        Model on the CPU in eval mode; ``"l2r checkpoint model.safetensors (sam/vit_b, window
        512, overpass variant); encoder initialised from sam_vit_b_01ec64.pth"``.

    Raises
    ------
    ParameterError
        No checkpoint.
    InputFileError, CheckpointError
        Missing, corrupt or wrong-architecture checkpoint; a SAM checkpoint of another size.
    """
    if checkpoint is None:
        raise ParameterError(NO_CHECKPOINT_MESSAGE)
    model, config = load_checkpoint(Path(checkpoint))
    arch = model.describe()["frontend"]
    text = (
        f"l2r checkpoint {Path(checkpoint).name} ({arch.get('frontend')}/{arch.get('size')}, "
        f"window {arch.get('window_size')}, {model.variant} variant)"
    )
    origin = _find_key(config, "sam_checkpoint")
    text += f"; encoder initialised from {Path(str(origin)).name}" if origin else ""
    if sam_checkpoint is not None:
        if not isinstance(model.frontend, SamFrontend):
            raise ParameterError("--sam-checkpoint applies to SAM front-ends only")
        probe = SamFrontend(spec=model.frontend.spec, window_size=model.window_size)
        info = load_sam_checkpoint(probe, Path(sam_checkpoint))  # refuses other sizes (ViT-L/H)
        text += (
            f"; --sam-checkpoint {Path(sam_checkpoint).name} (SAM {info.variant}) checked, not "
            "used: the l2r checkpoint holds the trained encoder"
        )
    return model, text


def _output_format(output: PathLike, out_format: str | None) -> str:
    fmt = out_format or guess_format(output)
    if fmt not in GRAPH_FORMATS:
        raise FormatError(f"unknown output format {fmt!r}; choose one of {OUTPUT_FORMATS}")
    return fmt


@dataclass(frozen=True)
class ExtractRun:
    """What :func:`run_extract` returns.

    Attributes
    ----------
    graph : RoadGraph
        The graph written (pixel coordinates of the processed image, georeferenced).
    method : {"topology", "mask2graph"}
        ``"topology"``: coupled NMS + candidate graph + topology head (a LineGraph2Road
        checkpoint); ``"mask2graph"``: road mask -> skeleton graph (a segmentation-only front-end).
    detail : ExtractResult or SegmentResult
        The inference result (timings, stats, masks).
    timings : dict of str to float
        Seconds: ``total`` (inference), ``write``, and the method's stages.
    summary : str
        One line for the CLI.
    """

    graph: RoadGraph
    method: str
    detail: ExtractResult | SegmentResult
    timings: dict[str, float]
    summary: str


def _edge_confidence(graph: RoadGraph, road: NDArray[np.float32]) -> NDArray[np.float32]:
    """Mean road probability at 9 points along each edge (the mask2graph edge confidence)."""
    if graph.num_edges == 0:
        return np.zeros(0, np.float32)
    h, w = road.shape
    a, b = graph.nodes[graph.edges[:, 0]], graph.nodes[graph.edges[:, 1]]
    total = np.zeros(graph.num_edges, np.float64)
    fractions = np.linspace(0.0, 1.0, 9)
    for f in fractions:
        p = a * (1 - f) + b * f
        c = np.clip(np.floor(p[:, 0]).astype(np.int64), 0, w - 1)
        r = np.clip(np.floor(p[:, 1]).astype(np.int64), 0, h - 1)
        total += road[r, c]
    return np.clip(total / len(fractions), 0.0, 1.0).astype(np.float32)


def _mask_graph(result: SegmentResult, road_threshold: float, params: dict[str, Any]) -> RoadGraph:
    graph = mask_to_graph(result.road, threshold=road_threshold, georef=result.georef, **params)
    return graph.replace(edge_prob=_edge_confidence(graph, result.road))


def run_extract(
    image: PathLike,
    output: PathLike,
    options: ExtractOptions,
    *,
    echo: Callable[[str], None] = print,
    checkpoint_sha256: str | None = None,
) -> ExtractRun:
    """Extract the road graph of ``image`` and write it to ``output`` (see the module docstring).

    The checkpoint decides the method: a LineGraph2Road model (front-end + topology head, from
    ``l2r train`` with the default task) runs coupled NMS and the topology head; a
    segmentation-only front-end (``task: segmentation``: NL-LinkNet, FCtL, experts) gives a road
    mask that :func:`~linegraph2road.mask2graph.mask_to_graph` turns into a graph, each edge
    carrying the mean road probability along it.

    Parameters
    ----------
    image, output : path
        Input raster (GeoTIFF, PNG...) and output graph file. Every output location (``output``
        and ``options.save_masks``) is checked before any work.
    options : ExtractOptions
        Checkpoint, front-end, windows, GSD (default: the checkpoint's training GSD), device,
        precision, thresholds, mask2graph parameters...
    echo : callable
        Where progress lines go (the CLI passes stderr).
    checkpoint_sha256 : str or None
        The checkpoint's SHA-256 as the client of a batch run saw it: the model is loaded once
        per process (:func:`~linegraph2road.parallel.cached_model`) and a worker whose copy of
        the file differs is refused.

    Returns
    -------
    ExtractRun
    """
    fmt = _output_format(output, options.out_format)
    check_writable(output)
    if options.save_masks is not None:
        check_writable(options.save_masks, folder=True)
    dev = resolve_device(options.device)
    prec = resolve_precision(dev, options.precision)
    if options.checkpoint is None:
        raise ParameterError(NO_CHECKPOINT_MESSAGE)
    checkpoint = options.checkpoint
    is_model = checkpoint_kind(checkpoint) == "model"
    if is_model and options.prompts is not None:  # refused before the model is loaded
        arch = read_architecture(checkpoint)["frontend"]
        raise prompts_need_roadgie(f"a LineGraph2Road model ({arch.get('frontend')} front-end)")
    if not is_model:
        if options.sam_checkpoint is not None:
            raise ParameterError(
                "--sam-checkpoint applies to LineGraph2Road SAM checkpoints; this checkpoint is a "
                "segmentation-only front-end"
            )
        return _run_mask2graph(image, output, fmt, options, prec, echo, checkpoint_sha256)
    if options.tta:
        raise ParameterError("--tta applies to segmentation-only front-ends (mask2graph method)")
    model, weights = cached_model(
        f"extract:{options.sam_checkpoint}",
        checkpoint,
        checkpoint_sha256,
        lambda: load_extract_model(checkpoint, sam_checkpoint=options.sam_checkpoint),
    )
    check_frontend_name(checkpoint_frontend_name(model.frontend), options.frontend, checkpoint)
    said: list[str] = []  # said once the image opened: a bad image stays a one-line error
    gsd = load_model_gsd(checkpoint, options.gsd, said.append)
    thresholds, line = resolve_thresholds(options, checkpoint_thresholds(checkpoint))
    said.append(line)
    with RasterSource(image, gsd=gsd) as source:
        check_window_count(
            source.shape, window=model.window_size, n=options.windows, layout=options.layout
        )
        echo(f"weights: {weights}")
        for line in said:
            echo(line)
        model.to(dev)
        for note in source.notes:
            echo(f"note: {note}")
        per_axis = "default" if options.windows is None else options.windows
        echo(
            f"extracting {source.shape[1]} x {source.shape[0]} px at {gsd:g} m/px on {dev} "
            f"({prec}), {options.layout} window layout ({per_axis} windows per axis), "
            f"{options.nms} NMS"
        )
        result = extract_graph(
            model,
            source,
            n_windows=options.windows,
            layout=options.layout,
            nms=options.nms,
            device=dev,
            precision=prec,
            keep_masks=options.save_masks is not None,
            progress=options.progress,
            **{**options.thresholds(), **thresholds},
        )
        georef = source.georef
    start = time.perf_counter()
    if options.save_masks is not None and result.masks is not None:
        _write_masks(options.save_masks, image, result.masks, model.trained_channels, georef)
    write_graph(result.graph, output, fmt)
    timings = {**result.timings, "write": time.perf_counter() - start}
    t, st = result.timings, result.stats
    summary = (
        f"{st['windows']} windows, {st['vertices']} vertices, {st['candidate_edges']} candidate "
        f"edges; {t['total']:.1f} s (encoder {t['encoder']:.1f}, decoder {t['decoder']:.1f}, "
        f"scoring {t['scoring']:.1f})"
    )
    return ExtractRun(result.graph, "topology", result, timings, summary)


def _write_masks(
    folder: PathLike,
    image: PathLike,
    masks: NDArray[np.float32],
    channels: tuple[int, ...],
    georef: Georeference | None,
) -> None:
    stem = Path(image).stem
    for c in channels:
        write_raster(Path(folder) / f"{stem}_{MASK_NAMES[c]}.tif", masks[c], georef=georef)


def _run_mask2graph(
    image: PathLike,
    output: PathLike,
    fmt: str,
    options: ExtractOptions,
    precision: str,
    echo: Callable[[str], None],
    checkpoint_sha256: str | None,
) -> ExtractRun:
    segmenter = load_segmenter(
        options.checkpoint, frontend=options.frontend, checkpoint_sha256=checkpoint_sha256
    )
    said: list[str] = []
    gsd = load_model_gsd(options.checkpoint, options.gsd, said.append)
    with RasterSource(image, gsd=gsd) as source:
        check_image_size(segmenter.frontend, source.shape, segmenter.refiner)
        check_segment_windows(segmenter, source.shape, options.windows)
        prompts = load_prompts(segmenter, options, source)
        echo(f"weights: {segmenter.description}; graph by mask2graph (no topology head)")
        for line in said:
            echo(line)
        result = segment_source(
            segmenter,
            source,
            device=options.device,
            precision=precision,
            windows=options.windows,
            flips=options.tta,
            progress=options.progress,
            echo=echo,
            prompts=prompts,
            rounds=options.rounds,
            instantiate=options.instantiate,
        )
    start = time.perf_counter()
    graph = _mask_graph(result, options.road_threshold, dict(options.mask2graph))
    vectorise = time.perf_counter() - start
    start = time.perf_counter()
    if options.save_masks is not None:
        _write_masks(
            options.save_masks, image, result.masks, result.trained_channels, result.georef
        )
    write_graph(graph, output, fmt)
    timings = {**result.timings, "mask2graph": vectorise, "write": time.perf_counter() - start}
    summary = (
        f"{result.windows} windows; {result.timings['total']:.1f} s network + "
        f"{vectorise:.1f} s mask2graph"
    )
    return ExtractRun(graph, "mask2graph", result, timings, summary)
