"""Atomic training checkpoints, so that an interrupted run resumes where it stopped."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: a crash never leaves half a file. The same
    ``obj`` gives the same bytes wherever it is saved (torch names a zip archive saved by path after the file, here
    a random temporary name; written through a file object it is always ``archive``), so that a checkpoint's digest
    (:func:`esclib.experiments.base.checkpoint_identity`) names its content, not the save."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(obj, file)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The checkpoint at ``path`` (a dict written by :func:`atomic_save`), or None when there is none yet."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # a checkpoint we cannot read must not be silently ignored
        raise RuntimeError(
            f"checkpoint {path} exists but cannot be read ({err}); delete it to start the run afresh"
        ) from err
