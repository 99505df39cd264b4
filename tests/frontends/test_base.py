"""The front-end contract (``MaskFrontend``), checked on every registered front-end size."""

from __future__ import annotations

import json

import pytest
import torch

from linegraph2road.errors import ParameterError
from linegraph2road.frontends import (
    MASK_NAMES,
    FrontendOutput,
    MaskFrontend,
    build_frontend,
)
from linegraph2road.frontends.sam import SAM_PIXEL_MEAN, SAM_PIXEL_STD


class _Constant(MaskFrontend):
    """The smallest valid front-end: what a newcomer's subclass has to provide."""

    def __init__(self) -> None:
        super().__init__()
        self.feature_dim, self.stride, self.window_size = 2, 4, 8
        self._set_normalization(mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0))
        self.conv = torch.nn.Conv2d(3, 3 + 2, 1)

    def forward(self, image: torch.Tensor) -> FrontendOutput:
        self.check_input(image)
        y = self.conv(image)
        return FrontendOutput(y[:, :3], y[:, 3:, :: self.stride, :: self.stride], self.stride)


def check_contract(frontend: MaskFrontend) -> None:
    """What every front-end must satisfy (see ``linegraph2road/frontends/base.py``)."""
    w, s, d = frontend.window_size, frontend.stride, frontend.feature_dim
    assert frontend.mask_names == MASK_NAMES == ("keypoint", "road", "overpass")
    assert isinstance(frontend.weights_description, str) and frontend.weights_description
    json.dumps(frontend.describe())
    raw = torch.randint(0, 256, (2, 3, w, w), generator=torch.Generator().manual_seed(0))
    x = frontend.normalize(raw.to(torch.uint8))
    assert x.dtype == torch.float32 and x.shape == (2, 3, w, w)
    torch.testing.assert_close(frontend.normalize(raw.float()), x)
    torch.testing.assert_close(frontend.normalize(raw[0].to(torch.uint8)), x[:1])
    frontend.train()
    out = frontend(x)
    assert frontend.training  # forward does not switch modes
    assert isinstance(out, FrontendOutput)
    assert out.masks.shape == (2, len(MASK_NAMES), w, w) and out.masks.dtype == torch.float32
    assert out.features.shape == (2, d, w // s, w // s) and out.stride == s
    # Every trainable parameter is reached by the masks or the features (DDP without
    # find_unused_parameters); frozen ones have requires_grad=False.
    (out.masks.square().mean() + out.features.square().mean()).backward()
    unused = [n for n, p in frontend.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused
    encoder = {id(p) for p in frontend.encoder_parameters()}
    assert encoder <= {id(p) for p in frontend.parameters() if p.requires_grad}
    with pytest.raises(ParameterError, match="windows"):
        frontend(x[:, :, : w // 2])
    with pytest.raises(ParameterError, match="normalize"):
        frontend(raw.to(torch.uint8))
    with pytest.raises(ParameterError):
        frontend.normalize(raw[:, :2])


def test_mask_frontend_is_abstract() -> None:
    with pytest.raises(TypeError):
        MaskFrontend()  # type: ignore[abstract]


def test_minimal_subclass_satisfies_contract() -> None:
    fe = _Constant()
    assert fe.weights_description == "random init (no checkpoint)"
    assert list(fe.encoder_parameters()) == []
    check_contract(fe)


@pytest.mark.parametrize(("size", "window"), [("tiny", 64), ("tiny", 32), ("small", 64)])
def test_sam_sizes_satisfy_contract(size: str, window: int) -> None:
    torch.manual_seed(0)
    check_contract(build_frontend("sam", size, window_size=window))


def test_sam_normalization_is_sams() -> None:
    fe = build_frontend("sam", "tiny", window_size=32)
    img = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    img[0, :, 0, 0] = 255
    x = fe.normalize(img)
    mean, std = torch.tensor(SAM_PIXEL_MEAN), torch.tensor(SAM_PIXEL_STD)
    torch.testing.assert_close(x[0, :, 0, 0], (255 - mean) / std)
    torch.testing.assert_close(x[0, :, 1, 1], -mean / std)
    assert "pixel_mean" not in fe.state_dict()  # statistics are code, not weights


def test_sam_describe_and_weights_description() -> None:
    fe = build_frontend("sam", "tiny", window_size=64)
    assert fe.describe() == {
        "frontend": "sam",
        "size": "tiny",
        "feature_dim": 16,
        "stride": 16,
        "window_size": 64,
        "mask_names": ["keypoint", "road", "overpass"],
        "overpass": True,
    }
    assert fe.weights_description == "random init (no checkpoint)"


def test_vit_b_sizes() -> None:
    """The real size matches the paper: ViT-B encoder, D_feature 128 at stride 16."""
    fe = build_frontend("sam", "vit_b", window_size=512)
    enc = fe.image_encoder
    assert len(enc.blocks) == 12 and enc.patch_embed.proj.out_channels == 768
    assert [i for i, b in enumerate(enc.blocks) if b.window_size == 0] == [2, 5, 8, 11]
    assert enc.blocks[0].window_size == 14 and enc.blocks[0].attn.num_heads == 12
    assert enc.pos_embed.shape == (1, 32, 32, 768)
    assert enc.blocks[2].attn.rel_pos_h.shape == (63, 64)
    assert (fe.feature_dim, fe.stride, fe.window_size) == (128, 16, 512)
    n_encoder = sum(p.numel() for p in fe.encoder_parameters())
    assert 85_000_000 < n_encoder < 90_000_000  # ViT-B image encoder: ~85.7 M at 512 px
