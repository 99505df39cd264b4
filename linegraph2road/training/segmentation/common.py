"""Training segmentation-only front-ends: the parts the three recipes share.

``l2r train`` with a ``task: segmentation`` config (:mod:`.config`) trains a
front-end alone with its own paper's recipe: :func:`~.nl_linknet.train_nl_linknet`
(paper 000), :func:`~.fctl.train_fctl` (paper 001, optionally with its refinement
network) or :func:`~.experts.train_experts` (paper 003). This module holds what
they share:

* :func:`build_segmentation_frontend`: the front-end, with ImageNet backbone weights or a
  previous segmentation checkpoint;
* :class:`RoadIoU` / :func:`road_probability`: validation on whole tiles;
* :class:`RunLog`: the run folder.

Outputs in ``out_dir``
----------------------
``log.csv``                       one row per ``log_every`` optimiser steps of a phase
                                  (``phase``, ``epoch``, ``step``, ``loss``, ``lr``,
                                  ``seconds``) and one ``val`` row per validation
                                  (``val_road_iou``); ``step`` counts all phases
``checkpoints/last.safetensors``  the latest weights (every epoch and at the end)
``checkpoints/best.safetensors``  the weights with the best validation road IoU so far

Both are :func:`~linegraph2road.frontends.checkpoint.save_frontend` files holding the resolved
config (an experts front-end: the experts format). Validation runs at the end of every
``every``-th epoch and at the end of the run (experts: at the end): the road probability of
each whole val tile, ``>= threshold`` (0.5), against the road mask, intersections and unions
of all tiles pooled. ``max_steps`` stops each training phase after that many optimiser steps
(FCtL: the segmentation network, then the refiner; experts: the embedding network, then each
expert). No run resumes: the recipes run start to finish.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from linegraph2road.errors import CheckpointError, ParameterError
from linegraph2road.frontends.base import MaskFrontend
from linegraph2road.frontends.checkpoint import checkpoint_kind, load_frontend, save_frontend
from linegraph2road.frontends.experts import parse_size
from linegraph2road.frontends.fctl import (
    FCTL_SIZES,
    FCtLFrontend,
    RefinementNet,
    load_vgg16_weights,
    segment_large,
)
from linegraph2road.frontends.nl_linknet import (
    NLLinkNetFrontend,
    build_nl_linknet,
    load_nl_linknet_checkpoint,
)
from linegraph2road.training.dataset import TileRecord, load_tile

__all__ = [
    "FCTL_OVERLAP_FRACTION",
    "LOG_COLUMNS",
    "RoadIoU",
    "RunLog",
    "SegmentationResult",
    "build_segmentation_frontend",
    "experts_size",
    "fctl_probabilities",
    "progress_bar",
    "read_log",
    "road_probability",
    "trained_channels",
    "validation_due",
]

LOG_COLUMNS = ("phase", "epoch", "step", "loss", "lr", "val_road_iou", "seconds")
#: FCtL patch overlap as a fraction of the patch (paper 001, 4.2: 120 of 508 px).
FCTL_OVERLAP_FRACTION = 120 / 508


def trained_channels(mask_channels: int) -> tuple[int, ...]:
    """Mask channels trained for ``mask_channels``: ``(1,)`` (road alone) or ``(0, 1, 2)``."""
    return (1,) if mask_channels == 1 else (0, 1, 2)


# -- front-ends ----------------------------------------------------------------------------------
def experts_size(size: str, mask_channels: int) -> str:
    """The experts size name for ``mask_channels`` (``"resnet34"`` + 1 -> ``"resnet34-road"``).

    Raises
    ------
    ParameterError
        An unknown size, or a ``-road`` size with 3 mask channels.
    """
    spec = parse_size(size)
    road = spec.expert.out_channels == 1
    if mask_channels == 3 and road:
        raise ParameterError(
            f"experts size {size!r} is road-only (-road) but model.mask_channels is 3"
        )
    return spec.name + ("-road" if mask_channels == 1 and not road else "")


def _l2r_kind(path: Path) -> str | None:
    """The l2r checkpoint kind of ``path``, or None for other weight files."""
    try:
        return checkpoint_kind(path)
    except CheckpointError:
        return None


def _load_pretrained(frontend: MaskFrontend, path: Path) -> None:
    if not path.is_file():
        raise ParameterError(f"model.checkpoint not found: {path}")
    kind = _l2r_kind(path)
    if kind == "frontend":
        previous = load_frontend(path).frontend
        want = {k: v for k, v in frontend.describe().items() if k != "window_size"}
        got = {k: v for k, v in previous.describe().items() if k != "window_size"}
        if want != got:
            raise ParameterError(
                f"model.checkpoint {path.name} holds {got.get('frontend')}/{got.get('size')} "
                f"{got}, but the config builds {want}"
            )
        frontend.load_state_dict(previous.state_dict())
        frontend.weights_description = f"front-end checkpoint {path.name}"
    elif kind is not None:
        raise ParameterError(
            f"model.checkpoint {path.name} is an l2r {kind} checkpoint; a segmentation run "
            "starts from ImageNet backbone weights or a previous task: segmentation checkpoint"
        )
    elif isinstance(frontend, NLLinkNetFrontend):
        from linegraph2road.frontends.nl_linknet.checkpoint import read_state_dict

        keys = {k.removeprefix("module.") for k in read_state_dict(path)}
        if "layer1.0.conv1.weight" in keys and "conv1.weight" in keys:  # torchvision ResNet34
            frontend.load_encoder_weights(path)
        else:
            load_nl_linknet_checkpoint(frontend, path)
    elif isinstance(frontend, FCtLFrontend):
        load_vgg16_weights(frontend.net.encoder, path)
        frontend.weights_description = f"VGG16 conv1-3 from {path.name}, rest random init"
    else:
        raise ParameterError(
            f"model.checkpoint {path.name} is not an l2r front-end checkpoint; "
            f"{frontend.describe().get('frontend')} starts from random weights or from a previous "
            "task: segmentation checkpoint"
        )


def build_segmentation_frontend(
    frontend: str,
    size: str,
    *,
    window_size: int,
    mask_channels: int = 1,
    checkpoint: str | Path | None = None,
) -> MaskFrontend:
    """A front-end to train with its recipe, with ``mask_channels`` outputs.

    Parameters
    ----------
    frontend : {"nl-linknet", "fctl", "experts", "roadgie"}
    size : str
        A size of the family (``nl34``/``small``/``tiny``..., ``vgg16``/``small``/``tiny``,
        ``resnet34[-kN]``/``small``/``tiny``...).
    window_size : int
        Window (patch) side in pixels.
    mask_channels : {1, 3}
        1 (default): road only, the papers' task; 3: keypoint, road, overpass.
    checkpoint : path or None
        NL-LinkNet: a torchvision ResNet34 state dict (encoder only) or a whole NL-LinkNet;
        FCtL: a torchvision VGG16 state dict (conv1-3); these and RoadGIE: a previous
        segmentation checkpoint (:func:`~linegraph2road.frontends.checkpoint.save_frontend`)
        of the same architecture. Experts take none (their recipe trains every network from
        scratch).

    Returns
    -------
    MaskFrontend
        On the CPU, in training mode; ``weights_description`` says which weights it holds.

    Raises
    ------
    ParameterError, CheckpointError, InputFileError
        Unknown family or size, or weights that do not fit.
    """
    fe: MaskFrontend
    if frontend == "nl-linknet":
        fe = build_nl_linknet(size, window_size, mask_channels=mask_channels)
    elif frontend == "fctl":
        if size not in FCTL_SIZES:
            raise ParameterError(f"unknown FCtL size {size!r}; choose one of {sorted(FCTL_SIZES)}")
        spec = replace(FCTL_SIZES[size], num_classes=mask_channels)
        fe = FCtLFrontend(spec=spec, window_size=window_size)
    elif frontend == "experts":
        from linegraph2road.frontends.experts import ExpertsFrontend

        if checkpoint is not None:
            raise ParameterError(
                "model.checkpoint: the experts recipe trains the embedding network and every "
                "expert from scratch (train_location_experts); set it to null"
            )
        fe = ExpertsFrontend(
            spec=parse_size(experts_size(size, mask_channels)), window_size=window_size
        )
    elif frontend == "roadgie":
        from linegraph2road.frontends.roadgie import build_roadgie

        if mask_channels != 1:
            raise ParameterError("RoadGIE predicts the road mask only: mask_channels must be 1")
        fe = build_roadgie(size, window_size)
    else:
        raise ParameterError(
            f"unknown segmentation front-end {frontend!r}; use nl-linknet, fctl, experts or roadgie"
        )
    if checkpoint is not None:
        _load_pretrained(fe, Path(checkpoint))
    return fe


# -- validation ----------------------------------------------------------------------------------
def road_probability(
    frontend: MaskFrontend,
    image: np.ndarray,
    *,
    refiner: RefinementNet | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 4,
) -> np.ndarray:
    """``(H, W)`` float32 road probability of a whole tile.

    Parameters
    ----------
    frontend : MaskFrontend
        Its mode is restored afterwards.
    image : (3, H, W) uint8
        The tile.
    refiner : RefinementNet or None
        FCtL only.
    device : optional
        Where the front-end is (default: its parameters' device).
    batch_size : int
        Windows (patches) per network call.

    Notes
    -----
    FCtL: :func:`~linegraph2road.frontends.fctl.segment_large` with the patch overlap scaled
    from the paper's 120 of 508 px (:data:`FCTL_OVERLAP_FRACTION`; 120 px at 508) and the
    refiner's context at two windows. Others: sliding windows of
    :func:`linegraph2road.inference.segment.segment_image`.
    """
    dev = next(frontend.parameters()).device if device is None else torch.device(device)
    if isinstance(frontend, FCtLFrontend):
        probs = fctl_probabilities(frontend, image, refiner=refiner, dev=dev, batch_size=batch_size)
        return probs[list(frontend.trained_channels).index(1)]
    from linegraph2road.inference.segment import segment_image

    return np.asarray(segment_image(frontend, image, device=dev, batch_size=batch_size).road)


def fctl_probabilities(
    frontend: FCtLFrontend,
    image: np.ndarray,
    *,
    refiner: RefinementNet | None,
    dev: torch.device,
    batch_size: int,
) -> np.ndarray:
    """``(K, H, W)`` float32 merged probabilities of ``frontend.trained_channels`` of a whole
    ``(3, H, W)`` uint8 tile: patches with their contexts, overlapping by
    :data:`FCTL_OVERLAP_FRACTION` of the patch, refined by ``refiner`` (context two windows)
    when given. The front-end's mode is restored afterwards."""
    patch = frontend.window_size
    chans = list(frontend.trained_channels)
    was_training = frontend.training
    frontend.eval()

    def model(patches: torch.Tensor, contexts: torch.Tensor) -> torch.Tensor:
        return frontend(patches, contexts).masks[:, chans].float()

    try:
        probs = segment_large(
            model,
            frontend.normalize(torch.from_numpy(image).to(dev))[0],
            patch=patch,
            overlap=round(patch * FCTL_OVERLAP_FRACTION),
            context_sizes=frontend.context_sizes,
            refiner=refiner,
            refine_context=2 * patch,
            batch_size=batch_size,
        )
    finally:
        frontend.train(was_training)
    return probs.numpy()


class RoadIoU:
    """Road IoU of a front-end on whole validation tiles (see the module docstring).

    Parameters
    ----------
    tiles : sequence of TileRecord
        Validation tiles (read once and kept in memory).
    threshold : float
        Probability cut (default 0.5).
    device : torch.device or str or None
        Where the front-end is.
    batch_size : int
        Windows per network call.
    """

    def __init__(
        self,
        tiles: Sequence[TileRecord],
        *,
        threshold: float = 0.5,
        device: torch.device | str | None = None,
        batch_size: int = 4,
    ) -> None:
        if not tiles:
            raise ParameterError("validation needs at least one tile")
        self.tiles = [load_tile(t) for t in tiles]
        self.threshold, self.device, self.batch_size = float(threshold), device, int(batch_size)

    def __call__(self, frontend: MaskFrontend, refiner: RefinementNet | None = None) -> float:
        """Pooled road IoU in ``[0, 1]`` (1 when neither prediction nor truth has road)."""
        inter = union = 0
        for tile in self.tiles:
            prob = road_probability(
                frontend,
                tile.image,
                refiner=refiner,
                device=self.device,
                batch_size=self.batch_size,
            )
            pred, truth = prob >= self.threshold, tile.masks[1] > 0
            inter += int(np.logical_and(pred, truth).sum())
            union += int(np.logical_or(pred, truth).sum())
        return inter / union if union else 1.0


# -- the run folder -----------------------------------------------------------------------------
@dataclass
class SegmentationResult:
    """What a segmentation training run did.

    ``steps``: optimiser steps of all phases; ``epochs``: completed epochs of the main phase;
    ``last`` / ``best``: checkpoint paths (``best`` None without validation); ``best_iou``;
    ``rows``: the log rows; ``notes``: one-line remarks for the user (e.g. the k = 1
    fallback)."""

    frontend: MaskFrontend
    refiner: RefinementNet | None
    steps: int
    epochs: int
    last: Path | None
    best: Path | None
    best_iou: float | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class RunLog:
    """``log.csv`` and ``checkpoints/{last,best}.safetensors`` of one run in ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Run folder (created when the first file is written).
    config : dict
        The resolved config, stored in every checkpoint.
    log_every : int
        Write one training row every ``log_every`` steps of a phase (and its last step).
    validator : callable or None
        ``validator(frontend, refiner) -> IoU`` (:class:`RoadIoU`, RoadGIE's
        ``InteractiveIoU``) scores checkpoints for ``best``; None: no validation, no ``best``.
    """

    def __init__(
        self,
        out_dir: str | Path,
        *,
        config: dict[str, Any],
        log_every: int = 10,
        validator: Callable[[MaskFrontend, RefinementNet | None], float] | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.config, self.log_every, self.validator = config, int(log_every), validator
        self.rows: list[dict[str, Any]] = []
        self.step = 0
        self.best_iou: float | None = None
        self._start = time.perf_counter()

    @property
    def last(self) -> Path:
        return self.ckpt_dir / "last.safetensors"

    @property
    def best(self) -> Path:
        return self.ckpt_dir / "best.safetensors"

    def _write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        path = self.out_dir / "log.csv"
        new = not path.is_file()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with path.open("a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, LOG_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow({k: row.get(k, "") for k in LOG_COLUMNS})

    def train_row(
        self, phase: str, epoch: int | None, loss: float, lr: float, *, phase_step: int, last: bool
    ) -> None:
        """Count one optimiser step; log it every ``log_every`` steps of its phase or if last."""
        self.step += 1
        if phase_step % self.log_every == 0 or last:
            self._write(
                {
                    "phase": phase,
                    "epoch": "" if epoch is None else epoch,
                    "step": self.step,
                    "loss": f"{loss:.6g}",
                    "lr": f"{lr:.6g}",
                    "seconds": round(time.perf_counter() - self._start, 3),
                }
            )

    def save(
        self,
        frontend: MaskFrontend,
        *,
        refiner: RefinementNet | None = None,
        epoch: int | None = None,
        validate: bool = True,
    ) -> float | None:
        """Validate (when asked and a validator exists), write ``last`` and, on a new best road
        IoU, ``best``. Returns the IoU (None when not validated)."""
        iou = None
        if validate and self.validator is not None:
            iou = self.validator(frontend, refiner)
            self._write(
                {
                    "phase": "val",
                    "epoch": "" if epoch is None else epoch,
                    "step": self.step,
                    "val_road_iou": f"{iou:.6f}",
                    "seconds": round(time.perf_counter() - self._start, 3),
                }
            )
        save_frontend(frontend, self.last, refiner=refiner, config=self.config)
        if iou is not None and (self.best_iou is None or iou > self.best_iou):
            self.best_iou = iou
            save_frontend(frontend, self.best, refiner=refiner, config=self.config)
        return iou

    def result(
        self,
        frontend: MaskFrontend,
        refiner: RefinementNet | None,
        epochs: int,
        notes: list[str] | None = None,
    ) -> SegmentationResult:
        return SegmentationResult(
            frontend,
            refiner,
            self.step,
            epochs,
            self.last if self.last.is_file() else None,
            self.best if self.best.is_file() else None,
            self.best_iou,
            self.rows,
            list(notes or []),
        )


def progress_bar(total: int, desc: str, progress: bool) -> Any:
    """A tqdm bar of ``total`` steps (terminals only; none when ``progress`` is False)."""
    return tqdm(total=total, desc=desc, unit="step", disable=None if progress else True)


def validation_due(epoch: int, every: int) -> bool:
    """Whether epoch ``epoch`` (1-based) ends with a validation (``every`` 0: never)."""
    return every > 0 and epoch % every == 0


def read_log(path: str | Path) -> list[dict[str, str]]:
    """The rows of a run's ``log.csv``."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
