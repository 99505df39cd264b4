"""``l2r segment``: image -> georeferenced road probability GeoTIFF, with any front-end.

Orchestration only: load the front-end of a checkpoint (:func:`load_segmenter`: a
segmentation-only front-end from ``l2r train`` with ``task: segmentation``, an experts
checkpoint, or the front-end of a LineGraph2Road model), open the raster
(:class:`~linegraph2road.inference.RasterSource`), run
:func:`~linegraph2road.inference.segment.segment_image` and write the probabilities atomically.

A RoadGIE checkpoint with ``--prompts``: the prompts file is read against the processed image
(:func:`load_prompts`, before any work) and
:func:`~linegraph2road.inference.interactive.segment_with_prompts` runs ``--rounds`` rounds over
the raster; without prompts RoadGIE runs its prompt-free first round like any front-end.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from linegraph2road.errors import CheckpointError, FormatError, ParameterError
from linegraph2road.frontends import FRONTENDS, MaskFrontend
from linegraph2road.frontends.checkpoint import checkpoint_gsd, checkpoint_kind, load_frontend
from linegraph2road.frontends.fctl import FCtLFrontend, RefinementNet
from linegraph2road.inference import RasterSource
from linegraph2road.inference.segment import SegmentResult, check_image_size, segment_image
from linegraph2road.inference.windows import check_window_count
from linegraph2road.io import check_writable
from linegraph2road.io.raster import write_raster
from linegraph2road.parallel.cache import cached_model
from linegraph2road.pipelines.options import ModelOptions, SegmentOptions, model_gsd
from linegraph2road.prompts import Prompt, read_prompts

__all__ = [
    "FRONTEND_NAMES",
    "Segmenter",
    "load_model_gsd",
    "load_prompts",
    "load_segmenter",
    "run_segment",
]

PathLike = str | os.PathLike[str]

#: Front-end families ``--frontend`` accepts (the registry's names).
FRONTEND_NAMES: tuple[str, ...] = tuple(FRONTENDS)

NO_CHECKPOINT_MESSAGE = (
    "no weights: l2r segment needs a trained checkpoint (--checkpoint FILE.safetensors); none "
    "ships with l2r and random weights are never run. Train one with `l2r prep` + `l2r train "
    "nl_linknet.yaml` (or fctl.yaml, experts.yaml, cityscale.yaml)"
)


class Segmenter(NamedTuple):
    """A loaded front-end: the network, FCtL's refiner (or None), the checkpoint's kind
    (``"model"``, ``"frontend"``, ``"experts"``) and a one-line description of the weights."""

    frontend: MaskFrontend
    refiner: RefinementNet | None
    kind: str
    description: str


def checkpoint_frontend_name(frontend: MaskFrontend) -> str:
    """The registry name (``sam``, ``nl-linknet``, ``fctl``, ``experts``) of a front-end."""
    return str(frontend.describe().get("frontend"))


def check_frontend_name(found: str, wanted: str | None, checkpoint: PathLike) -> None:
    """Refuse a checkpoint whose front-end is not the ``--frontend`` asked for."""
    if wanted is None:
        return
    if wanted not in FRONTEND_NAMES:
        raise ParameterError(f"unknown front-end {wanted!r}; choose one of {FRONTEND_NAMES}")
    if found != wanted:
        raise CheckpointError(
            f"{Path(checkpoint).name} holds a {found} front-end, not {wanted}; pass "
            f"--frontend {found} or a checkpoint trained with --frontend {wanted}"
        )


def load_segmenter(
    checkpoint: PathLike | None,
    *,
    frontend: str | None = None,
    checkpoint_sha256: str | None = None,
) -> Segmenter:
    """The front-end of any l2r checkpoint, checked against the front-end asked for.

    Loaded once per process (:func:`~linegraph2road.parallel.cached_model`, keyed by the path
    and the file's SHA-256): the tasks of a batch run on one worker share it.

    Parameters
    ----------
    checkpoint : path or None
        l2r checkpoint (None is refused: random weights are never run).
    frontend : str or None
        Expected family; None = whatever the checkpoint holds.
    checkpoint_sha256 : str or None
        The client's hash of the checkpoint (a worker with another file is refused).

    Raises
    ------
    ParameterError
        No checkpoint; unknown family.
    InputFileError, CheckpointError
        Missing, corrupt or foreign file; a checkpoint of another family.
    """
    if checkpoint is None:
        raise ParameterError(NO_CHECKPOINT_MESSAGE)
    segmenter = cached_model(
        "segment", checkpoint, checkpoint_sha256, lambda: _load_segmenter(checkpoint)
    )
    check_frontend_name(checkpoint_frontend_name(segmenter.frontend), frontend, checkpoint)
    return segmenter


def _load_segmenter(checkpoint: PathLike) -> Segmenter:
    kind = checkpoint_kind(checkpoint)
    if kind == "model":
        from linegraph2road.model import load_checkpoint

        model, _ = load_checkpoint(Path(checkpoint))
        fe, refiner = model.frontend, None
    else:
        fe, refiner, _ = load_frontend(checkpoint)
    name = checkpoint_frontend_name(fe)
    arch = fe.describe()
    text = (
        f"{fe.weights_description}: {name}/{arch.get('size')}, window {fe.window_size}, "
        f"{'road only' if tuple(fe.trained_channels) == (1,) else 'keypoint/road/overpass'}"
    )
    if refiner is not None:
        text += ", with the contextual refinement network"
    return Segmenter(fe.eval(), refiner, kind, text)


def check_segment_windows(
    segmenter: Segmenter, shape: tuple[int, int], windows: int | None
) -> None:
    """Refuse ``windows`` per axis that cannot cover the image (FCtL lays out its own patches)."""
    if not isinstance(segmenter.frontend, FCtLFrontend):
        check_window_count(shape, window=segmenter.frontend.window_size, n=windows)


def prompts_need_roadgie(holds: str) -> ParameterError:
    """The error for ``--prompts`` with a checkpoint that holds ``holds`` (not RoadGIE)."""
    return ParameterError(
        f"--prompts needs a RoadGIE checkpoint (`l2r train roadgie`); this one holds {holds}, "
        "which takes no clicks or scribbles"
    )


def load_prompts(
    segmenter: Segmenter, options: ModelOptions, source: RasterSource
) -> list[Prompt] | None:
    """The prompts of ``options.prompts`` in pixels of the opened (processed) raster, or None
    without ``--prompts``. Called before any work, so a bad file costs nothing.

    Raises
    ------
    ParameterError
        Prompts for a front-end that takes none, with ``--tta``, an empty file, or a prompt
        outside the image.
    InputFileError, FormatError, GeoreferenceError
        As :func:`~linegraph2road.prompts.read_prompts`.
    """
    from linegraph2road.frontends.roadgie import RoadGIEFrontend

    if options.prompts is None:
        return None
    if not isinstance(segmenter.frontend, RoadGIEFrontend):
        raise prompts_need_roadgie(checkpoint_frontend_name(segmenter.frontend))
    if getattr(options, "tta", False):
        raise ParameterError("--tta does not apply with --prompts (RoadGIE rounds)")
    prompts = read_prompts(options.prompts, georef=source.georef, shape=source.shape)
    if not prompts:
        raise ParameterError(
            f"{options.prompts}: no prompts in the file; add clicks or scribbles, or leave out "
            "--prompts for RoadGIE's prompt-free prediction"
        )
    return prompts


def segment_source(
    segmenter: Segmenter,
    source: RasterSource,
    *,
    device: str = "auto",
    precision: str | None = None,
    windows: int | None = None,
    flips: bool = False,
    scales: Sequence[float] = (1.0,),
    progress: bool = False,
    echo: Callable[[str], None] = print,
    prompts: Sequence[Prompt] | None = None,
    rounds: int = 1,
    instantiate: bool = False,
) -> SegmentResult:
    """Run :func:`segment_image` on an opened raster with device/precision defaults resolved;
    with ``prompts`` (a RoadGIE segmenter, :func:`load_prompts`), ``rounds`` interaction rounds
    of :func:`~linegraph2road.inference.interactive.segment_with_prompts`."""
    from linegraph2road.pipelines.extract import resolve_device, resolve_precision

    check_image_size(segmenter.frontend, source.shape, segmenter.refiner)
    dev = resolve_device(device)
    prec = resolve_precision(dev, precision)
    segmenter.frontend.to(dev)
    if segmenter.refiner is not None:
        segmenter.refiner.to(dev)
    for note in source.notes:
        echo(f"note: {note}")
    if prompts is not None:
        from linegraph2road.frontends.roadgie import RoadGIEFrontend
        from linegraph2road.inference.interactive import segment_with_prompts

        assert isinstance(segmenter.frontend, RoadGIEFrontend)
        echo(
            f"segmenting {source.shape[1]} x {source.shape[0]} px on {dev} ({prec}) with "
            f"{len(prompts)} prompt(s), {rounds} round(s)"
            + (", topo-semantic instantiation" if instantiate else "")
        )
        return segment_with_prompts(
            segmenter.frontend,
            source,
            prompts,
            rounds=rounds,
            device=dev,
            precision=prec,
            windows=windows,
            instantiate=instantiate,
            progress=progress,
        )
    echo(f"segmenting {source.shape[1]} x {source.shape[0]} px on {dev} ({prec})")
    return segment_image(
        segmenter.frontend,
        source,
        n_windows=windows,
        flips=flips,
        scales=scales,
        refiner=segmenter.refiner,
        device=dev,
        precision=prec,
        progress=progress,
    )


def load_model_gsd(
    checkpoint: PathLike | None, requested: float | None, echo: Callable[[str], None]
) -> float:
    """The GSD to run ``checkpoint`` at: ``requested``, else the one it was trained at."""
    trained = None if checkpoint is None else checkpoint_gsd(checkpoint)
    return model_gsd(requested, trained, echo=echo)


def run_segment(
    image: PathLike,
    output: PathLike,
    options: SegmentOptions,
    *,
    echo: Callable[[str], None] = print,
    checkpoint_sha256: str | None = None,
) -> SegmentResult:
    """Segment ``image`` and write the georeferenced road probability to ``output``.

    Parameters
    ----------
    image, output : path
        Input raster; output GeoTIFF (``.tif``/``.tiff``; PNG when ``options.threshold`` is
        given). The output location is checked before any work.
    options : SegmentOptions
        Checkpoint, front-end, windows, GSD, device, precision, bands, threshold, TTA.
    echo : callable
        Where progress lines go (the CLI passes stderr).
    checkpoint_sha256 : str or None
        As :func:`~linegraph2road.pipelines.extract.run_extract`.

    Returns
    -------
    SegmentResult
    """
    out = Path(output)
    if out.suffix.lower() not in (".tif", ".tiff", ".png"):
        raise FormatError(f"{out.name}: l2r segment writes GeoTIFF (.tif) or PNG (.png)")
    if out.suffix.lower() == ".png" and options.threshold is None:
        raise FormatError("PNG holds 8-bit masks: pass --threshold, or write a .tif")
    check_writable(out)
    segmenter = load_segmenter(
        options.checkpoint, frontend=options.frontend, checkpoint_sha256=checkpoint_sha256
    )
    if not options.all_masks and 1 not in segmenter.frontend.trained_channels:
        raise CheckpointError("this model predicts no road mask")
    said: list[str] = []  # said once the image opened: a bad image stays a one-line error
    gsd = load_model_gsd(options.checkpoint, options.gsd, said.append)
    with RasterSource(image, gsd=gsd) as source:
        check_image_size(segmenter.frontend, source.shape, segmenter.refiner)
        check_segment_windows(segmenter, source.shape, options.windows)
        prompts = load_prompts(segmenter, options, source)
        echo(f"weights: {segmenter.description}")
        for line in said:
            echo(line)
        result = segment_source(
            segmenter,
            source,
            device=options.device,
            precision=options.precision,
            windows=options.windows,
            flips=options.tta,
            scales=options.tta_scales,
            progress=options.progress,
            echo=echo,
            prompts=prompts,
            rounds=options.rounds,
            instantiate=options.instantiate,
        )
    data: np.ndarray = result.masks if options.all_masks else result.road
    if options.threshold is not None:
        data = (data > options.threshold).astype(np.uint8)
    georef = result.georef if out.suffix.lower() != ".png" else None
    if out.suffix.lower() == ".png" and result.georef is not None:
        echo("note: PNG holds no georeference; write a .tif to keep it")
    write_raster(out, data, georef=georef)
    return result
