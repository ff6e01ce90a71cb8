"""Digests that identify what a result depends on: canonical JSON of a configuration, the bytes of a file.

A run's identity (:mod:`esclib.experiments.base`) is the digest of its resolved configuration, the digests of its
dataset (:func:`esclib.data.identity.dataset_digest`) and checkpoint (:func:`file_digest`) and the digest of its split.
No digest depends on a path, a clock, a process id or Python's string hashing: the same inputs give the same digest
on any machine and under any folder, so the same run is recognised wherever it is repeated.

File digests are cached in ``esclib.paths.cache_dir()/digests`` under the file's absolute path, size and
modification time, so a dataset of thousands of files is hashed once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from esclib import paths

#: bytes read at a time while hashing a file
_CHUNK = 1 << 20


def canonical(value: Any) -> Any:
    """``value`` as plain JSON types, stable across runs: tuples become lists, paths text, numpy and torch scalars
    and arrays Python numbers and lists, mapping keys text; a float that is integral stays a float."""
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return canonical(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot digest a {type(value).__name__} ({value!r}); give plain values (numbers, text, lists, "
                    "mappings)")


def digest(value: Any, length: int = 16) -> str:
    """The sha256 (first ``length`` hex digits) of ``value``'s canonical JSON (sorted keys)."""
    text = json.dumps(canonical(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def seed_from(value: Any) -> int:
    """A 31-bit seed derived from ``value`` (for ``torch.manual_seed`` / numpy): the same value, the same seed."""
    return int(digest(value), 16) % 2**31


def _hash_file(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            sha.update(block)
    return sha.hexdigest()


def file_digest(path: str | Path, *, cache: bool = True) -> str:
    """The sha256 of the file's bytes (64 hex digits). A FileNotFoundError names the path.

    With ``cache`` the digest is remembered under the file's absolute path, size and mtime (one small file per
    entry, written atomically, so concurrent processes never corrupt the cache); a changed file is hashed again.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"cannot digest {path}: no such file") from None
    if not cache:
        return _hash_file(path)
    key = digest([str(path.resolve()), stat.st_size, stat.st_mtime_ns], 32)
    entry = paths.cache_dir() / "digests" / key[:2] / key
    if entry.is_file():
        return entry.read_text().strip()
    value = _hash_file(path)
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_name(f".{key}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    tmp.write_text(value)
    os.replace(tmp, entry)
    return value
