"""Per-epoch validation: select thresholds, extract graphs from held-out tiles, score them with
TOPO and APLS.

With ``select_thresholds`` (the configs' default) each validation first selects the keypoint,
road and topology thresholds on the validation tiles (:func:`~.thresholds.select_thresholds`,
SAM-Road's best-F1 rule) and extracts with them; :attr:`Validator.selection` keeps the result,
which the trainer stores in its checkpoints. Without it the configured thresholds are used.

Each validation tile's whole image goes through
:func:`linegraph2road.inference.extract.extract_graph` (sliding windows, coupled NMS, candidate
graph, line-graph scoring, topology threshold) in the tile's pixel frame; the ground truth is the
tile's labelled candidate graph restricted to its positive edges
(:func:`~.dataset.positive_graph`), i.e. the refined ground truth at Algorithm 4 spacing, in the
same frame. Scores: Sat2Graph TOPO (precision, recall, F1) and the Sat2Graph APLS variant (what
City-scale / Global-scale papers report), averaged over tiles skipping NaN; ``score`` is
``(TOPO F1 + APLS) / 2``, which picks the ``best`` checkpoint.

Validation never ends a training run: a tile whose candidate graph is too large to score (an
under-trained model's nearly flat masks, see
:class:`~linegraph2road.errors.CandidateGraphTooLargeError`) is skipped with a one-line
message, its scores are missing (NaN, an empty cell in ``log.csv``) and ``skipped`` counts it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from linegraph2road.errors import CandidateGraphTooLargeError, ParameterError
from linegraph2road.inference.windows import check_window_count
from linegraph2road.training.dataset import (
    Sample,
    TileData,
    TileRecord,
    collate_samples,
    load_tile,
    positive_graph,
)
from linegraph2road.training.loss import l2r_loss
from linegraph2road.training.thresholds import ThresholdSelection, select_thresholds

if TYPE_CHECKING:
    from linegraph2road.model import LineGraph2Road

__all__ = ["Validator", "roc_auc", "window_scores"]


def roc_auc(scores: Any, labels: Any) -> float:
    """Area under the ROC curve from the Mann-Whitney U statistic (average ranks for ties).

    Parameters
    ----------
    scores : (N,) array
        Higher means more likely positive.
    labels : (N,) array of 0/1

    Returns
    -------
    float
        In [0, 1]; NaN when all labels are equal.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1) > 0
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average rank (1-based) of each run of equal scores
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], len(s)]
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = (a + b + 1) / 2.0
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


@torch.no_grad()
def window_scores(
    model: LineGraph2Road, samples: Sequence[Sample], *, lambda_edge: float = 0.1
) -> dict[str, float]:
    """Loss and candidate-edge ROC AUC of ``model`` (eval mode) on fixed windows.

    The windows carry their labelled candidate graphs (e.g. :func:`~.dataset.crop_sample` of
    a tile), so this measures the head on ground-truth candidates, independent of NMS.

    Returns
    -------
    dict
        ``loss``, ``mask_loss``, ``edge_loss`` (as :func:`~.loss.l2r_loss`), ``edge_auc``
        (pooled over all windows' candidates; NaN without both classes). Leaves ``model`` in
        eval mode.
    """
    model.eval()
    batch = collate_samples(list(samples))
    dev = next(model.parameters()).device
    out = model(
        batch["images"].to(dev),
        [v.to(dev) for v in batch["vertices"]],
        [e.to(dev) for e in batch["edges"]],
    )
    parts = l2r_loss(
        out.mask_logits,
        batch["masks"],
        out.edge_logits,
        batch["labels"],
        lambda_edge=lambda_edge,
        channels=model.trained_channels,
    )
    probs = torch.cat([torch.sigmoid(x.float()).cpu() for x in out.edge_logits])
    labels = torch.cat(batch["labels"])
    return {
        "loss": float(parts.total),
        "mask_loss": float(parts.mask),
        "edge_loss": float(parts.edge),
        "edge_auc": roc_auc(probs.numpy(), labels.numpy()),
    }


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


