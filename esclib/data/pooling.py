"""Pooling datasets into one label-free corpus: study 004's phase 2 (DLS pre-training on every dataset and fold).

Study 004 pre-trains on "all available audio datasets and folds" (UrbanSound8K, ESC-50, ESC-10, DCASE 2013) as one
training set, then fine-tunes and tests on those very folds. Two things follow (book/protocols.md, study 004):

- ESC-10 is a subset of ESC-50: pooled as two datasets, its 400 clips are two instances each. :func:`pool_datasets`
  keeps every audio file once (``deduplicate=True``, the default; ``False`` reproduces the study's double count).
- Pooling the test folds is transductive (their audio, not their labels, is seen in pre-training). The study's form
  is ``held_out=None``; the leak-free form leaves out the test folds of each dataset (``held_out={"esc50": [1],
  ...}``), and with them every clip of another dataset that is the same file (ESC-10 in ESC-50) or comes from the
  same source recording.

Used by chapter 04 (Notebook: 04_npid).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from esclib.data.clips import CLIP_COLUMNS, UNLABELLED, ClipSet

#: extra columns of a pooled table: the dataset a clip came from, its class there (never used by NPID)
POOL_COLUMNS: tuple[str, ...] = ("dataset", "dataset_target")


def pool_datasets(datasets: Sequence[ClipSet], *, held_out: Mapping[str, Iterable[int]] | None = None,
                  deduplicate: bool = True, clip_seconds: float = 5.0) -> ClipSet:
    """One unlabelled ClipSet of the clips of ``datasets`` (row order: dataset by dataset, their own order).

    ``held_out`` maps a dataset name to the folds left out (its test folds): those clips, and any clip of any
    dataset with the same file or source recording, are not pooled. ``deduplicate`` keeps each audio file once
    (its first occurrence). Sources keep their dataset's value: ESC-50's ``src_file`` and UrbanSound8K's ``fsID``
    are both Freesound ids, so a recording cut into clips of two datasets is one source and is held out from both.
    Targets are -1 (NPID uses no labels); ``dataset`` and
    ``dataset_target`` say where each clip came from. ``clip_seconds`` is the length the pool's clips are cached
    at (longer clips, e.g. DCASE 2013's 30-s scenes, are centre-cropped by the waveform cache).
    """
    if not datasets:
        raise ValueError("pool_datasets: give at least one dataset")
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise ValueError(f"pool_datasets: each dataset once, got {names}")
    held_out = {name: set(folds) for name, folds in (held_out or {}).items()}
    unknown = set(held_out) - set(names)
    if unknown:
        raise ValueError(f"pool_datasets: held_out names {sorted(unknown)} are not among the datasets {names}")
    if clip_seconds <= 0:
        raise ValueError(f"pool_datasets: clip_seconds must be > 0, got {clip_seconds}")
    tables = []
    for clips in datasets:
        table = clips.table[list(CLIP_COLUMNS)].assign(dataset=clips.name, dataset_target=clips.targets)
        table["clip_id"] = clips.name + "/" + table["clip_id"].astype(str)
        tables.append(table)
    pooled = pd.concat(tables, ignore_index=True)
    held = np.zeros(len(pooled), dtype=bool)
    for name, folds in held_out.items():
        held |= ((pooled["dataset"] == name) & pooled["fold"].isin(folds)).to_numpy()
    leaked = pooled["path"].isin(pooled["path"][held]) | pooled["source"].isin(pooled["source"][held])
    pooled = pooled[~leaked.to_numpy()]
    if deduplicate:
        pooled = pooled.drop_duplicates("path")
    pooled = pooled.assign(target=UNLABELLED, category="").reset_index(drop=True)
    name = "pool(" + "+".join(names) + (", leak-free" if held_out else "") + ")"
    return ClipSet(name, datasets[0].root, (), 0, clip_seconds, pooled)


def describe_pool(pool: ClipSet) -> pd.DataFrame:
    """Clips per dataset and fold of a pooled ClipSet (rows: dataset, columns: fold, with totals)."""
    missing = [c for c in POOL_COLUMNS if c not in pool.table]
    if missing:
        raise ValueError(f"describe_pool: {pool.name} lacks the column(s) {missing}; build it with pool_datasets")
    return pd.crosstab(pool.table["dataset"], pool.table["fold"], margins=True, margins_name="total")
