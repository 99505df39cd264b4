from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linegraph2road.annotate.chunks import (
    CHUNK,
    Chunk,
    Rect,
    chunk_keys,
    decode_chunk,
    encode_chunk,
    paste_rect,
    read_rect,
)
from linegraph2road.errors import FormatError, ParameterError


def test_encode_decode_roundtrip() -> None:
    rng = np.random.default_rng(0)
    chunk = Chunk(rng.random((CHUNK, CHUNK)) < 0.1, rng.random((CHUNK, CHUNK)) < 0.5)
    back = decode_chunk(encode_chunk(chunk))
    assert np.array_equal(back.road, chunk.road) and np.array_equal(back.covered, chunk.covered)
    assert len(encode_chunk(Chunk.empty())) < 100


def test_corrupt_chunk_is_a_format_error() -> None:
    with pytest.raises(FormatError):
        decode_chunk(b"not zlib")
    import zlib

    with pytest.raises(FormatError):
        decode_chunk(zlib.compress(b"\x00" * 10))


def test_rect_validation_and_clip() -> None:
    with pytest.raises(ParameterError):
        Rect(0, 0, 0, 5)
    with pytest.raises(ParameterError):
        Rect(0, 0, 1.5, 5)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        Rect.from_list([1, 2, 3])
    assert Rect(-5, 10, 20, 100).clip((50, 40)) == Rect(0, 10, 15, 40)
    assert Rect(60, 0, 5, 5).clip((50, 50)) is None
    assert list(chunk_keys(Rect(CHUNK - 1, 0, 2, CHUNK + 1))) == [(0, 0), (0, 1), (1, 0), (1, 1)]


@given(
    col0=st.integers(0, 600),
    row0=st.integers(0, 600),
    width=st.integers(1, 300),
    height=st.integers(1, 300),
    seed=st.integers(0, 2**16),
)
def test_paste_then_read_gives_the_pasted_pixels(
    col0: int, row0: int, width: int, height: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    store: dict[tuple[int, int], Chunk] = {}
    base = Rect(0, 0, 1000, 1000)
    old_road = rng.random((1000, 1000)) < 0.3
    store.update(paste_rect(base, store.get, road=old_road, covered=old_road))
    rect = Rect(col0, row0, width, height)
    road = rng.random((height, width)) < 0.5
    where = rng.random((height, width)) < 0.5
    new = paste_rect(rect, store.get, road=road, covered=np.ones_like(road), where=where)
    assert set(new) == set(chunk_keys(rect))
    before = {k: (v.road.copy(), v.covered.copy()) for k, v in store.items()}
    store.update(new)
    got, cov = read_rect(rect, store.get)
    old = old_road[row0 : row0 + height, col0 : col0 + width]
    assert np.array_equal(got, np.where(where, road, old))
    assert np.array_equal(cov, where | old)
    for k, (r, c) in before.items():  # the chunks given were not modified
        if k not in new:
            assert np.array_equal(store[k].road, r) and np.array_equal(store[k].covered, c)
