"""The builder the front-end registry calls for ``"roadgie"`` (sizes in :data:`ROADGIE_SIZES`)."""

from __future__ import annotations

from pathlib import Path

from linegraph2road.errors import CheckpointError, ParameterError
from linegraph2road.frontends.roadgie.model import ROADGIE_SIZES, RoadGIEFrontend

__all__ = ["build_roadgie"]


def build_roadgie(
    size: str = "paper", window_size: int = 512, checkpoint: str | Path | None = None
) -> RoadGIEFrontend:
    """Build a RoadGIE front-end (the ``"roadgie"`` entry of ``FRONTENDS``).

    Parameters
    ----------
    size : str
        A key of :data:`ROADGIE_SIZES` (``"paper"``, ``"small"``, ``"tiny"``).
    window_size : int
        Default window side in pixels (default 512), a multiple of the size's ``multiple``.
    checkpoint : str, Path or None
        A RoadGIE front-end checkpoint (``l2r train roadgie``'s
        ``checkpoints/last.safetensors``) of this size; None: random initialisation. No
        pre-trained RoadGIE weights exist for l2r: the authors' are not in this format.

    Returns
    -------
    RoadGIEFrontend
        In training mode; ``weights_description`` says which weights it holds.
    """
    if size not in ROADGIE_SIZES:
        raise ParameterError(
            f"unknown RoadGIE size {size!r}; choose one of {sorted(ROADGIE_SIZES)}"
        )
    frontend = RoadGIEFrontend(spec=ROADGIE_SIZES[size], window_size=window_size)
    if checkpoint is not None:
        from linegraph2road.frontends.checkpoint import load_frontend

        loaded = load_frontend(checkpoint).frontend
        if not isinstance(loaded, RoadGIEFrontend) or loaded.spec != frontend.spec:
            raise CheckpointError(
                f"{Path(checkpoint).name} holds {loaded.describe().get('frontend')}/"
                f"{loaded.describe().get('size')}, not roadgie/{size}"
            )
        frontend.load_state_dict(loaded.state_dict())
        frontend.weights_description = loaded.weights_description
    return frontend
