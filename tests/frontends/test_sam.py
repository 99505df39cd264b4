"""SAM front-end: official checkpoint layout, size detection, bad files, import isolation."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from linegraph2road.errors import InputFileError, ParameterError
from linegraph2road.frontends import (
    ABSENT_LOGIT,
    SAM_SIZES,
    CheckpointError,
    SamFrontend,
    SamSpec,
    build_frontend,
    load_sam_checkpoint,
)
from linegraph2road.frontends._sam_import import sam_modeling
from linegraph2road.frontends.sam import SAM_PIXEL_MEAN, SAM_PIXEL_STD

sam_lib = sam_modeling()


def official_sam(spec: SamSpec, image_size: int, seed: int = 0) -> torch.nn.Module:
    """``segment_anything.modeling.Sam`` laid out as ``build_sam.py`` builds it, random weights.

    Built on the meta device and filled with random values (fast for ViT-B); the zero-initialised
    position embeddings get large values so that a wrong interpolation shows in the outputs.
    """
    tokens = image_size // spec.patch_size
    with torch.device("meta"):
        sam = sam_lib.Sam(
            image_encoder=sam_lib.ImageEncoderViT(
                depth=spec.depth,
                embed_dim=spec.embed_dim,
                img_size=image_size,
                mlp_ratio=4,
                norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                num_heads=spec.num_heads,
                patch_size=spec.patch_size,
                qkv_bias=True,
                use_rel_pos=True,
                global_attn_indexes=list(spec.global_attn_indexes),
                window_size=spec.attn_window,
                out_chans=spec.neck_dim,
            ),
            prompt_encoder=sam_lib.PromptEncoder(
                embed_dim=spec.neck_dim,
                image_embedding_size=(tokens, tokens),
                input_image_size=(image_size, image_size),
                mask_in_chans=16,
            ),
            mask_decoder=sam_lib.MaskDecoder(
                num_multimask_outputs=3,
                transformer=sam_lib.TwoWayTransformer(
                    depth=spec.decoder_depth,
                    embedding_dim=spec.neck_dim,
                    mlp_dim=spec.decoder_mlp_dim,
                    num_heads=spec.decoder_heads,
                ),
                transformer_dim=spec.neck_dim,
                iou_head_depth=3,
                iou_head_hidden_dim=spec.iou_head_hidden,
            ),
            pixel_mean=list(SAM_PIXEL_MEAN),
            pixel_std=list(SAM_PIXEL_STD),
        )
    sam.to_empty(device="cpu")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in [*sam.named_parameters(), *sam.named_buffers()]:
            if name in ("pixel_mean", "pixel_std"):
                t.copy_(
                    torch.tensor(SAM_PIXEL_MEAN if name == "pixel_mean" else SAM_PIXEL_STD).view(
                        -1, 1, 1
                    )
                )
                continue
            if "pos" in name or "gaussian" in name:
                scale, base = 0.5, 0.0
            elif t.ndim >= 2:  # weights: unit-variance outputs, like the default initialisers
                scale, base = float(t[0].numel()) ** -0.5, 0.0
            else:  # biases and LayerNorm affine parameters
                scale, base = 0.02, (1.0 if "norm" in name and name.endswith("weight") else 0.0)
            t.copy_(base + scale * torch.randn(t.shape, generator=gen))
    return sam.eval()


def reference_masks(sam: torch.nn.Module, image: torch.Tensor, window: int) -> tuple:
    """What our front-end must compute, by hand from the official modules.

    The official encoder gets its ``(1, T, T, C)`` position embedding average-pooled to the window
    (bilinear, ``align_corners=False``, is exactly average pooling for an integer factor); the
    global-attention relative-position tables stay at full length, so SAM's own ``get_rel_pos``
    interpolates them at run time. The decoder runs with no prompts (empty sparse tokens, the
    ``no_mask_embed`` dense embedding, the PE of the smaller grid), ``multimask_output=True``.
    """
    enc = sam.image_encoder
    factor = enc.pos_embed.shape[1] * sam.image_encoder.patch_embed.proj.stride[0] // window
    pos = F.avg_pool2d(enc.pos_embed.detach().permute(0, 3, 1, 2), factor).permute(0, 2, 3, 1)
    saved = enc.pos_embed
    enc.pos_embed = torch.nn.Parameter(pos)
    try:
        x = (image.float() - sam.pixel_mean) / sam.pixel_std
        emb = enc(x)
    finally:
        enc.pos_embed = saved
    t = emb.shape[-1]
    pe = sam.prompt_encoder
    low, _ = sam.mask_decoder(
        image_embeddings=emb,
        image_pe=pe.pe_layer((t, t)).unsqueeze(0),
        sparse_prompt_embeddings=torch.zeros(1, 0, emb.shape[1]),
        dense_prompt_embeddings=pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, t, t),
        multimask_output=True,
    )
    return emb, F.interpolate(low, size=(window, window), mode="bilinear", align_corners=False)


def check_loaded(
    frontend: SamFrontend,
    sam: torch.nn.Module,
    path: Path,
    window: int,
    *,
    check_sensitivity: bool = False,
) -> None:
    """Load ``path`` into ``frontend``; compare tensors and outputs with the official modules."""
    info = load_sam_checkpoint(frontend, path)
    assert info.fresh == ["feature_proj.bias", "feature_proj.weight"]
    assert all(k.startswith("prompt_encoder.") for k in info.ignored)
    official = sam.state_dict()
    own = frontend.state_dict()
    for key in info.loaded:  # every loaded tensor equals the checkpoint's, except the resized
        src = {
            "prompt_pe.positional_encoding_gaussian_matrix": (
                "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"
            ),
            "no_mask_embed.weight": "prompt_encoder.no_mask_embed.weight",
        }.get(key, key)
        if src not in info.resized:
            assert torch.equal(own[key], official[src]), key
    image = torch.randint(
        0, 256, (1, 3, window, window), generator=torch.Generator().manual_seed(1)
    )
    frontend.eval()
    with torch.no_grad():
        ref_emb, ref_masks = reference_masks(sam, image, window)
        x = frontend.normalize(image.to(torch.uint8))
        emb = frontend.embed(x)
        masks = frontend.decode(emb, (window, window))
    for ours, ref in ((emb, ref_emb), (masks, ref_masks)):
        scale = float(ref.abs().max())
        assert scale > 0 and float(ref.std()) > 1e-3 * scale  # not a comparison of constants
        torch.testing.assert_close(ours / scale, ref / scale, rtol=1e-4, atol=1e-4)
    if check_sensitivity:  # the comparison catches a plausible bug: H and W of pos_embed swapped
        with torch.no_grad():
            pos = frontend.image_encoder.pos_embed
            pos.copy_(pos.transpose(1, 2).clone())
            wrong = frontend.embed(x)
        assert float((wrong - ref_emb).abs().max()) > 1e-2 * float(ref_emb.abs().max())
    assert frontend.weights_description == f"SAM {info.variant} from {path.name}"


def test_official_vit_b_checkpoint_layout_loads(tmp_path: Path) -> None:
    """The issue's check: an official-layout ViT-B (1024) state dict loads into a 512 window."""
    sam = official_sam(SAM_SIZES["vit_b"], 1024)
    path = tmp_path / "sam_vit_b_01ec64.pth"
    torch.save(sam.state_dict(), path)  # the official file is a plain state dict
    frontend = build_frontend("sam", "vit_b", window_size=512)
    assert frontend.weights_description == "random init (no checkpoint)"
    info = load_sam_checkpoint(frontend, path)
    assert info.variant == "ViT-B"
    assert sorted(info.resized) == sorted(
        ["image_encoder.pos_embed"]
        + [f"image_encoder.blocks.{i}.attn.rel_pos_{a}" for i in (2, 5, 8, 11) for a in "hw"]
    )
    check_loaded(frontend, sam, path, 512)


