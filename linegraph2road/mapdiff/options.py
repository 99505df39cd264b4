"""The options of a map diff, in one validated, frozen record."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from linegraph2road.errors import ParameterError
from linegraph2road.metrics.matching import MATCH_RULES

__all__ = ["DiffOptions"]


def _metres(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ParameterError(f"{name} must be a positive number of metres, got {value!r}")


@dataclass(frozen=True)
class DiffOptions:
    """How a predicted road graph is compared with a reference map.

    Attributes
    ----------
    tolerance : float
        Metres (default 8): a piece of road is seen in the other graph when that graph has a
        line closer than this, running in about the same direction. Covers the imagery's
        misregistration against the map plus the half-width of a road.
    max_angle : float
        Degrees in ``(0, 90]`` (default 45, TOPO's marble-hole angle tolerance): largest angle
        between two lines that match. 90 ignores directions.
    step : float
        Metres (default 2): lines are sampled this often for matching.
    piece_length : float
        Metres (default 20): edges longer than this are classified in equal parts no longer than
        it, so that a long map edge whose middle is gone is reported as such.
    min_coverage : float
        In ``(0, 1]`` (default 0.5): a piece is ``matched`` / ``confirmed`` when at least this
        share of its length matches the other graph, else ``missing_from_ref`` / ``not_seen``.
    rule : str
        ``"nearest"`` (default: a sample matches when any line of the other graph is within the
        tolerances, so duplicate lines of one road are not changes) or ``"one-to-one"`` (TOPO's
        Hopcroft-Karp matching of samples); see :mod:`linegraph2road.metrics.matching`.
    allow_empty : bool
        Default False: a prediction or reference without any road in the compared area is an
        error (usually the wrong file or area). True compares anyway (an unmapped area: every
        predicted road is missing from the map).
    """

    tolerance: float = 8.0
    max_angle: float = 45.0
    step: float = 2.0
    piece_length: float = 20.0
    min_coverage: float = 0.5
    rule: str = "nearest"
    allow_empty: bool = False

    def __post_init__(self) -> None:
        _metres("tolerance", self.tolerance)
        _metres("step", self.step)
        _metres("piece_length", self.piece_length)
        a = self.max_angle
        if not (isinstance(a, int | float) and math.isfinite(a) and 0 < a <= 90):
            raise ParameterError(f"max_angle must be in (0, 90] degrees, got {a!r}")
        c = self.min_coverage
        if not (isinstance(c, int | float) and math.isfinite(c) and 0 < c <= 1):
            raise ParameterError(f"min_coverage must be in (0, 1], got {c!r}")
        if self.rule not in MATCH_RULES:
            raise ParameterError(
                f"unknown matching rule {self.rule!r}; expected one of {', '.join(MATCH_RULES)}"
            )
        if self.step > self.tolerance:
            raise ParameterError(
                f"step ({self.step} m) must not exceed the tolerance ({self.tolerance} m): "
                "samples farther apart than the tolerance can miss a matching line"
            )

    def to_dict(self) -> dict[str, Any]:
        """The options as a plain dict (JSON-ready)."""
        return asdict(self)
