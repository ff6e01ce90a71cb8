"""The one table every chapter works with: a dataset's clips, their folds, labels and source recordings.

A :class:`ClipSet` is what every loader in :mod:`esclib.data` returns (real or synthetic data alike), what the split
helpers in :mod:`esclib.data.splits` cut, and what the waveform cache and the torch datasets read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

#: columns every ClipSet table has (loaders may add the dataset's own columns after these)
CLIP_COLUMNS: tuple[str, ...] = ("clip_id", "path", "fold", "target", "category", "source")

#: ``target`` of a clip without a label (ESC-US, the unlabelled part of a split)
UNLABELLED: int = -1


@dataclass(frozen=True)
class ClipSet:
    """A dataset's clips as one table, with what is needed to read and label them.

    ``table`` has one row per clip and the columns :data:`CLIP_COLUMNS`:

    - ``clip_id`` (str): unique within the dataset, e.g. the file name;
    - ``path`` (str): absolute path of the audio file;
    - ``fold`` (int): official fold, 1-based; 0 for datasets without folds (ESC-US);
    - ``target`` (int): class index into ``classes``; :data:`UNLABELLED` (-1) when there is no label;
    - ``category`` (str): class name ("" when unlabelled);
    - ``source`` (str): the source recording the clip was cut from (ESC-50 ``src_file``, UrbanSound8K ``fsID``);
      clips sharing a source must never sit on both sides of a train/test split.

    Multi-label corpora (``multi_label=True``) keep their label indices in a ``labels`` column (a tuple of ints per
    clip) and ``target`` is -1.
    """

    name: str
    root: Path
    classes: tuple[str, ...]
    n_folds: int
    clip_seconds: float
    table: pd.DataFrame
    multi_label: bool = False

    def __post_init__(self) -> None:
        missing = [c for c in CLIP_COLUMNS if c not in self.table.columns]
        if missing:
            raise ValueError(f"ClipSet {self.name!r}: table lacks the column(s) {missing}; expected {CLIP_COLUMNS}")

    def __len__(self) -> int:
        return len(self.table)

    @property
    def num_classes(self) -> int:
        """Number of classes (the width of a classifier's output)."""
        return len(self.classes)

    @property
    def targets(self) -> np.ndarray:
        """Class index of each clip (int64; -1 where unlabelled)."""
        return self.table["target"].to_numpy(dtype=np.int64)

    @property
    def paths(self) -> list[str]:
        """Audio file path of each clip, in table order."""
        return self.table["path"].tolist()

    @property
    def folds(self) -> np.ndarray:
        """Fold of each clip (int64)."""
        return self.table["fold"].to_numpy(dtype=np.int64)

    def subset(self, rows: np.ndarray | pd.Series | Sequence[int] | Sequence[bool]) -> "ClipSet":
        """The clips selected by a boolean mask or by positional indices, as a new ClipSet (index reset)."""
        rows = np.asarray(rows)
        table = self.table[rows] if rows.dtype == bool else self.table.iloc[rows]
        return replace(self, table=table.reset_index(drop=True))

    def unlabelled(self) -> "ClipSet":
        """The same clips with their labels hidden (``target`` = -1, ``category`` = "").

        The true class stays in a ``hidden_target`` column, for diagnostics only (e.g. pseudo-label accuracy).
        """
        table = self.table.assign(hidden_target=self.table["target"], target=UNLABELLED, category="")
        return replace(self, table=table)

    def describe(self) -> pd.DataFrame:
        """Clips per fold (rows) and class (columns), with totals."""
        return pd.crosstab(self.table["fold"], self.table["category"], margins=True, margins_name="total")
