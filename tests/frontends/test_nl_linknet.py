"""NL-LinkNet (paper 000): parameter counts, shapes/gradients, non-local block maths, the recipe
(plateau schedule, TTA), checkpoints, the front-end contract, and learning on the Vegas tile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from linegraph2road.errors import CheckpointError, ParameterError
from linegraph2road.frontends import FrontendOutput, MaskFrontend, build_frontend
from linegraph2road.frontends.backbones import resnet34
from linegraph2road.frontends.fit import fit, random_crops
from linegraph2road.frontends.nl_linknet import (
    NL_LINKNET_SIZES,
    UNTRAINED_LOGIT,
    NLLinkNet,
    NLLinkNetSpec,
    NonLocalBlock2d,
    PlateauSchedule,
    bce_loss,
    build_nl_linknet,
    make_optimizer,
    tta,
)
from tests.frontends.test_base import check_contract

# --- parameter counts (paper Table II; one output channel, no feature projection) -----------

PAPER_PARAMS_M = {
    "baseline": 21.657,
    "nl3": 21.690,
    "nl4": 21.789,
    "nl34": 21.822,
    "dlinknet": 31.096,
}


@pytest.mark.parametrize(("size", "paper"), sorted(PAPER_PARAMS_M.items()))
def test_parameter_counts_match_table_ii(size: str, paper: float) -> None:
    n = sum(p.numel() for p in NLLinkNet(spec=NL_LINKNET_SIZES[size], out_channels=1).parameters())
    assert round(n / 1e6, 3) == paper  # exact to the paper's three decimals (well within 1 %)


def test_pairwise_variants_and_block_sizes() -> None:
    """NLB3 sits on 128 channels (+33 344), NLB4 on 256 (+132 224); Gaussian has no theta/phi."""
    assert sum(p.numel() for p in NonLocalBlock2d(128).parameters()) == 33_344
    assert sum(p.numel() for p in NonLocalBlock2d(256).parameters()) == 132_224
    counts = {
        pw: sum(p.numel() for p in NonLocalBlock2d(256, pairwise=pw).parameters())
        for pw in ("embedded_gaussian", "dot_product", "gaussian")
    }
    assert counts["dot_product"] == counts["embedded_gaussian"]
    assert counts["embedded_gaussian"] - counts["gaussian"] == 2 * (256 * 128 + 128)
    with pytest.raises(ParameterError, match="pairwise"):
        NonLocalBlock2d(8, pairwise="cosine")


# --- shapes and gradients ---------------------------------------------------------------------


def test_full_size_forward_backward_on_cpu() -> None:
    """The paper's NL34 at 512 px, batch 1 (1024 px takes ~35 s on 2 CPU cores; 512 ~8 s)."""
    torch.manual_seed(0)
    fe = build_frontend("nl-linknet", "nl34", window_size=512)
    assert (fe.window_size, fe.stride, fe.feature_dim) == (512, 4, 128)
    out = fe(torch.randn(1, 3, 512, 512))
    assert out.masks.shape == (1, 3, 512, 512) and out.features.shape == (1, 128, 128, 128)
    (out.masks.square().mean() + out.features.square().mean()).backward()
    missing = [n for n, p in fe.named_parameters() if p.grad is None]
    assert not missing
    assert fe.net.encoder.conv1.weight.grad.abs().sum() > 0
    # zero-initialised non-local outputs: gamma gets a gradient, the block is identity at init
    assert fe.net.nonlocal4.out_bn.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(("size", "window"), [("tiny", 64), ("tiny", 32), ("small", 64)])
def test_sizes_satisfy_contract(size: str, window: int) -> None:
    torch.manual_seed(0)
    check_contract(build_frontend("nl-linknet", size, window_size=window))


def test_single_output_model_fills_the_other_channels() -> None:
    torch.manual_seed(0)
    fe = build_nl_linknet("tiny", window_size=64, mask_channels=1)
    check_contract(fe)
    fe.eval()
    x = torch.randn(2, 3, 64, 64)
    masks = fe(x).masks
    assert torch.all(masks[:, 0] == UNTRAINED_LOGIT) and torch.all(masks[:, 2] == UNTRAINED_LOGIT)
    torch.testing.assert_close(masks[:, 1:2], fe.net(x))


