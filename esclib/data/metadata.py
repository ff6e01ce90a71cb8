"""What every dataset loader shares: reading a metadata file with errors that name the file and field, checking
class indices, and assembling the :class:`~esclib.data.clips.ClipSet` table in its column order."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from esclib.data.clips import CLIP_COLUMNS


class DatasetNotFoundError(FileNotFoundError):
    """A dataset (or a required part of it) is not where it was looked for; the message says how to get it."""


def missing_dataset(dataset: str, root: Path, what: str) -> DatasetNotFoundError:
    """The error for a dataset whose ``what`` (a file or folder) is absent under ``root``."""
    return DatasetNotFoundError(
        f"{dataset}: {what} not found under {root}. Download the dataset with `esc data download {dataset} --root "
        f"{root}` (or generate a synthetic one in the same layout with `esc data synth {dataset} --root {root}`), "
        f"then check it with `esc data verify {dataset} --root {root}`."
    )


def read_metadata(root: Path, relative: Path, columns: Sequence[str], dataset: str, *,
                  n_folds: int | None = None) -> pd.DataFrame:
    """A dataset's metadata CSV ``root/relative``, unchanged; raises if it is absent, lacks one of ``columns``, or
    (given ``n_folds``) has a ``fold`` outside 1..n_folds."""
    path = root / relative
    if not path.is_file():
        raise missing_dataset(dataset, root, f"metadata file {relative}")
    table = pd.read_csv(path)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: lacks the column(s) {missing}; expected the columns {list(columns)}")
    if table.empty:
        raise ValueError(f"{path}: has no rows")
    if n_folds is not None:
        bad = np.flatnonzero(~table["fold"].between(1, n_folds))
        if bad.size:
            raise ValueError(f"{path}: column 'fold' must lie in 1..{n_folds}; row {bad[0] + 2} holds "
                             f"{table['fold'].iloc[bad[0]]!r} ({bad.size} such rows)")
    return table


def class_names(targets: pd.Series, names: pd.Series, path: Path) -> tuple[str, ...]:
    """Class names in index order from a metadata file's index and name columns.

    Raises if an index carries two names or if the indices are not exactly 0..C-1.
    """
    pairs = pd.DataFrame({"target": targets, "name": names}).drop_duplicates()
    clashes = pairs[pairs["target"].duplicated(keep=False)]
    if not clashes.empty:
        raise ValueError(f"{path}: class index {clashes['target'].iloc[0]} carries several names "
                         f"{sorted(clashes[clashes['target'] == clashes['target'].iloc[0]]['name'])}")
    pairs = pairs.sort_values("target")
    if pairs["target"].tolist() != list(range(len(pairs))):
        raise ValueError(f"{path}: class indices must be 0..{len(pairs) - 1}, found {pairs['target'].tolist()}")
    return tuple(pairs["name"])


def clip_table(*, clip_id: Sequence[str], path: Sequence[str], fold: Sequence[int], target: Sequence[int],
               category: Sequence[str], source: Sequence[str], extras: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ClipSet table: :data:`CLIP_COLUMNS` with their dtypes, then the dataset's own ``extras`` columns."""
    table = pd.DataFrame({
        "clip_id": pd.Series(clip_id, dtype=str).to_numpy(),
        "path": pd.Series(path, dtype=str).to_numpy(),
        "fold": np.asarray(fold, dtype=np.int64),
        "target": np.asarray(target, dtype=np.int64),
        "category": pd.Series(category, dtype=str).to_numpy(),
        "source": pd.Series(source, dtype=str).to_numpy(),
    }, columns=list(CLIP_COLUMNS))
    if extras is not None:
        table = pd.concat([table, extras.reset_index(drop=True)], axis=1)
    duplicated = table["clip_id"][table["clip_id"].duplicated()]
    if not duplicated.empty:
        raise ValueError(f"clip ids must be unique; {duplicated.iloc[0]!r} appears more than once")
    return table
