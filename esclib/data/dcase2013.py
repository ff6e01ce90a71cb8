"""DCASE 2013 scene classification (SCD; Stowell, Giannoulis, Benetos, Lagrange, Plumbley 2015).

Ten scene classes, 30-s binaural recordings (44.1 kHz, 16-bit stereo) from London, in two released sets of 10
clips per class, each file named ``<class><NN>.wav`` (NN two non-consecutive digits). The layout is the two
archive.org zips unpacked side by side::

    <root>/scenes_stereo/bus01.wav ...            public development set   (fold 1, 100 clips)
    <root>/scenes_stereo_testset/bus01.wav ...    private train/test set   (fold 2, 100 clips)

Study 004 uses the 200 clips as two folds (test on one, train on the other; no validation fold). Each recording is
its own source (``<set>/<name>``): a development ``bus01`` and a test ``bus01`` are different recordings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from esclib.data.clips import ClipSet
from esclib.data.metadata import clip_table, missing_dataset

CLASSES = ("bus", "busystreet", "office", "openairmarket", "park", "quietstreet", "restaurant", "supermarket",
           "tube", "tubestation")
#: (folder, fold, set name) of each released set
SETS = (("scenes_stereo", 1, "development"), ("scenes_stereo_testset", 2, "test"))
CLIP_SECONDS = 30.0
_NAME = re.compile(r"^(?P<scene>[a-z]+)(?P<number>\d{2})\.wav$")


def load(root: str | Path) -> ClipSet:
    """Both DCASE 2013 SCD sets under ``root`` as one ClipSet of two folds (extra column ``set``)."""
    root = Path(root).expanduser().resolve()
    rows = []
    for folder, fold, set_name in SETS:
        if not (root / folder).is_dir():
            raise missing_dataset("dcase2013", root, f"the {set_name} set folder {folder}/")
        for path in sorted((root / folder).glob("*.wav")):
            match = _NAME.match(path.name)
            if match is None or match["scene"] not in CLASSES:
                raise ValueError(f"{path}: expected a file name <class><NN>.wav with a class of {CLASSES}")
            rows.append((f"{folder}/{path.name}", str(path), fold, CLASSES.index(match["scene"]), match["scene"],
                         f"{folder}/{path.stem}", set_name))
        if not any(row[2] == fold for row in rows):
            raise missing_dataset("dcase2013", root, f"clips (*.wav) in {folder}/")
    clip_id, path, fold, target, category, source, set_names = zip(*rows)
    table = clip_table(clip_id=clip_id, path=path, fold=fold, target=target, category=category, source=source,
                       extras=pd.DataFrame({"set": set_names}))
    return ClipSet("dcase2013", root, CLASSES, len(SETS), CLIP_SECONDS, table)