@pytest.mark.parametrize("window", [64, 32])
def test_tiny_official_layout_same_and_smaller_window(tmp_path: Path, window: int) -> None:
    spec = SAM_SIZES["tiny"]
    sam = official_sam(spec, 64, seed=3)
    path = tmp_path / "tiny.pth"
    torch.save(sam.state_dict(), path)
    frontend = SamFrontend(spec=spec, window_size=window)
    check_loaded(frontend, sam, path, window, check_sensitivity=True)


def test_non_overpass_variant(tmp_path: Path) -> None:
    """Keypoint and road heads only: a 2-output decoder (SAM-Road's USE_SAM_DECODER layout), the
    overpass channel of the contract constant "none", the official weights that fit loaded."""
    spec = SAM_SIZES["tiny"]
    sam = official_sam(spec, 64, seed=5)
    path = tmp_path / "tiny.pth"
    torch.save(sam.state_dict(), path)
    fe = build_frontend("sam", "tiny", window_size=64, overpass=False)
    assert isinstance(fe, SamFrontend) and fe.trained_channels == (0, 1)
    assert fe.mask_decoder.num_multimask_outputs == 2
    assert fe.describe()["overpass"] is False
    assert build_frontend("sam", "tiny", window_size=64).describe()["overpass"] is True
    info = load_sam_checkpoint(fe, path)
    token_rows = [
        "mask_decoder.iou_prediction_head.layers.2.bias",
        "mask_decoder.iou_prediction_head.layers.2.weight",
        "mask_decoder.mask_tokens.weight",
    ]
    assert info.fresh == ["feature_proj.bias", "feature_proj.weight", *token_rows]
    assert any(k.startswith("mask_decoder.output_hypernetworks_mlps.3.") for k in info.ignored)
    official, own = sam.state_dict(), fe.state_dict()
    for key in ("mask_decoder.output_hypernetworks_mlps.2.layers.0.weight",
                "mask_decoder.transformer.layers.0.self_attn.q_proj.weight"):  # fmt: skip
        assert key in info.loaded and torch.equal(own[key], official[key])
    image = torch.randint(0, 256, (2, 3, 64, 64), generator=torch.Generator().manual_seed(0))
    image = image.to(torch.uint8)
    with torch.no_grad():
        out = fe.eval()(fe.normalize(image))
    assert out.masks.shape == (2, 3, 64, 64)
    assert torch.all(out.masks[:, 2] == ABSENT_LOGIT) and out.masks[:, :2].std() > 0
    with pytest.raises(ParameterError, match="SAM front-end"):
        build_frontend("nl-linknet", "tiny", window_size=64, overpass=False)


