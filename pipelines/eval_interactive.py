"""``l2r eval-interactive``: a simulated user drives RoadGIE for N rounds on images + masks.

Wires library calls only: the checkpoint (:func:`~linegraph2road.pipelines.segment.
load_segmenter`, a RoadGIE front-end), the tiles (:func:`~linegraph2road.training.road_masks.
find_road_tiles`: ``l2r prep`` output or DeepGlobe-layout folders), one simulated session per
tile (:func:`~linegraph2road.inference.simulated_user.simulate_session`, seed ``seed + i`` for
tile ``i``), the per-round scores (:func:`~linegraph2road.metrics.interactive.round_scores`) and
their summary (:func:`~linegraph2road.metrics.interactive.summarize_rounds`); the JSON, CSV and
plot are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.roadgie.model import RoadGIEFrontend
from linegraph2road.frontends.roadgie.simulation import SimulationSettings
from linegraph2road.inference.simulated_user import simulate_session
from linegraph2road.io._atomic import atomic_path
from linegraph2road.metrics.evaluate import json_safe
from linegraph2road.metrics.interactive import ROUND_METRICS, round_scores, summarize_rounds
from linegraph2road.training import resolve_device
from linegraph2road.training.road_masks import find_road_tiles, load_road_tile

__all__ = ["InteractiveReport", "InteractiveSettings", "run_eval_interactive"]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class InteractiveSettings:
    """What the simulated user and the scoring do (recorded in the JSON report).

    ``kinds``: prompt kinds (``click``, ``centre``, ``line``, ``bezier``), drawn uniformly;
    ``prompts_per_round``: prompts each round (1: rounds = interactions); ``seed``: tile ``i``
    uses ``seed + i``; ``instantiate``: topo-semantic instantiation of every round's output;
    ``expert_guided``: bias positive prompts with the tiles' cached uncertainty;
    ``threshold``: road probability cut; ``gsd``: metres per pixel for APLS.
    """

    rounds: int = 5
    kinds: tuple[str, ...] = ("click", "centre", "line", "bezier")
    prompts_per_round: int = 1
    seed: int = 0
    instantiate: bool = False
    expert_guided: bool = False
    threshold: float = 0.5
    gsd: float = 1.0

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.prompts_per_round < 1:
            raise ParameterError(
                f"rounds and prompts per round must be >= 1, got {self.rounds}, "
                f"{self.prompts_per_round}"
            )
        if not 0.0 < self.threshold < 1.0 or self.gsd <= 0:
            raise ParameterError(
                f"threshold in (0, 1) and gsd > 0 needed: {self.threshold}, {self.gsd}"
            )
        self.user()  # validates kinds

    def user(self) -> SimulationSettings:
        """The simulated user."""
        return SimulationSettings(
            kinds=tuple(self.kinds), min_prompts=self.prompts_per_round,
            max_prompts=self.prompts_per_round,
        )  # fmt: skip


@dataclass
class InteractiveReport:
    """``summary`` (:func:`summarize_rounds`), per-image rows, the settings, the weights."""

    summary: dict[str, Any]
    images: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    weights: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "settings": self.settings,
            "summary": self.summary,
            "images": self.images,
        }

    def table(self) -> str:
        """Table 4's shape: one line per metric, one column per round."""
        rounds = self.summary["rounds"]
        lines = ["metric        " + " ".join(f"{'round ' + str(r['round']):>9}" for r in rounds)]
        for m in ROUND_METRICS:
            cells = " ".join(f"{'-' if r[m] is None else f'{r[m]:.3f}':>9}" for r in rounds)
            lines.append(f"{m:<13} {cells}")
        for target, v in self.summary["noi"].items():
            lines.append(
                f"NoI@{target}: {v['mean']:.2f} rounds (cap {v['cap']}), reached by "
                f"{100 * v['reached']:.0f} % of the images"
            )
        return "\n".join(lines)


