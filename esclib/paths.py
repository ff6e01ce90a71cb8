"""Where esclib keeps data, caches and results (each overridable by an environment variable)."""

from __future__ import annotations

import os
from pathlib import Path


def _dir(env: str, default: Path) -> Path:
    path = Path(os.environ.get(env, default)).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Root of esclib's caches (decoded waveforms, features, checkpoints): ``$ESCLIB_CACHE`` or ``~/.cache/esclib``."""
    return _dir("ESCLIB_CACHE", Path.home() / ".cache" / "esclib")


def data_dir() -> Path:
    """Default root for datasets: ``$ESCLIB_DATA`` or ``<cache_dir>/data``."""
    return _dir("ESCLIB_DATA", cache_dir() / "data")


def results_dir() -> Path:
    """Root of the results store: ``$ESCLIB_RESULTS`` or ``./results``."""
    return _dir("ESCLIB_RESULTS", Path.cwd() / "results")