def test_through_build_frontend_checkpoint_argument(tmp_path: Path) -> None:
    path = tmp_path / "tiny.pth"
    torch.save(official_sam(SAM_SIZES["tiny"], 128).state_dict(), path)
    fe = build_frontend("sam", "tiny", window_size=64, checkpoint=path)
    assert fe.weights_description == "SAM embed 64 from tiny.pth"


def _vit_l_like() -> dict[str, torch.Tensor]:
    """A few tensors shaped like the official ViT-L checkpoint (embed 1024, 24 blocks)."""
    sd = {"image_encoder.patch_embed.proj.weight": torch.zeros(1024, 3, 16, 16)}
    for i in range(24):
        n = 127 if i in (5, 11, 17, 23) else 27
        sd[f"image_encoder.blocks.{i}.attn.rel_pos_h"] = torch.zeros(n, 64)
    sd["image_encoder.neck.0.weight"] = torch.zeros(256, 1024, 1, 1)
    sd["mask_decoder.mask_tokens.weight"] = torch.zeros(4, 256)
    return sd


def test_vit_l_checkpoint_refused_with_sizes_named(tmp_path: Path) -> None:
    path = tmp_path / "sam_vit_l.pth"
    torch.save(_vit_l_like(), path)
    frontend = build_frontend("sam", "vit_b", window_size=512)
    before = {k: v.clone() for k, v in list(frontend.state_dict().items())[:5]}
    with pytest.raises(CheckpointError) as err:
        load_sam_checkpoint(frontend, path)
    msg = str(err.value)
    assert "checkpoint is SAM ViT-L (embed 1024, depth 24) but the model is vit_b" in msg
    assert "\n" not in msg
    assert all(torch.equal(frontend.state_dict()[k], v) for k, v in before.items())
    assert frontend.weights_description == "random init (no checkpoint)"


