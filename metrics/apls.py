"""APLS (Average Path Length Similarity) between a ground-truth and a proposed road graph.

Two variants give very different numbers on the same pair and must never share a table:

* ``"sat2graph"`` (:func:`~linegraph2road.metrics.apls_sat2graph.apls_sat2graph`): Sat2Graph's
  Go evaluator, what City-scale / Global-scale papers (Sat2Graph, SAM-Road, LineGraph2Road)
  report; ``small_tiles=True`` for the SpaceNet 400 px setting.
* ``"cosmiq"`` (:func:`~linegraph2road.metrics.apls_cosmiq.apls_cosmiq`): CosmiQ's ``apls.py``,
  SpaceNet's official scorer.

Both take :class:`~linegraph2road.graph.RoadGraph` inputs (pixel graphs at ``gsd`` metres per
pixel, or georeferenced graphs), never mutate them, and are deterministic for a given ``seed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._apls_common import GEOMETRY_VERTEX_KEY, AplsParameterError, AplsResult
from .apls_cosmiq import apls_cosmiq
from .apls_sat2graph import apls_sat2graph

if TYPE_CHECKING:
    from linegraph2road.graph import RoadGraph

__all__ = [
    "APLS_VARIANTS",
    "GEOMETRY_VERTEX_KEY",
    "AplsParameterError",
    "AplsResult",
    "apls",
    "apls_cosmiq",
    "apls_sat2graph",
]

APLS_VARIANTS = ("sat2graph", "cosmiq")


def apls(
    gt: RoadGraph,
    pred: RoadGraph,
    *,
    variant: str = "sat2graph",
    small_tiles: bool = False,
    gsd: float | None = None,
    seed: int = 0,
    **params: Any,
) -> AplsResult:
    """APLS of ``pred`` against ``gt`` with the chosen reference's rules.

    Parameters
    ----------
    gt, pred : RoadGraph
        Ground truth and proposal: nodes ``(N, 2)`` float64 ``(x, y)`` pixels, both pixel graphs
        or both georeferenced.
    variant : {"sat2graph", "cosmiq"}, default "sat2graph"
        Which reference to reproduce (see the module docstring).
    small_tiles : bool, default False
        Sat2Graph variant only: the small-tile (SpaceNet) parameters.
    gsd : float, optional
        Metres per pixel for pixel graphs (default 1.0).
    seed : int, default 0
        Seeds the random choices the references make (snapping order, control-point samples).
    **params
        Keyword parameters of the variant's function, in metres.

    Returns
    -------
    AplsResult
        ``score``, ``gt_to_prop``, ``prop_to_gt``, counts and the parameters used.

    Raises
    ------
    AplsParameterError
        Unknown variant, ``small_tiles`` with the CosmiQ variant, or an invalid parameter.
    """
    if variant == "sat2graph":
        return apls_sat2graph(gt, pred, small_tiles=small_tiles, gsd=gsd, seed=seed, **params)
    if variant == "cosmiq":
        if small_tiles:
            raise AplsParameterError(
                "small_tiles applies to the Sat2Graph variant only; the CosmiQ scorer has one "
                "setting for every tile size"
            )
        return apls_cosmiq(gt, pred, gsd=gsd, seed=seed, **params)
    raise AplsParameterError(
        f"unknown APLS variant {variant!r}; expected one of {', '.join(APLS_VARIANTS)}"
    )
