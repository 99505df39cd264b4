"""Threshold selection for a LineGraph2Road model: SAM-Road's best-F1 rule on labelled tiles.

The paper follows SAM-Road's "threshold-selection approach" (section 3.6): after training,
SAM-Road runs its model over the validation set and, for the keypoint mask, the road mask and the
topology scores of the candidate edges, takes the threshold of the best F1 on the
precision-recall curve (``on_test_end`` of its ``model.py``; it found 0.248 / 0.364 / 0.5 on
City-scale). :func:`select_thresholds` does the same on ``l2r prep`` tiles:

* every tile is cut into the windows of the auto layout (:func:`~..inference.windows.window_grid`,
  quarter turns off), each with its labelled candidate graph
  (:func:`~.dataset.crop_sample`), and the model's training forward runs on them;
* the keypoint and road probabilities of every pixel inside the tile go into one binned
  precision-recall curve per mask, against the keypoint and road label masks; the edge
  probabilities of every candidate edge into a third, against the candidate labels (1 = the two
  vertices are consecutive along a ground-truth road);
* each threshold is the best-F1 point of its curve (:class:`~linegraph2road.metrics.PRCurve`:
  scores ``> t`` are positive, as coupled NMS and the topology threshold use them). Algorithm 1
  uses ``t_k`` for the overpass mask too, so no overpass threshold is selected.

A curve without a positive label (a validation set without keypoints, say) cannot select: that
threshold keeps its ``fallback`` value and says so. ``l2r train`` selects at every validation
and stores the result in its checkpoints; ``l2r thresholds`` re-selects for an existing
checkpoint; ``l2r extract`` runs with a checkpoint's thresholds unless told otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from linegraph2road.errors import ParameterError
from linegraph2road.inference.windows import DEFAULT_MIN_OVERLAP, window_grid
from linegraph2road.metrics.pr_curve import DEFAULT_BINS, BestF1, PRCurve
from linegraph2road.training.dataset import TileData, collate_samples, crop_sample

if TYPE_CHECKING:
    from linegraph2road.model import LineGraph2Road

__all__ = ["SELECTION_METHOD", "THRESHOLD_HEADS", "ThresholdSelection", "select_thresholds"]

#: Threshold name -> the head whose curve selects it.
THRESHOLD_HEADS = {"t_k": "keypoint", "t_r": "road", "t_topo": "topology"}
#: How the thresholds were chosen (recorded with them).
SELECTION_METHOD = "best F1 of the precision-recall curve (SAM-Road's threshold selection)"


@dataclass(frozen=True)
class ThresholdSelection:
    """Selected keypoint, road and topology thresholds and their best-F1 points.

    Attributes
    ----------
    t_k, t_r, t_topo : float
        Thresholds (scores ``> t`` are positive).
    keypoint, road, topology : BestF1 or None
        The curve's best-F1 point; None where the curve had no positive label and the threshold
        is the fallback.
    tiles, windows : int
        Tiles and windows scored.
    """

    t_k: float
    t_r: float
    t_topo: float
    keypoint: BestF1 | None
    road: BestF1 | None
    topology: BestF1 | None
    tiles: int
    windows: int

    def values(self) -> dict[str, float]:
        """``{"t_k": ..., "t_r": ..., "t_topo": ...}``."""
        return {"t_k": self.t_k, "t_r": self.t_r, "t_topo": self.t_topo}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record, as checkpoints store it under ``thresholds``."""
        points = {h: getattr(self, h) for h in THRESHOLD_HEADS.values()}
        return {
            **self.values(),
            "method": SELECTION_METHOD,
            "tiles": self.tiles,
            "windows": self.windows,
            "best_f1": {h: None if p is None else p.to_dict() for h, p in points.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThresholdSelection:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ParameterError
            A record without the three thresholds.
        """
        try:
            best = data.get("best_f1") or {}
            points = {
                h: None if best.get(h) is None else BestF1.from_dict(best[h])
                for h in THRESHOLD_HEADS.values()
            }
            return cls(
                t_k=float(data["t_k"]),
                t_r=float(data["t_r"]),
                t_topo=float(data["t_topo"]),
                keypoint=points["keypoint"],
                road=points["road"],
                topology=points["topology"],
                tiles=int(data.get("tiles", 0)),
                windows=int(data.get("windows", 0)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ParameterError(f"not a threshold record: {data!r} ({e})") from e

    def lines(self) -> list[str]:
        """One line per threshold: value, precision, recall and F1 at it (for the CLI)."""
        out = []
        for name, head in THRESHOLD_HEADS.items():
            point = getattr(self, head)
            value = getattr(self, name)
            if point is None:
                out.append(f"{head:9s} {name:6s} {value:.4f}  (no positive label: kept as given)")
            else:
                out.append(
                    f"{head:9s} {name:6s} {value:.4f}  P {point.precision:.4f}  R "
                    f"{point.recall:.4f}  F1 {point.f1:.4f}  ({point.positives} positives of "
                    f"{point.total})"
                )
        return out


def _windows(tile: TileData, window: int) -> list[tuple[int, int, int, int]]:
    """``(row0, col0, rows, cols)`` of the auto-layout windows and the part inside the tile."""
    _, h, w = tile.image.shape
    overlap = min(DEFAULT_MIN_OVERLAP, window // 2)  # as extract_graph: small test windows
    grid = window_grid(max(h, window), max(w, window), window=window, min_overlap=overlap)
    return [(r, c, min(window, h - r), min(window, w - c)) for r, c in grid]


@torch.no_grad()
def select_thresholds(
    model: LineGraph2Road,
    tiles: Sequence[TileData],
    *,
    fallback: tuple[float, float, float] = (0.248, 0.364, 0.5),
    device: str | torch.device | None = None,
    precision: str = "fp32",
    batch_size: int = 4,
    bins: int = DEFAULT_BINS,
) -> ThresholdSelection:
    """Select ``t_k``, ``t_r`` and ``t_topo`` on labelled tiles (see the module docstring).

    Parameters
    ----------
    model : LineGraph2Road
        Put in eval mode during the call (its mode is restored afterwards); not moved.
    tiles : sequence of TileData
        :func:`~.dataset.load_tile` of ``l2r prep`` tiles at the model's GSD.
    fallback : (float, float, float)
        ``(t_k, t_r, t_topo)`` for a curve without a positive label (default: SAM-Road's
        City-scale values).
    device : str, torch.device or None
        Where the model is; None = where its parameters are.
    precision : {"fp32", "bf16"}
        ``"bf16"`` runs the network under :func:`torch.autocast` with bfloat16.
    batch_size : int
        Windows per forward pass.
    bins : int
        Score bins of each curve (threshold resolution ``1 / bins``).

    Returns
    -------
    ThresholdSelection

    Raises
    ------
    ParameterError
        No tile, or bad ``precision`` / ``batch_size``.
    """
    if not tiles:
        raise ParameterError("threshold selection needs at least one labelled tile")
    if precision not in ("fp32", "bf16"):
        raise ParameterError(f"precision must be fp32 or bf16, got {precision!r}")
    if batch_size < 1:
        raise ParameterError(f"batch_size must be >= 1, got {batch_size}")
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    curves = {head: PRCurve(bins) for head in THRESHOLD_HEADS.values()}
    win = model.window_size
    jobs = [(t, w) for t in tiles for w in _windows(t, win)]
    was_training = model.training
    model.eval()
    autocast = (
        torch.autocast(dev.type, dtype=torch.bfloat16)
        if precision == "bf16"
        else contextlib.nullcontext()
    )
    try:
        for start in range(0, len(jobs), batch_size):
            part = jobs[start : start + batch_size]
            batch = collate_samples(
                [crop_sample(t, x0=c, y0=r, size=win) for t, (r, c, _, _) in part]
            )
            with autocast:
                out = model(
                    batch["images"].to(dev),
                    [v.to(dev) for v in batch["vertices"]],
                    [e.to(dev) for e in batch["edges"]],
                )
            probs = torch.sigmoid(out.mask_logits.float()).cpu().numpy()
            masks = batch["masks"].numpy()
            for b, (_, (_, _, rows, cols)) in enumerate(part):
                curves["keypoint"].update(probs[b, 0, :rows, :cols], masks[b, 0, :rows, :cols])
                curves["road"].update(probs[b, 1, :rows, :cols], masks[b, 1, :rows, :cols])
                edge = torch.sigmoid(out.edge_logits[b].float()).cpu().numpy()
                curves["topology"].update(edge, batch["labels"][b].numpy())
    finally:
        model.train(was_training)
    points = {h: c.best_f1() if c.positives else None for h, c in curves.items()}
    values = []
    for given, head in zip(fallback, THRESHOLD_HEADS.values(), strict=True):
        point = points[head]
        values.append(float(given) if point is None else point.threshold)
    return ThresholdSelection(
        t_k=values[0],
        t_r=values[1],
        t_topo=values[2],
        keypoint=points["keypoint"],
        road=points["road"],
        topology=points["topology"],
        tiles=len(tiles),
        windows=len(jobs),
    )
