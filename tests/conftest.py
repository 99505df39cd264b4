"""Shared test fixtures.

Real data lives in ``../shared/fixtures`` beside the repository (never copied in); tests that need
it use the ``fixtures_dir`` fixture, which skips with a clear reason when the folder is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = Path(os.environ.get("L2R_FIXTURES", REPO.parent / "shared" / "fixtures"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``../shared/fixtures``; skips the test when it is not there."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"real fixtures not found at {SHARED_FIXTURES} (set L2R_FIXTURES)")
    return SHARED_FIXTURES
