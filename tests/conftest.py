"""Shared fixtures.

Real-data tests read ``../shared/data`` (beside the repository).  On a user's
fresh clone that folder is absent and those tests skip with a reason; in CI
(``CI`` set in the environment) a missing folder is an error, never a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RAWLAB_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ``../shared/data``; skips (or fails in CI) when it is absent."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI run without the shared test data at {SHARED_DATA}")
        pytest.skip(f"shared test data not found at {SHARED_DATA} (a fresh clone without ../shared)")
    return SHARED_DATA


def require_tool(name: str, package: str) -> str:
    """Path of the command ``name``; fails in CI (``make test`` installs the
    Debian ``package``), skips with a reason on a user's machine without it."""
    import shutil

    exe = shutil.which(name)
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (Debian package {package}); make test installs it")
        pytest.skip(f"{name} not installed (Debian package {package})")
    return exe
