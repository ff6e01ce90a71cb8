"""ESC-50 and its ESC-10 subset (Piczak 2015), read from the official layout unchanged.

The layout of the GitHub repository ``karolpiczak/ESC-50`` (its master zip, unpacked)::

    <root>/audio/{fold}-{src_file}-{take}-{target}.wav    2,000 clips, 5 s, 44.1 kHz, mono
    <root>/meta/esc50.csv    filename, fold, target, category, esc10, src_file, take

Five official folds of 400 clips; 50 classes of 40 clips. ESC-10 is the 400 rows with ``esc10`` true (10 classes),
on the same five folds, its targets re-indexed 0..9 in ESC-50 target order (the original kept as
``esc50_target``). Used by studies 002, 003 and 004.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from esclib.data.clips import ClipSet
from esclib.data.metadata import bad_cells, class_names, clip_table, read_metadata

METADATA = Path("meta") / "esc50.csv"
COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
N_FOLDS = 5
N_CLASSES = 50
CLIP_SECONDS = 5.0


def load(root: str | Path) -> ClipSet:
    """ESC-50 under ``root`` as a ClipSet (source = ``src_file``; extra columns ``esc10``, ``src_file``, ``take``)."""
    root = Path(root).expanduser().resolve()
    meta = read_metadata(root, METADATA, COLUMNS, "esc50", n_folds=N_FOLDS, integers=("target",), key="filename")
    table = clip_table(
        clip_id=meta["filename"], path=[str(root / "audio" / f) for f in meta["filename"]], fold=meta["fold"],
        target=meta["target"], category=meta["category"], source=meta["src_file"].astype(str),
        extras=pd.DataFrame({"esc10": _flags(meta["esc10"], root / METADATA), "src_file": meta["src_file"],
                             "take": meta["take"].astype(str)}),
    )
    classes = class_names(meta["target"], meta["category"], root / METADATA, N_CLASSES)
    return ClipSet("esc50", root, classes, N_FOLDS, CLIP_SECONDS, table)


def load_esc10(root: str | Path) -> ClipSet:
    """ESC-10: ESC-50's ``esc10`` rows on ESC-50's folds, targets re-indexed 0..9 (``esc50_target`` kept)."""
    esc50 = load(root)
    chosen = esc50.subset(esc50.table["esc10"].to_numpy())
    kept = np.unique(chosen.targets)
    table = chosen.table.assign(esc50_target=chosen.targets, target=np.searchsorted(kept, chosen.targets))
    return replace(chosen, name="esc10", classes=tuple(esc50.classes[t] for t in kept), table=table)


def _flags(values: pd.Series, path: Path) -> np.ndarray:
    """The ``esc10`` column as booleans (the CSV writes True/False)."""
    text = values.astype(str).str.strip().str.lower()
    unknown = ~text.isin(["true", "false"])
    if unknown.any():
        raise bad_cells(path, "esc10", unknown, values, "True or False")
    return (text == "true").to_numpy()
