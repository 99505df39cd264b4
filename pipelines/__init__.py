"""Orchestration: library calls wired together for the command line (``linegraph2road.pipelines``).

Pipelines hold no algorithm of their own; each function reads inputs, calls the library and
writes outputs atomically.
"""

from __future__ import annotations

__all__: list[str] = []
