"""ESC-US, the unlabelled companion of ESC-50 (Piczak 2015; Harvard Dataverse doi:10.7910/DVN/YDEPUT).

250,000 clips of 5 s (44.1 kHz mono Ogg Vorbis) in 25 folders of 10,000, one per archive part, named
``ID-Freesound_file_ID-slice_start_time-slice_end_time.ogg`` (the dataset's README)::

    <root>/01/<ID>-<freesound id>-<start>-<end>.ogg
    ...
    <root>/25/...
    <root>/ESC-US.csv    details of the Freesound source recordings (not needed to load the clips)

No labels and no folds (``fold`` 0, ``target`` -1). Source = the Freesound recording id of the file name, so a leak
check can compare ESC-US clips with ESC-50 or UrbanSound8K clips cut from the same recording. Study 002
pre-trains on parts 01-05 (``load(root, parts=["01", ..., "05"])``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from esclib.data.clips import UNLABELLED, ClipSet
from esclib.data.metadata import clip_table, missing_dataset

#: audio files read as clips (the release is Ogg Vorbis; WAV/FLAC copies of it load the same way)
SUFFIXES = (".ogg", ".wav", ".flac")
CLIP_SECONDS = 5.0
_NAME = re.compile(r"^(?P<id>[^-]+)-(?P<freesound>\d+)-(?P<start>\d+(?:\.\d+)?)-(?P<end>\d+(?:\.\d+)?)$")


def load(root: str | Path, parts: Sequence[str] | None = None) -> ClipSet:
    """ESC-US clips under ``root`` (all parts, or only the folders named in ``parts``), in path order.

    Extra columns: ``part`` (the folder), ``escus_id``, ``start``, ``end`` (from the file name; NaN when a name
    does not follow the scheme, whose source is then its file stem).
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise missing_dataset("escus", root, "the dataset folder")
    files = sorted(_audio_files(root))
    if parts is not None:
        wanted = {str(p) for p in parts}
        files = [f for f in files if Path(f).relative_to(root).parts[0] in wanted]
    if not files:
        raise missing_dataset("escus", root, f"audio clips ({'/'.join(SUFFIXES)})"
                                             + (f" in parts {sorted(parts)}" if parts is not None else ""))
    names = [_NAME.match(Path(f).stem) for f in files]
    relative = [Path(f).relative_to(root) for f in files]
    extras = pd.DataFrame({
        "part": [r.parts[0] if len(r.parts) > 1 else "" for r in relative],
        "escus_id": [m["id"] if m else "" for m in names],
        "start": [float(m["start"]) if m else np.nan for m in names],
        "end": [float(m["end"]) if m else np.nan for m in names],
    })
    table = clip_table(
        clip_id=[r.as_posix() for r in relative], path=files, fold=np.zeros(len(files)),
        target=np.full(len(files), UNLABELLED), category=[""] * len(files),
        source=[m["freesound"] if m else Path(f).stem for m, f in zip(names, files)], extras=extras,
    )
    return ClipSet("escus", root, (), 0, CLIP_SECONDS, table)


def _audio_files(root: Path) -> list[str]:
    return [os.path.join(folder, name) for folder, _, names in os.walk(root) for name in names
            if name.lower().endswith(SUFFIXES) and not name.startswith(".")]
