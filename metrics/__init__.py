"""Road-graph and mask metrics (installed as ``linegraph2road.metrics``).

Native, deterministic re-implementations of the field's reference evaluators (SPEC.md
"Evaluators"), numba-accelerated:

* :func:`topo` - TOPO as Sat2Graph computes it;
* :func:`apls` - APLS, ``variant="sat2graph"`` (what City-scale / Global-scale papers report) or
  ``variant="cosmiq"`` (SpaceNet's official scorer). Never mix the two in one table;
* :func:`pixel_scores` / :func:`cldice` - IoU, precision, recall, F1 and clDice of masks;
* :class:`PRCurve` / :func:`best_f1_threshold` - binned precision-recall curves and the
  threshold of their best F1 (SAM-Road's threshold selection);
* :mod:`.matching` - TOPO's line matching (distance + angle, nearest or Hopcroft-Karp) in metres,
  for comparing two networks edge by edge (``l2r diff``);
* :mod:`.protocols` / :mod:`.evaluate` - benchmark protocols and per-image evaluation behind
  ``l2r eval``;
* :func:`betti_numbers` / :func:`betti_errors` and :func:`round_scores` /
  :func:`summarize_rounds` - topology errors and per-round interactive scores behind
  ``l2r eval-interactive``.
"""

from __future__ import annotations

from linegraph2road.metrics.apls import (
    APLS_VARIANTS,
    GEOMETRY_VERTEX_KEY,
    AplsParameterError,
    AplsResult,
    apls,
    apls_cosmiq,
    apls_sat2graph,
)
from linegraph2road.metrics.betti import betti_errors, betti_numbers
from linegraph2road.metrics.interactive import round_scores, summarize_rounds
from linegraph2road.metrics.matching import (
    LineSamples,
    covered_fraction,
    match_samples,
    sample_segments,
)
from linegraph2road.metrics.pixel import PixelScores, cldice, pixel_scores
from linegraph2road.metrics.pr_curve import BestF1, PRCurve, best_f1_threshold
from linegraph2road.metrics.topo import TopoResult, topo

__all__ = [
    "APLS_VARIANTS",
    "GEOMETRY_VERTEX_KEY",
    "AplsParameterError",
    "AplsResult",
    "BestF1",
    "LineSamples",
    "PRCurve",
    "PixelScores",
    "TopoResult",
    "apls",
    "apls_cosmiq",
    "apls_sat2graph",
    "best_f1_threshold",
    "betti_errors",
    "betti_numbers",
    "cldice",
    "covered_fraction",
    "match_samples",
    "pixel_scores",
    "round_scores",
    "sample_segments",
    "summarize_rounds",
    "topo",
]