def run_eval_interactive(
    checkpoint: PathLike,
    data: Sequence[PathLike],
    *,
    settings: InteractiveSettings | None = None,
    device: str = "auto",
    precision: str | None = None,
    max_tiles: int | None = None,
    json_path: PathLike | None = None,
    csv_path: PathLike | None = None,
    plot_path: PathLike | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> InteractiveReport:
    """Evaluate a RoadGIE checkpoint with a simulated user (see the module docstring).

    Parameters
    ----------
    checkpoint : path
        A RoadGIE front-end checkpoint (``l2r train roadgie``).
    data : sequence of path
        ``l2r prep`` output or DeepGlobe-layout folders (images + road masks).
    settings : InteractiveSettings, optional
    device : str
        ``auto``, ``cpu``, ``cuda``...
    precision : {"fp32", "bf16"} or None
        None: bf16 on CUDA, fp32 on CPU.
    max_tiles : int or None
        Evaluate at most this many tiles (in folder order).
    json_path, csv_path, plot_path : path or None
        Outputs: the whole report, one row per image and round (and the per-round means as
        ``image = "mean"``), a PNG of the mean Dice, Recall, clDice and APLS per round.

    Raises
    ------
    ParameterError, InputFileError, CheckpointError, FormatError
    """
    from linegraph2road.pipelines.segment import load_segmenter

    say = echo if echo is not None else (lambda message: None)
    s = settings or InteractiveSettings()
    if not data:
        raise ParameterError("give at least one --data folder of images and road masks")
    if max_tiles is not None and max_tiles < 1:
        raise ParameterError(f"max_tiles must be >= 1, got {max_tiles}")
    for out, suffix in ((json_path, ".json"), (csv_path, ".csv"), (plot_path, ".png")):
        if out is not None and Path(out).suffix.lower() != suffix:
            raise ParameterError(f"{out}: expected a {suffix} file")
    seg = load_segmenter(checkpoint, frontend="roadgie")
    model = seg.frontend
    if not isinstance(model, RoadGIEFrontend):  # pragma: no cover - load_segmenter checked it
        raise ParameterError(f"{checkpoint} is not a RoadGIE checkpoint")
    dev = resolve_device(device)
    prec = precision or ("bf16" if dev.type == "cuda" else "fp32")
    model.to(dev)
    records = [r for folder in data for r in find_road_tiles(folder)][:max_tiles]
    say(f"{seg.description}; {len(records)} tile(s), {s.rounds} round(s), {dev}, {prec}")
    user = s.user()
    report = InteractiveReport(summary={}, settings=json_safe(asdict(s)), weights=seg.description)
    per_image = []
    for i, record in enumerate(tqdm(records, desc="tiles", disable=not progress)):
        tile = load_road_tile(record)
        session = simulate_session(
            model, tile.image, tile.road, rounds=s.rounds, settings=user, seed=s.seed + i,
            uncertainty=tile.uncertainty if s.expert_guided else None,
            instantiate=s.instantiate, threshold=s.threshold, device=dev, precision=prec,
        )  # fmt: skip
        scores = [round_scores(r.probability, tile.road, threshold=s.threshold, gsd=s.gsd)
                  for r in session]  # fmt: skip
        per_image.append(scores)
        report.images.append(
            {
                "tile_id": record.tile_id,
                "shape": list(tile.road.shape),
                "road_fraction": float(tile.road.mean()),
                "rounds": [
                    {"round": r.round, "prompts": len(r.prompts), **sc}
                    for r, sc in zip(session, scores, strict=True)
                ],
            }
        )
    report.summary = summarize_rounds(per_image)
    _write(report, json_path, csv_path, plot_path)
    return report


def _write(
    report: InteractiveReport,
    json_path: PathLike | None,
    csv_path: PathLike | None,
    plot_path: PathLike | None,
) -> None:
    if json_path is not None:
        with atomic_path(json_path) as tmp:
            tmp.write_text(json.dumps(json_safe(report.to_dict()), indent=1) + "\n", "utf-8")
    if csv_path is not None:
        buf = io.StringIO()
        fields = ["image", "round", "prompts", *ROUND_METRICS]
        writer = csv.DictWriter(buf, fields)
        writer.writeheader()
        for img in report.images:
            for r in img["rounds"]:
                writer.writerow({"image": img["tile_id"], **{k: r[k] for k in fields[1:]}})
        for r in report.summary["rounds"]:
            row = {m: ("" if r[m] is None else r[m]) for m in ROUND_METRICS}
            writer.writerow({"image": "mean", "round": r["round"], "prompts": "", **row})
        with atomic_path(csv_path) as tmp:
            tmp.write_text(buf.getvalue(), encoding="utf-8")
    if plot_path is not None:
        from linegraph2road.plots import line_chart

        rounds = report.summary["rounds"]
        series = {m: [r[m] for r in rounds] for m in ("dice", "recall", "cldice", "apls")}
        line_chart(series, plot_path, title="RoadGIE, simulated user: mean score per round")


def mean_dice(report: InteractiveReport) -> list[float]:
    """The mean Dice of each round (a convenience for scripts)."""
    return [float(np.nan if r["dice"] is None else r["dice"]) for r in report.summary["rounds"]]