def _corrupt_files(tmp_path: Path) -> list[Path]:
    good = tmp_path / "good.pth"
    torch.save(official_sam(SAM_SIZES["tiny"], 64).state_dict(), good)
    data = good.read_bytes()
    files = {
        "random.pth": bytes(range(256)) * 8,
        "truncated.pth": data[: len(data) // 2],
        "empty.pth": b"",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    torch.save([torch.zeros(2)], tmp_path / "list.pth")  # loads, but is not a state dict
    torch.save({"model": {"w": torch.zeros(1)}}, tmp_path / "nested.pth")
    torch.save({"w": torch.zeros(1)}, tmp_path / "other.pth")  # a state dict, not SAM's
    return [tmp_path / n for n in [*files, "list.pth", "nested.pth", "other.pth"]]


def test_corrupt_or_foreign_files_raise_checkpoint_error(tmp_path: Path) -> None:
    frontend = build_frontend("sam", "tiny", window_size=64)
    for path in _corrupt_files(tmp_path):
        with pytest.raises(CheckpointError, match=str(path.name).replace(".", r"\.")):
            load_sam_checkpoint(frontend, path)


def test_unsafe_pickle_is_not_executed(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    marker = tmp_path / "ran"
    torch.save({"x": _Evil(str(marker))}, path)
    with pytest.raises(CheckpointError):
        load_sam_checkpoint(build_frontend("sam", "tiny", window_size=64), path)
    assert not marker.exists()


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (Path(self.marker),))


def test_missing_file_and_bad_sizes() -> None:
    with pytest.raises(InputFileError):
        load_sam_checkpoint(build_frontend("sam", "tiny", window_size=64), "/nonexistent/x.pth")
    with pytest.raises(ParameterError, match="multiple of 16"):
        build_frontend("sam", "tiny", window_size=72)
    with pytest.raises(ParameterError, match="unknown SAM size"):
        build_frontend("sam", "vit_q")
    with pytest.raises(ParameterError, match="unknown front-end"):
        build_frontend("linknet", "tiny")


def test_batch_equals_single_windows() -> None:
    """The prompt-free decoder broadcasts one empty prompt set over the batch correctly."""
    torch.manual_seed(0)
    fe = build_frontend("sam", "tiny", window_size=64).eval()
    x = fe.normalize(torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8))
    with torch.no_grad():
        batch = fe(x)
        for i in range(3):
            single = fe(x[i : i + 1])
            torch.testing.assert_close(single.masks, batch.masks[i : i + 1])
            torch.testing.assert_close(single.features, batch.features[i : i + 1])


def test_import_needs_neither_torchvision_nor_segment_anything_init() -> None:
    """In a fresh interpreter: our import works, pulls no torchvision, leaves no stand-in."""
    code = textwrap.dedent(
        """
        import sys
        import linegraph2road.frontends as fe
        import linegraph2road.model
        m = fe.build_frontend("sam", "tiny", window_size=32)
        assert "torchvision" not in sys.modules, "torchvision imported"
        assert "segment_anything" not in sys.modules, "stand-in parent left behind"
        assert "segment_anything.modeling" in sys.modules
        assert type(m.image_encoder).__module__ == "segment_anything.modeling.image_encoder"
        try:
            import segment_anything  # the real __init__ still runs (and needs torchvision)
        except ImportError as e:
            print("real-init-failed:", e.name)
        else:
            print("real-init-ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("real-init-failed: torchvision", "real-init-ok")
