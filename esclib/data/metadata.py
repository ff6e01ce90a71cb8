"""What every dataset loader shares: reading a metadata file with errors that name the file, row, column, value and
what was expected, checking class indices, and assembling the :class:`~esclib.data.clips.ClipSet` table in its
column order."""

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


class MetadataError(ValueError):
    """A dataset's metadata file is malformed; the message names the file, the row and column, the value found and
    what was expected."""


def _shown(value: object) -> str:
    """A metadata cell as an error message shows it."""
    if pd.isna(value):
        return "an empty cell"
    return repr(value.item() if isinstance(value, np.generic) else value)


def bad_cells(path: Path, column: str, mask: Sequence[bool] | pd.Series, values: pd.Series,
              expected: str) -> MetadataError:
    """The error for the rows of ``path`` where ``mask`` holds: the first one's row, line, column and value, what
    was ``expected`` there, and how many rows are like it."""
    rows = np.flatnonzero(np.asarray(mask, dtype=bool))
    first = int(rows[0])
    more = f" ({rows.size} rows like it)" if rows.size > 1 else ""
    return MetadataError(f"{path}, row {first + 1} (line {first + 2}), column {column!r}: expected {expected}, "
                         f"found {_shown(values.iloc[first])}{more}")


def _numeric(table: pd.DataFrame, column: str, path: Path, expected: str, *, integer: bool) -> pd.Series:
    """Column ``column`` as int64 (``integer``) or float64; raises :class:`MetadataError` at the first cell that is
    not such a number (``expected`` says what belongs there)."""
    values = pd.to_numeric(table[column], errors="coerce")
    bad = values.isna() | ~np.isfinite(values)
    if integer:
        bad |= values % 1 != 0
    if bad.any():
        raise bad_cells(path, column, bad, table[column], expected)
    return values.astype(np.int64 if integer else np.float64)


def read_metadata(root: Path, relative: Path, columns: Sequence[str], dataset: str, *,
                  n_folds: int | None = None, integers: Sequence[str] = (), numbers: Sequence[str] = (),
                  key: str | None = None) -> pd.DataFrame:
    """A dataset's metadata CSV ``root/relative``, checked before anything else reads it.

    Raises :class:`DatasetNotFoundError` if it is absent, and :class:`MetadataError` (naming the file, row, column,
    value and what was expected) if it is not a CSV, lacks one of ``columns``, has no rows, holds a non-integer in
    one of ``integers`` or a non-number in one of ``numbers`` (those columns are returned as int64 / float64), an
    empty or repeated ``key`` (the file-name column), or (given ``n_folds``) a ``fold`` outside 1..n_folds.
    """
    path = root / relative
    if not path.is_file():
        raise missing_dataset(dataset, root, f"metadata file {relative}")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MetadataError(f"{path}: not a readable CSV file ({reason}); expected a header with the columns "
                            f"{list(columns)}") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise MetadataError(f"{path}: lacks the column(s) {missing}; expected the columns {list(columns)}, found "
                            f"{list(table.columns)}")
    if table.empty:
        raise MetadataError(f"{path}: has a header but no rows")
    folds = f"a fold number in 1..{n_folds} ({dataset} has {n_folds} folds)"
    if n_folds is not None:
        table["fold"] = _numeric(table, "fold", path, folds, integer=True)
    for column in integers:
        table[column] = _numeric(table, column, path, "an integer", integer=True)
    for column in numbers:
        table[column] = _numeric(table, column, path, "a number", integer=False)
    if key is not None:
        names = table[key]
        empty = names.isna() | (names.astype(str).str.strip() == "")
        if empty.any():
            raise bad_cells(path, key, empty, names, "a file name")
        repeated = names.duplicated()
        if repeated.any():
            first = names[repeated].iloc[0]
            raise bad_cells(path, key, repeated, names,
                            f"each file listed once, but row {int(np.flatnonzero(names == first)[0]) + 1} "
                            f"already lists it")
    if n_folds is not None:
        outside = ~table["fold"].between(1, n_folds)
        if outside.any():
            raise bad_cells(path, "fold", outside, table["fold"], folds)
    return table


def class_names(targets: pd.Series, names: pd.Series, path: Path, n_classes: int | None = None) -> tuple[str, ...]:
    """Class names in index order from a metadata file's index column ``targets`` and name column ``names``.

    Raises :class:`MetadataError` if an index lies outside 0..n_classes-1 (the dataset's number of classes), a name
    is empty, an index carries two names or a name two indices, or the indices of the C named classes are not
    0..C-1.
    """
    index_column, name_column = str(targets.name), str(names.name)
    if n_classes is not None:
        outside = ~targets.between(0, n_classes - 1)
        if outside.any():
            raise bad_cells(path, index_column, outside, targets,
                            f"a class index in 0..{n_classes - 1} ({n_classes} classes)")
    empty = names.isna() | (names.astype(str).str.strip() == "")
    if empty.any():
        raise bad_cells(path, name_column, empty, names, "a class name")
    for column, other in ((index_column, name_column), (name_column, index_column)):
        pairs = pd.DataFrame({index_column: targets, name_column: names})
        spread = pairs.groupby(column)[other].nunique()
        if (spread > 1).any():
            value = spread[spread > 1].index[0]
            rows = pairs[pairs[column] == value].drop_duplicates(other)
            found = ", ".join(f"{_shown(v)} on row {i + 1}" for i, v in zip(rows.index, rows[other]))
            raise MetadataError(f"{path}: {column} {_shown(value)} must have one {other} throughout the file, "
                                f"found {found}")
    count = names.nunique()
    outside = ~targets.between(0, count - 1)
    if outside.any():
        raise bad_cells(path, index_column, outside, targets,
                        f"a class index in 0..{count - 1} (the file names {count} classes in column "
                        f"{name_column!r}, so their indices run 0..{count - 1})")
    pairs = pd.DataFrame({"target": targets, "name": names}).drop_duplicates().sort_values("target")
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
        raise MetadataError(f"clip ids must be unique; {duplicated.iloc[0]!r} appears more than once")
    return table
