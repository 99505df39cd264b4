"""The predictor interface: RoadGIE from a checkpoint, and prompts cut to the view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from linegraph2road.annotate import AnnotationSession, Predictor, RoadGIEPredictor
from linegraph2road.annotate.chunks import Rect
from linegraph2road.annotate.predictors import prompts_in_view
from linegraph2road.errors import CheckpointError
from linegraph2road.frontends import build_frontend
from linegraph2road.frontends.checkpoint import save_frontend
from linegraph2road.frontends.roadgie import build_roadgie
from linegraph2road.prompts import Prompt


def test_prompts_are_cut_to_the_view() -> None:
    rect = Rect(100, 50, 200, 100)
    prompts = [
        Prompt.click(150, 60),
        Prompt.click(99, 60),  # outside
        Prompt.scribble([[50, 100], [350, 100]]),  # crosses the whole view
        Prompt.scribble([[120, 10], [120, 80], [500, 80]], positive=False),
        Prompt.scribble([[0, 0], [10, 10]]),  # outside
    ]
    got = prompts_in_view(prompts, rect)
    assert [(p.kind, p.positive) for p in got] == [
        ("click", True),
        ("scribble", True),
        ("scribble", False),
    ]
    assert got[0].points.tolist() == [[50.0, 10.0]]
    assert got[1].points.tolist() == [[0.0, 50.0], [200.0, 50.0]]
    assert got[2].points.tolist() == [[20.0, 0.0], [20.0, 30.0], [200.0, 30.0]]


@pytest.fixture
def roadgie_checkpoint(tmp_path: Path) -> Path:
    return save_frontend(build_roadgie("tiny", window_size=64), tmp_path / "roadgie.safetensors")


def test_roadgie_runs_rounds_in_the_session(
    road_tif: Path, tmp_path: Path, roadgie_checkpoint: Path
) -> None:
    with AnnotationSession(road_tif, tmp_path / "p", checkpoint=roadgie_checkpoint) as s:
        assert isinstance(s.predictor, RoadGIEPredictor) and isinstance(s.predictor, Predictor)
        assert s.state()["model"] == "RoadGIE"
        assert (
            "tiny" in s.predictor.description and "roadgie.safetensors" in s.predictor.description
        )
        s.add_prompt("scribble", [[20, 100.5], [390, 100.5]], True)  # crosses the view's border
        first = s.predict(200, 160)
        assert first["model"] == "RoadGIE" and first["rect"] == [0, 0, 400, 320]
        pending = s.store.pending()
        assert pending is not None and pending.probs.shape == (320, 400)
        assert pending.probs.min() >= 0.0 and pending.probs.max() <= 1.0
        s.predict(200, 160)  # a second round gets the first one as its previous mask
        s.accept()


def test_other_checkpoints_are_refused(tmp_path: Path) -> None:
    other = save_frontend(build_frontend("nl-linknet", "tiny", window_size=64), tmp_path / "n.st")
    with pytest.raises(CheckpointError, match="not RoadGIE"):
        RoadGIEPredictor(other)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError):
        RoadGIEPredictor(bad)


class Recorder:
    """A predictor that records what each round got and predicts a fixed band."""

    name = "recorder"
    description = "records its inputs"

    def __init__(self) -> None:
        self.calls: list[tuple[Rect, np.ndarray | None, list[Prompt]]] = []

    def predict(self, view, previous, prompts):  # type: ignore[no-untyped-def]
        self.calls.append((view.rect, None if previous is None else previous.copy(), prompts))
        out = np.zeros((view.rect.height, view.rect.width), np.float32)
        out[90:110] = 0.8 if len(self.calls) == 1 else 0.6
        return out


def test_each_round_gets_the_previous_mask_of_its_view(road_tif: Path, tmp_path: Path) -> None:
    rec = Recorder()
    with AnnotationSession(road_tif, tmp_path / "p", predictor=rec) as s:
        s.add_prompt("click", [[30, 100]], True)
        s.predict(200, 160)
        s.add_prompt("click", [[300, 100]], False)
        s.predict(200, 160)
        s.accept()
        s.predict(200, 160)
    (r1, p1, q1), (r2, p2, q2), (r3, p3, _) = rec.calls
    assert p1 is None and len(q1) == 1  # mask_0 = 0
    assert p2 is not None and abs(float(p2[100, 5]) - 0.8) < 0.01 and len(q2) == 2  # mask_1
    assert p3 is not None and p3[100, 5] == 1.0 and p3[50, 5] == 0.0  # the accepted mask
    assert r1 == r2 == r3 == Rect(0, 0, 400, 320)
