"""Interactive rounds: one round on a view of any size, rounds over a windowed raster (equal to
the view round where one window covers the image), bad inputs, and instantiation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from affine import Affine

from linegraph2road.errors import ParameterError
from linegraph2road.frontends import build_frontend
from linegraph2road.frontends.roadgie import build_roadgie
from linegraph2road.frontends.roadgie.instantiate import instantiate_roads
from linegraph2road.georef import Georeference
from linegraph2road.inference import RasterSource
from linegraph2road.inference.interactive import predict_round, segment_with_prompts
from linegraph2road.io.raster import write_raster
from linegraph2road.prompts import Prompt
from linegraph2road.rasterize import draw_segments


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_roadgie("tiny", 64)


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (3, h, w), dtype=np.uint8)


def test_predict_round_any_size_and_inputs(model: torch.nn.Module) -> None:
    img = _image(50, 70)
    p0 = predict_round(model, img, None, [])
    assert p0.shape == (50, 70) and p0.dtype == np.float32 and 0 <= p0.min() <= p0.max() <= 1
    assert model.training  # mode restored
    np.testing.assert_array_equal(p0, predict_round(model, img, np.zeros((50, 70), np.float32), []))
    prompts = [Prompt.click(10, 10), Prompt.scribble([[5, 40], [60, 45]], positive=False)]
    p1 = predict_round(model, img, p0, prompts)
    assert not np.allclose(p1, p0)
    np.testing.assert_array_equal(p1, predict_round(model, img, p0, prompts))  # deterministic
    bf = predict_round(model, img, p0, prompts, precision="bf16")
    assert np.abs(bf - p1).max() < 0.1
    inst = predict_round(model, img, p0, prompts, instantiate=True)
    assert inst.shape == (50, 70)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"image": np.zeros((3, 8, 8), np.float32)}, "uint8"),
        ({"image": np.zeros((8, 8), np.uint8)}, "uint8"),
        ({"previous": np.zeros((5, 5), np.float32)}, "previous"),
        ({"previous": np.full((50, 70), 2.0, np.float32)}, "previous"),
        ({"prompts": [Prompt.click(80, 10)]}, "outside"),
        ({"prompts": [(1, 2)]}, "not a Prompt"),
        ({"precision": "fp16"}, "precision"),
        ({"device": "meta"}, "device"),
    ],
)
def test_predict_round_refuses_bad_input(model: torch.nn.Module, kwargs: dict, words: str) -> None:
    args = {"image": _image(50, 70), "previous": None, "prompts": []}
    args.update(kwargs)
    with pytest.raises(ParameterError, match=words):
        predict_round(model, args.pop("image"), args.pop("previous"), args.pop("prompts"), **args)


def test_not_a_roadgie_model() -> None:
    other = build_frontend("nl-linknet", "tiny", window_size=64)
    with pytest.raises(ParameterError, match="RoadGIE"):
        predict_round(other, _image(64, 64), None, [])  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="RoadGIE"):
        segment_with_prompts(other, _image(64, 64), [Prompt.click(1, 1)])  # type: ignore[arg-type]


def test_one_window_equals_the_view_round_and_rounds_chain(model: torch.nn.Module) -> None:
    img = _image(64, 64, seed=3)
    prompts = [Prompt.scribble([[3, 30], [60, 34]]), Prompt.click(20, 50, positive=False)]
    r1 = predict_round(model, img, None, prompts)
    r2 = predict_round(model, img, r1, prompts)
    one = segment_with_prompts(model, img, prompts, rounds=1)
    two = segment_with_prompts(model, img, prompts, rounds=2)
    assert one.trained_channels == (1,) and one.windows == 1 and two.windows == 2
    np.testing.assert_allclose(one.road, r1, atol=1e-6)
    np.testing.assert_allclose(two.road, r2, atol=1e-6)
    assert not one.masks[[0, 2]].any() and one.valid.all()


def test_windowed_raster_keeps_georeference(model: torch.nn.Module, tmp_path: Path) -> None:
    geo = Georeference("EPSG:32611", Affine(1.0, 0.0, 660_000.0, 0.0, -1.0, 4_000_000.0))
    path = tmp_path / "img.tif"
    write_raster(path, _image(90, 130, seed=5), georef=geo)
    prompts = [Prompt.click(100, 80), Prompt.scribble([[2, 2], [120, 60]])]
    with RasterSource(path) as src:
        res = segment_with_prompts(model, src, prompts, rounds=2, progress=False)
        assert res.georef == src.georef
    assert res.masks.shape == (3, 90, 130) and res.windows == 2 * 6
    assert {"read", "network", "total"} <= set(res.timings)
    with RasterSource(path) as src:
        with pytest.raises(ParameterError, match="no prompts"):
            segment_with_prompts(model, src, [])
        with pytest.raises(ParameterError, match="outside"):
            segment_with_prompts(model, src, [Prompt.click(131, 5)])
        with pytest.raises(ParameterError, match="rounds"):
            segment_with_prompts(model, src, prompts, rounds=0)


def test_instantiation_keeps_the_prompted_road_and_drops_an_unconnected_one() -> None:
    shape = (80, 120)
    prob = np.zeros(shape, np.float32)
    prob[draw_segments([[5, 20]], [[115, 20]], shape, width=7)] = 0.9  # road A
    prob[draw_segments([[5, 60]], [[115, 60]], shape, width=7)] = 0.8  # road B, unconnected
    inst = instantiate_roads(prob, [Prompt.click(60.5, 20.5)])
    assert inst.applied and len(inst.kept) == 1
    assert (inst.probability[20, 10:110] == 0.9).all()
    assert not inst.probability[40:].any()
    # a negative prompt on A and a positive on B keep B only
    both = instantiate_roads(prob, [Prompt.click(60.5, 20.5, positive=False), Prompt.click(30, 60)])
    assert both.probability[60, 30] == pytest.approx(0.8) and not both.probability[:40].any()
    # no positive prompt on a road: unchanged
    none = instantiate_roads(prob, [Prompt.click(60.5, 40.5)])
    assert not none.applied and np.array_equal(none.probability, prob)


def test_instantiation_splits_a_wide_road_from_the_narrow_streets_it_meets() -> None:
    shape = (100, 100)
    prob = np.zeros(shape, np.float32)
    prob[draw_segments([[2, 50]], [[98, 50]], shape, width=15)] = 0.9  # a wide avenue
    prob[draw_segments([[50, 2]], [[50, 40]], shape, width=3)] = 0.9  # a narrow street meeting it
    inst = instantiate_roads(prob, [Prompt.scribble([[10, 50.5], [90, 50.5]])])
    assert inst.applied
    assert inst.probability[50, 10] > 0 and inst.probability[50, 90] > 0
    assert not inst.probability[5:30, 48:53].any()  # the street is another road
    with pytest.raises(ParameterError):
        instantiate_roads(prob[None], [])
