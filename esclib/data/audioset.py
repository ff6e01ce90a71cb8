"""``audioset-mini``: an AudioSet-style multi-label corpus in the PANN authors' layout (Kong et al. 2020, study 003).

The layout of qiuqiangkong/audioset_tagging_cnn's downloads, with AudioSet's own segment lists::

    <root>/metadata/class_labels_indices.csv             index,mid,display_name (527 rows for AudioSet)
    <root>/metadata/balanced_train_segments.csv          AudioSet segment CSV (below)
    <root>/audios/balanced_train_segments/Y<YTID>.wav    10-s clips
    <root>/metadata/eval_segments.csv, <root>/audios/eval_segments/Y<YTID>.wav    (optional, fold 2)

A segment CSV starts with ``#`` comment lines (the last one ``# YTID, start_seconds, end_seconds,
positive_labels``); each row is ``YTID, start, end, "mid1,mid2,..."``. The ClipSet is multi-label: ``labels``
holds each clip's class indices (a sorted tuple), ``target`` is -1; source = the YouTube id.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from esclib.data.clips import UNLABELLED, ClipSet
from esclib.data.metadata import clip_table, missing_dataset, read_metadata

CLASS_LABELS = Path("metadata") / "class_labels_indices.csv"
#: segment lists read, in fold order; the first is required
SUBSETS = ("balanced_train_segments", "eval_segments")
CLIP_SECONDS = 10.0


def load(root: str | Path) -> ClipSet:
    """The corpus under ``root`` as a multi-label ClipSet (extra columns ``labels``, ``start``, ``end``, ``subset``)."""
    root = Path(root).expanduser().resolve()
    labels = read_metadata(root, CLASS_LABELS, ("index", "mid", "display_name"), "audioset-mini",
                           integers=("index",))
    if labels["index"].tolist() != list(range(len(labels))):
        raise ValueError(f"{root / CLASS_LABELS}: column 'index' must be 0..{len(labels) - 1} in order")
    index_of = dict(zip(labels["mid"], labels["index"]))
    present = [s for s in SUBSETS if (root / "metadata" / f"{s}.csv").is_file()]
    if SUBSETS[0] not in present:
        raise missing_dataset("audioset-mini", root, f"metadata file metadata/{SUBSETS[0]}.csv")
    rows = [(fold, subset, *segment) for fold, subset in enumerate(present, start=1)
            for segment in _segments(root / "metadata" / f"{subset}.csv", index_of)]
    fold, subset, ytid, start, end, clip_labels = zip(*rows)
    table = clip_table(
        clip_id=ytid, path=[str(root / "audios" / s / f"Y{y}.wav") for s, y in zip(subset, ytid)], fold=fold,
        target=np.full(len(rows), UNLABELLED), category=[""] * len(rows), source=ytid,
        extras=pd.DataFrame({"labels": list(clip_labels), "start": start, "end": end, "subset": subset}),
    )
    return ClipSet("audioset-mini", root, tuple(labels["display_name"]), len(present), CLIP_SECONDS, table,
                   multi_label=True)


def _segments(path: Path, index_of: dict[str, int]) -> list[tuple[str, float, float, tuple[int, ...]]]:
    """``(ytid, start, end, label indices)`` of each row of an AudioSet segment CSV."""
    segments = []
    with open(path, newline="") as handle:
        for line_number, row in enumerate(csv.reader(handle, skipinitialspace=True), start=1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) != 4:
                raise ValueError(f"{path}:{line_number}: expected 'YTID, start_seconds, end_seconds, "
                                 f"\"labels\"', got {row}")
            unknown = [mid for mid in row[3].split(",") if mid not in index_of]
            if unknown:
                raise ValueError(f"{path}:{line_number}: label(s) {unknown} are not in {CLASS_LABELS}")
            segments.append((row[0], float(row[1]), float(row[2]),
                             tuple(sorted(index_of[mid] for mid in row[3].split(",")))))
    if not segments:
        raise ValueError(f"{path}: has no segment rows")
    return segments