def test_other_square_sides_and_dilation_variant() -> None:
    fe = build_nl_linknet("tiny", window_size=64).eval()
    assert fe(torch.randn(1, 3, 96, 96)).masks.shape == (1, 3, 96, 96)
    with pytest.raises(ParameterError, match="multiple of 32"):
        fe(torch.randn(1, 3, 80, 80))
    spec = NLLinkNetSpec(name="t", nonlocal_blocks=(), dilation_block=True, widths=(8, 16, 32, 64))
    net = NLLinkNet(spec=spec)
    assert net.dblock is not None and net.nonlocal3 is None
    assert net(torch.randn(1, 3, 64, 64)).shape == (1, 1, 64, 64)


def test_bad_sizes_are_domain_errors() -> None:
    with pytest.raises(ParameterError, match="NL-LinkNet size"):
        build_frontend("nl-linknet", "vit_b")
    with pytest.raises(ParameterError, match="multiple of 32"):
        build_frontend("nl-linknet", "tiny", window_size=100)
    with pytest.raises(ParameterError, match="mask_channels"):
        build_nl_linknet("tiny", mask_channels=2)
    with pytest.raises(ParameterError, match="nonlocal_blocks"):
        NLLinkNetSpec(name="x", nonlocal_blocks=(2,))


# --- the non-local block ----------------------------------------------------------------------


@pytest.mark.parametrize("pairwise", ["embedded_gaussian", "gaussian", "dot_product"])
def test_nonlocal_block_is_identity_at_init(pairwise: str) -> None:
    torch.manual_seed(0)
    block = NonLocalBlock2d(6, pairwise=pairwise)
    x = torch.randn(2, 6, 8, 8)
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)
    torch.testing.assert_close(block.eval()(x), x, rtol=0, atol=0)


def _hand_nonlocal(block: NonLocalBlock2d, x: torch.Tensor) -> torch.Tensor:
    """Eq. (1)-(5) position by position with explicit sums (eval-mode BN)."""

    def conv(m: torch.nn.Conv2d, v: torch.Tensor) -> torch.Tensor:  # (c, N) -> (c', N)
        return m.weight[:, :, 0, 0] @ v + m.bias[:, None]

    c, h, w = x.shape
    pooled = F.max_pool2d(x[None], 2)[0] if block.sub_sample else x  # 2x2 max pool of keys
    xs, xp = x.reshape(c, -1), pooled.reshape(c, -1)
    g = F.max_pool2d(conv(block.g, xs).reshape(-1, h, w)[None], 2)[0].reshape(-1, xp.shape[1])
    if block.pairwise == "gaussian":
        q, k = xs, xp
    else:
        assert block.theta is not None and block.phi is not None
        q = conv(block.theta, xs)
        k = F.max_pool2d(conv(block.phi, xs).reshape(-1, h, w)[None], 2)[0].reshape(q.shape[0], -1)
    y = torch.zeros(g.shape[0], h * w)
    for i in range(h * w):
        f = torch.stack([q[:, i] @ k[:, j] for j in range(k.shape[1])])
        if block.pairwise == "dot_product":
            weights = f / k.shape[1]
        else:
            weights = torch.exp(f - f.max()) / torch.exp(f - f.max()).sum()
        y[:, i] = sum(weights[j] * g[:, j] for j in range(k.shape[1]))
    bn = block.out_bn
    wy = conv(block.out_conv, y)
    wy = (wy - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + bn.eps)
    wy = wy * bn.weight[:, None] + bn.bias[:, None]
    return (wy + xs).reshape(c, h, w)


@pytest.mark.parametrize("pairwise", ["embedded_gaussian", "gaussian", "dot_product"])
def test_nonlocal_block_matches_hand_computed_attention(pairwise: str) -> None:
    torch.manual_seed(1)
    block = NonLocalBlock2d(4, pairwise=pairwise).eval()
    with torch.no_grad():
        block.out_bn.weight.normal_()
        block.out_bn.bias.normal_()
        block.out_bn.running_mean.normal_()
        block.out_bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 4, 4, 6)
    with torch.no_grad():
        got = block(x)
        for b in range(2):
            torch.testing.assert_close(got[b], _hand_nonlocal(block, x[b]), rtol=1e-5, atol=1e-5)
        attn = block.attention(x)
    assert attn.shape == (2, 24, 6)
    if pairwise != "dot_product":
        torch.testing.assert_close(attn.sum(-1), torch.ones(2, 24))


# --- recipe: schedule and TTA -----------------------------------------------------------------


