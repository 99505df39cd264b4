"""The LineGraph2Road model: a mask front-end + the line-graph topology head (paper section 3).

Training calls :meth:`LineGraph2Road.forward` on a batch of windows with their candidate graphs
(loss: BCE over the three masks + 0.1 BCE over the edge logits). Sliding-window inference calls
:meth:`LineGraph2Road.predict_window` per window (mask probabilities to stitch, features to keep),
runs coupled NMS and the candidate search on the stitched masks, and then
:meth:`LineGraph2Road.score_edges` with each window's features and its local candidate graph.

Checkpoints are safetensors files whose metadata holds the architecture (front-end and head
descriptions, JSON) and the resolved training config; :func:`save_checkpoint` writes atomically,
:func:`load_checkpoint` rebuilds the model from the file alone, and :func:`load_weights` refuses a
file made for another architecture with a :class:`~linegraph2road.frontends.CheckpointError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from linegraph2road.errors import InputFileError, ParameterError
from linegraph2road.frontends import (
    CheckpointError,
    MaskFrontend,
    build_frontend,
    normalize_description,
    variant_of,
)
from linegraph2road.io._atomic import atomic_path
from linegraph2road.model.topology import TopologyHead

__all__ = [
    "LineGraph2Road",
    "ModelOutput",
    "WindowPrediction",
    "build_model",
    "load_checkpoint",
    "load_weights",
    "read_architecture",
    "rewrite_checkpoint_config",
    "save_checkpoint",
]

#: ``format`` metadata value of l2r checkpoints, and the layout version.
CHECKPOINT_FORMAT = "linegraph2road"
CHECKPOINT_VERSION = "1"


class ModelOutput(NamedTuple):
    """Training output: ``mask_logits (B, 3, H, W)`` and ``B`` edge-logit tensors ``(C_b,)``."""

    mask_logits: torch.Tensor
    edge_logits: list[torch.Tensor]


class WindowPrediction(NamedTuple):
    """Inference output for windows: ``mask_probs (B, 3, H, W)`` float32 in [0, 1] (keypoint,
    road, overpass), ``features (B, D, H / stride, W / stride)`` and ``stride``."""

    mask_probs: torch.Tensor
    features: torch.Tensor
    stride: int


class LineGraph2Road(nn.Module):
    """Front-end (masks + feature map) and topology head, trained jointly.

    Parameters
    ----------
    frontend : MaskFrontend
        Any mask front-end (SAM by default; see :mod:`linegraph2road.frontends`).
    head : TopologyHead
        Its ``feature_dim`` must equal ``frontend.feature_dim``.
    """

    def __init__(self, *, frontend: MaskFrontend, head: TopologyHead) -> None:
        super().__init__()
        if head.config["feature_dim"] != frontend.feature_dim:
            raise ParameterError(
                f"head feature_dim {head.config['feature_dim']} != front-end feature_dim "
                f"{frontend.feature_dim}"
            )
        self.frontend = frontend
        self.head = head

    @property
    def weights_description(self) -> str:
        """Which weights the model runs with (the front-end's description)."""
        return self.frontend.weights_description

    @weights_description.setter
    def weights_description(self, value: str) -> None:
        self.frontend.weights_description = value

    @property
    def window_size(self) -> int:
        """Side of the square input windows in pixels."""
        return self.frontend.window_size

    @property
    def variant(self) -> str:
        """``"overpass"`` (keypoint, road and overpass heads: "Ours w/ Overpass") or
        ``"no-overpass"`` (keypoint and road: "Ours", the ablation baseline); see
        :data:`~linegraph2road.frontends.VARIANTS`. Checkpoints record it in the front-end's
        architecture."""
        return variant_of(self.frontend.trained_channels)

    @property
    def trained_channels(self) -> tuple[int, ...]:
        """The mask channels the model predicts (and the loss and coupled NMS use)."""
        return tuple(self.frontend.trained_channels)

    def describe(self) -> dict[str, Any]:
        """Architecture (JSON-serialisable): what a checkpoint must match to load."""
        return {"frontend": self.frontend.describe(), "head": self.head.describe()}

    def forward(
        self,
        images: torch.Tensor,
        vertices: Sequence[torch.Tensor],
        candidate_edges: Sequence[torch.Tensor],
    ) -> ModelOutput:
        """Mask logits and candidate-edge logits for a batch of windows (training).

        Parameters
        ----------
        images : torch.Tensor
            ``(B, 3, H, W)`` RGB windows, ``uint8`` or float **on the 0-255 scale** (normalised
            here with the front-end's statistics), ``H = W = window_size``.
        vertices : sequence of torch.Tensor
            ``B`` tensors ``(M_b, 2)`` float ``(x, y)`` pixels in window ``b``.
        candidate_edges : sequence of torch.Tensor
            ``B`` tensors ``(C_b, 2)`` int64 indices into ``vertices[b]``.

        Returns
        -------
        ModelOutput
            ``mask_logits (B, 3, H, W)``, ``edge_logits``: ``B`` tensors ``(C_b,)``.
        """
        out = self.frontend(self.frontend.normalize(images))
        edge_logits = self.head(out.features, vertices, candidate_edges, stride=out.stride)
        return ModelOutput(mask_logits=out.masks, edge_logits=edge_logits)

    @torch.no_grad()
    def predict_window(self, images: torch.Tensor) -> WindowPrediction:
        """Mask probabilities and feature maps of windows, without gradients (inference).

        Call ``model.eval()`` first; wrap in :func:`torch.autocast` for bf16.

        Parameters
        ----------
        images : torch.Tensor
            ``(B, 3, H, W)`` or ``(3, H, W)`` RGB, ``uint8`` or float on the 0-255 scale.

        Returns
        -------
        WindowPrediction
            ``mask_probs (B, 3, H, W)`` float32, ``features (B, D, h, w)``, ``stride``.
        """
        out = self.frontend(self.frontend.normalize(images))
        return WindowPrediction(torch.sigmoid(out.masks.float()), out.features, out.stride)

    @torch.no_grad()
    def score_edges(
        self,
        features: torch.Tensor,
        vertices: Sequence[torch.Tensor],
        candidate_edges: Sequence[torch.Tensor],
    ) -> list[torch.Tensor]:
        """Edge probabilities from :meth:`predict_window` features (inference, no gradients).

        Parameters
        ----------
        features : torch.Tensor
            ``(B, D, h, w)`` from :attr:`WindowPrediction.features`.
        vertices, candidate_edges : sequence of torch.Tensor
            As in :meth:`forward`, in each window's own pixel coordinates.

        Returns
        -------
        list of torch.Tensor
            ``B`` float32 tensors ``(C_b,)`` in [0, 1].
        """
        logits = self.head(features, vertices, candidate_edges, stride=self.frontend.stride)
        return [torch.sigmoid(x.float()) for x in logits]

    def param_groups(
        self, base_lr: float, *, encoder_lr_factor: float = 0.05
    ) -> list[dict[str, Any]]:
        """Optimiser parameter groups: pre-trained encoder at ``base_lr * encoder_lr_factor``.

        Parameters
        ----------
        base_lr : float
            Learning rate of everything else (paper: 1e-3 with Adam).
        encoder_lr_factor : float
            Encoder learning-rate factor (paper: 0.05).

        Returns
        -------
        list of dict
            ``[{"name": "encoder", "params", "lr"}, {"name": "rest", "params", "lr"}]``; frozen
            parameters are left out. Pass to :class:`torch.optim.Adam` as is.
        """
        encoder = list(self.frontend.encoder_parameters())
        ids = {id(p) for p in encoder}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        return [
            {"name": "encoder", "params": encoder, "lr": base_lr * encoder_lr_factor},
            {"name": "rest", "params": rest, "lr": base_lr},
        ]


def build_model(
    size: str = "vit_b",
    *,
    frontend: str = "sam",
    window_size: int = 512,
    sam_checkpoint: str | Path | None = None,
    overpass: bool = True,
    **head_params: Any,
) -> LineGraph2Road:
    """Build a LineGraph2Road model of a registered size.

    Parameters
    ----------
    size : str
        Front-end size (``"vit_b"`` for real use, ``"small"``, ``"tiny"`` for tests; see
        :mod:`linegraph2road.frontends.registry`).
    frontend : str
        Front-end family (default ``"sam"``).
    window_size : int
        Window side in pixels (default 512).
    sam_checkpoint : str, Path or None
        Official SAM ``.pth`` to initialise the front-end from; None = random initialisation.
    overpass : bool
        True (default): keypoint, road and overpass heads ("Ours w/ Overpass"). False: the
        paper's non-overpass variant ("Ours": keypoint and road heads only; SAM front-end).
    **head_params
        :class:`TopologyHead` keyword arguments (``hidden_dim``, ``n_sampled``, ``gnn``,
        ``use_line_graph``...); ``feature_dim`` defaults to the front-end's.

    Returns
    -------
    LineGraph2Road
    """
    fe = build_frontend(
        frontend, size, window_size=window_size, checkpoint=sam_checkpoint, overpass=overpass
    )
    head_params.setdefault("feature_dim", fe.feature_dim)
    return LineGraph2Road(frontend=fe, head=TopologyHead(**head_params))


def _arch_summary(arch: dict[str, Any]) -> str:
    fe = arch.get("frontend", {})
    variant = "" if fe.get("overpass", True) else ", no overpass head"
    return f"{fe.get('frontend')}/{fe.get('size')} (window {fe.get('window_size')}{variant})"


def save_checkpoint(
    model: LineGraph2Road, path: str | Path, config: dict[str, Any] | None = None
) -> Path:
    """Write the model's weights, architecture and ``config`` to a safetensors file, atomically.

    Parameters
    ----------
    model : LineGraph2Road
    path : str or Path
        Output file (``.safetensors``); written to a temporary file, then renamed.
    config : dict or None
        Resolved training/inference configuration (JSON-serialisable; paths become strings).

    Returns
    -------
    Path
        ``path``.
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "architecture": json.dumps(model.describe()),
        "config": json.dumps(config or {}, default=str),
    }
    with atomic_path(path) as tmp:
        save_file(state, os.fspath(tmp), metadata=metadata)
    return Path(path)


def _read_metadata(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    if not path.is_file():
        raise InputFileError(f"checkpoint not found: {path}")
    try:
        with safe_open(os.fspath(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read checkpoint {path}: not a safetensors file ({e})") from e
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a linegraph2road checkpoint (no format={CHECKPOINT_FORMAT!r} metadata)"
            "; an official SAM .pth goes to --sam-checkpoint"
        )
    if meta.get("format_version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint layout version {meta.get('format_version')!r}; this "
            f"linegraph2road reads version {CHECKPOINT_VERSION}"
        )
    try:
        arch, config = json.loads(meta["architecture"]), json.loads(meta.get("config", "{}"))
        arch["frontend"] = normalize_description(arch["frontend"])
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} has damaged architecture/config metadata") from e
    return arch, config


def read_architecture(path: str | Path) -> dict[str, Any]:
    """The architecture record of an l2r checkpoint (``{"frontend": {..., "window_size": 512},
    "head": {...}}``) from its metadata alone, without building the model.

    Raises
    ------
    InputFileError, CheckpointError
        As :func:`load_weights`.
    """
    arch, _ = _read_metadata(Path(path))
    return arch


def load_weights(model: LineGraph2Road, path: str | Path) -> dict[str, Any]:
    """Load an l2r checkpoint into an existing model of the same architecture.

    Parameters
    ----------
    model : LineGraph2Road
        Modified in place (weights and ``weights_description``).
    path : str or Path
        File written by :func:`save_checkpoint`.

    Returns
    -------
    dict
        The config stored with the checkpoint.

    Raises
    ------
    InputFileError
        The file does not exist.
    CheckpointError
        Not a readable l2r checkpoint, or made for another architecture (the message names the
        architecture found and the one expected).
    """
    path = Path(path)
    arch, config = _read_metadata(path)
    want = model.describe()
    if arch != want:
        part = next((k for k in ("frontend", "head") if arch.get(k) != want.get(k)), "model")
        raise CheckpointError(
            f"checkpoint {path.name} is {_arch_summary(arch)} with head {arch.get('head')} but the "
            f"model is {_arch_summary(want)} with head {want.get('head')} ({part} differs)"
        )
    try:
        state = load_file(os.fspath(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read checkpoint tensors from {path}: {e}") from e
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"checkpoint {path.name} does not match the model: missing {result.missing_keys[:3]}, "
            f"unexpected {result.unexpected_keys[:3]}"
        )
    model.weights_description = f"l2r checkpoint {path.name}"
    return config


def load_checkpoint(path: str | Path) -> tuple[LineGraph2Road, dict[str, Any]]:
    """Rebuild a model from an l2r checkpoint alone.

    Parameters
    ----------
    path : str or Path
        File written by :func:`save_checkpoint`.

    Returns
    -------
    (LineGraph2Road, dict)
        The model on the CPU in eval mode, and the config stored with it.

    Raises
    ------
    InputFileError, CheckpointError
        As :func:`load_weights`; also for an architecture this version cannot build.
    """
    path = Path(path)
    arch, _ = _read_metadata(path)
    fe, head = arch.get("frontend", {}), arch.get("head", {})
    try:
        frontend = build_frontend(
            fe["frontend"],
            fe["size"],
            window_size=fe["window_size"],
            overpass=bool(fe.get("overpass", True)),
        )
        model = LineGraph2Road(frontend=frontend, head=TopologyHead(**head))
    except (KeyError, TypeError, ParameterError) as e:
        raise CheckpointError(
            f"checkpoint {path.name} describes an architecture this version cannot build "
            f"({_arch_summary(arch)}, head {head}): {e}"
        ) from e
    config = load_weights(model, path)
    return model.eval(), config


def rewrite_checkpoint_config(path: str | Path, output: str | Path, config: dict[str, Any]) -> Path:
    """Copy an l2r model checkpoint with its config metadata replaced, atomically.

    The tensors, the architecture and the format metadata are copied unchanged; ``output`` is
    written to a temporary file and renamed, so it may be ``path`` itself (an in-place update
    that either happens whole or not at all).

    Parameters
    ----------
    path : str or Path
        File written by :func:`save_checkpoint`.
    output : str or Path
        Where the copy goes.
    config : dict
        The new config (JSON-serialisable; other values become strings).

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    InputFileError, CheckpointError
        As :func:`load_weights` (the input must be a readable l2r model checkpoint).
    """
    path = Path(path)
    _read_metadata(path)  # refuses what is not an l2r model checkpoint of this layout
    try:
        with safe_open(os.fspath(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
        state = load_file(os.fspath(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read checkpoint tensors from {path}: {e}") from e
    metadata["config"] = json.dumps(config, default=str)
    with atomic_path(output) as tmp:
        save_file(state, os.fspath(tmp), metadata=metadata)
    return Path(output)
