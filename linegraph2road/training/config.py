"""The training configuration: a YAML file mapped onto a tree of dataclasses.

Each section maps onto the signature that consumes it; nothing here is global and no component
reads the YAML itself (STYLE.md, "Parameters and configuration"):

===============  ==============================================================================
section          consumed by
===============  ==============================================================================
``model``        :func:`~linegraph2road.model.build_model` (``size``, ``frontend``,
                 ``window_size``, ``sam_checkpoint``, ``overpass``; ``head`` =
                 :class:`TopologyHead` keywords)
``data``         :func:`~.dataset.find_tiles` (``train``/``val`` sources: ``labels``, ``images``,
                 ``split``) and :class:`~.dataset.TileDataset` (``crop``, ``rotate``,
                 ``samples_per_tile``, ``cache``)
``optim``        :class:`~.trainer.Trainer` (Adam ``lr``, ``encoder_lr_factor``; MultiStepLR
                 ``milestones`` in epochs, ``gamma``; ``epochs``, ``batch_size``, ``lambda_edge``)
``validation``   :func:`linegraph2road.inference.extract_graph` thresholds and radii, plus how
                 often and on how many tiles
top level        ``seed``, ``device`` (``auto``/``cpu``/``cuda``), ``precision``
                 (``auto``/``fp32``/``bf16``), ``log_every``
===============  ==============================================================================

:func:`load_config` reads a YAML file (or a packaged config by name, see :func:`config_path`),
applies ``--set key=value`` overrides (dotted keys, YAML values) and refuses unknown keys with a
:class:`~linegraph2road.errors.ParameterError` naming the key. :func:`resolve` fills the
defaults that depend on other values and writes the resolved config (``config.yaml``) next to the
outputs; checkpoints store the same dict. Relative paths are relative to the working directory
and are stored absolute.

Two kinds of config share this machinery, told apart by the top-level key ``task``:
``linegraph2road`` (the default when absent: this module's :class:`TrainConfig`) and
``segmentation`` (a front-end alone with its paper's recipe:
:class:`~.segmentation.config.SegmentationConfig`). :func:`load_any_config` returns either;
:func:`load_config` only the first.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from linegraph2road.errors import InputFileError, ParameterError
from linegraph2road.io._atomic import atomic_path

if TYPE_CHECKING:
    from linegraph2road.training.segmentation.config import SegmentationConfig

__all__ = [
    "TASKS",
    "DataConfig",
    "DataSource",
    "ModelConfig",
    "OptimConfig",
    "TrainConfig",
    "ValidationConfig",
    "absolute_path",
    "absolute_sources",
    "build_dataclass",
    "config_from_dict",
    "config_path",
    "config_task",
    "load_any_config",
    "load_config",
    "packaged_configs",
    "read_config_data",
    "resolve",
    "write_config",
]

#: Values of the top-level ``task`` key: what a config trains.
TASKS = ("linegraph2road", "segmentation")


def _config_dir() -> Path:
    """``linegraph2road/pipelines/configs`` wherever the package is installed."""
    from importlib.resources import files

    return Path(str(files("linegraph2road.pipelines") / "configs"))


@dataclass(frozen=True)
class ModelConfig:
    """:func:`~linegraph2road.model.build_model` arguments (``head``: TopologyHead keywords;
    ``overpass: false``: the paper's non-overpass variant, keypoint and road heads only, no
    overpass term in the loss and no overpass mask in coupled NMS; SAM front-end)."""

    size: str = "vit_b"
    frontend: str = "sam"
    window_size: int = 512
    sam_checkpoint: str | None = None
    overpass: bool = True
    head: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSource:
    """One ``l2r prep`` output folder; ``images`` is where its image paths point (default: the
    labels folder); ``split`` keeps only that split's tiles (None: all)."""

    labels: str
    images: str | None = None
    split: str | None = None


