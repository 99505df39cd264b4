"""Experts checkpoints: the embedding network, the centroids and the k experts in one file.

Layout: a safetensors file whose tensors are the :class:`ExpertsFrontend` state dict
(``embedder.*``, ``centroids`` ``(k, E)``, ``experts.{i}.*``) and whose metadata holds

* ``format = "l2r-experts"``, ``format_version = "1"``;
* ``config``: JSON ``{"size", "k", "window_size", "routing", "seed", "clusters"}`` (``clusters``
  = training images per cluster, informative), plus any ``extra`` the caller adds.

Written atomically (temporary file + rename). :func:`load_experts` also reads an l2r model
checkpoint (``format = "linegraph2road"``) whose front-end is ``experts`` (its ``frontend.*``
tensors), and refuses anything else with one :class:`~linegraph2road.errors.CheckpointError`
line, e.g. ``experts checkpoint m.safetensors has 3 clusters but expert 2 is missing``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from linegraph2road.errors import CheckpointError, InputFileError, ParameterError
from linegraph2road.frontends.experts.model import ExpertsFrontend, parse_size
from linegraph2road.io._atomic import atomic_path

__all__ = [
    "EXPERTS_FORMAT",
    "build_experts",
    "load_experts",
    "read_experts_config",
    "save_experts",
]

EXPERTS_FORMAT = "l2r-experts"
EXPERTS_VERSION = "1"
_MODEL_FORMAT = "linegraph2road"  # l2r model checkpoints (linegraph2road.model)


def save_experts(
    frontend: ExpertsFrontend,
    path: str | os.PathLike[str],
    *,
    clusters: list[int] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``frontend`` (embedding net, centroids, experts) to ``path`` atomically.

    Parameters
    ----------
    frontend : ExpertsFrontend
    path : path
        Output ``.safetensors`` file.
    clusters : list of int or None
        Training images per cluster, stored for information.
    extra : dict or None
        More JSON-serialisable metadata (e.g. the training recipe's parameters).

    Returns
    -------
    Path
    """
    config = {
        "size": frontend.spec.name,
        "k": frontend.spec.k,
        "window_size": frontend.window_size,
        "routing": frontend.routing,
        "seed": frontend.seed,
        "clusters": clusters,
        **(extra or {}),
    }
    state = {k: v.detach().cpu().contiguous() for k, v in frontend.state_dict().items()}
    metadata = {
        "format": EXPERTS_FORMAT,
        "format_version": EXPERTS_VERSION,
        "config": json.dumps(config, default=str),
    }
    with atomic_path(path) as tmp:
        save_file(state, os.fspath(tmp), metadata=metadata)
    return Path(path)


def _metadata(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise InputFileError(f"experts checkpoint not found: {path}")
    try:
        with safe_open(os.fspath(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"cannot read experts checkpoint {path}: not safetensors ({e})"
        ) from e


def read_experts_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The config of an experts checkpoint (or of an l2r model checkpoint with experts).

    Returns
    -------
    dict
        At least ``size`` (str), ``k`` (int), ``window_size`` (int); the l2r-model case also has
        ``"prefix": "frontend."``.

    Raises
    ------
    InputFileError, CheckpointError
        Missing file; unreadable, or a checkpoint of another front-end or format.
    """
    path = Path(path)
    meta = _metadata(path)
    try:
        if meta.get("format") == EXPERTS_FORMAT and meta.get("format_version") == EXPERTS_VERSION:
            return dict(json.loads(meta["config"]))
        if meta.get("format") == _MODEL_FORMAT:
            fe = json.loads(meta["architecture"]).get("frontend", {})
            if fe.get("frontend") == "experts":
                keys = ("size", "k", "window_size")
                return {**{k: fe[k] for k in keys}, "prefix": "frontend."}
            raise CheckpointError(
                f"{path.name} is an l2r checkpoint of the {fe.get('frontend')!r} front-end, not "
                "of 'experts'; pass it with --frontend " + str(fe.get("frontend"))
            )
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path.name} has damaged experts metadata ({e})") from e
    raise CheckpointError(
        f"{path.name} is not an experts checkpoint (format {meta.get('format')!r}, version "
        f"{meta.get('format_version')!r}); write one with save_experts / the experts recipe"
    )


def load_experts(
    path: str | os.PathLike[str],
    *,
    window_size: int | None = None,
    size: str | None = None,
) -> ExpertsFrontend:
    """Rebuild an :class:`ExpertsFrontend` from a checkpoint alone.

    Parameters
    ----------
    path : path
        A file written by :func:`save_experts` (or an l2r model checkpoint with experts).
    window_size : int or None
        Window side in pixels (None: the stored one).
    size : str or None
        When given, the size the caller expects; a checkpoint of another size is refused.

    Returns
    -------
    ExpertsFrontend
        On the CPU, in eval mode, ``weights_description = "experts checkpoint NAME"``.

    Raises
    ------
    InputFileError
        The file does not exist.
    CheckpointError
        Unreadable; another front-end's checkpoint; another size; an expert missing
        (``"experts checkpoint X has 3 clusters but expert 2 is missing"``); or tensors that do
        not fit the stored size.
    """
    path = Path(path)
    config = read_experts_config(path)
    try:
        spec = parse_size(str(config["size"]))
    except ParameterError as e:
        raise CheckpointError(f"experts checkpoint {path.name}: {e}") from e
    if size is not None and parse_size(size).name != spec.name:
        raise CheckpointError(
            f"experts checkpoint {path.name} is size {spec.name!r} but the model is "
            f"{parse_size(size).name!r}; pass the matching size"
        )
    prefix = str(config.get("prefix", ""))
    try:
        tensors = load_file(os.fspath(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read tensors of experts checkpoint {path}: {e}") from e
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    for i in range(spec.k):
        if not any(k.startswith(f"experts.{i}.") for k in state):
            raise CheckpointError(
                f"experts checkpoint {path.name} has {spec.k} clusters but expert {i} is missing"
            )
    frontend = ExpertsFrontend(
        spec=spec,
        window_size=int(window_size or config.get("window_size", 512)),
        routing=str(config.get("routing", "nearest")),
        seed=int(config.get("seed", 0)),
    )
    own = frontend.state_dict()
    problems = [f"missing {k}" for k in own if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in own]
    problems += [
        f"{k} has shape {tuple(v.shape)}, needs {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    if problems:
        raise CheckpointError(
            f"experts checkpoint {path.name} does not fit size {spec.name!r}: {problems[0]} "
            f"({len(problems)} problems)"
        )
    frontend.load_state_dict(state, strict=True)
    frontend.weights_description = f"experts checkpoint {path.name}"
    return frontend.eval()


def build_experts(
    size: str = "resnet34",
    window_size: int = 512,
    checkpoint: str | os.PathLike[str] | None = None,
) -> ExpertsFrontend:
    """The registry's builder: a fresh experts front-end of ``size``, or one from ``checkpoint``.

    Parameters
    ----------
    size : str
        ``BASE[-kN][-road]`` (see :func:`~linegraph2road.frontends.experts.model.parse_size`).
    window_size : int
        Window side in pixels (default 512).
    checkpoint : path or None
        An experts checkpoint (:func:`save_experts`) of the same size; None = random init.
    """
    if checkpoint is not None:
        return load_experts(checkpoint, window_size=window_size, size=size).train()
    return ExpertsFrontend(spec=parse_size(size), window_size=window_size)
