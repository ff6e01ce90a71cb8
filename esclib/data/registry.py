"""The dataset registry: each name's loader, default folder, official download (URL, checksum) and how to get it
by hand.

Names: ``esc50``, ``esc10`` (inside ESC-50), ``us8k``, ``escus``, ``dcase2013`` and ``audioset-mini``. The ESC-50
and UrbanSound8K downloads are soundata's (its ``REMOTES``: URL, md5), ESC-US's files and md5s are listed by
Harvard Dataverse's API at download time, DCASE 2013's come from dcase_util's dataset definitions.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from esclib import paths
from esclib.data import audioset, dcase2013, esc50, escus, us8k
from esclib.data.audio import CHECK_LEVELS, Problem, find_problems
from esclib.data.clips import ClipSet

ON_ERROR = ("raise", "skip")
#: ESC-US on Harvard Dataverse
ESCUS_DOI = "doi:10.7910/DVN/YDEPUT"


@dataclass(frozen=True)
class Remote:
    """One file of a dataset's official download."""

    url: str
    filename: str
    md5: str | None = None
    size: int | None = None
    #: unpack the archive into the dataset folder (else keep the file as it is)
    unpack: bool = True
    #: the archive's top-level folder whose contents go straight into the target folder
    strip: str | None = None
    #: sub-folder of the dataset folder to unpack into ("" = the dataset folder itself)
    into: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """What esclib knows about one dataset name."""

    name: str
    title: str
    #: default folder under :func:`esclib.paths.data_dir`
    folder: str
    loader: Callable[..., ClipSet]
    homepage: str
    license: str
    download_size: str
    #: how to get it by hand; ``{root}`` is replaced by the dataset folder
    manual: str
    #: the official download's files (may query the network); None when there is nothing to download
    remotes: Callable[[], list[Remote]] | None
    #: official folds (0: none)
    n_folds: int = 0


def _soundata_remote(module: str, strip: str) -> Callable[[], list[Remote]]:
    """The remote of a soundata dataset module (its ``REMOTES["all"]``: URL, file name, md5)."""
    def remotes() -> list[Remote]:
        remote = importlib.import_module(f"soundata.datasets.{module}").REMOTES["all"]
        return [Remote(remote.url, remote.filename, remote.checksum, strip=strip)]
    return remotes


def _dataverse_remotes() -> list[Remote]:
    from esclib.data.download import dataverse_remotes

    return dataverse_remotes(ESCUS_DOI)


def _dcase2013_remotes() -> list[Remote]:
    base = "https://archive.org/download/dcase2013_scene_classification"
    return [Remote(f"{base}/scenes_stereo.zip", "scenes_stereo.zip", "abdefde136d84de33b0f20a0f13a6b97", 361748263,
                   strip="scenes_stereo", into="scenes_stereo"),
            Remote(f"{base}_testset/scenes_stereo_testset.zip", "scenes_stereo_testset.zip", None, 371994727,
                   strip="scenes_stereo_testset", into="scenes_stereo_testset")]


_ESC50_MANUAL = ("download https://github.com/karolpiczak/ESC-50/archive/master.zip and unzip it so that "
                 "{root}/meta/esc50.csv and {root}/audio/*.wav exist")
