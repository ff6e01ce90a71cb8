"""Official folds, labelled subsets and the leak guard (the book's appendix *Protocols and decisions*, book/protocols.md).

- :func:`fold_split`: test fold k, validation fold k+1 (mod n), training = the other folds -- the 1:1:8 of study
  000 on UrbanSound8K, 1:1:3 on ESC-50/ESC-10. DCASE 2013's two folds give train/test without validation.
- :func:`random_split`: the seeded random split of study 002 as its code made it (``np.random.seed(1337)``, a
  shuffle of the file list; 1280/320/400 on ESC-50), marked ``kind="random"`` so that no table mistakes it for the
  official folds.
- :func:`labelled_subset`: class-balanced labelled clips drawn from the training folds only, by fraction (10 %,
  1 %) or by count per class (few-shot curves); the rest of the training folds is the unlabelled set.
- :func:`check_no_leak`: raises if a training set holds a test clip or a clip cut from the same source recording
  as a test clip.

The guard keys on the source recording alone, not on (source, class): UrbanSound8K has five recordings (and ESC-50
four) whose slices sit under two classes in two folds; when one of those folds is the test fold, the recording's
slices in the other folds are left out of training and validation (``FoldSplit.excluded`` lists them). Split
tables carry a ``split`` column (train / val / test), which :func:`assert_trainable` reads to refuse test clips.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import numpy as np

from esclib.data.clips import ClipSet
from esclib.digest import digest

#: column that split tables carry: which side of the split each clip is on
SPLIT_COLUMN = "split"


class LeakError(ValueError):
    """Training data would contain test clips or clips of a test clip's source recording."""


@dataclass(frozen=True)
class FoldSplit:
    """One train / validation / test split of a dataset.

    ``kind`` is ``"official"`` (the dataset's folds; ``test_fold``/``val_fold`` set, ``val_fold`` 0 when there is no
    validation fold) or ``"random"`` (a seeded random split; both folds None). ``excluded`` holds the clip ids left
    out of train/val because their source recording also has clips in the test (or validation) fold.
    """

    train: ClipSet
    val: ClipSet
    test: ClipSet
    test_fold: int | None
    val_fold: int | None
    kind: str = "official"
    excluded: tuple[str, ...] = ()
    seed: int | None = None

    def describe(self) -> str:
        """One line: kind, folds and sizes."""
        where = (f"test fold {self.test_fold}, validation fold {self.val_fold or 'none'}" if self.kind == "official"
                 else f"random split, seed {self.seed}")
        return (f"{self.test.name}: {where}; train {len(self.train)}, val {len(self.val)}, test {len(self.test)}"
                + (f", {len(self.excluded)} clips left out (source shared with a held-out fold)"
                   if self.excluded else ""))

    def record(self, **parts: ClipSet) -> "SplitRecord":
        """The :class:`SplitRecord` of this split: ``train``, ``val``, ``test`` plus ``parts`` (e.g. the
        ``labelled`` / ``unlabelled`` cut of the training clips a run actually used)."""
        return SplitRecord.of(self.test.name, self.kind, self.test_fold,
                              **{"train": self.train, "val": self.val, "test": self.test, **parts})


@dataclass(frozen=True)
class SplitRecord:
    """The exact clips a run used, by role (``train``, ``val``, ``test``, ``labelled``, ``unlabelled``, ``pool``
    ...), as clip ids in the order the run read them -- stored with every result (as USB persists its label
    indices) so that a number can be traced to its clips and two runs can be checked to share a split.

    ``digest`` depends on the dataset's name and the clip ids of every role, nothing else.
    """

    dataset: str
    kind: str
    fold: int | None
    parts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, dataset: str, kind: str, fold: int | None = None, **parts: ClipSet) -> "SplitRecord":
        """The record of ``parts`` (role -> ClipSet) of ``dataset``."""
        return cls(dataset, kind, fold, {role: tuple(map(str, clips.table["clip_id"])) for role, clips in
                                         parts.items()})

    @property
    def digest(self) -> str:
        """Digest of the dataset name and the clip ids of every role."""
        return digest({"dataset": self.dataset, "parts": dict(self.parts)}, 16)

    def sizes(self) -> dict[str, int]:
        """Clips per role."""
        return {role: len(ids) for role, ids in self.parts.items()}

    def to_json(self) -> dict:
        """The record as JSON (what the results store writes to ``splits/<digest>.json``)."""
        return {"digest": self.digest, "dataset": self.dataset, "kind": self.kind, "fold": self.fold,
                "sizes": self.sizes(), "parts": {role: list(ids) for role, ids in self.parts.items()}}


