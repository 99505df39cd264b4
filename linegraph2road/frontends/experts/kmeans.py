"""k-means (Lloyd's algorithm, k-means++ seeding) in numpy, and nearest-centroid assignment.

The paper (section 3.3.1) clusters the training embeddings with k-means (k = 3 and k = 5) and, at
test time, picks the expert whose centroid is nearest to the image's embedding. k-means minimises
squared Euclidean distances, so "nearest" is Euclidean here and in the router
(:meth:`~linegraph2road.frontends.experts.model.ExpertsFrontend.assign`), which keeps training
assignments and test-time routing consistent.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from linegraph2road.errors import ParameterError

__all__ = ["KMeansResult", "kmeans", "nearest_centroid"]


class KMeansResult(NamedTuple):
    """What :func:`kmeans` returns.

    Attributes
    ----------
    centroids : (k, E) float64
        Cluster centres.
    labels : (N,) int64
        Index of each point's nearest centroid.
    inertia : float
        Sum of squared distances from the points to their centroids.
    n_iter : int
        Lloyd iterations run by the best restart.
    """

    centroids: NDArray[np.float64]
    labels: NDArray[np.int64]
    inertia: float
    n_iter: int


def _squared_distances(x: NDArray[np.float64], c: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(N, k)`` squared Euclidean distances, clipped at 0 against rounding."""
    d = (x * x).sum(1)[:, None] - 2.0 * x @ c.T + (c * c).sum(1)[None, :]
    return np.maximum(d, 0.0)


def nearest_centroid(points: ArrayLike, centroids: ArrayLike) -> NDArray[np.int64]:
    """Index of the Euclidean-nearest centroid of every point (ties: lowest index).

    Parameters
    ----------
    points : (N, E) array_like of float
    centroids : (k, E) array_like of float

    Returns
    -------
    (N,) int64
    """
    x = np.asarray(points, dtype=np.float64)
    c = np.asarray(centroids, dtype=np.float64)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1] or len(c) == 0:
        raise ParameterError(
            f"points (N, E) and centroids (k, E) need the same E, got {x.shape} and {c.shape}"
        )
    return _squared_distances(x, c).argmin(1).astype(np.int64)


def _plus_plus(x: NDArray[np.float64], k: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): D^2-weighted sampling of centres."""
    centres = [x[int(rng.integers(len(x)))]]
    d2 = _squared_distances(x, centres[0][None])[:, 0]
    for _ in range(1, k):
        total = d2.sum()
        # All remaining points coincide with a centre: any choice is as good.
        i = int(rng.choice(len(x), p=d2 / total)) if total > 0 else int(rng.integers(len(x)))
        centres.append(x[i])
        d2 = np.minimum(d2, _squared_distances(x, x[i][None])[:, 0])
    return np.stack(centres)


def _lloyd(
    x: NDArray[np.float64], centroids: NDArray[np.float64], max_iter: int, tol: float
) -> KMeansResult:
    labels = np.zeros(len(x), dtype=np.int64)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (n_iter is reported)
        labels = _squared_distances(x, centroids).argmin(1).astype(np.int64)
        new = centroids.copy()
        for j in range(len(centroids)):
            members = x[labels == j]
            if len(members):  # an empty cluster keeps its centre
                new[j] = members.mean(0)
        shift = float(np.square(new - centroids).sum())
        centroids = new
        if shift <= tol:
            break
    d = _squared_distances(x, centroids)
    labels = d.argmin(1).astype(np.int64)
    return KMeansResult(centroids, labels, float(d[np.arange(len(x)), labels].sum()), n_iter)


def kmeans(
    points: ArrayLike,
    k: int,
    *,
    seed: int = 0,
    n_init: int = 4,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> KMeansResult:
    """Cluster ``points`` into ``k`` groups with k-means (best of ``n_init`` seeded restarts).

    Parameters
    ----------
    points : (N, E) array_like of float
        For example the embeddings of the training images.
    k : int
        Number of clusters (paper: 3 and 5); ``1 <= k <= N``.
    seed : int
        Seed of the k-means++ initialisation (default 0): the same seed gives the same result.
    n_init : int
        Independent k-means++ restarts; the one with the lowest inertia wins (default 4).
    max_iter : int
        Lloyd iterations per restart at most (default 100).
    tol : float
        Stop when the centroids move less than this in total squared distance (default 1e-10).

    Returns
    -------
    KMeansResult
        ``centroids (k, E)`` float64, ``labels (N,)`` int64, ``inertia``, ``n_iter``.

    Raises
    ------
    ParameterError
        ``points`` not 2-D or not finite, ``k`` outside ``[1, N]``, ``n_init``/``max_iter`` < 1.
    """
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ParameterError(f"k-means needs (N, E) points with N >= 1, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ParameterError("k-means points contain NaN or infinity")
    if not 1 <= k <= len(x):
        raise ParameterError(f"k must be in [1, {len(x)}] (the number of points), got {k}")
    if n_init < 1 or max_iter < 1:
        raise ParameterError(f"n_init and max_iter must be >= 1, got {n_init}, {max_iter}")
    rng = np.random.default_rng(seed)
    best = _lloyd(x, _plus_plus(x, k, rng), max_iter, tol)
    for _ in range(n_init - 1):
        result = _lloyd(x, _plus_plus(x, k, rng), max_iter, tol)
        if result.inertia < best.inertia:
            best = result
    return best
