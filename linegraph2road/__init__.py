"""linegraph2road: satellite and aerial imagery to routable road-network graphs."""

from __future__ import annotations

from linegraph2road.errors import (
    CheckpointError,
    FormatError,
    GeoreferenceError,
    GraphError,
    InputFileError,
    L2RError,
    ParameterError,
    UnsafePickleError,
)
from linegraph2road.georef import Georeference
from linegraph2road.graph import RoadGraph

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "FormatError",
    "Georeference",
    "GeoreferenceError",
    "GraphError",
    "InputFileError",
    "L2RError",
    "ParameterError",
    "RoadGraph",
    "UnsafePickleError",
    "__version__",
]