SPECS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    DatasetSpec("esc50", "ESC-50 (Piczak 2015)", "ESC-50", esc50.load, "https://github.com/karolpiczak/ESC-50",
                "CC BY-NC 3.0", "about 600 MB", _ESC50_MANUAL, _soundata_remote("esc50", "ESC-50-master"), 5),
    DatasetSpec("esc10", "ESC-10, the 10-class subset of ESC-50", "ESC-50", esc50.load_esc10,
                "https://github.com/karolpiczak/ESC-50", "CC BY-NC 3.0 (ESC-10 clips: CC BY)", "about 600 MB",
                _ESC50_MANUAL, _soundata_remote("esc50", "ESC-50-master"), 5),
    DatasetSpec("us8k", "UrbanSound8K (Salamon, Jacoby, Bello 2014)", "UrbanSound8K", us8k.load,
                "https://urbansounddataset.weebly.com/urbansound8k.html", "CC BY-NC", "about 6 GB",
                "download UrbanSound8K.tar.gz from https://zenodo.org/record/1203745 and unpack it so that "
                "{root}/metadata/UrbanSound8K.csv and {root}/audio/fold1..fold10/*.wav exist",
                _soundata_remote("urbansound8k", "UrbanSound8K"), 10),
    DatasetSpec("escus", "ESC-US, unlabelled (Piczak 2015)", "ESC-US", escus.load,
                "https://doi.org/10.7910/DVN/YDEPUT", "CC BY-NC 3.0", "about 28 GB (25 parts)",
                "download the 25 parts of ESC-US from https://doi.org/10.7910/DVN/YDEPUT (Harvard Dataverse) and "
                "unpack each so that {root}/01/*.ogg ... {root}/25/*.ogg exist", _dataverse_remotes),
    DatasetSpec("dcase2013", "DCASE 2013 scene classification (Stowell et al. 2015)", "DCASE2013-SCD",
                dcase2013.load, "https://dcase.community/challenge2013/task-acoustic-scene-classification",
                "see the challenge page", "about 730 MB (2 zips)",
                "download scenes_stereo.zip from https://archive.org/details/dcase2013_scene_classification and "
                "scenes_stereo_testset.zip from https://archive.org/details/dcase2013_scene_classification_testset "
                "and unzip both into {root} so that {root}/scenes_stereo/*.wav and "
                "{root}/scenes_stereo_testset/*.wav exist", _dcase2013_remotes, 2),
    DatasetSpec("audioset-mini", "a small AudioSet-style corpus in the PANN layout", "audioset-mini", audioset.load,
                "https://research.google.com/audioset/", "CC BY 4.0 (labels)", "-",
                "generate it with `esc data synth audioset-mini --root {root}`, or place AudioSet clips in the PANN "
                "authors' layout: {root}/metadata/balanced_train_segments.csv, "
                "{root}/metadata/class_labels_indices.csv, {root}/audios/balanced_train_segments/Y<YTID>.wav", None),
)}


class DataFileError(RuntimeError):
    """Files of a dataset are missing or unreadable; ``problems`` lists each (path and reason)."""

    def __init__(self, name: str, root: Path, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{name}: {len(problems)} file(s) under {root} are missing or unreadable:\n{shown}{more}\n"
                         f"Load with on_error='skip' to leave them out, or run `esc data verify {name} --root {root}`.")


def names() -> tuple[str, ...]:
    """The registered dataset names."""
    return tuple(SPECS)


def spec(name: str) -> DatasetSpec:
    """The registry entry of ``name``; raises naming the known names otherwise."""
    if name not in SPECS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {list(SPECS)}")
    return SPECS[name]


def default_root(name: str) -> Path:
    """Where ``name`` lives unless told otherwise: ``data_dir()/<folder>`` (ESC-10 shares ESC-50's folder)."""
    return paths.data_dir() / spec(name).folder


def load(name: str, root: str | Path | None = None, *, on_error: str = "raise", check: str = "exists",
         **options: object) -> ClipSet:
    """Dataset ``name`` under ``root`` (default :func:`default_root`) as a :class:`ClipSet`.

    Every clip's file is checked at level ``check`` (``exists``; ``header``: readable, complete, non-empty audio;
    ``decode``: the whole file decodes). Problems raise :class:`DataFileError` naming each file, or with
    ``on_error="skip"`` those clips are left out and listed in a warning. ``options`` go to the dataset's loader
    (e.g. ``parts=["01", ...]`` for ``escus``).
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    if check not in CHECK_LEVELS:
        raise ValueError(f"check must be one of {CHECK_LEVELS}, got {check!r}")
    root = Path(root).expanduser() if root is not None else default_root(name)
    clips = spec(name).loader(root, **options)
    problems = find_problems(clips.paths, check, progress=check != "exists")
    if not problems:
        return clips
    if on_error == "raise":
        raise DataFileError(name, clips.root, problems)
    bad = {p.path for p in problems}
    warnings.warn(f"{name}: left out {len(problems)} clip(s) with problems: "
                  + "; ".join(str(p) for p in problems[:20]) + (" ..." if len(problems) > 20 else ""), stacklevel=2)
    return clips.subset(~np.isin(np.asarray(clips.paths), list(bad)))
