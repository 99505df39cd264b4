"""NL-LinkNet sizes and variants in one table, and the builder the front-end registry calls.

==================  ======  =========  ==================  ======  ===============  ============
size                NLB     pairwise   widths              D-blk   params (1 out)   use
==================  ======  =========  ==================  ======  ===============  ============
``nl34`` (default)  3, 4    emb. Gau.  64-128-256-512      no      21.822 M         paper's best
``nl3``             3       emb. Gau.  64-128-256-512      no      21.690 M         Table II
``nl4``             4       emb. Gau.  64-128-256-512      no      21.789 M         Table II
``baseline``        --      --         64-128-256-512      no      21.657 M         Table II
``dlinknet``        --      --         64-128-256-512      yes     31.096 M         Table II
``nl34_gaussian``   3, 4    Gaussian   64-128-256-512      no      21.740 M         Table III
``nl34_dot``        3, 4    dot prod.  64-128-256-512      no      21.822 M         Table III
``small``           3, 4    emb. Gau.  16-32-64-128        no      1.37 M           CPU training
``tiny``            3, 4    emb. Gau.  8-16-32-64          no      0.34 M           unit tests
==================  ======  =========  ==================  ======  ===============  ============

Every size has ResNet34's depth (3, 4, 6, 3 blocks) and the same decoder; ``small`` and ``tiny``
divide every width by 4 and 8 (final convs 8 and 4 channels; ``feature_dim`` 32 and 16; the
others 128). Parameter counts are of the paper's one-output network without the feature
projection (``tests/frontends/test_nl_linknet.py`` checks them against Table II).
"""

from __future__ import annotations

from pathlib import Path

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.nl_linknet.checkpoint import read_state_dict
from linegraph2road.frontends.nl_linknet.model import NLLinkNetFrontend, NLLinkNetSpec

__all__ = ["NL_LINKNET_SIZES", "build_nl_linknet"]

NL_LINKNET_SIZES: dict[str, NLLinkNetSpec] = {
    "nl34": NLLinkNetSpec(name="nl34"),
    "nl3": NLLinkNetSpec(name="nl3", nonlocal_blocks=(3,)),
    "nl4": NLLinkNetSpec(name="nl4", nonlocal_blocks=(4,)),
    "baseline": NLLinkNetSpec(name="baseline", nonlocal_blocks=()),
    "dlinknet": NLLinkNetSpec(name="dlinknet", nonlocal_blocks=(), dilation_block=True),
    "nl34_gaussian": NLLinkNetSpec(name="nl34_gaussian", pairwise="gaussian"),
    "nl34_dot": NLLinkNetSpec(name="nl34_dot", pairwise="dot_product"),
    "small": NLLinkNetSpec(
        name="small", widths=(16, 32, 64, 128), final_channels=8, feature_dim=32
    ),
    "tiny": NLLinkNetSpec(name="tiny", widths=(8, 16, 32, 64), final_channels=4, feature_dim=16),
}


def _checkpoint_mask_channels(path: str | Path) -> int:
    """Output channels of a checkpoint's last conv (1 for the authors' models, 3 for l2r's)."""
    for key, value in read_state_dict(path).items():
        if key.endswith("finalconv3.weight"):
            return int(value.shape[0])
    return 3


def build_nl_linknet(
    size: str = "nl34",
    window_size: int = 1024,
    checkpoint: str | Path | None = None,
    *,
    mask_channels: int | None = None,
) -> NLLinkNetFrontend:
    """Build an NL-LinkNet front-end (the ``"nl-linknet"`` entry of ``FRONTENDS``).

    Parameters
    ----------
    size : str
        A key of :data:`NL_LINKNET_SIZES` (default ``"nl34"``).
    window_size : int
        Training/default window side in pixels, a multiple of 32 (default 1024, the paper's).
    checkpoint : str, Path or None
        A whole NL-LinkNet (l2r or the authors' layout; see
        :mod:`~linegraph2road.frontends.nl_linknet.checkpoint`). None: random init.
    mask_channels : int or None
        1 or 3; None (default) takes it from the checkpoint's last conv (the authors' models
        have 1), and 3 without a checkpoint.

    Returns
    -------
    NLLinkNetFrontend
        In training mode; ``weights_description`` says which weights it holds.
    """
    if size not in NL_LINKNET_SIZES:
        raise ParameterError(
            f"unknown NL-LinkNet size {size!r}; choose one of {sorted(NL_LINKNET_SIZES)}"
        )
    if mask_channels is None:
        mask_channels = 3 if checkpoint is None else _checkpoint_mask_channels(checkpoint)
    frontend = NLLinkNetFrontend(
        spec=NL_LINKNET_SIZES[size], window_size=window_size, mask_channels=mask_channels
    )
    if checkpoint is not None:
        frontend.load_checkpoint(checkpoint)
    return frontend
