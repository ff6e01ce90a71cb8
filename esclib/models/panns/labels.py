"""The 527 AudioSet class names in the output order of the released PANN checkpoints (Kong et al. 2020, study 003).

From the AudioSet ontology's ``class_labels_indices.csv`` (CC BY 4.0), shipped as
``esclib/resources/audioset_labels.csv`` (columns ``index, mid, display_name``).
"""

from __future__ import annotations

import csv
from functools import cache
from importlib.resources import files

AUDIOSET_CLASSES = 527


@cache
def _labels() -> tuple[str, ...]:
    with files("esclib").joinpath("resources/audioset_labels.csv").open(encoding="utf-8", newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: int(row["index"]))
    if len(rows) != AUDIOSET_CLASSES:
        raise ValueError(f"esclib/resources/audioset_labels.csv: expected {AUDIOSET_CLASSES} labels, got {len(rows)}")
    return tuple(row["display_name"] for row in rows)


def audioset_labels() -> list[str]:
    """The AudioSet display names, index ``i`` = output ``i`` of a released PANN (e.g. 0 = "Speech")."""
    return list(_labels())