def _marked(clips: ClipSet, rows: np.ndarray, side: str) -> ClipSet:
    part = clips.subset(rows)
    return replace(part, table=part.table.assign(**{SPLIT_COLUMN: side}))


def fold_split(clips: ClipSet, test_fold: int, val_fold: int | None = None) -> FoldSplit:
    """Test on ``test_fold``, validate on ``val_fold`` (default ``test_fold % n_folds + 1``; 0 = none, the default
    for two folds), train on the rest.

    Clips whose source recording has clips in the test fold are left out of train and val; clips whose source has
    clips in the validation fold are left out of train. The result passes :func:`check_no_leak`.
    """
    n = clips.n_folds
    if n < 2:
        raise ValueError(f"{clips.name} has no official folds (n_folds={n}); use random_split for it")
    if test_fold not in range(1, n + 1):
        raise ValueError(f"test_fold must be in 1..{n} for {clips.name}, got {test_fold}")
    if val_fold is None:
        val_fold = test_fold % n + 1 if n >= 3 else 0
    if val_fold not in range(0, n + 1) or val_fold == test_fold:
        raise ValueError(f"val_fold must be 0 (none) or a fold of 1..{n} other than the test fold {test_fold}, "
                         f"got {val_fold}")
    folds, sources = clips.folds, clips.table["source"].to_numpy()
    is_test = folds == test_fold
    in_test_source = np.isin(sources, sources[is_test])
    is_val = (folds == val_fold) & ~in_test_source
    is_train = ~is_test & (folds != val_fold) & ~in_test_source & ~np.isin(sources, sources[is_val])
    excluded = clips.table["clip_id"][~is_test & ~is_val & ~is_train & ((folds != val_fold) | in_test_source)]
    split = FoldSplit(_marked(clips, is_train, "train"), _marked(clips, is_val, "val"),
                      _marked(clips, is_test, "test"), test_fold, val_fold, "official", tuple(excluded))
    check_no_leak(split.test, split.train, split.val)
    return split


def random_split(clips: ClipSet, sizes: Sequence[int | None], seed: int,
                 order: Sequence[int] | np.ndarray | None = None) -> FoldSplit:
    """A seeded random split ``sizes = (train, val, test)`` (train None = all the rest), made as study 002's code
    made it (its ``DataHandler``): ``np.random.seed(seed)``, then ``numpy.random.shuffle`` of the file list, then
    the first ``test`` files to test, the next ``val`` to validation, then ``train`` to training.

    ``order``: the rows of ``clips`` in the order of the file list before the shuffle (default: the row order);
    the shuffle is numpy's legacy Mersenne-Twister one (``RandomState``), whose stream numpy keeps unchanged, so
    the same list and seed give the study's split. Clip-level, as the study did: sources may cross the split, which
    is why the result is labelled ``kind="random"`` and never passes for an official-fold result.
    """
    n_train, n_val, n_test = sizes
    n_train = len(clips) - n_val - n_test if n_train is None else n_train
    if min(n_train, n_val, n_test) < 0 or n_train + n_val + n_test > len(clips):
        raise ValueError(f"sizes (train, val, test) = {tuple(sizes)} do not fit the {len(clips)} clips of "
                         f"{clips.name}")
    files = np.arange(len(clips)) if order is None else np.asarray(order, dtype=int)
    if sorted(files.tolist()) != list(range(len(clips))):
        raise ValueError(f"order must list every row of {clips.name} (0..{len(clips) - 1}) once")
    files = files.tolist()
    np.random.RandomState(seed).shuffle(files)
    test, val = files[:n_test], files[n_test:n_test + n_val]
    train = files[n_test + n_val:n_test + n_val + n_train]
    return FoldSplit(_marked(clips, np.sort(train), "train"), _marked(clips, np.sort(val), "val"),
                     _marked(clips, np.sort(test), "test"), None, None, "random", (), seed)


