"""The live pixel classifier learns roads from a few prompts on a synthetic road image."""

from __future__ import annotations

import numpy as np
import pytest

from linegraph2road.annotate.chunks import Rect
from linegraph2road.annotate.classifier import ClassifierOptions, LiveClassifier
from linegraph2road.annotate.predictors import ViewImage
from linegraph2road.errors import ParameterError
from linegraph2road.prompts import Prompt
from linegraph2road.rasterize import draw_segments
from tests.annotate.conftest import ROADS, SHAPE, road_image


def reader(image: np.ndarray):  # type: ignore[no-untyped-def]
    def read(row0: int, col0: int, height: int, width: int):  # type: ignore[no-untyped-def]
        out = np.zeros((3, height, width), dtype=np.uint8)
        valid = np.zeros((height, width), dtype=bool)
        part = image[:, row0 : row0 + height, col0 : col0 + width]
        out[:, : part.shape[1], : part.shape[2]] = part
        valid[: part.shape[1], : part.shape[2]] = True
        return out, valid

    return read


def whole_view(image: np.ndarray) -> ViewImage:
    h, w = image.shape[1:]
    return ViewImage(Rect(0, 0, w, h), image, np.ones((h, w), dtype=bool))


def test_one_scribble_finds_the_other_roads() -> None:
    image = road_image()
    clf = LiveClassifier(reader(image))
    # a scribble along the horizontal road only
    probs = clf.predict(whole_view(image), None, [Prompt.scribble([[20, 100.5], [200, 100.5]])])
    assert probs.shape == SHAPE and probs.dtype == np.float32
    a = np.array([r[:2] for r in ROADS])
    b = np.array([r[2:] for r in ROADS])
    vertical = draw_segments(a[1:2], b[1:2], SHAPE, width=3)  # a road with no prompt on it
    ground = ~draw_segments(a, b, SHAPE, width=21)
    assert (probs[vertical] > 0.5).mean() > 0.6  # most of the unprompted road is found
    assert (probs[ground] > 0.5).mean() < 0.01 and probs[ground].mean() < 0.05
    assert "trained on" in clf.description and "random forest" in clf.description


def test_no_positive_prompt_predicts_nothing_and_results_are_repeatable() -> None:
    image = road_image()
    view = whole_view(image)
    clf = LiveClassifier(reader(image))
    assert not clf.predict(view, None, []).any()
    assert not clf.predict(view, None, [Prompt.click(5.0, 5.0, positive=False)]).any()
    prompts = [Prompt.scribble([[20, 100.5], [200, 100.5]]), Prompt.click(300, 200, positive=False)]
    one = LiveClassifier(reader(image)).predict(view, None, prompts)
    two = LiveClassifier(reader(image)).predict(view, None, prompts)
    assert np.array_equal(one, two)
    # a negative scribble on the diagonal road turns it down
    neg = Prompt.scribble([[40, 282], [200, 170]], positive=False)
    before = clf.predict(view, None, prompts[:1])
    after = clf.predict(view, None, [*prompts[:1], neg])
    diag = draw_segments(np.array([[60.0, 270.0]]), np.array([[180.0, 180.0]]), SHAPE, width=3)
    assert after[diag].mean() < before[diag].mean() - 0.3


def test_a_view_at_an_odd_offset_matches_the_whole_prediction() -> None:
    image = road_image()
    prompts = [Prompt.scribble([[20, 100.5], [200, 100.5]])]
    clf = LiveClassifier(reader(image))
    whole = clf.predict(whole_view(image), None, prompts)
    rect = Rect(51, 33, 201, 150)
    part = clf.predict(
        ViewImage(rect, image[:, 33:183, 51:252], np.ones((150, 201), bool)), None, prompts
    )
    assert np.abs(part - whole[33:183, 51:252]).max() < 1e-5


def test_options_are_checked() -> None:
    with pytest.raises(ParameterError):
        ClassifierOptions(stride=0)
    with pytest.raises(ParameterError):
        ClassifierOptions(weak_negative_weight=0.0)
    with pytest.raises(ParameterError):
        ClassifierOptions(sigmas=(-1.0,))
