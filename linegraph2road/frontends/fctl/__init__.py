"""FCtL front-end: locality-aware contextual correlation (Li et al., ICCV 2021; paper 001).

=========  ==============  ==============  ====  ========  =============  =======================
size       VGG widths      context scales  D     masks     parameters     use
=========  ==============  ==============  ====  ========  =============  =======================
``vgg16``  64, 128, 256    1, 2, 3         128   3         2.85 M         real use (paper)
``small``  16, 32, 64      1, 2, 3         64    3         0.18 M         CPU training / bench
``tiny``   8, 16, 32       1, 2, 3         16    3         0.045 M        unit tests
=========  ==============  ==============  ====  ========  =============  =======================

Parameters are those of the whole front-end at 3 masks (VGG16 conv1-3 alone: 1.735 M; the
refinement network :class:`RefinementNet` adds 0.78 M at its default widths). The paper reports
no parameter count (only 3167 MB and 0.15 s per patch on a GTX 1080Ti). A road-only model
(``dataclasses.replace(spec, num_classes=1)``) fills only the ``road`` mask channel.

The paper's patch is 508 px with contexts of 508 / 1016 / 1524 px (Inria Aerial setting; its
DeepGlobe setting is 508 / 1524 / 2448): ``build_frontend("fctl", "vgg16", window_size=508)``.
Contexts are sized relative to the window (``round(scale * window)``). The optional
``checkpoint`` of :func:`build_fctl` is a torchvision-layout ImageNet ``vgg16`` state dict
whose conv1-3 tensors initialise the encoder (only ``vgg16`` widths); without it every weight
is random and ``weights_description`` says so.

Parts: :mod:`.vgg` (encoder), :mod:`.model` (network, correlation, fusion, front-end),
:mod:`.refine` (contexts, patch merging, refinement network), :mod:`.recipe` (focal loss,
optimiser, sampling, training loop).
"""

from __future__ import annotations

from pathlib import Path

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.fctl.model import (
    ABSENT_LOGIT,
    FCtLFrontend,
    FCtLNet,
    FCtLNetOutput,
    FCtLSpec,
    MultiContextFusion,
    locality_aware_correlation,
)
from linegraph2road.frontends.fctl.recipe import (
    FCtLBatch,
    fit_fctl,
    focal_loss,
    make_optimizer,
    poly_schedule,
    refinement_batches,
    sample_patches,
)
from linegraph2road.frontends.fctl.refine import (
    RefinementNet,
    extract_contexts,
    patch_origins,
    segment_large,
)
from linegraph2road.frontends.fctl.vgg import VGG16Conv3, load_vgg16_weights

__all__ = [
    "ABSENT_LOGIT",
    "FCTL_SIZES",
    "FCtLBatch",
    "FCtLFrontend",
    "FCtLNet",
    "FCtLNetOutput",
    "FCtLSpec",
    "MultiContextFusion",
    "RefinementNet",
    "VGG16Conv3",
    "build_fctl",
    "extract_contexts",
    "fit_fctl",
    "focal_loss",
    "load_vgg16_weights",
    "locality_aware_correlation",
    "make_optimizer",
    "patch_origins",
    "poly_schedule",
    "refinement_batches",
    "sample_patches",
    "segment_large",
]

FCTL_SIZES: dict[str, FCtLSpec] = {
    "vgg16": FCtLSpec(name="vgg16"),
    "small": FCtLSpec(name="small", widths=(16, 32, 64), feature_dim=64),
    "tiny": FCtLSpec(name="tiny", widths=(8, 16, 32), feature_dim=16),
}


def build_fctl(size: str, window_size: int, checkpoint: str | Path | None) -> FCtLFrontend:
    """Registry builder: an FCtL front-end of ``size`` for ``window_size``-px patches.

    Parameters
    ----------
    size : str
        A key of :data:`FCTL_SIZES`.
    window_size : int
        Patch side in pixels (paper: 508), a multiple of 4.
    checkpoint : str, Path or None
        torchvision ``vgg16`` ImageNet state dict for the encoder, or None (random init).
    """
    if size not in FCTL_SIZES:
        raise ParameterError(f"unknown FCtL size {size!r}; choose one of {sorted(FCTL_SIZES)}")
    frontend = FCtLFrontend(spec=FCTL_SIZES[size], window_size=window_size)
    if checkpoint is not None:
        load_vgg16_weights(frontend.net.encoder, checkpoint)
        frontend.weights_description = (
            f"VGG16 conv1-3 from {Path(checkpoint).name}, rest random init"
        )
    return frontend
