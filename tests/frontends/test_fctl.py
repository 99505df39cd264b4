"""FCtL (paper 001): shapes, exact maths of its modules, patch merging, errors, learning."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F

from linegraph2road.errors import CheckpointError, ParameterError
from linegraph2road.frontends import build_frontend
from linegraph2road.frontends.fctl import (
    ABSENT_LOGIT,
    FCTL_SIZES,
    FCtLFrontend,
    FCtLNet,
    MultiContextFusion,
    RefinementNet,
    VGG16Conv3,
    extract_contexts,
    fit_fctl,
    focal_loss,
    load_vgg16_weights,
    locality_aware_correlation,
    make_optimizer,
    patch_origins,
    poly_schedule,
    sample_patches,
    segment_large,
)
from linegraph2road.io import read_graph
from linegraph2road.io.raster import read_georef
from linegraph2road.rasterize import render_road_mask
from tests.frontends.test_base import check_contract


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- the MaskFrontend contract and the registry ----------------------------------------------


@pytest.mark.parametrize(("size", "window"), [("tiny", 64), ("tiny", 32), ("small", 64)])
def test_sizes_satisfy_contract(size: str, window: int) -> None:
    torch.manual_seed(0)
    fe = build_frontend("fctl", size, window_size=window)
    check_contract(fe)
    assert (fe.stride, fe.context_sizes) == (4, (window, 2 * window, 3 * window))


def test_road_only_fills_road_channel() -> None:
    spec = dataclasses.replace(FCTL_SIZES["tiny"], num_classes=1)
    fe = FCtLFrontend(spec=spec, window_size=32)
    check_contract(fe)
    out = fe(torch.randn(1, 3, 32, 32))
    assert fe.trained_channels == (1,)
    assert torch.all(out.masks[:, [0, 2]] == ABSENT_LOGIT)
    assert torch.all(out.masks[:, 1] != ABSENT_LOGIT)


def test_describe_and_bad_sizes() -> None:
    fe = build_frontend("fctl", "tiny", window_size=64)
    assert fe.describe()["context_sizes"] == [64, 128, 192]
    assert fe.describe()["frontend"] == "fctl"
    with pytest.raises(ParameterError, match="unknown FCtL size"):
        build_frontend("fctl", "huge", window_size=64)
    with pytest.raises(ParameterError, match="multiple of 4"):
        build_frontend("fctl", "tiny", window_size=30)
    with pytest.raises(ParameterError, match="1 \\(road\\) or 3"):
        FCtLFrontend(spec=dataclasses.replace(FCTL_SIZES["tiny"], num_classes=7))
    with pytest.raises(ParameterError, match="contexts must be"):
        fe(torch.zeros(1, 3, 64, 64), torch.zeros(1, 2, 3, 64, 64))


# --- shapes and gradients at the paper's patch size ------------------------------------------


def test_paper_size_shapes_and_gradients_on_meta() -> None:
    """Full VGG16 widths, 508 px with 508/1016/1524 contexts: shapes of every output and grad.

    On CPU the full-width forward + backward takes ~30 s on 2 cores (``bench/learn_fctl.py``
    is the place for timings), so it runs on the meta device: every op and shape, no numbers.
    """
    with torch.device("meta"):
        fe = build_frontend("fctl", "vgg16", window_size=508)
        out = fe(torch.zeros(1, 3, 508, 508), torch.zeros(1, 3, 3, 508, 508))
    assert fe.context_sizes == (508, 1016, 1524)
    assert out.masks.shape == (1, 3, 508, 508)
    assert out.features.shape == (1, 128, 127, 127) and out.stride == 4
    (out.masks.square().mean() + out.features.square().mean()).backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in fe.parameters())


def test_paper_patch_size_forward_backward_cpu() -> None:
    """508 px patch, batch 1, three real contexts cut from a 1524 px image (tiny widths)."""
    torch.manual_seed(0)
    fe = build_frontend("fctl", "tiny", window_size=508)
    image = torch.randn(3, 1524, 1524)
    contexts = extract_contexts(image, row=508, col=508, patch=508, context_sizes=fe.context_sizes)
    assert contexts.shape == (3, 3, 508, 508)
    out = fe(image[None, :, 508:1016, 508:1016], contexts[None])
    assert out.masks.shape == (1, 3, 508, 508) and out.features.shape == (1, 16, 127, 127)
    (out.masks.square().mean() + out.features.square().mean()).backward()
    for name, p in fe.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # the medium and large contexts reach the output through the correlation + fusion
    assert fe.net.fusion.squeeze.weight.grad.abs().sum() > 0


def test_parameter_counts() -> None:
    """The paper gives no parameter count (only memory, 3167 MB/patch, and 0.15 s/patch)."""
    fe = build_frontend("fctl", "vgg16", window_size=508)
    assert _params(fe.net.encoder) == 1_735_488  # torchvision vgg16.features[:17]
    assert _params(fe.net.fusion) == 394_240  # 1x1 convs 768 -> 256 -> 768
    assert _params(fe) == 2_847_171
    assert _params(RefinementNet()) == 780_241
    assert _params(build_frontend("fctl", "small", window_size=64)) == 179_859
    assert _params(build_frontend("fctl", "tiny", window_size=64)) == 44_987


# --- the paper's modules, against hand computations -----------------------------------------


def test_correlation_equals_hand_computed_attention() -> None:
    g = torch.Generator().manual_seed(1)
    local, context = torch.randn(2, 3, 2, 3, generator=g), torch.randn(2, 3, 2, 3, generator=g)
    got = locality_aware_correlation(local, context)
    for b in range(2):
        xi = local[b].reshape(3, 6).tolist()  # C x N
        xu = context[b].reshape(3, 6).tolist()
        for p in range(6):
            r = [sum(xi[c][p] * xu[c][q] for c in range(3)) for q in range(6)]
            z = sum(math.exp(v - max(r)) for v in r)
            a = [math.exp(v - max(r)) / z for v in r]
            want = [sum(a[q] * xi[c][q] for q in range(6)) for c in range(3)]
            torch.testing.assert_close(got[b].reshape(3, 6)[:, p], torch.tensor(want))
    with pytest.raises(ParameterError):
        locality_aware_correlation(local, context[:, :, :1])


def test_fusion_weights_sum_to_one_per_position() -> None:
    torch.manual_seed(0)
    fusion = MultiContextFusion(channels=4, num_contexts=3)
    maps = torch.randn(2, 3, 4, 5, 6)
    w = fusion.weights(maps)
    assert w.shape == (2, 3, 4, 5, 6) and (w >= 0).all()
    torch.testing.assert_close(w.sum(dim=1), torch.ones(2, 4, 5, 6))
    torch.testing.assert_close(fusion(maps), (w * maps).sum(dim=1))
    assert fusion.squeeze.out_channels == 4  # squeeze T C -> C, split C -> T C


def test_local_context_features_are_the_patch_features() -> None:
    """A scale-1 context is the patch: passing None or the patch itself gives the same output."""
    torch.manual_seed(0)
    net = FCtLNet(num_classes=2, widths=(4, 4, 8), context_scales=(1.0, 1.0))
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(net(x).logits, net(x, torch.randn(1, 2, 3, 32, 32)).logits)


def test_multiclass_net_and_softmax_focal() -> None:
    torch.manual_seed(0)
    net = FCtLNet(num_classes=7, widths=(4, 4, 8))
    x, ctx = torch.randn(2, 3, 40, 40), torch.randn(2, 3, 3, 40, 40)
    logits = net(x, ctx).logits
    assert logits.shape == (2, 7, 40, 40)
    labels = torch.randint(0, 7, (2, 40, 40))
    torch.testing.assert_close(focal_loss(logits, labels, gamma=0), F.cross_entropy(logits, labels))
    labels[:, :5] = 6
    torch.testing.assert_close(
        focal_loss(logits, labels, gamma=0, ignore_index=6),
        F.cross_entropy(logits, labels, ignore_index=6),
    )


def test_focal_loss_binary() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, generator=g) * 3
    targets = (torch.rand(2, 3, 8, 8, generator=g) > 0.5).float()
    bce = F.binary_cross_entropy_with_logits(logits, targets)
    torch.testing.assert_close(focal_loss(logits, targets, gamma=0), bce)
    # gamma 3: an easy pixel (p_t = 0.9) is scaled by 0.1^3, a hard one (p_t = 0.1) by 0.9^3
    x = torch.tensor([math.log(9.0), -math.log(9.0)]).view(1, 2, 1, 1)
    t = torch.ones(1, 2, 1, 1)
    per = [float(focal_loss(x[:, i : i + 1], t[:, :1])) for i in range(2)]
    ce = [-math.log(0.9), -math.log(0.1)]
    assert per[0] == pytest.approx(ce[0] * 0.1**3, rel=1e-5)
    assert per[1] == pytest.approx(ce[1] * 0.9**3, rel=1e-5)
    assert focal_loss(logits, targets) < bce
    with pytest.raises(ParameterError):
        focal_loss(logits, targets[:, :1])


# --- contexts, patch merging, refinement -----------------------------------------------------


def test_extract_contexts_centred_and_padded() -> None:
    image = torch.arange(2 * 60 * 70, dtype=torch.float32).reshape(2, 60, 70)
    ctx = extract_contexts(image, row=0, col=10, patch=20, context_sizes=(20, 40, 60))
    assert ctx.shape == (3, 2, 20, 20)
    torch.testing.assert_close(ctx[0], image[:, 0:20, 10:30])  # the local context
    ones = extract_contexts(
        torch.ones(1, 60, 70), row=0, col=10, patch=20, context_sizes=(40,), pad_value=0.0
    )[0, 0]
    assert ones[0, 10] == 0 and ones[-1, 10] == 1  # above row 0 is padding, below is image
    with pytest.raises(ParameterError, match=r"image smaller than the FCtL context \(80 px\)"):
        extract_contexts(image, row=0, col=0, patch=20, context_sizes=(20, 80))
    with pytest.raises(ParameterError, match="outside"):
        extract_contexts(image, row=50, col=0, patch=20, context_sizes=(20,))


@pytest.mark.parametrize(
    ("size", "patch", "overlap"), [(100, 20, 5), (508, 508, 120), (2448, 508, 120), (65, 32, 0)]
)
def test_patch_origins_cover_with_overlap(size: int, patch: int, overlap: int) -> None:
    o = patch_origins(size, patch=patch, overlap=overlap)
    assert o[0] == 0 and o[-1] == size - patch
    assert all(b - a <= patch - overlap for a, b in itertools.pairwise(o))


def _identity(patches: torch.Tensor, contexts: torch.Tensor) -> torch.Tensor:
    assert contexts.shape[:2] == (patches.shape[0], 2)
    return patches.clone()


@pytest.mark.parametrize("kind", ["constant", "linear"])
def test_segment_large_merges_without_seams(kind: str) -> None:
    h, w = 150, 130
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    if kind == "constant":
        image = torch.full((3, h, w), 0.37)
    else:
        image = torch.stack([0.01 * rows + 0.02 * cols, 0.5 - 0.003 * rows, 0.004 * cols]).float()
    merged = segment_large(
        _identity, image, patch=48, overlap=12, context_sizes=(48, 96), activation="identity"
    )
    torch.testing.assert_close(merged, image, rtol=0, atol=1e-6)


def test_segment_large_with_model_and_refiner() -> None:
    torch.manual_seed(0)
    fe = build_frontend("fctl", "tiny", window_size=32).eval()
    raw = torch.randint(0, 256, (3, 96, 104), dtype=torch.uint8)
    image = fe.normalize(raw)[0]
    refiner = RefinementNet(num_classes=3, widths=(4, 8)).eval()
    probs = segment_large(
        fe, image, patch=32, overlap=8, context_sizes=fe.context_sizes, batch_size=4
    )
    refined = segment_large(
        fe,
        image,
        patch=32,
        overlap=8,
        context_sizes=fe.context_sizes,
        refiner=refiner,
        refine_context=64,
    )
    for p in (probs, refined):
        assert p.shape == (3, 96, 104) and p.dtype == torch.float32
        assert float(p.min()) >= 0 and float(p.max()) <= 1
    with pytest.raises(ParameterError, match=r"image smaller than the FCtL context \(96 px\)"):
        segment_large(fe, image[:, :80], patch=32, context_sizes=fe.context_sizes)


def test_refinement_net_shapes_and_gradients() -> None:
    torch.manual_seed(0)
    net = RefinementNet(num_classes=1, widths=(4, 8, 8, 16))
    local, ctx = torch.rand(2, 1, 100, 100), torch.rand(2, 1, 100, 100)
    out = net(local, ctx)
    assert out.shape == (2, 1, 100, 100)
    out.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ParameterError):
        net(local, ctx[:, :, :50])


# --- VGG16 weights ---------------------------------------------------------------------------


def test_vgg16_weights_load_from_torchvision_layout(tmp_path: Path) -> None:
    vgg = VGG16Conv3()
    names = [k for k in vgg.state_dict()]
    assert names[:2] == ["features.0.weight", "features.0.bias"] and names[-1] == "features.14.bias"
    sd = {k: torch.randn_like(v) for k, v in vgg.state_dict().items()}
    sd["features.17.weight"] = torch.randn(512, 256, 3, 3)  # conv4_1: ignored
    sd["classifier.0.weight"] = torch.randn(2, 2)
    torch.save({f"module.{k}": v for k, v in sd.items()}, tmp_path / "vgg16.pth")
    fe = build_frontend("fctl", "vgg16", window_size=64, checkpoint=tmp_path / "vgg16.pth")
    assert fe.weights_description.startswith("VGG16 conv1-3 from vgg16.pth")
    torch.testing.assert_close(fe.net.encoder.features[14].weight, sd["features.14.weight"])
    with pytest.raises(CheckpointError, match="shape"):
        load_vgg16_weights(VGG16Conv3(widths=(8, 16, 32)), sd)
    with pytest.raises(CheckpointError, match="missing"):
        load_vgg16_weights(vgg, {"conv1.weight": torch.zeros(1)})
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_vgg16_weights(vgg, tmp_path / "junk.pth")


# --- learning on real data -------------------------------------------------------------------


def test_learns_roads_on_vegas_tile(fixtures_dir: Path) -> None:
    """60 steps of the paper's recipe (lr 3e-3 for speed) learn roads on the real Vegas tile.

    On 16 fixed held-out patches the focal loss falls by more than 15 % (seeds 0-4: 28-60 %)
    and road pixels rank above background (ROC AUC > 0.65; seeds 0-4: 0.74-0.88); a constant
    prediction, which the loss alone could reach by fitting a bias, has AUC 0.5.
    """
    vegas = fixtures_dir / "spacenet_vegas"
    tif = vegas / "RGB-PanSharpen_AOI_2_Vegas_img0.tif"
    with rasterio.open(tif) as ds:
        rgb = ds.read((1, 2, 3))
    graph = read_graph(vegas / "AOI_2_Vegas_img0_gt.geojson", like=read_georef(tif))
    mask = render_road_mask(graph, rgb.shape[1:], width=20)
    torch.manual_seed(0)
    fe = FCtLFrontend(spec=dataclasses.replace(FCTL_SIZES["tiny"], num_classes=1), window_size=64)
    image = fe.normalize(torch.from_numpy(rgb))[0]
    targets = torch.from_numpy(mask[None].astype(np.float32))
    kw = {"patch": 64, "context_sizes": fe.context_sizes}
    fixed = next(sample_patches(image, targets, batch_size=16, steps=1, seed=123, **kw))

    def evaluate() -> tuple[float, float]:
        with torch.no_grad():
            logits = fe(fixed.patches, fixed.contexts).masks[:, 1:2]
        loss = float(focal_loss(logits, fixed.targets))
        score, road = logits.flatten().numpy(), fixed.targets.flatten().numpy() > 0.5
        ranks = np.empty(score.size)
        ranks[np.argsort(score)] = np.arange(score.size)
        n_pos, n_neg = road.sum(), (~road).sum()
        return loss, float((ranks[road].sum() - n_pos * (n_pos - 1) / 2) / (n_pos * n_neg))

    before, _ = evaluate()
    opt = make_optimizer(fe, lr=3e-3)
    batches = sample_patches(image, targets, batch_size=4, steps=60, seed=0, **kw)
    log = fit_fctl(fe, batches, optimizer=opt, scheduler=poly_schedule(opt, total_steps=60))
    after, auc = evaluate()
    assert len(log.losses) == 60 and log.lrs[-1] < log.lrs[0]
    assert after < 0.85 * before, (before, after)
    assert auc > 0.65, auc
