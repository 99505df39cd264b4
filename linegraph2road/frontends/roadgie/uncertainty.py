"""Expert uncertainty (RoadGIE eq. 4): where already-trained segmenters disagree with the truth.

For a training tile with road mask ``y`` and the road probabilities ``p_m`` of the experts
``m = 1..M`` (any trained l2r front-end: NL-LinkNet, FCtL, experts, SAM-based models, an earlier
RoadGIE run prompt-free), ``U = (1 / M) sum_m |p_m - y|``, in [0, 1] per pixel. It is computed
once per tile (``l2r prep uncertainty``) and cached beside the labels as
``{id}_uncertainty.png``: uint8 ``round(255 U)`` (1/255 resolution is far below what eq. 5's
``exp(U / tau)`` can tell apart at ``tau = 0.1``). :mod:`.simulation` turns it into the sampling
weights of positive prompts (eq. 5).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from linegraph2road.errors import ParameterError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["expert_uncertainty", "write_uncertainty"]


def expert_uncertainty(
    probabilities: Sequence[NDArray[np.floating]], road: NDArray[np.bool_]
) -> NDArray[np.float32]:
    """Eq. 4: the mean absolute error of the experts' road probabilities.

    Parameters
    ----------
    probabilities : sequence of (H, W) float
        One road probability map in [0, 1] per expert (at least one).
    road : (H, W) bool
        Ground-truth road mask.

    Returns
    -------
    (H, W) float32 in [0, 1]
    """
    y = np.asarray(road, dtype=np.float32)
    if not probabilities:
        raise ParameterError("expert uncertainty needs at least one expert's probabilities")
    total = np.zeros(y.shape, np.float32)
    for i, p in enumerate(probabilities):
        q = np.asarray(p, dtype=np.float32)
        if q.shape != y.shape:
            raise ParameterError(f"expert {i}: probabilities {q.shape} but the mask is {y.shape}")
        total += np.abs(np.clip(q, 0.0, 1.0) - y)
    return (total / len(probabilities)).astype(np.float32)


def write_uncertainty(path: str | os.PathLike[str], uncertainty: NDArray[np.floating]) -> None:
    """Write ``uncertainty`` as a uint8 PNG ``round(255 U)``, atomically."""
    from linegraph2road.io.raster import write_raster

    u = np.clip(np.asarray(uncertainty, dtype=np.float64), 0.0, 1.0)
    write_raster(path, np.rint(u * 255.0).astype(np.uint8))
