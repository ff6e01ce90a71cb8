"""The verify report of a dataset folder: clips per fold and per class, every missing, truncated or unreadable
file, and every file in the clip folders that the dataset does not list (what ``esc data verify`` prints).

A dataset that cannot be read at all (absent, or its metadata malformed) gives a report whose ``error`` names the
file, row, column and value and what was expected.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from esclib.data import dcase2013, esc50, registry, us8k
from esclib.data.audio import CHECK_LEVELS, Problem, find_problems
from esclib.data.clips import ClipSet
from esclib.data.metadata import DatasetNotFoundError


@dataclass(frozen=True)
class ClipFolders:
    """The folders of a dataset that hold nothing but its clips, and what lists them."""

    #: folders under the dataset root
    folders: tuple[str, ...]
    #: what an unlisted file is, in words
    reason: str
    #: the dataset whose clips these folders hold, when it is another one (ESC-10 lives in ESC-50's folder)
    listed_by: str | None = None


#: where each dataset keeps its clips; ESC-US has no listing (every audio file under its root is a clip)
CLIP_FOLDERS = {
    "esc50": ClipFolders(("audio",), f"not listed in {esc50.METADATA.as_posix()}"),
    "esc10": ClipFolders(("audio",), f"not listed in {esc50.METADATA.as_posix()}", "esc50"),
    "us8k": ClipFolders(("audio",), f"not listed in {us8k.METADATA.as_posix()}"),
    "dcase2013": ClipFolders(tuple(folder for folder, _, _ in dcase2013.SETS),
                             "not a clip of the dataset (its clips are <class><NN>.wav files)"),
    "audioset-mini": ClipFolders(("audios",), "not listed in metadata/<subset>.csv"),
}


@dataclass
class VerifyReport:
    """What :func:`verify_dataset` found: the clips whose files passed, and every problem (file and reason)."""

    name: str
    root: Path
    clips: ClipSet | None
    problems: list[Problem] = field(default_factory=list)
    #: why the dataset could not be read at all (then ``clips`` is None)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the dataset loaded and no file has a problem."""
        return self.clips is not None and not self.problems

    def per_fold(self) -> pd.Series:
        """Good clips per fold (every official fold listed, 0 where none passed)."""
        counts = self.clips.table["fold"].value_counts().sort_index().rename("clips")
        if self.clips.n_folds:
            counts = counts.reindex(range(1, self.clips.n_folds + 1), fill_value=0).rename_axis("fold")
        return counts

    def per_class(self) -> pd.Series:
        """Good clips per class (per label for a multi-label corpus; empty when unlabelled)."""
        if self.clips.multi_label:
            counts = Counter(label for labels in self.clips.table["labels"] for label in labels)
            return pd.Series({self.clips.classes[k]: counts[k] for k in sorted(counts)}, name="clips", dtype=int)
        labelled = self.clips.table[self.clips.table["target"] >= 0]
        return labelled["category"].value_counts().reindex(list(self.clips.classes), fill_value=0).rename("clips")

    def format(self) -> str:
        """The report as text."""
        lines = [f"{self.name} at {self.root}"]
        if self.error is not None:
            lines.append(f"cannot read the dataset: {self.error}")
        if self.clips is not None:
            lines.append(f"{len(self.clips)} good clips")
            lines += ["clips per fold:", self.per_fold().to_string()]
            per_class = self.per_class()
            if not per_class.empty:
                lines += ["clips per class:", per_class.to_string()]
        lines.append(f"{len(self.problems)} problem(s)" + (":" if self.problems else ""))
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


def verify_dataset(name: str, root: str | Path | None = None, *, level: str = "decode", progress: bool = True
           ) -> VerifyReport:
    """Load dataset ``name`` under ``root`` and check every clip's file at ``level`` (default: decode it all)."""
    if level not in CHECK_LEVELS:
        raise ValueError(f"level must be one of {CHECK_LEVELS}, got {level!r}")
    root = Path(root).expanduser() if root is not None else registry.default_root(name)
    try:
        clips = registry.spec(name).loader(root)
        unlisted = unlisted_files(name, clips)
    except (DatasetNotFoundError, ValueError) as err:
        return VerifyReport(name, root, None, error=str(err))
    problems = find_problems(clips.paths, "exists")
    missing = {p.path for p in problems}
    if level != "exists":
        problems += find_problems([p for p in clips.paths if p not in missing], level, progress=progress)
    bad = {p.path for p in problems}
    return VerifyReport(name, clips.root, clips.subset([p not in bad for p in clips.paths]), problems + unlisted)


def unlisted_files(name: str, clips: ClipSet) -> list[Problem]:
    """Every file in the clip folders of dataset ``name`` (:data:`CLIP_FOLDERS`) that is not one of its clips
    (hidden files aside); a file whose name the dataset lists at another path says where."""
    if name not in CLIP_FOLDERS:
        return []
    spec = CLIP_FOLDERS[name]
    listed = clips if spec.listed_by is None else registry.spec(spec.listed_by).loader(clips.root)
    paths = {os.path.normpath(p) for p in listed.paths}
    by_name: dict[str, str] = {}
    for path in sorted(paths):
        by_name.setdefault(os.path.basename(path), os.path.relpath(path, clips.root))
    problems = []
    for folder in spec.folders:
        for parent, folders, files in os.walk(clips.root / folder):
            folders[:] = sorted(f for f in folders if not f.startswith("."))
            for file in sorted(f for f in files if not f.startswith(".")):
                path = os.path.normpath(os.path.join(parent, file))
                if path in paths:
                    continue
                elsewhere = f" (it lists {file} at {by_name[file]})" if file in by_name else ""
                problems.append(Problem(path, spec.reason + elsewhere))
    return problems
