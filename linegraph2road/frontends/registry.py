"""Model sizes in one place, and the one builder of front-ends.

=========  =====  =====  =====  ========  ============  ====  ===========  =======================
size       embed  depth  heads  attn win  global attn   neck  D_feature    use
=========  =====  =====  =====  ========  ============  ====  ===========  =======================
``vit_b``  768    12     12     14        2, 5, 8, 11   256   128          real use (paper, SAM)
``small``  192    4      3      8         1, 3          64    64           CPU smoke training
``tiny``   64     2      2      4         1             32    16           unit tests
=========  =====  =====  =====  ========  ============  ====  ===========  =======================

All sizes use patch 16 (feature stride 16) and SAM's prompt-free 3-output mask decoder; only
``vit_b`` can load an official SAM checkpoint (``sam_vit_b_01ec64.pth``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.base import MaskFrontend
from linegraph2road.frontends.experts.checkpoint import build_experts
from linegraph2road.frontends.fctl import build_fctl
from linegraph2road.frontends.nl_linknet.build import build_nl_linknet
from linegraph2road.frontends.roadgie.build import build_roadgie
from linegraph2road.frontends.sam import SamFrontend, SamSpec, load_sam_checkpoint

__all__ = ["FRONTENDS", "SAM_SIZES", "build_frontend", "normalize_description"]

SAM_SIZES: dict[str, SamSpec] = {
    "vit_b": SamSpec(
        name="vit_b", embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)
    ),
    "small": SamSpec(
        name="small",
        embed_dim=192,
        depth=4,
        num_heads=3,
        global_attn_indexes=(1, 3),
        attn_window=8,
        neck_dim=64,
        decoder_depth=2,
        decoder_mlp_dim=256,
        decoder_heads=4,
        iou_head_hidden=64,
        feature_dim=64,
    ),
    "tiny": SamSpec(
        name="tiny",
        embed_dim=64,
        depth=2,
        num_heads=2,
        global_attn_indexes=(1,),
        attn_window=4,
        neck_dim=32,
        decoder_depth=1,
        decoder_mlp_dim=64,
        decoder_heads=2,
        iou_head_hidden=32,
        feature_dim=16,
    ),
}


def _build_sam(
    size: str, window_size: int, checkpoint: str | Path | None, *, overpass: bool = True
) -> MaskFrontend:
    if size not in SAM_SIZES:
        raise ParameterError(f"unknown SAM size {size!r}; choose one of {sorted(SAM_SIZES)}")
    frontend = SamFrontend(spec=SAM_SIZES[size], window_size=window_size, overpass=overpass)
    if checkpoint is not None:
        load_sam_checkpoint(frontend, checkpoint)
    return frontend


#: Front-end builders by name: ``(size, window_size, checkpoint) -> MaskFrontend``.
FRONTENDS: dict[str, Callable[[str, int, str | Path | None], MaskFrontend]] = {
    "sam": _build_sam,
    "experts": build_experts,
    "nl-linknet": build_nl_linknet,
    "fctl": build_fctl,
    "roadgie": build_roadgie,
}


def build_frontend(
    name: str = "sam",
    size: str = "vit_b",
    *,
    window_size: int = 512,
    checkpoint: str | Path | None = None,
    overpass: bool = True,
) -> MaskFrontend:
    """Build a mask front-end by name and size.

    Parameters
    ----------
    name : str
        Front-end family (``"sam"``; others register in :data:`FRONTENDS`).
    size : str
        Size within the family (SAM: ``"vit_b"``, ``"small"``, ``"tiny"``; see the module table).
    window_size : int
        Input window side in pixels (default 512).
    checkpoint : str, Path or None
        Pre-trained weights of the family's own format (SAM: an official ``.pth``); None = random
        initialisation, which ``weights_description`` then says.
    overpass : bool
        False builds the paper's non-overpass variant (keypoint and road heads only; SAM
        front-ends, whose 3-output decoder the paper describes).

    Returns
    -------
    MaskFrontend
        In training mode (``nn.Module`` default).
    """
    if name not in FRONTENDS:
        raise ParameterError(f"unknown front-end {name!r}; choose one of {sorted(FRONTENDS)}")
    if name == "sam":
        return _build_sam(size, window_size, checkpoint, overpass=overpass)
    if not overpass:
        raise ParameterError(
            f"the non-overpass variant (model.overpass: false) is built for the SAM front-end; "
            f"{name!r} sets its mask outputs with its own size or mask_channels"
        )
    return FRONTENDS[name](size, window_size, checkpoint)


def normalize_description(description: dict[str, Any]) -> dict[str, Any]:
    """A stored front-end description with the keys older checkpoints do not hold filled in.

    SAM descriptions gained ``overpass`` (the variant) after the first checkpoints were written;
    a description without it is the 3-output model (``overpass: True``). Returns a new dict.
    """
    out = dict(description)
    if out.get("frontend") == "sam":
        out.setdefault("overpass", True)
    return out
