"""The verify report of a dataset folder: clips per fold and per class, and every missing, truncated or
unreadable file (what ``esc data verify`` prints)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from esclib.data import registry
from esclib.data.audio import CHECK_LEVELS, Problem, find_problems
from esclib.data.clips import ClipSet
from esclib.data.metadata import DatasetNotFoundError


@dataclass
class VerifyReport:
    """What :func:`verify_dataset` found: the clips whose files passed, and every problem (file and reason)."""

    name: str
    root: Path
    clips: ClipSet | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the dataset loaded and no file has a problem."""
        return self.clips is not None and not self.problems

    def per_fold(self) -> pd.Series:
        """Good clips per fold."""
        return self.clips.table["fold"].value_counts().sort_index().rename("clips")

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
    except (DatasetNotFoundError, ValueError) as err:
        return VerifyReport(name, root, None, [Problem(str(root), str(err))])
    problems = find_problems(clips.paths, "exists")
    missing = {p.path for p in problems}
    if level != "exists":
        problems += find_problems([p for p in clips.paths if p not in missing], level, progress=progress)
    bad = {p.path for p in problems}
    return VerifyReport(name, clips.root, clips.subset([p not in bad for p in clips.paths]), problems)
