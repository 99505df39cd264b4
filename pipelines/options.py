"""The options of ``l2r extract`` and ``l2r segment``, each one typed, frozen object.

The CLI builds an :class:`ExtractOptions` or :class:`SegmentOptions`, the pipeline reads it,
and anything that runs a pipeline elsewhere (another process, a worker) ships the same object.
Values are checked in ``__post_init__``, so a bad value is refused before any file is opened.

Ground sampling distance
------------------------
A checkpoint records the GSD (metres per pixel) of the tiles it was trained on (``l2r prep``
writes labels at the model's GSD, ``l2r train`` stores it). :func:`model_gsd` picks the GSD an
image is resampled to: ``gsd`` when given (with a warning when it differs from the trained one:
roads then have another width in pixels than the model learned), else the checkpoint's, else
1 m/px (older checkpoints that record none, said in a note).

Thresholds
----------
A checkpoint records the keypoint, road and topology thresholds of the topology method
(:func:`~linegraph2road.frontends.checkpoint.checkpoint_thresholds`: selected by ``l2r train``'s
validation or ``l2r thresholds``, else its training config's). :func:`resolve_thresholds` picks
each one: ``--t-k`` / ``--t-r`` / ``--t-topo`` when given, else the checkpoint's, else
:data:`DEFAULT_THRESHOLDS`, and says which it used.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from linegraph2road.errors import ParameterError

__all__ = [
    "DEFAULT_GSD",
    "DEFAULT_THRESHOLDS",
    "NMS_MODES",
    "PRECISIONS",
    "WINDOW_LAYOUTS",
    "ExtractOptions",
    "ModelOptions",
    "SegmentOptions",
    "model_gsd",
    "resolve_thresholds",
]

PathLike = str | os.PathLike[str]

#: GSD used when neither the user nor the checkpoint gives one, m/px (the benchmarks' GSD).
DEFAULT_GSD = 1.0
#: Network precisions.
PRECISIONS = ("fp32", "bf16")
#: Thresholds when neither the user nor the checkpoint gives them: SAM-Road's City-scale values
#: (SPEC.md "Model"; nms.DEFAULT_T_K / DEFAULT_T_R and extract_graph's t_topo, a test checks).
DEFAULT_THRESHOLDS = {"t_k": 0.248, "t_r": 0.364, "t_topo": 0.5}
#: Window layouts of ``l2r extract`` (:mod:`linegraph2road.inference.windows`; spelled out here
#: so that building options does not import torch, a test keeps them equal).
WINDOW_LAYOUTS = ("auto", "sam-road")
#: Vertex extraction of ``l2r extract`` (:data:`linegraph2road.inference.extract.NMS_MODES`).
NMS_MODES = ("coupled", "plain")
#: Relative GSD difference below which a requested GSD counts as the trained one.
GSD_WARN_TOLERANCE = 0.01


def _unit_interval(name: str, value: float | None, *, open_top: bool = True) -> None:
    if value is None:
        return
    top_ok = value < 1.0 if open_top else value <= 1.0
    if not (math.isfinite(value) and value >= 0.0 and top_ok):
        raise ParameterError(f"{name} must be in [0, 1{')' if open_top else ']'}, got {value}")


@dataclass(frozen=True)
class ModelOptions:
    """What every command that runs a trained model takes.

    Attributes
    ----------
    checkpoint : str or None
        l2r checkpoint (``.safetensors`` from ``l2r train``); None is refused when run.
    frontend : str or None
        Front-end family the checkpoint must hold (``sam``, ``nl-linknet``, ``fctl``,
        ``experts``, ``roadgie``); None = whatever it holds.
    windows : int or None
        Sliding windows per axis; None = the fewest that cover the image with enough overlap.
    gsd : float or None
        Metres per pixel the image is resampled to; None = the checkpoint's training GSD
        (:func:`model_gsd`).
    device : str
        ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:N``.
    precision : {"fp32", "bf16"} or None
        None = bf16 on CUDA, fp32 on CPU.
    progress : bool
        Progress bars on stderr.
    prompts : str or None
        GeoJSON of clicks and scribbles (:func:`~linegraph2road.prompts.read_prompts`: lon/lat,
        the raster's CRS, or pixels of the processed image) for a RoadGIE checkpoint; None = no
        prompts (RoadGIE's prompt-free first round).
    rounds : int
        RoadGIE interaction rounds with ``prompts``, each fed the previous round's mask.
    instantiate : bool
        RoadGIE topo-semantic instantiation of the final mask (keeps the roads the prompts
        point at); needs ``prompts``.
    """

    checkpoint: str | None = None
    frontend: str | None = None
    windows: int | None = None
    gsd: float | None = None
    device: str = "auto"
    precision: str | None = None
    progress: bool = False
    prompts: str | None = None
    rounds: int = 1
    instantiate: bool = False

    def __post_init__(self) -> None:
        if self.windows is not None and (isinstance(self.windows, bool) or self.windows < 1):
            raise ParameterError(f"windows must be a positive integer, got {self.windows!r}")
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds < 1:
            raise ParameterError(f"rounds must be an integer >= 1, got {self.rounds!r}")
        if self.prompts is None and (self.rounds > 1 or self.instantiate):
            what = "--rounds" if self.rounds > 1 else "--instantiate"
            raise ParameterError(f"{what} needs --prompts (a GeoJSON of clicks and scribbles)")
        if self.gsd is not None and not (math.isfinite(self.gsd) and self.gsd > 0):
            raise ParameterError(f"gsd must be a positive number of m/px, got {self.gsd}")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ParameterError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")


@dataclass(frozen=True)
class SegmentOptions(ModelOptions):
    """``l2r segment``: :class:`ModelOptions` plus what the mask output needs.

    Attributes
    ----------
    all_masks : bool
        Write keypoint, road and overpass bands instead of the road band alone.
    threshold : float or None
        Write a binary 0/1 mask of ``probability > threshold`` instead of probabilities.
    tta : bool
        Average over the 8 flips/rotations (NL-LinkNet's test-time augmentation).
    tta_scales : tuple of float
        Scales of the test-time augmentation (``(1.0,)``: none).
    """

    all_masks: bool = False
    threshold: float | None = None
    tta: bool = False
    tta_scales: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        super().__post_init__()
        _unit_interval("--threshold", self.threshold)
        if not self.tta_scales or any(not (math.isfinite(s) and s > 0) for s in self.tta_scales):
            raise ParameterError(f"TTA scales must be positive, got {self.tta_scales}")


@dataclass(frozen=True)
class ExtractOptions(ModelOptions):
    """``l2r extract``: :class:`ModelOptions` plus the graph method's parameters.

    Attributes
    ----------
    sam_checkpoint : str or None
        Official SAM ``.pth``, only checked against the model size.
    out_format : str or None
        Output graph format; None = from the output's extension.
    save_masks : str or None
        Folder for the probability GeoTIFFs.
    t_k, t_r, t_topo : float or None
        Keypoint, road and topology thresholds (topology method); None = the checkpoint's
        (selected on validation tiles), else :data:`DEFAULT_THRESHOLDS` (SAM-Road's City-scale
        0.248, 0.364, 0.5); see :func:`resolve_thresholds`.
    d_k, d_r, d_nei : float or None
        NMS radii and candidate radius, px; None = 8, 16, 64.
    road_threshold : float
        mask2graph method: road probability threshold.
    mask2graph : mapping
        mask2graph method: other :func:`~linegraph2road.mask2graph.mask_to_graph` keywords
        (``min_spur_length``...).
    tta : bool
        mask2graph method: 8-flip test-time augmentation.
    layout : {"auto", "sam-road"}
        Topology method: the window layout. ``"auto"`` (default): the fewest windows with
        overlap > d_nei (5 x 5 on 2048 px; ``windows`` overrides the count). ``"sam-road"``:
        SAM-Road's layout behind the paper's City-scale / Global-scale numbers, 16 x 16 windows
        (``windows`` overrides the 16) with a 64 px uncovered margin.
    nms : {"coupled", "plain"}
        Topology method: the paper's coupled NMS (Algorithm 1, default) or SAM-Road's plain
        NMS (the "w/ NMS" rows of Table 4; memory grows with the image area).
    """

    sam_checkpoint: str | None = None
    out_format: str | None = None
    save_masks: str | None = None
    t_k: float | None = None
    t_r: float | None = None
    t_topo: float | None = None
    d_k: float | None = None
    d_r: float | None = None
    d_nei: float | None = None
    road_threshold: float = 0.5
    mask2graph: Mapping[str, Any] = field(default_factory=dict)
    tta: bool = False
    layout: str = "auto"
    nms: str = "coupled"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layout not in WINDOW_LAYOUTS:
            raise ParameterError(
                f"layout must be one of {', '.join(WINDOW_LAYOUTS)}, got {self.layout!r}"
            )
        if self.nms not in NMS_MODES:
            raise ParameterError(f"nms must be one of {', '.join(NMS_MODES)}, got {self.nms!r}")
        for name in ("t_k", "t_r", "t_topo"):
            _unit_interval(f"--{name.replace('_', '-')}", getattr(self, name))
        _unit_interval("--road-threshold", self.road_threshold)
        for name in ("d_k", "d_r", "d_nei"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ParameterError(f"{name} must be a positive number of pixels, got {value}")

    def thresholds(self) -> dict[str, float]:
        """The topology method's thresholds and radii that were given (the rest: defaults)."""
        names = ("t_k", "t_r", "t_topo", "d_k", "d_r", "d_nei")
        return {n: float(getattr(self, n)) for n in names if getattr(self, n) is not None}


def model_gsd(
    requested: float | None,
    trained: float | None,
    *,
    echo: Callable[[str], None] = print,
) -> float:
    """The GSD to run a model at (see the module docstring); says what it chose when notable.

    Parameters
    ----------
    requested : float or None
        ``--gsd``; None = the trained GSD.
    trained : float or None
        The checkpoint's training GSD (None: not recorded).
    echo : callable
        Receives one ``note:`` or ``warning:`` line.
    """
    if requested is None:
        if trained is None:
            echo(
                f"note: the checkpoint records no training GSD; images are resampled to "
                f"{DEFAULT_GSD:g} m/px (set --gsd to change)"
            )
            return DEFAULT_GSD
        return float(trained)
    if trained is not None and abs(requested / trained - 1.0) > GSD_WARN_TOLERANCE:
        echo(
            f"warning: --gsd {requested:g} m/px differs from the {trained:g} m/px the model was "
            "trained at: roads will look wider or narrower than it learned, and fewer may be found"
        )
    return float(requested)


def resolve_thresholds(
    options: ExtractOptions, stored: Mapping[str, Any] | None
) -> tuple[dict[str, float], str]:
    """The keypoint, road and topology thresholds an extraction uses, and where each came from.

    Parameters
    ----------
    options : ExtractOptions
        ``t_k``, ``t_r``, ``t_topo``: None = not given.
    stored : mapping or None
        :func:`~linegraph2road.frontends.checkpoint.checkpoint_thresholds` of the checkpoint
        (``t_k``, ``t_r``, ``t_topo``, ``source``), or None.

    Returns
    -------
    (dict, str)
        ``{"t_k", "t_r", "t_topo"}`` and one line for the user, e.g. ``"thresholds: t_k 0.195,
        t_r 0.341 (checkpoint: selected on 12 tile(s), 48 window(s), best F1); t_topo 0.6
        (--t-topo)"``.
    """
    values: dict[str, float] = {}
    origin: dict[str, str] = {}
    for name, default in DEFAULT_THRESHOLDS.items():
        given = getattr(options, name)
        if given is not None:
            values[name], origin[name] = float(given), f"--{name.replace('_', '-')}"
        elif stored is not None and stored.get(name) is not None:
            values[name], origin[name] = float(stored[name]), f"checkpoint: {stored['source']}"
        else:
            values[name], origin[name] = default, "defaults: SAM-Road's City-scale values"
    groups: dict[str, list[str]] = {}
    for name, where in origin.items():
        groups.setdefault(where, []).append(f"{name} {values[name]:g}")
    line = "; ".join(f"{', '.join(v)} ({where})" for where, v in groups.items())
    return values, f"thresholds: {line}"
