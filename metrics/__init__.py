"""Road-graph and mask metrics (installed as ``linegraph2road.metrics``).

TOPO and APLS (Sat2Graph and CosmiQ variants) arrive with the evaluator issue; see SPEC.md
"Evaluators". Nothing is exported yet.
"""

from __future__ import annotations

__all__: list[str] = []
