"""UrbanSound8K (Salamon et al. 2014), read from the official layout unchanged.

The layout of ``UrbanSound8K.tar.gz`` (Zenodo record 1203745), unpacked::

    <root>/audio/fold{1..10}/{fsID}-{classID}-{occurrence}-{slice}.wav    8,732 slices of at most 4 s
    <root>/metadata/UrbanSound8K.csv    slice_file_name, fsID, start, end, salience, fold, classID, class

Ten official folds (873, 888, 925, 990, 936, 823, 838, 806, 816, 837 clips), ten classes. The clips keep their
Freesound sources' sample rates (8-96 kHz), channel counts and sample formats. Source = ``fsID``: five source
recordings (fsID 77751, 106905, 132016, 176638, 180937) appear under two classes in two folds; the split helpers
keep them out of training whenever one of their folds is the test fold. Used by studies 000, 001 and 004.
"""

from __future__ import annotations

from pathlib import Path

from esclib.data.clips import ClipSet
from esclib.data.metadata import class_names, clip_table, read_metadata

METADATA = Path("metadata") / "UrbanSound8K.csv"
COLUMNS = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class")
N_FOLDS = 10
N_CLASSES = 10
CLIP_SECONDS = 4.0


def load(root: str | Path) -> ClipSet:
    """UrbanSound8K under ``root`` as a ClipSet (source = ``fsID``; extra columns ``fsID, start, end, salience``)."""
    root = Path(root).expanduser().resolve()
    meta = read_metadata(root, METADATA, COLUMNS, "us8k", n_folds=N_FOLDS, integers=("classID", "fsID", "salience"),
                         numbers=("start", "end"), key="slice_file_name")
    table = clip_table(
        clip_id=meta["slice_file_name"],
        path=[str(root / "audio" / f"fold{fold}" / name) for fold, name in zip(meta["fold"], meta["slice_file_name"])],
        fold=meta["fold"], target=meta["classID"], category=meta["class"], source=meta["fsID"].astype(str),
        extras=meta[["fsID", "start", "end", "salience"]],
    )
    classes = class_names(meta["classID"], meta["class"], root / METADATA, N_CLASSES)
    return ClipSet("us8k", root, classes, N_FOLDS, CLIP_SECONDS, table)
