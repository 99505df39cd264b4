"""OSM and benchmark graphs -> training labels (installed as ``linegraph2road.data_prep``).

The label builders arrive with the data-prep issue; see SPEC.md "Training labels". Nothing is
exported yet.
"""

from __future__ import annotations

__all__: list[str] = []
