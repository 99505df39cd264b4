"""Domain exceptions.

Every error that bad *input* can cause derives from :class:`L2RError`. The command line turns
an ``L2RError`` into one line on stderr and exit code 2; anything else is a bug and keeps its
traceback. Messages say what was found and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "CandidateGraphTooLargeError",
    "CheckpointError",
    "FormatError",
    "GeoreferenceError",
    "GraphError",
    "InputFileError",
    "L2RError",
    "OutputError",
    "ParameterError",
    "TaskFailedError",
    "UnsafePickleError",
]


class L2RError(Exception):
    """Base class of every error caused by input the user can fix."""


class InputFileError(L2RError, FileNotFoundError):
    """An input path is missing, unreadable or of a type we cannot read."""


class OutputError(L2RError, OSError):
    """An output location that cannot be written (checked before any work starts)."""


class FormatError(L2RError, ValueError):
    """A file's content is not in the expected format (corrupt, truncated or wrong type)."""


class CheckpointError(FormatError):
    """A weights file that is corrupt, not a checkpoint, or made for another architecture/size."""


class UnsafePickleError(FormatError):
    """A pickle refers to a Python global outside the allow-list; it was not executed."""


class GraphError(L2RError, ValueError):
    """Arrays that do not form a valid :class:`~linegraph2road.graph.RoadGraph`."""


class GeoreferenceError(L2RError, ValueError):
    """A missing, invalid or incompatible coordinate reference system or transform."""


class ParameterError(L2RError, ValueError):
    """A parameter value outside its valid range (a negative radius, an unknown variant...)."""


class CandidateGraphTooLargeError(ParameterError):
    """A window's candidate line graph is too large to score: the masks are nearly flat (an
    untrained model, or thresholds far too low). Validation during training skips the tile."""


class TaskFailedError(L2RError):
    """Some tasks of a batch run failed on bad input (a corrupt tile...); the others finished
    and were kept. The message names the failed tasks."""
