"""Shared test fixtures.

Real data lives in ``../shared/fixtures`` beside the repository (never copied in); tests that need
it use the ``fixtures_dir`` fixture, which skips with a clear reason when the folder is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# The same examples on every run, so that CI is reproducible; a case that random search finds
# goes into the test as an @example (or into the issue tracker). Search with random seeds:
# L2R_HYPOTHESIS_PROFILE=explore python -m pytest (or --hypothesis-profile=explore).
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("L2R_HYPOTHESIS_PROFILE", "repeatable"))

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = Path(os.environ.get("L2R_FIXTURES", REPO.parent / "shared" / "fixtures"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``../shared/fixtures``; skips the test when it is not there."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"real fixtures not found at {SHARED_FIXTURES} (set L2R_FIXTURES)")
    return SHARED_FIXTURES


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Run the test with one torch thread. On a shared 2-core machine two OpenMP threads per
    process wait on each other when the cores are busy (20 tiny RoadGIE training steps: 1.9 s
    with 1 thread, 94 s with 2, at load 6)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
