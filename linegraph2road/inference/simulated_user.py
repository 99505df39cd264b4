"""A simulated user driving RoadGIE for several rounds (validation, ``l2r eval-interactive``).

Round ``t`` (1-based): the user sees the current prediction (``probability > threshold``; nothing
before round 1), adds the prompts :func:`~linegraph2road.frontends.roadgie.simulation.
simulate_round` draws from its errors against the ground truth, and RoadGIE runs one round
(:func:`~.interactive.predict_round`) with every prompt so far and the previous probability.
Randomness: ``numpy.random.default_rng(seed)`` only, so a session is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from linegraph2road.errors import ParameterError
from linegraph2road.frontends.roadgie.model import RoadGIEFrontend
from linegraph2road.frontends.roadgie.simulation import SimulationSettings, simulate_round
from linegraph2road.inference.interactive import predict_round
from linegraph2road.prompts import Prompt

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["SessionRound", "simulate_session"]


@dataclass(frozen=True)
class SessionRound:
    """One round of a simulated session: its number (1-based), every prompt so far, how many
    were added this round, and the predicted ``(H, W)`` float32 probability."""

    round: int
    prompts: tuple[Prompt, ...]
    added: int
    probability: NDArray[np.float32]


def simulate_session(
    model: RoadGIEFrontend,
    image: NDArray[np.uint8],
    gt: NDArray[np.bool_],
    *,
    rounds: int = 5,
    settings: SimulationSettings | None = None,
    seed: int = 0,
    uncertainty: NDArray[np.floating] | None = None,
    instantiate: bool = False,
    threshold: float = 0.5,
    device: str | torch.device | None = "cpu",
    precision: str = "fp32",
    initial: Sequence[Prompt] = (),
) -> list[SessionRound]:
    """Run ``rounds`` simulated interaction rounds on one image (see the module docstring).

    Parameters
    ----------
    model : RoadGIEFrontend
    image : (3, H, W) uint8
    gt : (H, W) bool
        Ground-truth road mask.
    rounds : int
        Number of rounds (>= 1).
    settings : SimulationSettings, optional
        How the user prompts (default: the training mix, 1-3 prompts a round).
    seed : int
        Seed of the user's choices.
    uncertainty : (H, W) float, optional
        Expert uncertainty biasing positive prompts (eq. 5); None for a plain user.
    instantiate : bool
        Topo-semantic instantiation of every round's output.
    threshold : float
        What the user sees as road.
    device, precision
        As :func:`~.interactive.predict_round`.
    initial : sequence of Prompt
        Prompts given before the first round.

    Returns
    -------
    list of SessionRound
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ParameterError(f"rounds must be an integer >= 1, got {rounds!r}")
    truth = np.asarray(gt, dtype=bool)
    if truth.shape != np.shape(image)[1:]:
        raise ParameterError(f"gt {truth.shape} and image {np.shape(image)} differ in size")
    rng = np.random.default_rng(seed)
    prompts = list(initial)
    previous: NDArray[np.float32] | None = None
    out = []
    for t in range(1, rounds + 1):
        seen = np.zeros_like(truth) if previous is None else previous > threshold
        new = simulate_round(truth, seen, rng, settings=settings, uncertainty=uncertainty)
        prompts += new
        previous = predict_round(
            model, image, previous, prompts, device=device, precision=precision,
            instantiate=instantiate,
        )  # fmt: skip
        out.append(SessionRound(t, tuple(prompts), len(new), previous))
    return out
