"""What produced a result: package versions, git commit, Python, platform, date.

Recorded in every result file (:mod:`esclib.results.store`) and shown at the top of every executed chapter
(:func:`esclib.runner.start_chapter`).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

#: distributions whose versions are recorded (those that change numbers or the book)
PACKAGES: tuple[str, ...] = (
    "esclib", "torch", "torchvision", "numpy", "scipy", "librosa", "scikit-learn", "pandas", "lightly", "papermill",
    "jupyter-book",
)


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed version of each distribution ("not installed" where absent)."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(repo: str | Path | None = None) -> str:
    """The commit that produced a run: ``$ESC_COMMIT`` (set by ``esc run``), else ``git rev-parse HEAD``, else
    ``"unknown"``; ``+dirty`` is appended when the work tree has uncommitted changes."""
    if os.environ.get("ESC_COMMIT"):
        return os.environ["ESC_COMMIT"]
    cwd = str(repo or Path.cwd())
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else commit


def now(timestamp: float | None = None) -> str:
    """A time (default: now) as local ISO 8601 with the UTC offset, to the second."""
    moment = _dt.datetime.now() if timestamp is None else _dt.datetime.fromtimestamp(timestamp)
    return moment.astimezone().isoformat(timespec="seconds")


def environment(**extra: object) -> dict:
    """The record of what produced a run: ``extra`` (e.g. device, seed, profile) first, then commit, date, Python,
    platform and package versions."""
    return {
        **extra,
        "commit": git_commit(),
        "date": now(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
    }
