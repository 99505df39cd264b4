"""The simulated user (error regions, centre-biased clicks, scribbles that stay inside their
region, expert guidance) and the loss (the skeleton recall term ignores prompted pixels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.roadgie.loss import (
    roadgie_loss,
    skeleton_recall_loss,
    tubed_skeleton,
)
from linegraph2road.frontends.roadgie.simulation import (
    SimulationSettings,
    correction_regions,
    sample_click,
    sample_scribble,
    simulate_round,
)
from linegraph2road.prompts import prompt_mask
from linegraph2road.rasterize import draw_segments


def _curvy_road(shape: tuple[int, int] = (96, 96)) -> np.ndarray:
    """A 7 px wide road bending through the image plus a branch: a non-convex region."""
    pts = np.array([[2, 10], [40, 20], [60, 60], [90, 70]], dtype=float)
    road = draw_segments(pts[:-1], pts[1:], shape, width=7)
    return road | draw_segments([[40, 20]], [[20, 90]], shape, width=5)


def test_correction_regions() -> None:
    gt = np.zeros((20, 20), bool)
    gt[2:5, :] = True
    pred = np.zeros_like(gt)
    pred[2:5, :10] = True
    pred[15:18, 15:18] = True
    regions = correction_regions(gt, pred)
    assert [(int(r.sum()), pos) for r, pos in regions] == [(30, True), (9, False)]
    assert regions[0][0][2:5, 10:].all()
    with pytest.raises(ParameterError):
        correction_regions(gt, pred[:5])


@pytest.mark.parametrize("kind", ["centre", "line", "bezier"])
def test_each_scribble_type_stays_inside_its_region(kind: str) -> None:
    region = _curvy_road()
    kinds = []
    for seed in range(25):
        rng = np.random.default_rng(seed)
        p = sample_scribble(region, rng, kind=kind, positive=True)
        kinds.append(p.kind)
        if p.kind == "scribble":
            pts = p.points
            drawn = draw_segments(pts[:-1], pts[1:], region.shape, width=1)
            assert drawn.any() and not (drawn & ~region).any(), (seed, pts)
        else:
            x, y = p.points[0]
            assert region[int(y), int(x)]
    assert kinds.count("scribble") >= 20  # mostly real scribbles, few fall back to clicks
    with pytest.raises(ParameterError):
        sample_scribble(region, np.random.default_rng(0), kind="zigzag", positive=True)


def test_centre_scribbles_follow_the_skeleton_and_are_truncated() -> None:
    region = np.zeros((40, 200), bool)
    region[15:26, 5:195] = True  # an 11 px wide straight road
    lengths = []
    for seed in range(10):
        settings = SimulationSettings(displacement=0.0)
        p = sample_scribble(region, np.random.default_rng(seed), kind="centre", positive=True,
                            settings=settings)  # fmt: skip
        assert p.kind == "scribble"
        assert np.abs(p.points[:, 1] - 20.5).max() <= 1.0  # on the centre line
        lengths.append(np.hypot(*(p.points[-1] - p.points[0])))
    assert min(lengths) < 150 < 190 > max(lengths)  # partial annotations of a ~190 px skeleton


def test_clicks_are_centre_biased_and_inside() -> None:
    region = np.zeros((60, 60), bool)
    region[10:50, 10:50] = True
    near = []
    for gamma in (0.0, 4.0):
        d = []
        for seed in range(200):
            c = sample_click(region, np.random.default_rng(seed), positive=True, gamma=gamma)
            x, y = c.points[0]
            assert region[int(y), int(x)] and x % 1 == 0.5
            d.append(max(abs(x - 30), abs(y - 30)))
        near.append(float(np.mean(d)))
    assert near[1] < 0.6 * near[0]


def test_expert_guidance_pulls_positive_prompts_to_uncertain_regions() -> None:
    gt = np.zeros((64, 64), bool)
    gt[10:15, 5:60] = True
    gt[45:50, 5:60] = True
    pred = np.zeros_like(gt)
    unc = np.zeros(gt.shape, np.float32)
    unc[45:50, 5:60] = 0.8
    settings = SimulationSettings(kinds=("click",), min_prompts=1, max_prompts=1)
    counts = {"plain": 0, "expert": 0}
    for seed in range(60):
        for name, u in (("plain", None), ("expert", unc)):
            (p,) = simulate_round(gt, pred, np.random.default_rng(seed), settings=settings,
                                  uncertainty=u)  # fmt: skip
            counts[name] += int(p.points[0, 1] > 32)
    assert 15 < counts["plain"] < 45 and counts["expert"] >= 58


def test_simulate_round_signs_counts_and_accumulation() -> None:
    gt = _curvy_road()
    pred = np.zeros_like(gt)
    pred[70:90, 5:30] = True  # a false positive blob
    pred |= gt & (np.arange(96)[None, :] < 50)  # half the road found
    seen = set()
    for seed in range(30):
        prompts = simulate_round(gt, pred, np.random.default_rng(seed))
        assert 1 <= len(prompts) <= 3
        for p in prompts:
            x, y = p.points[0]
            r, c = int(y), int(x)
            assert (gt[r, c] and not pred[r, c]) if p.positive else (pred[r, c] and not gt[r, c])
            seen.add((p.kind, p.positive))
    assert {k for k, _ in seen} == {"click", "scribble"} and {s for _, s in seen} == {True, False}
    assert simulate_round(gt, gt, np.random.default_rng(0)) == []
    first = simulate_round(gt, np.zeros_like(gt), np.random.default_rng(0))
    assert first and all(p.positive for p in first)  # round 1: everything is a false negative
    with pytest.raises(ParameterError):
        SimulationSettings(kinds=("box",))
    with pytest.raises(ParameterError):
        SimulationSettings(min_prompts=3, max_prompts=1)


def test_skeleton_recall_ignores_prompted_pixels() -> None:
    gt = np.zeros((32, 32), bool)
    gt[14:19, 2:30] = True
    skel = tubed_skeleton(gt)
    assert skel.any() and not (skel & ~gt).any() and skel[16, 10]
    from linegraph2road.prompts import Prompt

    prompted = prompt_mask([Prompt.scribble([[2, 16.5], [14, 16.5]])], gt.shape)
    t = lambda a: torch.from_numpy(np.asarray(a, np.float32))[None, None]  # noqa: E731
    base = torch.full((1, 1, 32, 32), -2.0)
    inside = base.clone()
    inside[0, 0][torch.from_numpy(prompted)] = 5.0  # change only prompted pixels
    outside = base.clone()
    outside[0, 0, 16, 20:28] = 5.0  # change road pixels away from the prompt
    free = 1 - t(prompted)
    l0 = skeleton_recall_loss(base, t(skel), free)
    assert float(skeleton_recall_loss(inside, t(skel), free)) == pytest.approx(float(l0))
    assert float(skeleton_recall_loss(outside, t(skel), free)) < float(l0) - 0.05
    # without the exclusion the prompted pixels count
    assert float(skeleton_recall_loss(inside, t(skel))) < float(skeleton_recall_loss(base, t(skel)))
    # the whole loss: only the skeleton term is excluded by default
    full = [roadgie_loss(x, t(gt), t(skel), t(prompted)) for x in (base, inside)]
    assert float(full[1]) < float(full[0])
    only_skel = [roadgie_loss(x, t(gt), t(skel), t(prompted), focal_weight=0, dice_weight=0)
                 for x in (base, inside)]  # fmt: skip
    assert float(only_skel[1]) == pytest.approx(float(only_skel[0]))
    all_out = [roadgie_loss(x, t(gt), t(skel), t(prompted), exclude=("focal", "dice", "skeleton"))
               for x in (base, inside)]  # fmt: skip
    assert float(all_out[1]) == pytest.approx(float(all_out[0]), abs=1e-5)
    # a skeleton entirely under prompts contributes nothing; the loss still has a gradient path
    z = skeleton_recall_loss(base.requires_grad_(), t(skel), torch.zeros_like(free))
    assert z.requires_grad and float(z.detach()) == 0.0
    with pytest.raises(ParameterError):
        roadgie_loss(base, t(gt), t(skel), t(prompted), exclude=("iou",))
