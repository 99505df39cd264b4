"""Multi-scale pixel features for the live classifier, the way ilastik computes them.

ilastik's pixel classification describes every pixel by a bank of filters at several scales and
learns a random forest on the pixels the user scribbled (Berg et al., "ilastik: interactive
machine learning for (bio)image analysis", Nature Methods 2019). :func:`filter_features` computes
that bank on an RGB window:

* **colour**: the three channels, raw;
* per scale ``sigma``:
  - **Gaussian smoothing** of each colour channel (3 features);
  - **gradient magnitude** of the grey image (Gaussian derivatives at ``sigma``) -- road edges;
  - **Laplacian of Gaussian** of the grey image -- bright or dark lines and blobs of width
    ~``2 sigma``;
  - **structure-tensor eigenvalues** of the grey image (integration scale ``sigma``), larger
    then smaller -- oriented, line-like texture (one large eigenvalue) versus corners/clutter.

All filters come from scipy.ndimage and scikit-image; edges are handled by reflection, so
callers read a margin of :func:`context_margin` pixels around the pixels they need and crop, and
the features of a pixel then do not depend on the window it was computed in.

Default scales ``(0.7, 1.6, 3.5, 5.0)`` are four of ilastik's seven default scales (0.3, 0.7,
1.0, 1.6, 3.5, 5.0, 10.0), keeping the ones that span a road's width; with the classifier's
default stride 2 (features on a 2x-decimated grid of the 1 m/px image) they are 1.4-10 m.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage
from skimage.feature import structure_tensor, structure_tensor_eigenvalues

from linegraph2road.errors import ParameterError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "DEFAULT_SIGMAS",
    "context_margin",
    "decimate",
    "feature_names",
    "filter_features",
]

DEFAULT_SIGMAS: tuple[float, ...] = (0.7, 1.6, 3.5, 5.0)
_PER_SCALE = ("smooth_r", "smooth_g", "smooth_b", "gradient", "log", "st_max", "st_min")


def _check_sigmas(sigmas: Sequence[float]) -> tuple[float, ...]:
    out = tuple(float(s) for s in sigmas)
    if not out or not all(math.isfinite(s) and s > 0 for s in out):
        raise ParameterError(f"feature scales must be positive numbers, got {sigmas!r}")
    return out


def feature_names(sigmas: Sequence[float] = DEFAULT_SIGMAS) -> list[str]:
    """Names of the features :func:`filter_features` returns, in order."""
    names = ["r", "g", "b"]
    for s in _check_sigmas(sigmas):
        names += [f"{n}_{s:g}" for n in _PER_SCALE]
    return names


def context_margin(sigmas: Sequence[float] = DEFAULT_SIGMAS) -> int:
    """Pixels of context each side that make a pixel's features window-independent (4 sigma)."""
    return math.ceil(4.0 * max(_check_sigmas(sigmas))) + 1


def decimate(image: NDArray[np.generic], stride: int) -> NDArray[np.float32]:
    """Block means of ``stride`` x ``stride`` pixels of a ``(C, H, W)`` image, float32.

    ``H`` and ``W`` must be multiples of ``stride``; ``stride == 1`` just converts.
    """
    img = np.asarray(image, dtype=np.float32)
    if stride == 1:
        return img
    c, h, w = img.shape
    if h % stride or w % stride:
        raise ParameterError(f"image {h}x{w} is not a multiple of the stride {stride}")
    return img.reshape(c, h // stride, stride, w // stride, stride).mean(axis=(2, 4))


def filter_features(
    image: NDArray[np.generic], *, sigmas: Sequence[float] = DEFAULT_SIGMAS
) -> NDArray[np.float32]:
    """The filter bank of every pixel of an RGB window (see the module docstring).

    Parameters
    ----------
    image : (3, H, W) array
        RGB, any real dtype (uint8 0-255 or a decimated float image on the same scale).
    sigmas : sequence of float
        Scales in pixels of ``image``.

    Returns
    -------
    (H, W, F) float32
        ``F = 3 + 7 * len(sigmas)`` features per pixel, named by :func:`feature_names`.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 3 or img.shape[0] != 3:
        raise ParameterError(f"features need a (3, H, W) RGB image, got shape {img.shape}")
    scales = _check_sigmas(sigmas)
    h, w = img.shape[1:]
    out = np.empty((h, w, 3 + len(_PER_SCALE) * len(scales)), dtype=np.float32)
    out[..., 0:3] = np.moveaxis(img, 0, -1)
    grey = img.mean(axis=0)
    k = 3
    for s in scales:
        for c in range(3):
            out[..., k] = ndimage.gaussian_filter(img[c], s, mode="reflect")
            k += 1
        out[..., k] = ndimage.gaussian_gradient_magnitude(grey, s, mode="reflect")
        out[..., k + 1] = ndimage.gaussian_laplace(grey, s, mode="reflect")
        tensor = structure_tensor(grey, sigma=s, mode="reflect", order="rc")
        eig = structure_tensor_eigenvalues(tensor)
        out[..., k + 2] = eig[0]
        out[..., k + 3] = eig[1]
        k += 4
    return out
