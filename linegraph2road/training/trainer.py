"""The training loop: Adam + step schedule, bf16 on GPU, checkpoints, resume, validation, DDP.

Outputs in ``out_dir``
----------------------
``config.yaml``                     the resolved config (written by the caller, see ``config.py``)
``log.csv``                         one ``train`` row every ``log_every`` steps, one ``val`` row
                                    per validated epoch (columns: :data:`LOG_COLUMNS`)
``checkpoints/epoch_NNN``           weights after epoch NNN (1-based), ``.safetensors``
``checkpoints/last.safetensors``    the latest weights (every epoch, and where ``max_steps``
                                    stopped), with ``last.state.pt`` beside it: optimiser,
                                    scheduler, epoch, batch, step, RNG state, best score
``checkpoints/best.safetensors``    the weights with the best validation score so far
                                    (``(TOPO F1 + APLS) / 2``)

Thresholds: when the validator selects them (``validation.select_thresholds``), every checkpoint
written after a validation stores the latest selection under ``thresholds`` in its config
(:meth:`~.thresholds.ThresholdSelection.to_dict`), which ``l2r extract`` uses by default; the log
has the thresholds each validation extracted with (``val_t_k``, ``val_t_r``, ``val_t_topo``).

The log's ``seconds`` is the cumulative wall time of training steps including data loading
(validation and checkpoint writing excluded), carried over by ``--resume``; losses of ``train``
rows are those of the logged step (averaged over processes under DDP), not running means.

Every file is written to a temporary name and renamed; only rank 0 writes. The safetensors
files are ordinary l2r checkpoints (:func:`~linegraph2road.model.load_checkpoint`); their
config metadata is the resolved training config plus ``progress`` (epoch, step, validation).

Multi-GPU: launched by ``torchrun``, :func:`~.distributed.init_distributed` joins the process
group and gives a :class:`~.distributed.DistContext`; each process takes ``batch_size`` samples
per step from a :class:`DistributedSampler`, the model is wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel`, logged losses are averaged over processes.
"""

from __future__ import annotations

import csv
import math
import os
import pickle
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from linegraph2road.errors import CheckpointError, ParameterError
from linegraph2road.io._atomic import atomic_path
from linegraph2road.model import LineGraph2Road, load_weights, save_checkpoint
from linegraph2road.training.dataset import TileDataset, collate_samples
from linegraph2road.training.distributed import DistContext, autocast_dtype
from linegraph2road.training.loss import l2r_loss
from linegraph2road.training.validation import Validator

__all__ = ["LOG_COLUMNS", "TrainResult", "Trainer", "seed_everything"]

LOG_COLUMNS = (
    "kind", "epoch", "step", "loss", "mask_loss", "edge_loss", "keypoint_loss", "road_loss",
    "overpass_loss", "lr_encoder", "lr_rest", "val_topo_precision", "val_topo_recall",
    "val_topo_f1", "val_apls", "val_score", "seconds", "val_skipped", "val_t_k", "val_t_r",
    "val_t_topo",
)  # fmt: skip
_LOSS_KEYS = ("loss", "mask_loss", "edge_loss", "keypoint_loss", "road_loss", "overpass_loss")