@dataclass(frozen=True)
class DataConfig:
    """Training and validation tiles and augmentation (``crop`` None = the model window;
    ``samples_per_tile`` random windows per tile per epoch; ``workers`` DataLoader processes;
    ``gsd`` metres per pixel of the tiles, None = as ``l2r prep`` recorded it: stored in every
    checkpoint, and ``l2r extract`` resamples images to it)."""

    train: list[DataSource] = field(default_factory=list)
    val: list[DataSource] = field(default_factory=list)
    crop: int | None = None
    rotate: bool = True
    samples_per_tile: int = 1
    cache: bool = False
    workers: int = 0
    gsd: float | None = None


@dataclass(frozen=True)
class OptimConfig:
    """Adam with the encoder at ``lr * encoder_lr_factor``; MultiStepLR at ``milestones``
    (epochs) by ``gamma``; loss ``mask + lambda_edge * edge`` (paper section 4.3; equation 4).

    Defaults are the paper's City-scale / SpaceNet values: 10 epochs "consistent with SAM-Road",
    whose schedule multiplies the rates by 0.1 after epoch 9 (``MultiStepLR(milestones=[9])``
    in its ``model.py``); Global-scale: 20 epochs, ``milestones: [10]``."""

    lr: float = 1e-3
    encoder_lr_factor: float = 0.05
    epochs: int = 10
    milestones: list[int] = field(default_factory=lambda: [9])
    gamma: float = 0.1
    batch_size: int = 4
    lambda_edge: float = 0.1


@dataclass(frozen=True)
class ValidationConfig:
    """Per-epoch validation: ``extract_graph`` thresholds/radii, then TOPO and APLS.

    ``every`` epochs (0: never); at most ``max_tiles`` tiles (None: all); ``layout``: the
    extraction's window layout (``auto``, or ``sam-road``: SAM-Road's 16 x 16 with a 64 px
    margin); ``n_windows`` per side (None: the layout's default); ``nms``: ``coupled`` or
    ``plain`` (SAM-Road's, Table 4); ``apls_small_tiles``: Sat2Graph APLS small-tile mode;
    ``select_thresholds`` (default true): select ``t_k``, ``t_r``, ``t_topo`` on the validation
    tiles at every validation (SAM-Road's best-F1 rule), extract with them and store them in
    the checkpoints; the configured ``t_k``, ``t_r``, ``t_topo`` are then the fallback (and
    what checkpoints record when nothing is selected).
    """

    every: int = 1
    max_tiles: int | None = None
    t_k: float = 0.248
    t_r: float = 0.364
    t_topo: float = 0.5
    d_k: float = 8.0
    d_r: float = 16.0
    d_nei: float = 64.0
    n_windows: int | None = None
    layout: str = "auto"
    nms: str = "coupled"
    apls_small_tiles: bool = False
    select_thresholds: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """The whole training configuration (see the module docstring)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    log_every: int = 10

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-ready dict of every value."""
        return dataclasses.asdict(self)


