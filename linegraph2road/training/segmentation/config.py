"""The segmentation training configuration (``task: segmentation``): a front-end alone, trained
with its own paper's recipe, no topology head.

===============  ==============================================================================
section          consumed by
===============  ==============================================================================
``model``        :func:`~.segmentation.build_segmentation_frontend` (``frontend``: ``nl-linknet``,
                 ``fctl``, ``experts`` or ``roadgie``; ``size``, ``window_size``, ``checkpoint``,
                 ``mask_channels``: 1 = road only, the papers' task; 3 = keypoint/road/overpass)
``data``         :func:`~.dataset.find_tiles` (``train``/``val`` sources as in the LineGraph2Road
                 config) and the samples (``crop``, ``rotate``, ``samples_per_tile``, ``cache``,
                 ``workers``)
``optim``        the family's recipe, chosen by ``model.frontend``: :class:`NLLinkNetRecipe`,
                 :class:`FCtLRecipe`, :class:`ExpertsRecipe` or :class:`RoadGIERecipe` (each
                 with its own keys)
``validation``   road IoU at ``threshold`` on the ``val`` tiles (``every`` epochs, at most
                 ``max_tiles`` tiles, ``batch_size`` windows per network call)
top level        ``task: segmentation``, ``seed``, ``device`` (``auto``/``cpu``/``cuda``),
                 ``log_every``
===============  ==============================================================================

Defaults are the papers' values; unknown keys are refused with a
:class:`~linegraph2road.errors.ParameterError` naming the key, as in :mod:`.config` (same reader,
:func:`~.config.build_dataclass`). Read a file with :func:`~.config.load_any_config`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linegraph2road.errors import ParameterError
from linegraph2road.training.config import (
    DataSource,
    absolute_or_none,
    absolute_sources,
    build_dataclass,
    write_config,
)

__all__ = [
    "FAMILIES",
    "ExpertsRecipe",
    "FCtLRecipe",
    "NLLinkNetRecipe",
    "Recipe",
    "RoadGIERecipe",
    "SegmentationConfig",
    "SegmentationData",
    "SegmentationModel",
    "SegmentationValidation",
    "resolve_segmentation",
    "segmentation_config_from_dict",
]

#: Front-end families with a segmentation recipe.
FAMILIES = ("nl-linknet", "fctl", "experts", "roadgie")
LOCATIONS = ("source", "folder")


@dataclass(frozen=True)
class SegmentationModel:
    """Which front-end: family, size, window, pre-trained weights, mask channels.

    ``checkpoint``: NL-LinkNet a torchvision ResNet34 state dict (encoder) or a whole
    NL-LinkNet; FCtL a torchvision VGG16 state dict (conv1-3); either family also a previous
    ``task: segmentation`` checkpoint of the same architecture. Experts train from scratch.
    """

    frontend: str = "nl-linknet"
    size: str = "nl34"
    window_size: int = 1024
    checkpoint: str | None = None
    mask_channels: int = 1


@dataclass(frozen=True)
class SegmentationData:
    """Tiles and samples. ``crop``: NL-LinkNet's training crop (a multiple of 32; None = the
    window); FCtL and experts train on window-sized patches (None or the window).
    ``samples_per_tile``: random crops (patches) per tile per epoch; ``workers``: DataLoader
    processes (NL-LinkNet)."""

    train: list[DataSource] = field(default_factory=list)
    val: list[DataSource] = field(default_factory=list)
    crop: int | None = None
    rotate: bool = True
    samples_per_tile: int = 1
    cache: bool = False
    workers: int = 0


@dataclass(frozen=True)
class NLLinkNetRecipe:
    """Paper 000, III-B: BCE, Adam 3e-4, x0.2 when the loss stalls, batch 8, 180 epochs.

    ``loss``: ``bce`` (paper) or ``dice_bce`` (the authors' code); the plateau keys are
    :class:`~linegraph2road.frontends.nl_linknet.PlateauSchedule`'s (per epoch, on the mean
    training loss)."""

    epochs: int = 180
    batch_size: int = 8
    lr: float = 3e-4
    loss: str = "bce"
    plateau_factor: float = 0.2
    plateau_patience: int = 5
    plateau_stop_patience: int = 8
    min_lr: float = 5e-6


@dataclass(frozen=True)
class FCtLRecipe:
    """Paper 001, 4.2: focal loss gamma 3, Adam 5e-5, poly 0.9 per iteration, mini-batch 6 by
    gradient accumulation, 50 epochs; the refinement network (``refiner_epochs`` > 0) trains on
    the crude masks of the model as it was after ``refiner_from_epoch`` epochs (paper: 20), with
    the same settings, its context 2 windows (paper: 1016 px of 508)."""

    epochs: int = 50
    batch_size: int = 1
    accumulate: int = 6
    lr: float = 5e-5
    weight_decay: float = 0.0
    poly_power: float = 0.9
    focal_gamma: float = 3.0
    refiner_epochs: int = 0
    refiner_from_epoch: int = 20
    refiner_widths: list[int] = field(default_factory=lambda: [16, 32, 64, 128])


@dataclass(frozen=True)
class ExpertsRecipe:
    """Paper 003, 3.2: Adam 1e-4, weight decay 5e-4, poly 0.9, batch 8, 30 epochs, alpha BCE +
    (1 - alpha) soft Jaccard (alpha not stated: 0.5), triplet margin 1.0.

    ``embedding_steps`` / ``expert_steps`` None: ``epochs`` over the crops (the embedding
    network over all crops, each expert over an average cluster's share). ``locations``:
    ``source`` = one location per source image or raster of the tiles, ``folder`` = one per
    ``data.train`` entry; with a single location the paper's "no embedding" model (k = 1) is
    trained instead, and the run says so."""

    epochs: int = 30
    embedding_steps: int | None = None
    expert_steps: int | None = None
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 5e-4
    alpha: float = 0.5
    margin: float = 1.0
    poly_power: float = 0.9
    locations: str = "source"


@dataclass(frozen=True)
class RoadGIERecipe:
    """Paper 004, 5.1: five interaction rounds per batch with 1-3 prompts per round, AdamW
    3e-4, cosine schedule, bf16 on GPU, rotation / flip / contrast / brightness / blur
    augmentation; loss eq. 6 (focal + Dice + skeleton recall on prompt-free pixels).

    Not in the paper (our choices, see :mod:`linegraph2road.frontends.roadgie`): ``epochs``,
    ``batch_size``, ``weight_decay`` (AdamW's default), ``kinds`` (all four, uniform),
    ``center_gamma``, ``expert_tau``, the loss weights (1) and ``focal_gamma`` (2).
    ``expert_guided``: use the tiles' ``{id}_uncertainty.png`` caches (``l2r prep
    uncertainty``) for positive prompts when present. ``exclude``: loss terms computed on
    prompt-free pixels only (paper: ``[skeleton]``). ``precision``: ``auto`` (bf16 on CUDA,
    fp32 on CPU), ``bf16`` or ``fp32``. ``val_rounds``: simulated rounds of the validation."""

    epochs: int = 50
    batch_size: int = 8
    lr: float = 3e-4
    weight_decay: float = 0.01
    rounds: int = 5
    min_prompts: int = 1
    max_prompts: int = 3
    kinds: list[str] = field(default_factory=lambda: ["click", "centre", "line", "bezier"])
    center_gamma: float = 2.0
    expert_tau: float = 0.1
    expert_guided: bool = True
    focal_weight: float = 1.0
    dice_weight: float = 1.0
    skeleton_weight: float = 1.0
    focal_gamma: float = 2.0
    exclude: list[str] = field(default_factory=lambda: ["skeleton"])
    augment: bool = True
    precision: str = "auto"
    val_rounds: int = 5


Recipe = NLLinkNetRecipe | FCtLRecipe | ExpertsRecipe | RoadGIERecipe
_RECIPES: dict[str, type[Any]] = {
    "nl-linknet": NLLinkNetRecipe,
    "fctl": FCtLRecipe,
    "experts": ExpertsRecipe,
    "roadgie": RoadGIERecipe,
}


@dataclass(frozen=True)
class SegmentationValidation:
    """Road IoU (``sigmoid >= threshold`` against the road mask, pixels of all tiles pooled)
    every ``every`` epochs (0: only at the end) on at most ``max_tiles`` val tiles."""

    every: int = 1
    max_tiles: int | None = None
    threshold: float = 0.5
    batch_size: int = 4


@dataclass(frozen=True)
class SegmentationConfig:
    """The whole segmentation training configuration (see the module docstring)."""

    task: str = "segmentation"
    model: SegmentationModel = field(default_factory=SegmentationModel)
    data: SegmentationData = field(default_factory=SegmentationData)
    optim: Recipe = field(default_factory=NLLinkNetRecipe)
    validation: SegmentationValidation = field(default_factory=SegmentationValidation)
    seed: int = 0
    device: str = "auto"
    log_every: int = 10

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-ready dict of every value."""
        return dataclasses.asdict(self)


def _positive(key: str, value: int | float | None, *, allow_zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        need = ">= 0" if allow_zero else "> 0"
        raise ParameterError(f"config key '{key}' must be {need}, got {value}")


def _check(config: SegmentationConfig) -> None:
    m, d, o, v = config.model, config.data, config.optim, config.validation
    if m.mask_channels not in (1, 3):
        raise ParameterError(
            f"model.mask_channels must be 1 (road only, the papers' task) or 3 (keypoint, road, "
            f"overpass), got {m.mask_channels}"
        )
    if m.frontend == "experts" and m.checkpoint is not None:
        raise ParameterError(
            "model.checkpoint must be null for experts: their recipe trains the embedding "
            "network and every expert from scratch"
        )
    multiple = 4 if m.frontend == "fctl" else 32
    if m.frontend == "roadgie":
        multiple = _roadgie_multiple(m.size)
        if m.mask_channels != 1:
            raise ParameterError("model.mask_channels must be 1 for roadgie (road only)")
    if m.window_size <= 0 or m.window_size % multiple:
        raise ParameterError(
            f"model.window_size must be a positive multiple of {multiple} for {m.frontend}, got "
            f"{m.window_size}"
        )
    if d.crop is not None:
        if m.frontend in ("nl-linknet", "roadgie") and (d.crop <= 0 or d.crop % multiple):
            raise ParameterError(
                f"data.crop must be a positive multiple of {multiple}, got {d.crop}"
            )
        if m.frontend not in ("nl-linknet", "roadgie") and d.crop != m.window_size:
            raise ParameterError(
                f"{m.frontend} trains on window-sized patches: data.crop must be null or "
                f"{m.window_size} (model.window_size), got {d.crop}"
            )
    _positive("data.samples_per_tile", d.samples_per_tile)
    _positive("data.workers", d.workers, allow_zero=True)
    _positive("optim.epochs", o.epochs)
    _positive("optim.batch_size", o.batch_size)
    _positive("optim.lr", o.lr)
    if isinstance(o, NLLinkNetRecipe) and o.loss not in ("bce", "dice_bce"):
        raise ParameterError(f"optim.loss must be bce or dice_bce, got {o.loss!r}")
    if isinstance(o, FCtLRecipe):
        _positive("optim.accumulate", o.accumulate)
        _positive("optim.refiner_epochs", o.refiner_epochs, allow_zero=True)
        _positive("optim.refiner_from_epoch", o.refiner_from_epoch, allow_zero=True)
        if len(o.refiner_widths) < 2 or min(o.refiner_widths) <= 0:
            raise ParameterError(
                f"optim.refiner_widths needs >= 2 positive widths, got {o.refiner_widths}"
            )
    if isinstance(o, ExpertsRecipe):
        _positive("optim.embedding_steps", o.embedding_steps)
        _positive("optim.expert_steps", o.expert_steps)
        if not 0.0 <= o.alpha <= 1.0:
            raise ParameterError(f"optim.alpha must be in [0, 1], got {o.alpha}")
        if o.locations not in LOCATIONS:
            raise ParameterError(
                f"optim.locations must be one of {', '.join(LOCATIONS)}, got {o.locations!r}"
            )
    if isinstance(o, RoadGIERecipe):
        _check_roadgie(o)
    _positive("validation.every", v.every, allow_zero=True)
    _positive("validation.max_tiles", v.max_tiles)
    _positive("validation.batch_size", v.batch_size)
    if not 0.0 < v.threshold < 1.0:
        raise ParameterError(f"validation.threshold must be in (0, 1), got {v.threshold}")
    _positive("log_every", config.log_every)


def _roadgie_multiple(size: str) -> int:
    from linegraph2road.frontends.roadgie.model import ROADGIE_SIZES

    if size not in ROADGIE_SIZES:
        raise ParameterError(
            f"model.size must be one of {sorted(ROADGIE_SIZES)} for roadgie, got {size!r}"
        )
    return ROADGIE_SIZES[size].multiple


def _check_roadgie(o: RoadGIERecipe) -> None:
    from linegraph2road.frontends.roadgie.simulation import SIMULATED_KINDS, SimulationSettings

    _positive("optim.rounds", o.rounds)
    _positive("optim.val_rounds", o.val_rounds)
    if not o.kinds or not set(o.kinds) <= set(SIMULATED_KINDS):
        raise ParameterError(f"optim.kinds must be some of {list(SIMULATED_KINDS)}, got {o.kinds}")
    SimulationSettings(
        kinds=tuple(o.kinds), min_prompts=o.min_prompts, max_prompts=o.max_prompts,
        center_gamma=o.center_gamma, expert_tau=o.expert_tau,
    )  # fmt: skip
    if not set(o.exclude) <= {"focal", "dice", "skeleton"}:
        raise ParameterError(f"optim.exclude takes focal, dice, skeleton; got {o.exclude}")
    if o.precision not in ("auto", "bf16", "fp32"):
        raise ParameterError(f"optim.precision must be auto, bf16 or fp32, got {o.precision!r}")
    if min(o.focal_weight, o.dice_weight, o.skeleton_weight, o.weight_decay) < 0:
        raise ParameterError("optim loss weights and weight_decay must be >= 0")


def segmentation_config_from_dict(data: dict[str, Any] | None) -> SegmentationConfig:
    """Build a :class:`SegmentationConfig` from nested plain values; unknown keys are errors.

    The ``optim`` section is read with the recipe of ``model.frontend``; a key of another
    family's recipe is an unknown key.

    Raises
    ------
    ParameterError
        An unknown key (named with its dotted path), a wrong type or an invalid value.
    """
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ParameterError(f"a training config must be a mapping, got {type(data).__name__}")
    if data.get("task", "segmentation") != "segmentation":
        raise ParameterError(f"not a segmentation config (task: {data.get('task')!r})")
    rest = {k: v for k, v in data.items() if k != "optim"}
    config: SegmentationConfig = build_dataclass(SegmentationConfig, rest)
    family = config.model.frontend
    if family not in _RECIPES:
        raise ParameterError(
            f"model.frontend must be one of {', '.join(FAMILIES)} for task: segmentation, got "
            f"{family!r}"
        )
    cls = _RECIPES[family]
    optim = data.get("optim") or {}
    if not isinstance(optim, dict):
        raise ParameterError(f"config key 'optim' must be a mapping, got {optim!r}")
    names = [f.name for f in dataclasses.fields(cls)]
    for key in optim:
        if key not in names:
            raise ParameterError(
                f"unknown config key 'optim.{key}' for the {family} recipe (known keys here: "
                f"{', '.join(names)})"
            )
    config = dataclasses.replace(config, optim=build_dataclass(cls, optim, "optim."))
    _check(config)
    return config


def resolved_segmentation(config: SegmentationConfig) -> SegmentationConfig:
    """``config`` with ``data.crop`` filled in and every path absolute (a new object)."""
    data = dataclasses.replace(
        config.data,
        train=absolute_sources(config.data.train),
        val=absolute_sources(config.data.val),
        crop=config.data.crop if config.data.crop is not None else config.model.window_size,
    )
    model = dataclasses.replace(config.model, checkpoint=absolute_or_none(config.model.checkpoint))
    return dataclasses.replace(config, data=data, model=model)


def resolve_segmentation(
    config: SegmentationConfig, out_dir: str | Path | None = None
) -> SegmentationConfig:
    """The resolved config (:func:`resolved_segmentation`); also written as
    ``out_dir/config.yaml`` (atomically) when ``out_dir`` is given."""
    out = resolved_segmentation(config)
    if out_dir is not None:
        write_config(out.to_dict(), out_dir)
    return out
