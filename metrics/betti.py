"""Betti numbers of binary road masks and their errors (the topology metrics of RoadGIE Table 3,
which follows GraphMorph, Zhang et al., NeurIPS 2024).

* ``beta_0``: connected components of the road pixels, 8-connected;
* ``beta_1``: holes, i.e. 4-connected components of the background that do not touch the image
  border (the dual connectivity of 8-connected foreground, so that the Euler characteristic
  ``beta_0 - beta_1`` is that of the pixel set).

The errors are ``|beta_k(pred) - beta_k(gt)|`` on the whole mask (GraphMorph averages them over
random patches; we report whole images, and say so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from linegraph2road.errors import ParameterError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["betti_errors", "betti_numbers"]

_EIGHT = np.ones((3, 3), dtype=bool)


def betti_numbers(mask: ArrayLike) -> tuple[int, int]:
    """``(beta_0, beta_1)`` of a 2-D binary mask (anything > 0 is road).

    Examples: a filled square is ``(1, 0)``, a ring ``(1, 1)``, two dots ``(2, 0)``.
    """
    m = np.asarray(mask) > 0
    if m.ndim != 2:
        raise ParameterError(f"mask must be 2-D, got shape {m.shape}")
    _, b0 = ndimage.label(m, structure=_EIGHT)
    _, n = ndimage.label(np.pad(~m, 1, constant_values=True))
    # the padded border joins every background region touching the image edge into label 1
    b1 = n - 1 if n else 0
    return int(b0), int(b1)


def betti_errors(pred: ArrayLike, gt: ArrayLike) -> tuple[int, int]:
    """``(|beta_0(pred) - beta_0(gt)|, |beta_1(pred) - beta_1(gt)|)``."""
    p, g = np.asarray(pred), np.asarray(gt)
    if p.shape != g.shape:
        raise ParameterError(f"masks differ in shape: pred {p.shape}, gt {g.shape}")
    (p0, p1), (g0, g1) = betti_numbers(p), betti_numbers(g)
    return abs(p0 - g0), abs(p1 - g1)