class Validator:
    """Scores a model on held-out prepared tiles (see the module docstring).

    Parameters
    ----------
    tiles : sequence of TileRecord
        Validation tiles (:func:`~.dataset.find_tiles`); read once, on the first call.
    t_k, t_r, t_topo : float
        Keypoint, road and topology thresholds (City-scale: 0.248, 0.364, 0.5).
    d_k, d_r, d_nei : float
        NMS radii and candidate radius, px (8, 16, 64).
    n_windows : int or None
        Sliding windows per side (None: the layout's default).
    layout : {"auto", "sam-road"}
        Window layout (:mod:`linegraph2road.inference.windows`; default ``"auto"``).
    nms : {"coupled", "plain"}
        Vertex extraction (default: coupled NMS; ``"plain"``: SAM-Road's, Table 4).
    window_size : int or None
        The model's window side, px: when given, the layout is checked against every tile now
        (a layout that cannot cover a tile is refused before training starts, not at the first
        validation).
    apls_small_tiles : bool
        Sat2Graph APLS small-tile settings (SpaceNet's 400 px tiles).
    select_thresholds : bool
        Select ``t_k``, ``t_r``, ``t_topo`` on the tiles before extracting (the given values are
        the fallback of a curve without positives); False: extract with the given values.
    device : str or torch.device
    precision : {"fp32", "bf16"}
    echo : callable or None
        Receives a one-line message for each skipped tile.
    """

    def __init__(
        self,
        tiles: Sequence[TileRecord],
        *,
        t_k: float = 0.248,
        t_r: float = 0.364,
        t_topo: float = 0.5,
        d_k: float = 8.0,
        d_r: float = 16.0,
        d_nei: float = 64.0,
        n_windows: int | None = None,
        layout: str = "auto",
        nms: str = "coupled",
        apls_small_tiles: bool = False,
        select_thresholds: bool = False,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        echo: Callable[[str], None] | None = None,
        window_size: int | None = None,
    ) -> None:
        self.tiles = list(tiles)
        if window_size is not None and (n_windows is not None or layout != "auto"):
            for t in self.tiles:
                h, w = t.shape
                try:
                    check_window_count((h, w), window=window_size, n=n_windows, layout=layout)
                except ParameterError as exc:
                    raise ParameterError(
                        f"validation.n_windows = {n_windows} ({layout} layout) does not fit "
                        f"validation tile {t.tile_id} ({w} x {h} px): {exc}"
                    ) from exc
        self.echo = echo
        self.extract_params: dict[str, Any] = {
            "t_k": t_k, "t_r": t_r, "t_topo": t_topo, "d_k": d_k, "d_r": d_r, "d_nei": d_nei,
            "n_windows": n_windows, "layout": layout, "nms": nms, "device": str(device),
            "precision": precision,
        }  # fmt: skip
        self.apls_small_tiles = bool(apls_small_tiles)
        self.select_thresholds = bool(select_thresholds)
        self.selection: ThresholdSelection | None = None
        self._data: list[TileData] | None = None

    def __call__(self, model: LineGraph2Road) -> dict[str, float]:
        """Mean scores over the tiles: ``topo_precision``, ``topo_recall``, ``topo_f1``,
        ``apls``, ``score`` (NaN when every tile was skipped), ``skipped`` (tiles whose
        candidate graph was too large to score) and the thresholds used, ``t_k``, ``t_r``,
        ``t_topo``. Leaves ``model`` in eval mode."""
        from linegraph2road.inference.extract import extract_graph
        from linegraph2road.metrics.apls_sat2graph import apls_sat2graph
        from linegraph2road.metrics.topo import topo

        if self._data is None:
            self._data = [load_tile(t) for t in self.tiles]
        params = dict(self.extract_params)
        if self.select_thresholds:
            self.selection = select_thresholds(
                model,
                self._data,
                fallback=(params["t_k"], params["t_r"], params["t_topo"]),
                device=params["device"],
                precision=params["precision"],
            )
            params.update(self.selection.values())
        model.eval()
        p, r, f, a = [], [], [], []
        skipped = 0
        for record, tile in zip(self.tiles, self._data, strict=True):
            gt = positive_graph(tile.vertices, tile.edges, tile.labels)
            try:
                with torch.no_grad():
                    pred = extract_graph(model, tile.image, **params).graph
            except CandidateGraphTooLargeError as exc:
                skipped += 1
                if self.echo is not None:
                    self.echo(
                        f"validation skipped tile {record.tile_id}, its scores are missing: {exc}"
                    )
                continue
            t = topo(gt, pred)
            p.append(t.precision)
            r.append(t.recall)
            f.append(t.f1)
            a.append(apls_sat2graph(gt, pred, small_tiles=self.apls_small_tiles).score)
        out = {
            "topo_precision": _nanmean(p),
            "topo_recall": _nanmean(r),
            "topo_f1": _nanmean(f),
            "apls": _nanmean(a),
        }
        out["score"] = _nanmean([out["topo_f1"], out["apls"]])
        out["skipped"] = float(skipped)
        out.update({k: float(params[k]) for k in ("t_k", "t_r", "t_topo")})
        return out
