"""Shared fixtures."""

from pathlib import Path

import pytest

from _reference import require_golden


@pytest.fixture
def golden() -> Path:
    """The PANN golden-output folder (skips where absent; fails under CI)."""
    return require_golden()