def test_plateau_schedule_follows_the_authors_thresholds() -> None:
    model = torch.nn.Linear(1, 1)
    opt = make_optimizer(model)
    assert opt.param_groups[0]["lr"] == pytest.approx(3e-4)
    sched = PlateauSchedule(opt, model=model)
    assert sched.step(1.0) == "improved"
    best = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    actions = [sched.step(2.0) for _ in range(9)]
    assert actions == ["waiting"] * 5 + ["reduced"] * 3 + ["stop"]
    assert sched.lr == pytest.approx(3e-4 * 0.2**3)
    torch.testing.assert_close(model.weight, best)  # best weights restored on reduction
    floor = PlateauSchedule(torch.optim.Adam(model.parameters(), lr=1e-6), patience=0)
    assert [floor.step(1.0), floor.step(1.0)] == ["improved", "stop"]  # already below 5e-6


class _PointwiseStub(MaskFrontend):
    """A 1x1-conv front-end: commutes with every flip and rotation."""

    def __init__(self) -> None:
        super().__init__()
        self.feature_dim, self.stride, self.window_size = 1, 1, 16
        self._set_normalization(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
        self.conv = torch.nn.Conv2d(3, 4, 1)

    def forward(self, image: torch.Tensor) -> FrontendOutput:
        self.check_input(image)
        y = self.conv(image)
        return FrontendOutput(y[:, :3], y[:, 3:], 1)


def test_tta_of_a_flip_equivariant_stub_is_the_plain_prediction() -> None:
    torch.manual_seed(0)
    stub = _PointwiseStub()
    x = torch.randn(2, 3, 16, 16)
    plain = torch.sigmoid(stub(x).masks)
    torch.testing.assert_close(tta(stub, x), plain)
    torch.testing.assert_close(tta(stub, x, flips=False), plain)
    with pytest.raises(ParameterError, match="windows"):
        tta(stub, x, scales=(0.75, 1.0))  # a fixed-window front-end cannot rescale


def test_tta_is_invariant_to_dihedral_transforms_of_the_input() -> None:
    torch.manual_seed(0)
    fe = build_nl_linknet("tiny", window_size=64).eval()
    x = torch.randn(1, 3, 64, 64)
    p = tta(fe, x)
    assert p.shape == (1, 3, 64, 64) and float(p.min()) >= 0 and float(p.max()) <= 1
    torch.testing.assert_close(tta(fe, torch.rot90(x, 1, (2, 3))), torch.rot90(p, 1, (2, 3)))
    torch.testing.assert_close(tta(fe, x.flip(2)), p.flip(2))
    plain = torch.sigmoid(fe(x).masks)
    assert not torch.allclose(torch.sigmoid(fe(x.flip(2)).masks), plain.flip(2))


def test_multi_scale_tta_resizes_in_and_out() -> None:
    """Scales 0.75 / 1.25 of 128 px run at 96 / 160 px; probabilities come back at 128 px."""
    torch.manual_seed(0)
    fe = build_nl_linknet("tiny", window_size=128).eval()
    x = torch.randn(1, 3, 128, 128)
    small = F.interpolate(x, size=(96, 96), mode="bilinear", align_corners=False)
    expected = F.interpolate(tta(fe, small), size=(128, 128), mode="bilinear", align_corners=False)
    torch.testing.assert_close(tta(fe, x, scales=(0.75,)), expected)
    ms = tta(fe, x, scales=(0.75, 1.0, 1.25), flips=False)
    assert ms.shape == (1, 3, 128, 128) and not torch.allclose(ms, tta(fe, x, flips=False))


# --- checkpoints ------------------------------------------------------------------------------

_TO_OFFICIAL = [
    ("encoder.conv1.", "firstconv."),
    ("encoder.bn1.", "firstbn."),
    *[(f"encoder.layer{i}.", f"encoder{i}.") for i in range(1, 5)],
    *[(f"nonlocal{i}.{m}.", f"nonlocal{i}.{m}.0.") for i in (3, 4) for m in ("g", "phi")],
    *[(f"nonlocal{i}.out_conv.", f"nonlocal{i}.W.0.") for i in (3, 4)],
    *[(f"nonlocal{i}.out_bn.", f"nonlocal{i}.W.1.") for i in (3, 4)],
]


def _official_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our network's keys renamed the way the authors' DataParallel checkpoints spell them."""
    out = {}
    for key, value in state.items():
        for ours, theirs in _TO_OFFICIAL:
            if key.startswith(ours):
                key = theirs + key[len(ours) :]
                break
        out["module." + key] = value
    return out


def test_checkpoints_round_trip_in_both_layouts(tmp_path: Path) -> None:
    torch.manual_seed(0)
    fe = build_nl_linknet("tiny", window_size=64).eval()
    x = torch.randn(1, 3, 64, 64)
    torch.save(fe.state_dict(), tmp_path / "l2r.pth")
    again = build_frontend("nl-linknet", "tiny", window_size=64, checkpoint=tmp_path / "l2r.pth")
    torch.testing.assert_close(again.eval()(x).masks, fe(x).masks)
    assert "l2r layout" in again.weights_description

    paper = build_nl_linknet("tiny", window_size=64, mask_channels=1).eval()
    official = _official_names(paper.net.state_dict())
    official["module.seb_conv2.weight"] = torch.zeros(1)  # unused extras in the authors' models
    torch.save(official, tmp_path / "NL34_LinkNet.th")
    loaded = build_nl_linknet("tiny", window_size=64, checkpoint=tmp_path / "NL34_LinkNet.th")
    assert loaded.mask_channels == 1  # read from the checkpoint's last conv
    torch.testing.assert_close(loaded.eval()(x).masks, paper(x).masks)
    assert "authors' NLLinkNet layout" in loaded.weights_description


def test_wrong_checkpoints_say_what_is_wrong(tmp_path: Path) -> None:
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(1)}, tmp_path / "sam.pth")
    with pytest.raises(CheckpointError, match="not an NL-LinkNet checkpoint"):
        build_nl_linknet("tiny", checkpoint=tmp_path / "sam.pth")
    torch.save(build_nl_linknet("tiny").state_dict(), tmp_path / "tiny.pth")
    with pytest.raises(CheckpointError, match="shape"):
        build_nl_linknet("small", checkpoint=tmp_path / "tiny.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        build_nl_linknet("tiny", checkpoint=tmp_path / "junk.pth")


def test_encoder_weights_from_a_torchvision_layout_resnet34(tmp_path: Path) -> None:
    torch.manual_seed(0)
    imagenet_like = resnet34(num_classes=1000)
    torch.save(imagenet_like.state_dict(), tmp_path / "resnet34.pth")
    fe = build_nl_linknet("baseline", window_size=64, mask_channels=1)
    assert fe.weights_description == "random init (no checkpoint)"
    assert list(fe.encoder_parameters()) == []
    loaded = fe.load_encoder_weights(tmp_path / "resnet34.pth")
    assert "layer4.2.bn2.running_var" in loaded and not any(k.startswith("fc.") for k in loaded)
    torch.testing.assert_close(
        fe.net.encoder.layer3[0].conv1.weight, imagenet_like.layer3[0].conv1.weight
    )
    assert "ResNet34 encoder from resnet34.pth" in fe.weights_description
    assert len(list(fe.encoder_parameters())) == len(list(fe.net.encoder.parameters()))
    with pytest.raises(CheckpointError, match="needs"):
        build_nl_linknet("tiny").load_encoder_weights(tmp_path / "resnet34.pth")


# --- learning on real data --------------------------------------------------------------------


def test_tiny_learns_roads_on_the_vegas_tile(fixtures_dir: Path) -> None:
    """40 steps of the recipe (BCE, Adam) on random 128 px crops of the real tile.

    Measured on 8 fixed crops of the tile (batch-statistics BN, no gradient), the BCE must fall
    below 0.8 x its untrained value (observed: ~0.70 -> ~0.45). Adam runs at 3e-3, ten times
    the paper's rate, so that tens of steps suffice.
    """
    rasterio = pytest.importorskip("rasterio")
    from linegraph2road.io import read_graph
    from linegraph2road.io.raster import read_georef
    from linegraph2road.rasterize import render_road_mask

    vegas = fixtures_dir / "spacenet_vegas"
    tif = vegas / "RGB-PanSharpen_AOI_2_Vegas_img0.tif"
    with rasterio.open(tif) as src:
        image = src.read((1, 2, 3))
    graph = read_graph(vegas / "AOI_2_Vegas_img0_gt.geojson", like=read_georef(tif))
    mask = render_road_mask(graph, image.shape[1:], width=20)[None]
    assert 0.1 < mask.mean() < 0.3  # 6 m wide roads cover ~18 % of the tile
    torch.manual_seed(0)
    fe = build_nl_linknet("tiny", window_size=128, mask_channels=1)
    images, targets = next(random_crops(image, mask, size=128, batch_size=8, steps=1, seed=99))

    def held_out_loss() -> float:
        with torch.no_grad():
            return float(bce_loss(fe(fe.normalize(images)).masks[:, 1:2], targets))

    before = held_out_loss()
    batches = random_crops(image, mask, size=128, batch_size=4, steps=40, seed=0)
    log = fit(fe, batches, loss_fn=bce_loss, optimizer=make_optimizer(fe, lr=3e-3))
    assert len(log.losses) == 40 and np.isfinite(log.losses).all()
    assert held_out_loss() < 0.8 * before
