"""Benchmark protocols: which tiles a split holds, how per-tile scores are pooled, tile parameters.

``cityscale``
    Test tiles ``region_i`` with ``i % 10 == 9`` or ``i % 20 == 8``, ``i < 180`` (27 tiles).
    Summary: mean of per-tile precision, recall, F1 and APLS (NaN skipped). 2048 px tiles:
    large-tile APLS, TOPO radius by the reference's rule.
``globalscale``
    ``test``: ``region_2714`` ... ``region_3337`` (624 tiles); ``ood``: every tile of the
    out-of-domain folder (130 tiles). Aggregated and parametrised as ``cityscale``.
``spacenet``
    The ``"test"`` list of SAM-Road's ``data_split.json`` (382 tiles; ``train`` and
    ``validation`` also selectable). TOPO: F1 of the mean precision and mean recall over tiles
    with ``P + R > 0``; APLS: mean skipping NaN. 400 px tiles: small-tile APLS, TOPO radius
    166.667 m.
no dataset
    Every ground-truth tile; aggregated as ``cityscale``; the metrics' default parameters.

Sources. City-scale: ``cityscale_data_partition`` of SAM-Road / SAM-Road++ (``dataset.py``).
Global-scale: ``globalscale_data_partition`` of SAM-Road++ (``dataset.py``): tiles 0-2374 train,
2375-2713 validation, 2714-3337 in-domain test, and ``range(130)`` out-of-domain test. The data
lies in ``Global-Scale/{train,val,in-domain-test,out_of_domain}/region_{i}_sat.png`` with graphs
``region_{i}_refine_gt_graph.p``; the out-of-domain tiles are numbered from 0 in their own folder
(``benchmark_eval.py`` of BYU-FROST-Lab/samroadplus, which scores every tile of
``out_of_domain``), so the ``ood`` split takes every tile found. SpaceNet: SAM-Road's
``spacenet_metrics/topo.py`` (F1 of the mean precision and mean recall, tiles with
``p + r == 0`` left out) and ``spacenet_metrics/apls.py`` (tiles whose APLS is NaN left out);
TOPO uses a fixed 0.0015 deg (166.667 m) propagation radius there (``topo/main.py``).
City-scale and Global-scale TOPO keep the reference's own rule (333.333 m unless every node lies
within 1111 m of the top edge); the metric applies it when the radius is left as None.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from linegraph2road.errors import L2RError

__all__ = [
    "DATASETS",
    "EvaluationError",
    "Protocol",
    "cityscale_test_indices",
    "get_protocol",
    "globalscale_test_indices",
    "gt_preference",
    "match_key",
    "mean_skip_nan",
    "pooled_f1",
    "split_from_json",
    "tile_id",
    "tile_index",
]

DATASETS: tuple[str, ...] = ("cityscale", "spacenet", "globalscale")
SPLITS: dict[str, tuple[str, ...]] = {
    "cityscale": ("test",),
    "spacenet": ("test", "validation", "train"),
    "globalscale": ("test", "ood"),
}
SPACENET_TOPO_RADIUS = 0.0015 * 111111.0  # metres; SAM-Road's spacenet_metrics/topo/main.py
_REGION = re.compile(r"^region_0*(\d+)$")

#: File extensions of graph files, stripped from names before the suffixes below.
GRAPH_EXTENSIONS: tuple[str, ...] = (
    ".p",
    ".pickle",
    ".pkl",
    ".gpickle",
    ".geojson",
    ".json",
    ".graphml",
)
#: Name endings that mark ground truth, most preferred first (``_graph_gt``: City-scale's
#: evaluation graph; ``_refine_gt_graph``: its training graph, Global-scale's only one).
GT_MARKERS: tuple[str, ...] = ("_graph_gt", "__gt_graph", "_gt_graph", "_refine_gt_graph", "_gt")
#: Name endings stripped to get a tile id, longest first, repeatedly.
ID_SUFFIXES: tuple[str, ...] = tuple(
    sorted(
        {*GT_MARKERS, "_graph", "_pred", "_prop", "_proposal", "_prediction"}, key=len, reverse=True
    )
)


class EvaluationError(L2RError, ValueError):
    """An evaluation request that cannot be carried out (unknown metric, dataset, split, ids)."""


@dataclass(frozen=True)
class Protocol:
    """How one benchmark scores a set of tiles.

    Attributes
    ----------
    dataset : str or None
        ``"cityscale"``, ``"spacenet"``, ``"globalscale"``, or None (no benchmark: every tile,
        per-tile means).
    split : str or None
        ``"test"``, ``"ood"`` (Global-scale out-of-domain) or a ``data_split.json`` key.
    tile_size : int or None
        Tile side in pixels (2048 or 400), used for plots; None when unknown.
    small_tiles : bool
        Use the small-tile APLS parameters (SpaceNet).
    topo_radius : float or None
        TOPO propagation radius in metres; None lets the metric apply the reference's rule.
    aggregation : str
        ``"mean"`` (mean of per-tile precision, recall, F1 and APLS, NaN skipped) or
        ``"pooled"`` (F1 of mean precision and mean recall over tiles with P + R > 0; APLS mean
        skipping NaN).
    """

    dataset: str | None
    split: str | None
    tile_size: int | None
    small_tiles: bool
    topo_radius: float | None
    aggregation: str

    def expected_indices(self) -> list[int] | None:
        """The ``region_i`` indices of the split, or None when the split is a list of names or
        every tile found (SpaceNet, Global-scale ``ood``, no dataset)."""
        if self.dataset == "cityscale":
            return cityscale_test_indices()
        if self.dataset == "globalscale" and self.split == "test":
            return globalscale_test_indices()
        return None

    def select(self, ids: Iterable[str], *, split_ids: Iterable[str] | None = None) -> list[str]:
        """The tile ids among ``ids`` that belong to the split, in their given order.

        Parameters
        ----------
        ids : iterable of str
            Tile ids found in the ground truth (``region_9``, ``AOI_2_Vegas_505``...).
        split_ids : iterable of str, optional, keyword-only
            The names listed for the split (SpaceNet's ``data_split.json``); required for
            ``spacenet``.

        Raises
        ------
        EvaluationError
            ``spacenet`` without ``split_ids``.
        """
        ids = list(ids)
        expected = self.expected_indices()
        if expected is not None:
            wanted = set(expected)
            return [i for i in ids if tile_index(i) in wanted]
        if self.dataset == "spacenet":
            if split_ids is None:
                raise EvaluationError(
                    "the spacenet protocol needs the tile list of data_split.json; give "
                    "--split-file or put data_split.json in the ground-truth folder or its parent"
                )
            names = set(split_ids)
            return [i for i in ids if i in names]
        return ids

    def to_dict(self) -> dict[str, Any]:
        """The protocol as plain JSON-ready values (for report ``params``)."""
        return {
            "dataset": self.dataset,
            "split": self.split,
            "tile_size": self.tile_size,
            "small_tiles": self.small_tiles,
            "topo_propagation_radius": self.topo_radius,
            "aggregation": self.aggregation,
        }


def get_protocol(dataset: str | None = None, split: str | None = None) -> Protocol:
    """The protocol of ``dataset`` (``None``: no benchmark) and ``split`` (default ``"test"``).

    Raises
    ------
    EvaluationError
        Unknown dataset or a split the dataset does not have (message lists the choices).
    """
    if dataset is None:
        if split not in (None, "test"):
            raise EvaluationError(f"--split {split} needs --dataset (one of {', '.join(DATASETS)})")
        return Protocol(None, None, None, False, None, "mean")
    if dataset not in DATASETS:
        raise EvaluationError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    split = "test" if split is None else split
    if split not in SPLITS[dataset]:
        raise EvaluationError(
            f"{dataset} has no split {split!r}; expected one of {', '.join(SPLITS[dataset])}"
        )
    if dataset == "spacenet":
        return Protocol(dataset, split, 400, True, SPACENET_TOPO_RADIUS, "pooled")
    return Protocol(dataset, split, 2048, False, None, "mean")


def tile_id(name: str) -> str:
    """The tile id of a graph file name.

    The graph extension (one of :data:`GRAPH_EXTENSIONS`) is dropped, then any of
    :data:`ID_SUFFIXES` (``_refine_gt_graph``, ``__gt_graph``, ``_gt_graph``, ``_graph_gt``,
    ``_prediction``, ``_proposal``, ``_graph``, ``_pred``, ``_prop``, ``_gt``) is stripped from
    the end, repeatedly, never leaving an empty id: ``region_9_graph_gt.pickle``,
    ``region_9_refine_gt_graph.p``, ``region_9.p`` and ``region_9_graph.geojson`` all give
    ``region_9``; ``AOI_2_Vegas_img0__gt_graph.p`` and ``AOI_2_Vegas_img0_gt.gpickle`` give
    ``AOI_2_Vegas_img0``.
    """
    stem = name
    for ext in GRAPH_EXTENSIONS:
        if stem.lower().endswith(ext) and len(stem) > len(ext):
            stem = stem[: -len(ext)]
            break
    changed = True
    while changed:
        changed = False
        for suffix in ID_SUFFIXES:
            if stem.endswith(suffix) and len(stem) > len(suffix):
                stem = stem[: -len(suffix)].rstrip("_-.") or stem
                changed = True
                break
    return stem


def match_key(tile: str) -> str:
    """The key tile ids are matched by: ``region_009`` and a bare ``9`` (SAM-Road names its
    City-scale predictions ``graph/9.p``) both become ``region_9``; other ids are unchanged."""
    i = tile_index(tile)
    return f"region_{i}" if i is not None else tile


def gt_preference(name: str) -> int:
    """Rank of a ground-truth file name among files of one tile (lower wins): its position in
    :data:`GT_MARKERS`, or ``len(GT_MARKERS)`` for names without a marker."""
    stem = name
    for ext in GRAPH_EXTENSIONS:
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    found = [m for m in GT_MARKERS if stem.endswith(m)]
    return GT_MARKERS.index(max(found, key=len)) if found else len(GT_MARKERS)


def tile_index(tile_id: str) -> int | None:
    """The integer ``i`` of a ``region_i`` tile id (or of a bare number ``"9"``), else None."""
    m = _REGION.match(tile_id)
    if m:
        return int(m.group(1))
    if tile_id.isdigit():
        return int(tile_id)
    return None


def cityscale_test_indices(n_tiles: int = 180) -> list[int]:
    """City-scale test tiles: ``i % 10 == 9`` or ``i % 20 == 8`` for ``i < n_tiles`` (27)."""
    return [i for i in range(n_tiles) if i % 10 == 9 or i % 20 == 8]


def globalscale_test_indices() -> list[int]:
    """Global-scale in-domain test tiles: 2714 ... 3337 (624 tiles)."""
    return list(range(2714, 3338))


def split_from_json(
    data: Any, split: str = "test", *, source: str = "data_split.json"
) -> list[str]:
    """The tile names listed under ``split`` in a parsed ``data_split.json``.

    Raises
    ------
    EvaluationError
        Not a JSON object, no such key, or not a list of strings.
    """
    if not isinstance(data, Mapping):
        raise EvaluationError(f"{source}: expected a JSON object of split lists")
    if split not in data:
        keys = ", ".join(map(str, data)) or "none"
        raise EvaluationError(f"{source}: no {split!r} list (keys: {keys})")
    names = data[split]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise EvaluationError(f"{source}: {split!r} must be a list of tile names")
    return list(names)


def mean_skip_nan(values: Sequence[float | None]) -> tuple[float, int]:
    """(mean, count) of the finite values; (NaN, 0) when there is none."""
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not kept:
        return math.nan, 0
    return math.fsum(kept) / len(kept), len(kept)


def pooled_f1(
    precision: Sequence[float | None], recall: Sequence[float | None]
) -> tuple[float, float, float, int]:
    """SpaceNet TOPO pooling: (mean P, mean R, F1 of the two, tiles used).

    Tiles with ``P + R == 0`` (or a NaN) are left out, as SAM-Road's ``spacenet_metrics/topo.py``
    does; with no tile left every value is NaN.
    """
    pairs = [
        (float(p), float(r))
        for p, r in zip(precision, recall, strict=True)
        if p is not None and r is not None and math.isfinite(p + r) and p + r > 0
    ]
    if not pairs:
        return math.nan, math.nan, math.nan, 0
    mp = math.fsum(p for p, _ in pairs) / len(pairs)
    mr = math.fsum(r for _, r in pairs) / len(pairs)
    f1 = 2 * mp * mr / (mp + mr) if mp + mr > 0 else 0.0
    return mp, mr, f1, len(pairs)
