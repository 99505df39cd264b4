"""Whole-image segmentation with any front-end (sliding windows, TTA, FCtL patch merging)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.experts import build_experts
from linegraph2road.frontends.fctl import FCTL_SIZES, FCtLFrontend, RefinementNet, segment_large
from linegraph2road.frontends.nl_linknet import build_nl_linknet, tta
from linegraph2road.inference.segment import fctl_overlap, segment_image


def image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (3, h, w), dtype=np.uint8)


@pytest.fixture(scope="module")
def nl_road() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_nl_linknet("tiny", 64, mask_channels=1).eval()


def test_one_window_equals_the_network(nl_road: torch.nn.Module) -> None:
    img = image(64, 64)
    res = segment_image(nl_road, img)
    with torch.no_grad():
        want = torch.sigmoid(nl_road(nl_road.normalize(torch.from_numpy(img))).masks)[0].numpy()
    assert res.trained_channels == (1,) and res.windows == 1
    np.testing.assert_allclose(res.road, want[1], atol=1e-6)
    assert not res.masks[0].any() and not res.masks[2].any()  # road-only model
    flipped = segment_image(nl_road, img, flips=True)
    with torch.no_grad():
        want = tta(nl_road, nl_road.normalize(torch.from_numpy(img)))[0, 1].numpy()
    np.testing.assert_allclose(flipped.road, want, atol=1e-6)


def test_overlapping_windows_average_and_nodata_is_zero(nl_road: torch.nn.Module) -> None:
    img = image(100, 150)
    valid = np.ones((100, 150), bool)
    valid[:, :20] = False
    res = segment_image(nl_road, img, valid=valid, n_windows=3)
    assert res.masks.shape == (3, 100, 150) and res.windows == 9  # 3 x 3
    assert np.all((res.road >= 0) & (res.road <= 1))
    assert not res.road[:, :20].any() and res.road[:, 20:].all()
    # a column covered by two windows holds their mean
    with torch.no_grad():
        x = nl_road.normalize(torch.from_numpy(img))
        a = torch.sigmoid(nl_road(x[..., :64, :64]).masks)[0, 1].numpy()
        b = torch.sigmoid(nl_road(x[..., :64, 43:107]).masks)[0, 1].numpy()
    np.testing.assert_allclose(res.road[10, 50], (a[10, 50] + b[10, 7]) / 2, atol=1e-6)


def test_small_image_is_padded_and_mode_restored(nl_road: torch.nn.Module) -> None:
    nl_road.train()
    res = segment_image(nl_road, image(30, 40))
    assert res.masks.shape == (3, 30, 40) and res.valid.all()
    assert nl_road.training
    nl_road.eval()


def test_experts_route_each_window() -> None:
    torch.manual_seed(0)
    experts = build_experts("tiny-k2-road", 64, None).eval()
    res = segment_image(experts, image(64, 128), batch_size=2)
    assert res.windows == 3 and res.trained_channels == (1,)
    assert np.isfinite(res.road).all()


def test_fctl_merges_patches_with_contexts() -> None:
    torch.manual_seed(0)
    fctl = FCtLFrontend(spec=replace(FCTL_SIZES["tiny"], num_classes=1), window_size=64).eval()
    refiner = RefinementNet(widths=(4, 8)).eval()
    img = image(200, 220)
    res = segment_image(fctl, img, refiner=refiner)
    x = fctl.normalize(torch.from_numpy(img))[0]
    want = segment_large(
        lambda p, c: fctl(p, c).masks[:, [1]],
        x,
        patch=64,
        overlap=fctl_overlap(64),
        context_sizes=fctl.context_sizes,
        refiner=refiner,
        refine_context=128,
    )
    np.testing.assert_allclose(res.road, want[0].numpy(), atol=1e-6)
    with pytest.raises(ParameterError, match="largest context is 192 px"):
        segment_image(fctl, image(150, 300))
    with pytest.raises(ParameterError, match="--windows"):
        segment_image(fctl, img, n_windows=2)


def test_bad_arguments_are_refused(nl_road: torch.nn.Module) -> None:
    img = image(64, 64)
    with pytest.raises(ParameterError, match="refinement network"):
        segment_image(nl_road, img, refiner=RefinementNet(widths=(4, 8)))
    experts = build_experts("tiny-k2-road", 64, None)
    with pytest.raises(ParameterError, match="nl-linknet"):
        segment_image(experts, img, scales=(0.75, 1.0))
    with pytest.raises(ParameterError, match="precision"):
        segment_image(nl_road, img, precision="fp16")
    with pytest.raises(ParameterError, match="uint8"):
        segment_image(nl_road, img.astype(np.float32))
    bf16 = segment_image(nl_road, img, precision="bf16")
    assert np.abs(bf16.road - segment_image(nl_road, img).road).max() < 0.05
