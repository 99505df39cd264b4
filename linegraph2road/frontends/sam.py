"""SAM front-end: SAM's ViT image encoder + SAM's mask decoder without prompts (paper 3.2).

Architecture
------------
* **Encoder**: ``segment_anything.modeling.ImageEncoderViT`` built for the window size (512 by
  default) instead of SAM's 1024; ViT-B is embed 768, depth 12, 12 heads, patch 16, attention
  window 14, global attention in blocks 2, 5, 8, 11, relative positions, neck to 256 channels.
  Output: a 256-channel embedding at stride 16.
* **Mask decoder**: SAM's own ``MaskDecoder`` / ``TwoWayTransformer`` with
  ``num_multimask_outputs=3`` (exactly the official layout, so every official decoder tensor
  loads) run *without prompts*, the way SAM-Road's ``USE_SAM_DECODER`` path runs it: zero sparse
  prompt tokens, the "no mask" dense embedding, SAM's random-Fourier positional encoding of the
  embedding grid, ``multimask_output=True``. Its three multimask outputs are our
  ``(keypoint, road, overpass)`` logits at stride 4, bilinearly upsampled
  (``align_corners=False``) to the window. (SAM-Road's released configs use a plain
  transposed-conv ``map_decoder`` instead; the LineGraph2Road paper says "lightweight mask decoder
  without any input prompts", so we use SAM's.) SAM's single-mask output and IoU head are computed
  but unused; their parameters are frozen so DDP needs no ``find_unused_parameters``. The two
  prompt-encoder tensors a prompt-free decoder consumes (``no_mask_embed``, the PE matrix) are
  kept, frozen like SAM-Road's prompt encoder.
* **Non-overpass variant** (``overpass=False``; the paper's "Ours" of Tables 1-3, its best
  SpaceNet model and the ablation baseline): the decoder is built with
  ``num_multimask_outputs=2`` (keypoint, road), as SAM-Road's ``USE_SAM_DECODER`` path builds
  it; ``forward`` still returns the three channels of the front-end contract, the overpass one
  the constant :data:`~.base.ABSENT_LOGIT`, and :attr:`trained_channels` is ``(0, 1)``.
* **Feature map for edge features**: SAM-Road samples the 256-channel embedding and projects every
  sampled vector with ``Linear(256, 128)``. We apply the same projection as a 1x1 conv *before*
  sampling (identical maths: bilinear sampling and a linear map commute), so the front-end exposes
  ``D_feature = 128`` channels at stride 16, as the paper states.

Official checkpoints
--------------------
:func:`load_sam_checkpoint` reads ``sam_vit_b_01ec64.pth`` unchanged (a plain state dict with
``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``). The absolute position embedding
``(1, 64, 64, C)`` is resized bilinearly (``align_corners=False``, as SAM-Road does) to
``window / 16``; the relative-position tables of the global-attention blocks, whose length
``2 * tokens - 1`` depends on the input size, are resized with the 1-D linear interpolation that
SAM's ``get_rel_pos`` applies at run time; window-attention tables (``2 * 14 - 1``) are unchanged.
The non-overpass variant's decoder has one mask token fewer: the official ``mask_tokens`` and
the IoU head's last layer (4 rows) do not fit its 3 and keep their initialisation, and the
fourth hypernetwork MLP is not used, as SAM-Road's shape-matched loading does.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from linegraph2road.errors import InputFileError, ParameterError
from linegraph2road.frontends._sam_import import sam_modeling
from linegraph2road.frontends.base import (
    ABSENT_LOGIT,
    CheckpointError,
    FrontendOutput,
    MaskFrontend,
)

__all__ = ["SamCheckpointInfo", "SamFrontend", "SamSpec", "load_sam_checkpoint"]

_sam = sam_modeling()

#: SAM's pixel statistics (0-255 scale), as in ``build_sam.py``.
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)
#: Official SAM variants by encoder embedding width.
_OFFICIAL_NAMES = {768: "ViT-B", 1024: "ViT-L", 1280: "ViT-H"}


@dataclass(frozen=True)
class SamSpec:
    """Hyper-parameters of one SAM front-end size (instances live in ``registry.SAM_SIZES``).

    Attributes
    ----------
    name : str
        Registry name (``"vit_b"``, ``"tiny"``...).
    embed_dim, depth, num_heads : int
        ViT width, number of blocks, attention heads.
    global_attn_indexes : tuple of int
        Blocks with global attention; the others use windowed attention.
    attn_window : int
        Window side (tokens) of the windowed-attention blocks (SAM: 14).
    patch_size : int
        Patch side in pixels = encoder stride (SAM: 16).
    neck_dim : int
        Channels of the encoder neck output = decoder width (SAM: 256).
    decoder_depth, decoder_mlp_dim, decoder_heads, iou_head_hidden : int
        ``TwoWayTransformer`` depth, MLP width, heads; IoU head width (SAM: 2, 2048, 8, 256).
    feature_dim : int
        ``D_feature`` of the exposed feature map (paper: 128).
    """

    name: str
    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    attn_window: int = 14
    patch_size: int = 16
    neck_dim: int = 256
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_heads: int = 8
    iou_head_hidden: int = 256
    feature_dim: int = 128


class SamFrontend(MaskFrontend):
    """SAM image encoder + prompt-free SAM mask decoder with 3 outputs (see module docstring).

    Parameters
    ----------
    spec : SamSpec
        Size hyper-parameters (``registry.SAM_SIZES["vit_b"]`` for real use).
    window_size : int
        Input window side in pixels (default 512); a multiple of ``spec.patch_size``.
    overpass : bool
        True (default): keypoint, road and overpass heads ("Ours w/ Overpass"). False: keypoint
        and road only, the paper's non-overpass variant (see the module docstring).
    """

    def __init__(self, *, spec: SamSpec, window_size: int = 512, overpass: bool = True) -> None:
        super().__init__()
        if window_size <= 0 or window_size % spec.patch_size:
            raise ParameterError(
                f"window_size must be a positive multiple of {spec.patch_size} px, "
                f"got {window_size}"
            )
        self.spec = spec
        self.overpass = bool(overpass)
        self.trained_channels = (0, 1, 2) if self.overpass else (0, 1)
        self.window_size = int(window_size)
        self.stride = spec.patch_size
        self.feature_dim = spec.feature_dim
        self._set_normalization(mean=SAM_PIXEL_MEAN, std=SAM_PIXEL_STD)
        self.image_encoder = _sam.ImageEncoderViT(
            img_size=window_size,
            patch_size=spec.patch_size,
            embed_dim=spec.embed_dim,
            depth=spec.depth,
            num_heads=spec.num_heads,
            mlp_ratio=4,
            out_chans=spec.neck_dim,
            qkv_bias=True,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=spec.attn_window,
            global_attn_indexes=spec.global_attn_indexes,
        )
        self.prompt_pe = _sam.prompt_encoder.PositionEmbeddingRandom(spec.neck_dim // 2)
        self.no_mask_embed = nn.Embedding(1, spec.neck_dim)
        self.mask_decoder = _sam.MaskDecoder(
            transformer_dim=spec.neck_dim,
            transformer=_sam.TwoWayTransformer(
                depth=spec.decoder_depth,
                embedding_dim=spec.neck_dim,
                mlp_dim=spec.decoder_mlp_dim,
                num_heads=spec.decoder_heads,
            ),
            num_multimask_outputs=len(self.trained_channels),
            iou_head_depth=3,
            iou_head_hidden_dim=spec.iou_head_hidden,
        )
        self.feature_proj = nn.Conv2d(spec.neck_dim, spec.feature_dim, kernel_size=1)
        # Never reach the loss: the prompt stand-ins, the single-mask hypernetwork, the IoU head.
        for module in (
            self.no_mask_embed,
            self.mask_decoder.output_hypernetworks_mlps[0],
            self.mask_decoder.iou_prediction_head,
        ):
            module.requires_grad_(False)

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable parameters of the ViT image encoder (the pre-trained part)."""
        return (p for p in self.image_encoder.parameters() if p.requires_grad)

    def describe(self) -> dict[str, object]:
        """Architecture summary: front-end name, size, window and variant (what a checkpoint
        must match); ``overpass`` False is the non-overpass variant."""
        return {
            **super().describe(),
            "frontend": "sam",
            "size": self.spec.name,
            "overpass": self.overpass,
        }

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        """Encoder output ``(B, neck_dim, H / 16, W / 16)`` for normalised windows."""
        self.check_input(image)
        return self.image_encoder(image)

    def decode(self, embedding: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Prompt-free SAM decoding of ``embedding`` to ``(B, K, *size)`` mask logits of the
        trained channels (``K`` = 3, or 2 for the non-overpass variant)."""
        h, w = embedding.shape[-2:]
        image_pe = self.prompt_pe((h, w)).unsqueeze(0).to(embedding.dtype)
        # One empty prompt set, broadcast over the batch by the decoder's attention (this is
        # what SamPredictor does for one image; repeat_interleave(..., 1) keeps the batch).
        sparse = embedding.new_zeros((1, 0, embedding.shape[1]))
        dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, h, w)
        low_res, _ = self.mask_decoder(
            image_embeddings=embedding,
            image_pe=image_pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense.to(embedding.dtype),
            multimask_output=True,
        )
        return F.interpolate(low_res, size=size, mode="bilinear", align_corners=False)

    def forward(self, image: torch.Tensor) -> FrontendOutput:
        """Masks and features of normalised windows; see :meth:`MaskFrontend.forward`."""
        embedding = self.embed(image)
        masks = self.decode(embedding, (image.shape[-2], image.shape[-1]))
        if not self.overpass:  # the contract's overpass channel: "none"
            masks = torch.cat([masks, torch.full_like(masks[:, :1], ABSENT_LOGIT)], dim=1)
        return FrontendOutput(
            masks=masks, features=self.feature_proj(embedding), stride=self.stride
        )


@dataclass
class SamCheckpointInfo:
    """What :func:`load_sam_checkpoint` did.

    Attributes
    ----------
    variant : str
        ``"ViT-B"`` / ``"ViT-L"`` / ``"ViT-H"`` (or ``"embed N"`` for a non-official width).
    loaded : list of str
        Our parameter/buffer names filled from the checkpoint.
    resized : list of str
        Checkpoint names that were interpolated to the window size.
    fresh : list of str
        Our names that the checkpoint has no counterpart for (keep their initialisation):
        ``feature_proj.*``; for the non-overpass variant also the per-token decoder tensors.
    ignored : list of str
        Checkpoint names not used (the prompt encoder's point/box/mask parts).
    """

    variant: str
    loaded: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


_RENAME = {
    "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix": (
        "prompt_pe.positional_encoding_gaussian_matrix"
    ),
    "prompt_encoder.no_mask_embed.weight": "no_mask_embed.weight",
}


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise InputFileError(f"SAM checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, zipfile.BadZipFile) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot read SAM checkpoint {path}: {first}") from e
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise CheckpointError(
            f"{path} is not a SAM checkpoint: expected a state dict of tensors, got "
            f"{type(obj).__name__}"
        )
    return dict(obj)


def _describe_sam(sd: Mapping[str, torch.Tensor], path: Path) -> dict[str, Any]:
    """Detect encoder width/depth/heads/patch/neck from the tensor shapes."""
    key = "image_encoder.patch_embed.proj.weight"
    if key not in sd:
        some = ", ".join(sorted(sd)[:3]) or "none"
        raise CheckpointError(
            f"{path} is not a SAM checkpoint: no {key!r} (keys start with: {some}); "
            "an l2r checkpoint goes to --checkpoint, an official SAM .pth to --sam-checkpoint"
        )
    embed, _, patch, _ = sd[key].shape
    blocks = {int(k.split(".")[2]) for k in sd if k.startswith("image_encoder.blocks.")}
    rel = sd.get("image_encoder.blocks.0.attn.rel_pos_h")
    neck = sd.get("image_encoder.neck.0.weight")
    return {
        "variant": _OFFICIAL_NAMES.get(int(embed), f"embed {embed}"),
        "embed_dim": int(embed),
        "depth": len(blocks),
        "num_heads": int(embed) // int(rel.shape[1]) if rel is not None else None,
        "patch_size": int(patch),
        "neck_dim": int(neck.shape[0]) if neck is not None else None,
    }


def _resize_pos_embed(pos: torch.Tensor, tokens: int) -> torch.Tensor:
    """``(1, H, W, C)`` absolute position embedding -> ``(1, tokens, tokens, C)``, bilinear."""
    grid = pos.permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=(tokens, tokens), mode="bilinear", align_corners=False)
    return grid.permute(0, 2, 3, 1).contiguous()


def _resize_rel_pos(table: torch.Tensor, length: int) -> torch.Tensor:
    """``(L, C)`` relative-position table -> ``(length, C)``, linear as SAM's ``get_rel_pos``."""
    resized = F.interpolate(table.float().t().unsqueeze(0), size=length, mode="linear")
    return resized[0].t().contiguous()


#: Decoder tensors with one row per mask token (official: 4 tokens, 3 multimask outputs).
_TOKEN_ROW_KEYS = (
    "mask_decoder.mask_tokens.weight",
    "mask_decoder.iou_prediction_head.layers.2.weight",
    "mask_decoder.iou_prediction_head.layers.2.bias",
)


def _token_rows(frontend: SamFrontend, key: str, value: torch.Tensor, shape: torch.Size) -> bool:
    """True for a per-token decoder tensor of the official 3-output layout that the
    non-overpass variant's 2-output decoder cannot take (one row fewer)."""
    return (
        not frontend.overpass
        and key in _TOKEN_ROW_KEYS
        and value.shape[1:] == shape[1:]
        and value.shape[0] == shape[0] + 1
    )


def load_sam_checkpoint(frontend: SamFrontend, path: str | Path) -> SamCheckpointInfo:
    """Load an official SAM checkpoint (e.g. ``sam_vit_b_01ec64.pth``) into ``frontend``.

    Parameters
    ----------
    frontend : SamFrontend
        Target; its encoder size must match the checkpoint's. Modified in place (weights and
        ``weights_description``).
    path : str or Path
        The ``.pth`` file as distributed by Meta (plain state dict), read with
        ``torch.load(weights_only=True)``.

    Returns
    -------
    SamCheckpointInfo
        Which tensors were loaded, resized, left fresh (``feature_proj``) and ignored.

    Raises
    ------
    InputFileError
        The file does not exist.
    CheckpointError
        Corrupt/unreadable file, not a SAM state dict, or a SAM of another size (for example
        ``"checkpoint is SAM ViT-L (embed 1024, depth 24) but the model is vit_b (embed 768,
        depth 12)"``).
    """
    path = Path(path)
    sd = _read_state_dict(path)
    found = _describe_sam(sd, path)
    spec = frontend.spec
    want = {
        "embed_dim": spec.embed_dim,
        "depth": spec.depth,
        "num_heads": spec.num_heads,
        "patch_size": spec.patch_size,
        "neck_dim": spec.neck_dim,
    }
    if any(found[k] != v for k, v in want.items()):
        raise CheckpointError(
            f"checkpoint is SAM {found['variant']} (embed {found['embed_dim']}, depth "
            f"{found['depth']}) but the model is {spec.name} (embed {spec.embed_dim}, depth "
            f"{spec.depth}); use the matching SAM checkpoint or model size"
        )
    own = frontend.state_dict()
    info = SamCheckpointInfo(variant=str(found["variant"]))
    new: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        target = _RENAME.get(key, key)
        if target not in own or not key.startswith(("image_encoder.", "mask_decoder.", "prompt_")):
            info.ignored.append(key)
            continue
        shape = own[target].shape
        if _token_rows(frontend, key, value, shape):
            continue  # non-overpass variant: one mask token fewer, left fresh as in SAM-Road
        if value.shape != shape and key == "image_encoder.pos_embed":
            value = _resize_pos_embed(value, int(shape[1]))
            info.resized.append(key)
        elif value.shape != shape and ".rel_pos_" in key and value.shape[1:] == shape[1:]:
            value = _resize_rel_pos(value, int(shape[0]))
            info.resized.append(key)
        if value.shape != shape:
            raise CheckpointError(
                f"checkpoint tensor {key} has shape {tuple(value.shape)} but the model "
                f"({spec.name}) needs {tuple(shape)}"
            )
        new[target] = value.to(own[target].dtype)
    info.fresh = sorted(k for k in own if k not in new)
    missing = [
        k for k in info.fresh if not k.startswith("feature_proj.") and k not in _TOKEN_ROW_KEYS
    ]
    if missing:
        raise CheckpointError(
            f"SAM checkpoint {path} lacks {len(missing)} tensors the model needs, e.g. {missing[0]}"
        )
    frontend.load_state_dict(new, strict=False)
    info.loaded = sorted(new)
    frontend.weights_description = f"SAM {info.variant} from {path.name}"
    return info
