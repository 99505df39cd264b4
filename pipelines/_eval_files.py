"""The files of ``l2r eval``: ground-truth / prediction pairs by tile id, SpaceNet's split file,
the image tile beside a ground-truth graph, and the CSV report (private helpers of
:mod:`linegraph2road.pipelines.evaluate`, whose docstring states the rules)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from linegraph2road import __version__
from linegraph2road.errors import FormatError, InputFileError
from linegraph2road.metrics.evaluate import json_safe
from linegraph2road.metrics.protocols import (
    GRAPH_EXTENSIONS,
    GT_MARKERS,
    EvaluationError,
    gt_preference,
    match_key,
    split_from_json,
    tile_id,
)

__all__ = [
    "Pair",
    "csv_text",
    "image_of",
    "read_image",
    "resolve_pairs",
    "some",
    "split_ids",
    "versions",
]

PathLike = str | os.PathLike[str]
_IMAGE_NAMES = ("{}_sat.png", "{}__rgb.png", "{}_rgb.png", "{}_sat.tif", "{}.tif")


@dataclass(frozen=True)
class Pair:
    """One tile: its id, ground-truth file and prediction file (None when missing)."""

    id: str
    gt: Path
    pred: Path | None


def _graph_files(folder: Path, pattern: str | None) -> list[Path]:
    return sorted(
        p
        for p in folder.glob(pattern or "*")
        if p.is_file()
        and not p.name.startswith(".")
        and p.name != "data_split.json"
        and p.name.lower().endswith(GRAPH_EXTENSIONS)
    )


def _index(folder: Path, pattern: str | None, *, gt: bool) -> dict[str, Path]:
    """Graph files of ``folder`` by match key (see module docstring)."""
    if not folder.is_dir():
        raise InputFileError(f"{folder}: no such directory")
    files = _graph_files(folder, pattern)
    if gt and any(gt_preference(f.name) < len(GT_MARKERS) for f in files):
        files = [f for f in files if gt_preference(f.name) < len(GT_MARKERS)]
    if not files:
        what = f"matching {pattern!r}" if pattern else f"({' '.join(GRAPH_EXTENSIONS)})"
        raise InputFileError(f"{folder}: no graph files {what}")
    groups: dict[str, list[Path]] = {}
    for f in files:
        groups.setdefault(match_key(tile_id(f.name)), []).append(f)
    out = {}
    for key, paths in groups.items():
        if gt:
            paths = sorted(paths, key=lambda p: gt_preference(p.name))
            paths = [p for p in paths if gt_preference(p.name) == gt_preference(paths[0].name)]
        if len(paths) > 1:
            option = "--gt-glob" if gt else "--pred-glob"
            raise EvaluationError(
                f"{folder}: {len(paths)} files give tile id {key!r} "
                f"({', '.join(p.name for p in paths[:3])}); choose one kind with {option}, "
                f"e.g. {option} '*{paths[0].name[len(tile_id(paths[0].name)) :]}'"
            )
        out[key] = paths[0]
    return out


def resolve_pairs(
    gt: PathLike,
    pred: PathLike,
    *,
    gt_glob: str | None = None,
    pred_glob: str | None = None,
) -> tuple[list[Pair], list[str]]:
    """Ground-truth / prediction pairs, in natural order of tile id, and the ids of predictions
    without ground truth.

    ``gt`` and ``pred`` are two files, a file and a folder (the folder's file of the same tile is
    used), or two folders (matched by tile id). Nothing is read but names.

    Raises
    ------
    InputFileError
        A missing path, or a folder without graph files.
    EvaluationError
        A ground-truth folder with a prediction file, or two files of one tile in a folder.
    """
    g, p = Path(gt), Path(pred)
    for path, what in ((g, "ground truth"), (p, "prediction")):
        if not path.exists():
            raise InputFileError(f"{path}: no such {what} file or directory")
    if g.is_file():
        key = match_key(tile_id(g.name))
        if p.is_file():
            return [Pair(tile_id(g.name), g, p)], []
        preds = _index(p, pred_glob, gt=False)
        if key not in preds:
            raise EvaluationError(
                f"{p}: no prediction for tile {tile_id(g.name)!r} (ids come from file names, "
                f"e.g. region_9_graph_gt.pickle -> region_9); found: {some(preds)}"
            )
        return [Pair(tile_id(g.name), g, preds[key])], []
    if p.is_file():
        raise EvaluationError(
            f"{g} is a directory but {p} is a file; give a directory of predictions too"
        )
    gts, preds = _index(g, gt_glob, gt=True), _index(p, pred_glob, gt=False)
    pairs = [Pair(tile_id(path.name), path, preds.get(k)) for k, path in gts.items()]
    pairs.sort(key=lambda x: _natural(x.id))
    extra = sorted((tile_id(preds[k].name) for k in preds if k not in gts), key=_natural)
    return pairs, extra


def _natural(s: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def some(ids: Any, n: int = 5) -> str:
    ids = sorted(ids, key=_natural)
    return ", ".join(ids[:n]) + (f" ... ({len(ids)} in all)" if len(ids) > n else "") or "none"


def split_ids(gt: Path, split: str, split_file: PathLike | None) -> tuple[list[str], Path]:
    root = gt if gt.is_dir() else gt.parent
    candidates = [Path(split_file)] if split_file else [root / "data_split.json"]
    if not split_file:
        candidates.append(root.parent / "data_split.json")
    for c in candidates:
        if c.is_file():
            try:
                data = json.loads(c.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise FormatError(f"{c}: not a readable JSON split file ({exc})") from exc
            return split_from_json(data, split, source=str(c)), c
    if split_file:
        raise InputFileError(f"{split_file}: no such split file")
    raise EvaluationError(
        f"the spacenet protocol needs data_split.json; none in {root} or {root.parent} "
        "(give --split-file)"
    )


def image_of(pair: Pair) -> Path | None:
    for pattern in _IMAGE_NAMES:
        candidate = pair.gt.parent / pattern.format(pair.id)
        if candidate.is_file():
            return candidate
    return None


def read_image(path: Path) -> np.ndarray[Any, Any]:
    """The first three bands (fewer if the raster has fewer) of a tile as uint8."""
    from linegraph2road.io.raster import read_mask

    bands = [read_mask(path, band=1)[0]]
    for b in (2, 3):
        try:
            bands.append(read_mask(path, band=b)[0])
        except FormatError:  # a single-band (grey) tile
            break
    return np.round(np.stack(bands, axis=-1) * 255.0).astype(np.uint8)


def versions() -> dict[str, str]:
    """Versions of the software that computed the numbers, for the report."""
    import platform

    import numba
    import scipy

    return {
        "linegraph2road": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
    }


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, dict):
            out.update({f"{k}_{kk}": vv for kk, vv in v.items() if not isinstance(vv, dict)})
        else:
            out[k] = v
    return out


def csv_text(images: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    """One row per image (metric columns prefixed ``topo_`` / ``apls_``), then a last row with
    ``id = "summary"`` holding the pooled values; empty cells for NaN / missing values."""
    rows = [_flat(r) for r in images]
    s = summary
    last: dict[str, Any] = {"id": "summary", "missing_prediction": s["n_missing_predictions"]}
    for metric, keys in (
        ("topo", ("precision", "recall", "f1")),
        ("apls", ("score", "gt_to_prop", "prop_to_gt", "variant")),
    ):
        if metric in s:
            last.update({f"{metric}_{k}": s[metric][k] for k in keys})
    columns: list[str] = []
    for r in [*rows, last]:
        columns += [c for c in r if c not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for r in [*rows, last]:
        writer.writerow({k: "" if v is None else v for k, v in json_safe(r).items()})
    return buffer.getvalue()
