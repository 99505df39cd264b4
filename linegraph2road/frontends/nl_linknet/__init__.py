"""NL-LinkNet (paper 000) as a mask front-end: ResNet34 LinkNet + non-local blocks.

* :class:`NLLinkNet`: the paper's network (one road output, ``out_channels=1``), with NL3 / NL4 /
  NL34 / no non-local block, three pairwise functions and D-LinkNet's optional dilation block.
* :class:`NLLinkNetFrontend`: that network behind the :class:`MaskFrontend` interface (3 mask
  channels, or the paper's 1 mapped to ``road``; stride-4 decoder features).
* :func:`build_nl_linknet` and :data:`NL_LINKNET_SIZES`: the sizes (registered as
  ``"nl-linknet"`` in :data:`linegraph2road.frontends.FRONTENDS`).
* :mod:`~.recipe`: the paper's training recipe (BCE, Adam 3e-4, plateau schedule) and
  test-time augmentation (8 dihedral flips, optional scales 0.75 / 1 / 1.25).
* :mod:`~.checkpoint`: a user's ResNet34 encoder weights or a whole checkpoint (ours or the
  authors'); nothing is downloaded.
"""

from __future__ import annotations

from linegraph2road.frontends.nl_linknet.build import NL_LINKNET_SIZES, build_nl_linknet
from linegraph2road.frontends.nl_linknet.checkpoint import (
    load_encoder_weights,
    load_nl_linknet_checkpoint,
)
from linegraph2road.frontends.nl_linknet.model import (
    UNTRAINED_LOGIT,
    NLLinkNet,
    NLLinkNetFrontend,
    NLLinkNetSpec,
)
from linegraph2road.frontends.nl_linknet.nonlocal_block import PAIRWISE_FUNCTIONS, NonLocalBlock2d
from linegraph2road.frontends.nl_linknet.recipe import (
    PlateauSchedule,
    bce_loss,
    dice_bce_loss,
    make_optimizer,
    tta,
)

__all__ = [
    "NL_LINKNET_SIZES",
    "PAIRWISE_FUNCTIONS",
    "UNTRAINED_LOGIT",
    "NLLinkNet",
    "NLLinkNetFrontend",
    "NLLinkNetSpec",
    "NonLocalBlock2d",
    "PlateauSchedule",
    "bce_loss",
    "build_nl_linknet",
    "dice_bce_loss",
    "load_encoder_weights",
    "load_nl_linknet_checkpoint",
    "make_optimizer",
    "tta",
]
