"""Atomic training checkpoints, so that an interrupted run resumes where it stopped."""

from __future__ import annotations

import errno
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: a crash never leaves half a file. The same
    ``obj`` gives the same bytes wherever it is saved (torch names a zip archive saved by path after the file, here
    a random temporary name; written through a file object it is always ``archive``), so that a checkpoint's digest
    (:func:`esclib.experiments.base.checkpoint_identity`) names its content, not the save.

    Raises :class:`OSError` naming ``path`` when its disk has less room than ``obj``'s tensors need (checked before
    writing) or a write fails (a full disk, a file size limit): torch reports a failed write to a file object only
    as ``unexpected pos``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    needed, free = tensor_bytes(obj), shutil.disk_usage(path.parent).free
    if needed > free:
        raise OSError(errno.ENOSPC, f"cannot save {path}: it needs about {needed / 2**20:.0f} MiB and its disk has "
                                    f"{free / 2**20:.0f} MiB free")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        file = _Writer(io.FileIO(fd, "wb"))
        try:
            with file:
                torch.save(obj, file)
        except (RuntimeError, OSError) as err:
            if file.error is None:
                raise
            raise OSError(file.error.errno, f"cannot save {path}: {file.error.strerror} (about "
                                            f"{needed / 2**20:.0f} MiB to write)") from err
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def tensor_bytes(obj: Any) -> int:
    """Bytes of the dense tensors' storages in ``obj`` (nested dicts, lists and tuples), each storage counted once:
    about the size of ``torch.save(obj)``, whose zip archive stores them uncompressed (sparse tensors not counted)."""
    storages: dict[tuple[str, int], int] = {}

    def visit(item: Any) -> None:
        if isinstance(item, torch.Tensor) and item.layout == torch.strided:
            storage = item.untyped_storage()
            storages[(str(item.device), storage.data_ptr())] = storage.nbytes()
        elif isinstance(item, dict):
            for value in item.values():
                visit(value)
        elif isinstance(item, (list, tuple)):
            for value in item:
                visit(value)

    visit(obj)
    return sum(storages.values())


class _Writer(io.BufferedWriter):
    """A buffered file that keeps the first :class:`OSError` of a write (torch's writer swallows it)."""

    error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return super().write(data)
        except OSError as err:
            self.error = self.error or err
            raise

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as err:
            self.error = self.error or err
            raise


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