def labelled_subset(train: ClipSet, *, fraction: float | None = None, per_class: int | None = None,
                    seed: int = 0) -> tuple[ClipSet, ClipSet]:
    """Class-balanced labelled clips from ``train`` and the rest as unlabelled clips (labels hidden).

    ``fraction`` of the clips spread evenly over the classes (per-class counts differ by at most one; the classes
    that get one more are drawn from the seed), or ``per_class`` clips of every class. Each class's clips are
    ranked by a permutation drawn from ``(seed, class)``, so with one seed a smaller subset is contained in a larger
    one (nested few-shot curves). Returns ``(labelled, unlabelled)``; ``unlabelled`` keeps ``hidden_target``.
    """
    if (fraction is None) == (per_class is None):
        raise ValueError("give exactly one of fraction and per_class")
    if train.multi_label or (train.targets < 0).any():
        raise ValueError(f"{train.name}: labelled_subset needs single-label clips with known targets")
    n_classes = train.num_classes
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        base, extra = divmod(round(fraction * len(train)), n_classes)
        quota = np.full(n_classes, base)
        quota[np.random.default_rng(seed).choice(n_classes, extra, replace=False)] += 1
    else:
        if per_class < 1:
            raise ValueError(f"per_class must be at least 1, got {per_class}")
        quota = np.full(n_classes, per_class)
    chosen = []
    for c in range(n_classes):
        rows = np.flatnonzero(train.targets == c)
        if quota[c] > rows.size:
            raise ValueError(f"{train.name}: class {c} ({train.classes[c]!r}) has {rows.size} training clips, "
                             f"fewer than the {quota[c]} requested")
        chosen.append(rows[np.random.default_rng([seed, c]).permutation(rows.size)[:quota[c]]])
    is_labelled = np.zeros(len(train), dtype=bool)
    is_labelled[np.concatenate(chosen)] = True
    return train.subset(is_labelled), train.subset(~is_labelled).unlabelled()


def check_no_leak(test: ClipSet, *training_sets: ClipSet) -> None:
    """Raise :class:`LeakError` naming the clips of ``training_sets`` that are test clips (same file) or share a
    source recording with a test clip."""
    test_paths, test_sources = set(test.table["path"]), set(test.table["source"])
    leaks = []
    for number, clips in enumerate(training_sets, start=1):
        table = clips.table
        bad = table[table["path"].isin(test_paths) | table["source"].isin(test_sources)]
        leaks += [f"{clip} (source {source}) in training set {number} ({clips.name})"
                  for clip, source in zip(bad["clip_id"], bad["source"])]
    if leaks:
        raise LeakError(f"{len(leaks)} training clip(s) overlap the test clips of {test.name} by file or source "
                        f"recording: " + "; ".join(leaks[:20]) + (" ..." if len(leaks) > 20 else ""))


def assert_trainable(clips: ClipSet) -> None:
    """Raise :class:`LeakError` if ``clips`` holds clips that a split marked as test clips."""
    if SPLIT_COLUMN in clips.table:
        test = clips.table["clip_id"][clips.table[SPLIT_COLUMN] == "test"]
        if not test.empty:
            raise LeakError(f"refusing to train on {len(test)} test clip(s) of {clips.name}: "
                            + ", ".join(test.iloc[:20]) + (" ..." if len(test) > 20 else ""))


#: how a run picks its model (issue "methods as published"; Oliver et al. 2018): on the fully labelled validation fold,
#: on a validation set drawn from the run's own label budget, or no selection (the last epoch of a fixed schedule)
SELECTIONS: tuple[str, ...] = ("validation-fold", "budgeted", "last")

def check_selection(selection: str, owner: str = "") -> str:
    """``selection`` when it is one of :data:`SELECTIONS`, else a ValueError naming ``owner`` (e.g. the recipe)."""
    if selection not in SELECTIONS:
        raise ValueError(f"{owner + ': ' if owner else ''}selection must be one of {list(SELECTIONS)}, "
                         f"got {selection!r}")
    return selection


#: share of each class's labelled clips held out for validation under ``selection="budgeted"``
BUDGETED_SHARE = 0.2


def selection_sets(selection: str, labelled: ClipSet, val_fold: ClipSet, *, seed: int = 0,
                   share: float = BUDGETED_SHARE) -> tuple[ClipSet, ClipSet | None]:
    """The clips a run trains on and the clips it selects its model on, under ``selection``:

    - ``validation-fold``: all ``labelled`` clips; the whole labelled validation fold (the studies' practice: it
      holds more labels than a few-label budget, which makes few-label results optimistic);
    - ``budgeted``: the validation clips come out of the same budget -- ``share`` of each class's labelled clips
      (rounded down, at least one where a class has two or more), class-balanced, drawn from ``seed``; a class with
      one labelled clip keeps it for training. When no clip can be held out, there is no validation set (None);
    - ``last``: all ``labelled`` clips and no validation set (None): the run keeps its last epoch.
    """
    check_selection(selection)
    if selection == "validation-fold":
        return labelled, val_fold
    if selection == "last":
        return labelled, None
    if not 0 < share < 1:
        raise ValueError(f"share must be in (0, 1), got {share}")
    held = np.zeros(len(labelled), dtype=bool)
    for c in np.unique(labelled.targets):
        rows = np.flatnonzero(labelled.targets == c)
        n = max(1, int(share * rows.size)) if rows.size >= 2 else 0
        held[rows[np.random.default_rng([seed, int(c), 7]).permutation(rows.size)[:n]]] = True
    if not held.any():
        return labelled, None
    return labelled.subset(~held), _marked(labelled, held, "val")
