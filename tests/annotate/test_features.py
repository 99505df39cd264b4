from __future__ import annotations

import numpy as np
import pytest

from linegraph2road.annotate.features import (
    context_margin,
    decimate,
    feature_names,
    filter_features,
)
from linegraph2road.errors import ParameterError


def test_feature_bank_shape_and_names() -> None:
    img = np.random.default_rng(0).integers(0, 255, (3, 40, 50)).astype(np.uint8)
    f = filter_features(img, sigmas=(1.0, 2.0))
    assert f.shape == (40, 50, 3 + 7 * 2) and f.dtype == np.float32
    assert len(feature_names((1.0, 2.0))) == f.shape[-1]
    assert np.array_equal(f[..., 0], img[0].astype(np.float32))
    with pytest.raises(ParameterError):
        filter_features(img[:2])
    with pytest.raises(ParameterError):
        feature_names((0.0,))


def test_features_do_not_depend_on_the_window() -> None:
    """With context_margin of context, a pixel's features are the same in any window."""
    img = np.random.default_rng(1).integers(0, 255, (3, 120, 120)).astype(np.uint8)
    sigmas = (0.7, 1.6, 3.5)
    m = context_margin(sigmas)
    whole = filter_features(img, sigmas=sigmas)
    crop = filter_features(img[:, 20:100, 30:110], sigmas=sigmas)
    inner = crop[m : 80 - m, m : 80 - m]
    assert np.allclose(inner, whole[20 + m : 100 - m, 30 + m : 110 - m], atol=1e-2, rtol=1e-4)


def test_decimate_block_means() -> None:
    img = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)
    assert decimate(img, 2)[0].tolist() == [[2.5, 4.5], [10.5, 12.5]]
    with pytest.raises(ParameterError):
        decimate(np.zeros((1, 3, 4)), 2)
