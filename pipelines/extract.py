"""``l2r extract``: image -> road graph with a trained LineGraph2Road checkpoint.

Orchestration only: load the model (:func:`load_extract_model`), open the raster
(:class:`~linegraph2road.inference.RasterSource`), run
:func:`~linegraph2road.inference.extract_graph`, then write the graph and the optional masks.
Every output is written after the extraction finished, each atomically: an interrupted or failed
run leaves no partial file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from linegraph2road.errors import FormatError, ParameterError
from linegraph2road.frontends import SamFrontend, load_sam_checkpoint
from linegraph2road.inference import ExtractResult, RasterSource, extract_graph
from linegraph2road.io import GRAPH_FORMATS, guess_format, write_graph
from linegraph2road.io.raster import write_raster
from linegraph2road.model import LineGraph2Road, load_checkpoint

__all__ = [
    "CPU_DEFAULT_PRECISION",
    "NO_CHECKPOINT_MESSAGE",
    "OUTPUT_FORMATS",
    "load_extract_model",
    "resolve_device",
    "run_extract",
]

PathLike = str | os.PathLike[str]

#: Graph formats ``l2r extract`` writes; ``gpkg`` is listed to be refused with a clear message.
OUTPUT_FORMATS: tuple[str, ...] = (*GRAPH_FORMATS, "gpkg")
#: Default precision on CPU. ``bench/bench_extract.py`` found bf16 2.6x faster per 2048 image but
#: its thresholded masks agreed with fp32 at IoU 0.983 (road) / 0.959 (keypoint) < 0.99 (random
#: ViT-B weights, near-constant masks: a harsh test); so fp32 stays the CPU default until the
#: check passes with a trained checkpoint (``--checkpoint``). CUDA defaults to bf16.
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
        512); encoder initialised from sam_vit_b_01ec64.pth"``.

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
        f"window {arch.get('window_size')})"
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
    fmt = out_format or ("gpkg" if Path(output).suffix.lower() == ".gpkg" else guess_format(output))
    if fmt == "gpkg":
        raise FormatError(
            "GeoPackage output needs GDAL's vector drivers (fiona/pyogrio), which l2r does not "
            "depend on; write --format graphml (projected CRS, osmnx conventions) or geojson and "
            "convert with `ogr2ogr -f GPKG out.gpkg graph.geojson`"
        )
    if fmt not in GRAPH_FORMATS:
        raise FormatError(f"unknown output format {fmt!r}; choose one of {OUTPUT_FORMATS}")
    return fmt


def _thresholds(values: dict[str, float] | None) -> dict[str, Any]:
    known = ("t_k", "t_r", "t_topo", "d_k", "d_r", "d_nei")
    out = dict(values or {})
    unknown = sorted(set(out) - set(known))
    if unknown:
        raise ParameterError(f"unknown thresholds {unknown}; known: {known}")
    return out


def run_extract(
    image: PathLike,
    output: PathLike,
    *,
    checkpoint: PathLike | None,
    sam_checkpoint: PathLike | None = None,
    out_format: str | None = None,
    windows: int | None = None,
    gsd: float = 1.0,
    device: str = "auto",
    precision: str | None = None,
    save_masks: PathLike | None = None,
    thresholds: dict[str, float] | None = None,
    progress: bool = False,
    echo: Callable[[str], None] = print,
) -> ExtractResult:
    """Extract the road graph of ``image`` and write it to ``output`` (see the module docstring).

    Parameters
    ----------
    image, output : path
        Input raster (GeoTIFF, PNG...) and output graph file.
    checkpoint, sam_checkpoint : path or None
        See :func:`load_extract_model`.
    out_format : str or None
        One of :data:`OUTPUT_FORMATS`; None = from the output's extension.
    windows : int or None
        Windows per axis (None: the fewest with overlap > d_nei; 5 x 5 for 2048 px).
    gsd : float
        Model ground sampling distance, metres per pixel (default 1.0); georeferenced rasters are
        resampled to it.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``...
    precision : {"fp32", "bf16"} or None
        None = bf16 on CUDA, :data:`CPU_DEFAULT_PRECISION` (fp32) on CPU.
    save_masks : path or None
        Folder for ``{stem}_{keypoint,road,overpass}.tif`` float32 probability GeoTIFFs.
    thresholds : dict or None
        ``t_k``, ``t_r``, ``t_topo``, ``d_k``, ``d_r``, ``d_nei`` overrides.
    echo : callable
        Where progress lines go (the CLI passes stderr).

    Returns
    -------
    ExtractResult
        ``timings`` gains ``"write"`` (seconds writing outputs).
    """
    fmt = _output_format(output, out_format)
    dev = resolve_device(device)
    prec = precision or ("bf16" if dev.type == "cuda" else CPU_DEFAULT_PRECISION)
    if checkpoint is None:
        raise ParameterError(NO_CHECKPOINT_MESSAGE)
    with RasterSource(image, gsd=gsd) as source:
        model, weights = load_extract_model(checkpoint, sam_checkpoint=sam_checkpoint)
        echo(f"weights: {weights}")
        model.to(dev)
        for note in source.notes:
            echo(f"note: {note}")
        echo(
            f"extracting {source.shape[1]} x {source.shape[0]} px on {dev} ({prec}), "
            f"{'auto' if windows is None else windows} windows per axis"
        )
        result = extract_graph(
            model,
            source,
            n_windows=windows,
            device=dev,
            precision=prec,
            keep_masks=save_masks is not None,
            progress=progress,
            **_thresholds(thresholds),
        )
        georef = source.georef
    start = time.perf_counter()
    if save_masks is not None and result.masks is not None:
        folder = Path(save_masks)
        stem = Path(image).stem
        for name, plane in zip(("keypoint", "road", "overpass"), result.masks, strict=True):
            write_raster(folder / f"{stem}_{name}.tif", plane, georef=georef)
    write_graph(result.graph, output, fmt)
    result.timings["write"] = time.perf_counter() - start
    return result