# -- reading -------------------------------------------------------------------------------------
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key)
            except ParameterError as exc:
                errors.append(str(exc))
        raise ParameterError(errors[0] if errors else f"config key '{key}' cannot be {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        values = value if isinstance(value, list | tuple) else [value]
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(values)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ParameterError(f"config key '{key}' must be a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if tp is DataSource and isinstance(value, str | os.PathLike):
            value = {"labels": os.fspath(value)}
        if not isinstance(value, dict):
            raise ParameterError(f"config key '{key}' must be a mapping, got {value!r}")
        return _build(tp, value, f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
    elif tp is Any:
        return value
    raise ParameterError(f"config key '{key}' must be {_type_name(tp)}, got {value!r}")


def _build(cls: Any, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            raise ParameterError(
                f"unknown config key '{prefix}{key}' (known keys here: {', '.join(names)})"
            )
    return cls(**{k: _coerce(v, hints[k], f"{prefix}{k}") for k, v in data.items()})


def build_dataclass(cls: Any, data: dict[str, Any], prefix: str = "") -> Any:
    """``cls(**data)`` for a config dataclass, every value checked against its annotation.

    The strict reader behind every config section (also the segmentation config's): nested
    dataclasses are built from mappings, ``DataSource`` also from a path string.

    Raises
    ------
    ParameterError
        A key ``cls`` does not have (named as ``prefix + key``, with the known keys) or a value
        of the wrong type.
    """
    if not isinstance(data, dict):
        raise ParameterError(f"config section '{prefix.rstrip('.')}' must be a mapping")
    return _build(cls, data, prefix)


def _check_head(head: dict[str, Any]) -> None:
    from linegraph2road.model import TopologyHead

    params = inspect.signature(TopologyHead.__init__).parameters
    for key in head:
        if key not in params or key == "self":
            known = ", ".join(p for p in params if p != "self")
            raise ParameterError(f"unknown config key 'model.head.{key}' (known: {known})")


def config_from_dict(data: dict[str, Any] | None) -> TrainConfig:
    """Build a :class:`TrainConfig` from nested plain values; unknown keys are errors.

    Raises
    ------
    ParameterError
        An unknown key (named with its dotted path) or a value of the wrong type.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParameterError(f"a training config must be a mapping, got {type(data).__name__}")
    task = config_task(data)
    if task != "linegraph2road":
        raise ParameterError(
            f"this is a {task} config (task: {task}); read it with load_any_config"
        )
    data = {k: v for k, v in data.items() if k != "task"}
    config: TrainConfig = _build(TrainConfig, data)
    _check_head(config.model.head)
    from linegraph2road.inference.extract import NMS_MODES
    from linegraph2road.inference.windows import WINDOW_LAYOUTS

    if config.validation.nms not in NMS_MODES:
        raise ParameterError(
            f"validation.nms must be one of {', '.join(NMS_MODES)}, got {config.validation.nms!r}"
        )
    if config.validation.layout not in WINDOW_LAYOUTS:
        raise ParameterError(
            f"validation.layout must be one of {', '.join(WINDOW_LAYOUTS)}, got "
            f"{config.validation.layout!r}"
        )
    if config.precision not in ("auto", "fp32", "bf16"):
        raise ParameterError(f"precision must be auto, fp32 or bf16, got {config.precision!r}")
    return config


def packaged_configs() -> list[str]:
    """Names of the configs shipped in ``linegraph2road/pipelines/configs``."""
    return sorted(p.stem for p in _config_dir().glob("*.yaml"))


def config_path(name: str | os.PathLike[str]) -> Path:
    """A config file path, or a packaged config by name (``"cityscale"``, ``"tiny_cpu.yaml"``)."""
    p = Path(name)
    if p.is_file():
        return p
    packaged = _config_dir() / (p.name if p.suffix == ".yaml" else f"{p.name}.yaml")
    if p.parent == Path(".") and packaged.is_file():
        return packaged
    raise InputFileError(
        f"config not found: {p} (packaged configs: {', '.join(packaged_configs())})"
    )


def _apply_override(data: dict[str, Any], item: str) -> None:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ParameterError(f"--set expects KEY=VALUE (e.g. optim.lr=1e-4), got {item!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ParameterError(f"--set {key}: value {raw!r} is not YAML ({exc})") from exc
    node = data
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ParameterError(f"--set {key}: '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def config_task(data: dict[str, Any]) -> str:
    """The ``task`` of a config mapping (``"linegraph2road"`` when absent).

    Raises
    ------
    ParameterError
        A task other than those in :data:`TASKS`.
    """
    task = data.get("task", "linegraph2road")
    if task not in TASKS:
        raise ParameterError(f"config key 'task' must be one of {', '.join(TASKS)}, got {task!r}")
    return str(task)


def read_config_data(
    path: str | os.PathLike[str], *, overrides: list[str] | tuple[str, ...] = ()
) -> dict[str, Any]:
    """The plain mapping of a YAML config (file or packaged name) with overrides applied.

    Raises
    ------
    InputFileError
        The file does not exist.
    ParameterError
        Not YAML, not a mapping, or a malformed override.
    """
    p = config_path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ParameterError(f"{p}: not a readable YAML config ({exc})") from exc
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ParameterError(f"{p}: a training config must be a YAML mapping")
    for item in overrides:
        _apply_override(data, item)
    return data


def load_config(
    path: str | os.PathLike[str], *, overrides: list[str] | tuple[str, ...] = ()
) -> TrainConfig:
    """Read a YAML training config and apply ``KEY=VALUE`` overrides (dotted keys).

    Parameters
    ----------
    path : path
        A YAML file, or the name of a packaged config (:func:`packaged_configs`).
    overrides : sequence of str
        ``"optim.lr=1e-4"``, ``"data.train=labels/train"``... values parsed as YAML.

    Raises
    ------
    InputFileError
        The file does not exist.
    ParameterError
        Not YAML, not a mapping, an unknown key, a wrong value type, or a config of another
        ``task`` (see :func:`load_any_config`).
    """
    return config_from_dict(read_config_data(path, overrides=overrides))


def load_any_config(
    path: str | os.PathLike[str], *, overrides: list[str] | tuple[str, ...] = ()
) -> TrainConfig | SegmentationConfig:
    """Read a config of either task: a :class:`TrainConfig` or a ``SegmentationConfig``.

    ``task: segmentation`` gives a :class:`~.segmentation.config.SegmentationConfig`; no
    ``task`` (or ``task: linegraph2road``) a :class:`TrainConfig`. Same errors as
    :func:`load_config`.
    """
    data = read_config_data(path, overrides=overrides)
    if config_task(data) == "segmentation":
        from linegraph2road.training.segmentation.config import segmentation_config_from_dict

        return segmentation_config_from_dict(data)
    return config_from_dict(data)


def absolute_path(path: str) -> str:
    """``path`` made absolute (``~`` expanded, symlinks resolved), as stored in resolved configs."""
    return str(Path(path).expanduser().resolve())


def absolute_or_none(path: str | None) -> str | None:
    """:func:`absolute_path` of ``path``, None kept."""
    return None if path is None else absolute_path(path)


def absolute_sources(sources: list[DataSource]) -> list[DataSource]:
    """Data sources with absolute ``labels`` and ``images`` folders (new objects)."""
    return [
        dataclasses.replace(s, labels=absolute_path(s.labels), images=absolute_or_none(s.images))
        for s in sources
    ]


def resolved(config: TrainConfig) -> TrainConfig:
    """``config`` with ``data.crop`` filled in and every path absolute (a new object)."""

    data = dataclasses.replace(
        config.data,
        train=absolute_sources(config.data.train),
        val=absolute_sources(config.data.val),
        crop=config.data.crop if config.data.crop is not None else config.model.window_size,
    )
    model = dataclasses.replace(
        config.model, sam_checkpoint=absolute_or_none(config.model.sam_checkpoint)
    )
    return dataclasses.replace(config, data=data, model=model)


def resolve(config: TrainConfig, out_dir: str | os.PathLike[str] | None = None) -> TrainConfig:
    """The resolved config (:func:`resolved`); also written as ``out_dir/config.yaml``.

    The file is written atomically and holds every value, defaults included, so a run can be
    repeated from it alone (``l2r train OUT/config.yaml``).
    """
    out = resolved(config)
    if out_dir is not None:
        write_config(out.to_dict(), out_dir)
    return out


def write_config(data: dict[str, Any], out_dir: str | os.PathLike[str]) -> Path:
    """Write a resolved config mapping as ``out_dir/config.yaml``, atomically; return the path."""
    path = Path(out_dir) / "config.yaml"
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
