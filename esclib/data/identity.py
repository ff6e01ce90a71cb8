"""What a dataset is, as a digest: its clips' labels, folds and sources and its files' bytes, not where it lies.

A run's identity includes :func:`dataset_digest` of the clips it read (:mod:`esclib.experiments.base`): another tree
of the same dataset (a re-generated world, a re-downloaded archive with a changed file, a different label) is another
run, while the same tree moved or copied elsewhere is the same run. Files are hashed once and remembered
(:func:`esclib.digest.file_digest`).
"""

from __future__ import annotations

import os

from tqdm.auto import tqdm

from esclib.data.clips import ClipSet
from esclib.digest import digest, file_digest

#: columns of a clip table that define the dataset (besides the file's bytes)
_COLUMNS = ("clip_id", "fold", "target", "category", "source")


def dataset_digest(clips: ClipSet, *, progress: bool = False) -> str:
    """The digest of ``clips``: name, classes, folds and clip length, and per clip its id, fold, label(s), source,
    path relative to the dataset's root and the sha256 of its file."""
    table = clips.table
    rows = []
    for i, path in enumerate(tqdm(clips.paths, desc=f"fingerprint {clips.name}", unit="file", disable=not progress)):
        row = [table[c].iat[i] for c in _COLUMNS]
        if "labels" in table:
            row.append(list(table["labels"].iat[i]))
        rows.append([*row, os.path.relpath(path, clips.root), file_digest(path)])
    return digest({"name": clips.name, "classes": list(clips.classes), "n_folds": clips.n_folds,
                   "clip_seconds": clips.clip_seconds, "multi_label": clips.multi_label, "clips": rows}, 20)


def dataset_identity(clips: ClipSet, *, progress: bool = False) -> dict[str, object]:
    """``{"name", "clips", "digest"}`` of a dataset, as recorded in a run's identity."""
    return {"name": clips.name, "clips": len(clips), "digest": dataset_digest(clips, progress=progress)}
