"""Where the tests find their reference data (genuine metadata, PANN golden outputs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
#: the genuine ESC-50 and UrbanSound8K metadata files, kept in the repository
METADATA = HERE / "reference"
#: the PANN authors' reference outputs: ``$ESCLIB_REFERENCE/panns-golden`` or ``../shared/reference/panns-golden``
GOLDEN = Path(os.environ.get("ESCLIB_REFERENCE", HERE.parent.parent / "shared" / "reference")) / "panns-golden"


def require_golden() -> Path:
    """The golden-output folder; skips the test when it is absent, but fails under CI, where it must be present."""
    if GOLDEN.is_dir():
        return GOLDEN
    message = f"PANN golden outputs not found at {GOLDEN} (set ESCLIB_REFERENCE)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