def _cell(value: Any) -> Any:
    """A log cell: NaN (a metric that could not be computed) is written as an empty cell."""
    return "" if isinstance(value, float) and math.isnan(value) else value


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` did: steps and epochs completed, files, log rows."""

    step: int
    epoch: int
    last: Path | None
    best: Path | None
    rows: list[dict[str, Any]] = field(default_factory=list)


class Trainer:
    """Trains a :class:`LineGraph2Road` on a :class:`TileDataset` (see the module docstring).

    Parameters
    ----------
    model : LineGraph2Road
        On the CPU or ``device``; moved to ``device``.
    train_data : TileDataset
        Its ``crop`` must equal ``model.window_size``.
    out_dir : path
        Where checkpoints and the log go.
    validator : Validator or None
        Scores the model after every ``validate_every`` epochs (rank 0 only); None: no
        validation (and no ``best`` checkpoint).
    lr, encoder_lr_factor : float
        Adam learning rate (paper 1e-3) and the encoder's factor (paper 0.05).
    epochs : int
        Epochs to train (paper: 10; Global-scale 20).
    milestones, gamma
        MultiStepLR: multiply every rate by ``gamma`` after these epochs (Global-scale: [10]).
    batch_size : int
        Samples per step *per process* (paper: 4).
    lambda_edge : float
        Edge-loss weight (paper: 0.1).
    device : str or torch.device
    precision : {"auto", "fp32", "bf16"}
        ``"auto"``: bf16 autocast on CUDA, fp32 on CPU.
    seed : int
        Shuffling seed (the dataset has its own for crops).
    workers : int
        DataLoader worker processes.
    log_every : int
        Steps between ``train`` rows of the log.
    config : dict or None
        Resolved config stored in every checkpoint.
    dist : DistContext or None
        From :func:`init_distributed`; None = single process.
    progress : bool
        tqdm bar on rank 0 (shown on terminals only).
    """

    def __init__(
        self,
        model: LineGraph2Road,
        *,
        train_data: TileDataset,
        out_dir: str | os.PathLike[str],
        validator: Validator | None = None,
        lr: float = 1e-3,
        encoder_lr_factor: float = 0.05,
        epochs: int = 10,
        milestones: Sequence[int] = (),
        gamma: float = 0.1,
        batch_size: int = 4,
        lambda_edge: float = 0.1,
        device: str | torch.device = "cpu",
        precision: str = "auto",
        seed: int = 0,
        workers: int = 0,
        validate_every: int = 1,
        log_every: int = 10,
        config: dict[str, Any] | None = None,
        dist: DistContext | None = None,
        progress: bool = True,
    ) -> None:
        if train_data.crop != model.window_size:
            raise ParameterError(
                f"crop {train_data.crop} px differs from the model window {model.window_size} px"
            )
        if epochs < 1 or batch_size < 1 or lr <= 0 or log_every < 1:
            raise ParameterError("epochs, batch_size, log_every must be >= 1 and lr > 0")
        self.dist = dist or DistContext()
        self.device = torch.device(device)
        self.amp_dtype = autocast_dtype(precision, self.device)
        self.model = model.to(self.device)
        self.train_data = train_data
        self.validator = validator
        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.lambda_edge, self.seed, self.workers = float(lambda_edge), int(seed), int(workers)
        self.validate_every, self.log_every = int(validate_every), int(log_every)
        self.config = dict(config or {})
        self.progress = progress
        self.optimizer = torch.optim.Adam(
            model.param_groups(lr, encoder_lr_factor=encoder_lr_factor)
        )
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=[int(m) for m in milestones], gamma=gamma
        )
        self.sampler: DistributedSampler[Any] = DistributedSampler(
            train_data,
            num_replicas=self.dist.world_size,
            rank=self.dist.rank,
            shuffle=True,
            seed=self.seed,
        )
        self.net: nn.Module = self.model
        if self.dist.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.step = self.epoch = self.batch = 0
        self.best_score = -math.inf
        self.seconds = 0.0
        self.thresholds: dict[str, Any] | None = None  # the latest selection, as stored

    # -- state ---------------------------------------------------------------------------------
    @property
    def last_path(self) -> Path:
        return self.ckpt_dir / "last.safetensors"

    def _progress_meta(self, metrics: dict[str, float] | None = None) -> dict[str, Any]:
        meta = {"epoch": self.epoch, "batch": self.batch, "step": self.step}
        out = {**self.config, "progress": {**meta, "val": metrics or {}}}
        if self.thresholds is not None:
            out["thresholds"] = self.thresholds
        return out

    def save_last(self) -> Path:
        """Write ``last.safetensors`` + ``last.state.pt`` (rank 0; atomic each)."""
        save_checkpoint(self.model, self.last_path, self._progress_meta())
        sched = dict(self.scheduler.state_dict())  # its Counter is not weights_only-loadable:
        sched["milestones"] = {int(k): int(v) for k, v in sched["milestones"].items()}
        state = {
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "seconds": self.seconds,
            "best_score": self.best_score,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": sched,
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        with atomic_path(self.ckpt_dir / "last.state.pt") as tmp:
            torch.save(state, tmp)
        return self.last_path

    def load_last(self) -> None:
        """Restore everything :meth:`save_last` wrote (call before :meth:`fit`).

        Raises
        ------
        CheckpointError
            No checkpoint to resume, another architecture, or a weights/state pair that does
            not belong together.
        """
        state_path = self.ckpt_dir / "last.state.pt"
        if not self.last_path.is_file() or not state_path.is_file():
            raise CheckpointError(
                f"nothing to resume in {self.out_dir}: no checkpoints/last.safetensors and "
                "last.state.pt (start without --resume)"
            )
        meta = load_weights(self.model, self.last_path)
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read training state {state_path}: {exc}") from exc
        if meta.get("progress", {}).get("step") != state.get("step"):
            raise CheckpointError(
                f"{self.last_path.name} (step {meta.get('progress', {}).get('step')}) and "
                f"{state_path.name} (step {state.get('step')}) do not belong together (a save was "
                "interrupted?); start a new run"
            )
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            sched = dict(state["scheduler"])
            sched["milestones"] = Counter(sched.get("milestones", {}))
            self.scheduler.load_state_dict(sched)
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{state_path}: optimiser state does not fit ({exc})") from exc
        self.epoch, self.batch, self.step = state["epoch"], state["batch"], state["step"]
        self.thresholds = meta.get("thresholds")
        self.seconds, self.best_score = float(state["seconds"]), float(state["best_score"])
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        if self.dist.is_main:
            self._truncate_log(self.step)

    # -- logging -------------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.out_dir / "log.csv"

    def _truncate_log(self, step: int) -> None:
        if not self.log_path.is_file():
            return
        with self.log_path.open(newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
        with atomic_path(self.log_path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, LOG_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    def _log(self, row: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        rows.append(row)
        if not self.dist.is_main:
            return
        new = not self.log_path.is_file()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, LOG_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow({k: _cell(row.get(k, "")) for k in LOG_COLUMNS})

    def _lrs(self) -> dict[str, float]:
        return {
            f"lr_{g.get('name', i)}": g["lr"] for i, g in enumerate(self.optimizer.param_groups)
        }

    # -- training ------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        """One optimiser step on a collated batch; returns the loss parts (floats)."""
        dev = self.device
        self.net.train()
        with torch.autocast(dev.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):  # fmt: skip
            out = self.net(
                batch["images"].to(dev, non_blocking=True),
                [v.to(dev) for v in batch["vertices"]],
                [e.to(dev) for e in batch["edges"]],
            )
        parts = l2r_loss(
            out.mask_logits,
            batch["masks"].to(dev, non_blocking=True),
            out.edge_logits,
            [y.to(dev) for y in batch["labels"]],
            lambda_edge=self.lambda_edge,
            channels=self.model.trained_channels,
        )
        self.optimizer.zero_grad(set_to_none=True)
        parts.total.backward()
        self.optimizer.step()
        values = torch.stack([p.detach().float() for p in parts])
        if self.dist.distributed:
            torch.distributed.all_reduce(values)
            values /= self.dist.world_size
        return dict(zip(_LOSS_KEYS, values.tolist(), strict=True))

    def _loader(self) -> DataLoader[Any]:
        self.sampler.set_epoch(self.epoch)
        self.train_data.set_epoch(self.epoch)
        indices = list(self.sampler)[self.batch * self.batch_size :]
        # its own generator (worker seeds): iterating must not consume the global RNG that
        # dropout uses, or a resumed run would differ from an uninterrupted one
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return DataLoader(
            self.train_data,
            batch_size=self.batch_size,
            sampler=indices,
            num_workers=self.workers,
            collate_fn=collate_samples,
            pin_memory=self.device.type == "cuda",
            generator=gen,
        )

    def _end_epoch(self, rows: list[dict[str, Any]]) -> None:
        self.scheduler.step()
        self.epoch, self.batch = self.epoch + 1, 0
        metrics: dict[str, float] = {}
        validator = self.validator if self.validate_every > 0 else None
        if validator is not None and self.epoch % self.validate_every == 0 and self.dist.is_main:
            metrics = validator(self.model)
            selection = getattr(validator, "selection", None)
            if selection is not None:
                self.thresholds = selection.to_dict()
            self.model.train()
            self._log({"kind": "val", "epoch": self.epoch, "step": self.step,
                       **{f"val_{k}": v for k, v in metrics.items()},
                       "seconds": round(self.seconds, 3)}, rows)  # fmt: skip
        if self.dist.is_main:
            meta = self._progress_meta(metrics)
            save_checkpoint(self.model, self.ckpt_dir / f"epoch_{self.epoch:03d}.safetensors", meta)
            score = metrics.get("score", math.nan)
            if not math.isnan(score) and score > self.best_score:
                self.best_score = score
                save_checkpoint(self.model, self.ckpt_dir / "best.safetensors", meta)
            self.save_last()
        if self.dist.distributed:
            torch.distributed.barrier()

    def fit(self, *, max_steps: int | None = None) -> TrainResult:
        """Train until ``epochs`` are done or ``max_steps`` (global steps, counted from the
        first run) is reached; resume first with :meth:`load_last` to continue a run.

        Returns
        -------
        TrainResult
        """
        from tqdm import tqdm

        rows: list[dict[str, Any]] = []
        best = self.ckpt_dir / "best.safetensors"
        steps_per_epoch = math.ceil(len(self.sampler) / self.batch_size)
        total = self.epochs * steps_per_epoch if max_steps is None else int(max_steps)
        bar = tqdm(total=total, initial=min(self.step, total), desc="train", unit="step",
                   disable=None if self.progress and self.dist.is_main else True)  # fmt: skip
        try:
            while self.epoch < self.epochs and (max_steps is None or self.step < max_steps):
                tick = time.perf_counter()
                for batch in self._loader():
                    losses = self.train_step(batch)
                    self.step, self.batch = self.step + 1, self.batch + 1
                    now = time.perf_counter()
                    self.seconds, tick = self.seconds + now - tick, now  # data + step
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses['loss']:.4f}", epoch=self.epoch + 1)
                    if self.step % self.log_every == 0 or self.step == max_steps:
                        self._log({"kind": "train", "epoch": self.epoch + 1, "step": self.step,
                                   **losses, **self._lrs(),
                                   "seconds": round(self.seconds, 3)}, rows)  # fmt: skip
                    if max_steps is not None and self.step >= max_steps:
                        break
                if self.batch >= steps_per_epoch:
                    self._end_epoch(rows)  # also when max_steps ends exactly with the epoch
                elif self.dist.is_main:
                    self.save_last()  # stopped by max_steps inside the epoch
        finally:
            bar.close()
        if self.dist.distributed:
            # every rank leaves together, and gloo's worker thread has freed the last all-reduce's
            # Python tensors before anything tears the process group down (a teardown while it
            # still needs the GIL can deadlock at exit)
            torch.distributed.barrier()
        return TrainResult(
            self.step,
            self.epoch,
            self.last_path if self.last_path.is_file() else None,
            best if best.is_file() else None,
            rows,
        )


def seed_everything(seed: int) -> None:
    """Seed torch's global generators (CPU and every CUDA device): model initialisation and
    dropout. Data randomness has its own per-sample generators (see :mod:`.dataset`)."""
    torch.manual_seed(int(seed))
