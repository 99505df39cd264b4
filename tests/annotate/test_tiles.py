from __future__ import annotations

import numpy as np
import pytest

from linegraph2road.annotate.chunks import Rect
from linegraph2road.annotate.tiles import (
    TILE,
    TileOutside,
    levels_for,
    probability_rgba,
    reduce_any,
    tile_rect,
)


def test_levels_reach_one_tile() -> None:
    assert levels_for((100, 100)) == 1
    assert levels_for((TILE, TILE)) == 1
    assert levels_for((TILE + 1, 10)) == 2
    assert levels_for((10, 4 * TILE)) == 3


def test_tile_rect_and_outside() -> None:
    shape = (600, 1000)
    assert tile_rect(0, 1, 2, shape) == (Rect(256, 512, 256, 88), 1)
    assert tile_rect(1, 1, 0, shape) == (Rect(512, 0, 488, 512), 2)
    for z, x, y in ((0, 4, 0), (0, 0, 3), (0, -1, 0), (5, 0, 0), (-1, 0, 0)):
        with pytest.raises(TileOutside):
            tile_rect(z, x, y, shape)


def test_reduce_any_keeps_thin_roads() -> None:
    m = np.zeros((5, 8), dtype=bool)
    m[4, 7] = True
    m[1, 0] = True
    out = reduce_any(m, 4)
    assert out.shape == (2, 2)
    assert out.tolist() == [[True, False], [False, True]]


def test_probability_overlay_alpha() -> None:
    rgba = probability_rgba(np.array([[0.0, 0.2, 0.4, 0.6]], dtype=np.float32))
    alpha = rgba[0, :, 3]
    assert alpha[0] == 0 and alpha[1] == 0 and 0 < alpha[2] < alpha[3] and alpha[3] == 190
