"""Lab of chapter 0 (the data): a class-balanced labelled subset that respects the folds, and the leak check.

Sample solutions (shown in the instructor edition) and checks against :mod:`esclib.data.splits`
(``fold_split``, ``labelled_subset``, ``check_no_leak``). Notebook: 00_data.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

import numpy as np

from esclib.data.clips import ClipSet
from esclib.data.splits import LeakError, check_no_leak, fold_split, random_split
from esclib.labs.cells import Exercise
from esclib.labs.check import FunctionCheck, Mistake, Report, run_cases
from esclib.labs.toys import toy_clips

STEM = "00_data"


# --- sample solutions -------------------------------------------------------------------------------------------

def labelled_clips(clips: ClipSet, test_fold: int, per_class: int, seed: int) -> list[str]:
    """Clip ids of ``per_class`` clips of every class from the training folds of the split that tests on
    ``test_fold`` and validates on the next fold; no clip of a recording that has clips in a held-out fold."""
    table = clips.table
    val_fold = test_fold % clips.n_folds + 1
    held_out = table["fold"].isin([test_fold, val_fold])
    shares_a_recording = table["source"].isin(table.loc[held_out, "source"])
    train = table[~held_out & ~shares_a_recording]
    rng = np.random.default_rng(seed)
    chosen = []
    for _, of_class in train.groupby("target"):
        chosen += rng.choice(of_class["clip_id"].to_numpy(), size=per_class, replace=False).tolist()
    return chosen


def leaking_clips(train: ClipSet, test: ClipSet) -> set[str]:
    """Clip ids of ``train`` that are test files or were cut from a recording that has a test clip."""
    table = train.table
    leaks = table["path"].isin(test.table["path"]) | table["source"].isin(test.table["source"])
    return set(table.loc[leaks, "clip_id"])


# --- checks -----------------------------------------------------------------------------------------------------

def _ids(value: Any) -> list[str] | None:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return None
    ids = list(value)
    return ids if all(isinstance(i, str) for i in ids) else None


def subset_problems(clips: ClipSet, test_fold: int, chosen: Any, per_class: int) -> list[str]:
    """What is wrong with ``chosen`` as a class-balanced labelled subset of ``per_class`` clips per class from the
    training folds of :func:`~esclib.data.splits.fold_split` ``(clips, test_fold)`` (empty when nothing is).
    Shared with the nested budgets of chapter 6."""
    ids = _ids(chosen)
    if ids is None:
        return [f"expected a list of clip ids (str), got {type(chosen).__name__}"]
    twice = sorted(i for i, n in Counter(ids).items() if n > 1)
    if twice:
        return [f"clip(s) chosen more than once: {twice[:5]} -- draw without replacement"]
    unknown = sorted(set(ids) - set(clips.table["clip_id"]))
    if unknown:
        return [f"{len(unknown)} id(s) are not clip ids of this dataset, e.g. {unknown[0]!r}"]
    split = fold_split(clips, test_fold)
    problems = []
    for side, fold, why in ((split.test, split.test_fold, "the test fold never provides training labels"),
                            (split.val, split.val_fold, "the validation fold chooses epochs, it is not training data")):
        inside = set(ids) & set(side.table["clip_id"])
        if inside:
            problems.append(f"{len(inside)} clip(s) come from fold {fold}: {why}")
    leaked = set(ids) & set(split.excluded)
    if leaked:
        problems.append(f"{sorted(leaked)} share a source recording with a held-out clip: a recording's clips "
                        "must never be on both sides of a split")
    per = clips.table.set_index("clip_id").loc[ids, "category"].value_counts()
    wrong = {c: int(per.get(c, 0)) for c in clips.classes if per.get(c, 0) != per_class}
    if wrong:
        problems.append(f"clips per class {wrong}, expected {per_class} of every class: draw per class, not from the "
                        "whole pool")
    return problems


def check_labelled_clips(student) -> Report:
    """Check a ``labelled_clips(clips, test_fold, per_class, seed)`` against the split helpers, then that it is
    reproducible from its seed and depends on it."""
    title = "class-balanced labelled subset from the training folds"
    clips = toy_clips()
    cases = [{"clips": clips, "test_fold": 2, "per_class": 2, "seed": 0},
             {"clips": clips, "test_fold": 5, "per_class": 3, "seed": 1}]
    report = run_cases(title, student, cases,
                       lambda case, got: subset_problems(case["clips"], case["test_fold"], got, case["per_class"]))
    if not report.passed:
        return report
    draws = [set(student(clips, 3, 2, seed)) for seed in (7, 7, 8, 9)]
    if draws[0] != draws[1]:
        return Report(title, False, ["two calls with the same seed gave different subsets: draw from "
                                     "np.random.default_rng(seed), not from the global random state"])
    if draws[1] == draws[2] == draws[3]:
        return Report(title, False, ["seeds 7, 8 and 9 gave the same subset: the seed is ignored"])
    report.messages.append("reproducible from the seed, and different seeds give different subsets")
    return report


def _library_leaks(train: ClipSet, test: ClipSet) -> set[str]:
    """The training clips :func:`~esclib.data.splits.check_no_leak` refuses, one clip at a time."""
    leaks = set()
    for row in range(len(train)):
        try:
            check_no_leak(test, train.subset([row]))
        except LeakError:
            leaks.add(train.table["clip_id"][row])
    return leaks


def _leak_cases() -> list[dict[str, Any]]:
    clips = toy_clips()
    naive = clips.table["fold"] == 2
    shuffled = random_split(clips, (None, 0, 24), seed=3)
    return [{"train": clips.subset(~naive), "test": clips.subset(naive)},
            {"train": shuffled.train, "test": shuffled.test}]


def _compare_sets(got: Any, expected: set[str]) -> str | None:
    ids = _ids(got)
    if ids is None:
        return f"expected a set of clip ids (str), got {type(got).__name__}"
    missing, extra = expected - set(ids), set(ids) - expected
    if not missing and not extra:
        return None
    return (f"{len(missing)} leaking clip(s) missed (e.g. {sorted(missing)[:3]}), {len(extra)} clip(s) flagged "
            f"that do not leak (e.g. {sorted(extra)[:3]})")


def _by_path(train: ClipSet, test: ClipSet) -> set[str]:
    return set(train.table.loc[train.table["path"].isin(test.table["path"]), "clip_id"])


def _by_source_and_class(train: ClipSet, test: ClipSet) -> set[str]:
    pairs = set(zip(test.table["source"], test.table["category"]))
    return {c for c, s, k in zip(train.table["clip_id"], train.table["source"], train.table["category"])
            if (s, k) in pairs}


def _test_side(train: ClipSet, test: ClipSet) -> set[str]:
    return leaking_clips(test, train)


check_leaking_clips = FunctionCheck(
    "leaking training clips", _leak_cases, _library_leaks,
    mistakes=[
        Mistake(_by_path, "only clips that are the same file were found: clips cut from one recording share its "
                          "microphone, room and source, so every clip of a test clip's recording leaks"),
        Mistake(_by_source_and_class, "a recording was matched together with its class: some recordings have "
                                      "slices under two classes (UrbanSound8K has five), key on the recording alone"),
        Mistake(_test_side, "these are the test clips that share a recording with training clips; the question is "
                            "which *training* clips leak"),
    ],
    compare=_compare_sets)
check_leaking_clips.__doc__ = "Check a ``leaking_clips(train, test)`` against ``esclib.data.splits.check_no_leak``."


# --- the lab ----------------------------------------------------------------------------------------------------

EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        "lab-00-labelled-subset", "A labelled subset that respects the folds",
        prompt="""
Write `labelled_clips(clips, test_fold, per_class, seed)`: the ids of `per_class` clips of every class, drawn
reproducibly from `seed` out of the **training** folds of the split that tests on `test_fold` and validates on the
next fold (fold 1 after the last). A clip whose source recording also has clips in the test or validation fold is
not a training clip. The check runs your function on a generated table with the columns of every `ClipSet`
(`clip_id, path, fold, target, category, source`) and says what is wrong.
""",
        solution="""
Work on the table: mark the held-out folds (the test fold and the next one), drop every clip whose `source` has a
held-out clip, then draw per class with one `numpy.random.default_rng(seed)`. Drawing from the whole pool instead
of per class leaves rare classes with no label at 1 %; drawing from every fold puts test clips among the labels.
The library does the same in two calls, `fold_split` then `labelled_subset(split.train, per_class=...)`, and
ranks each class's clips by its own permutation so that a smaller subset lies inside a larger one.
""",
        template='''
import numpy as np

from esclib.labs import ch00


def labelled_clips(clips, test_fold, per_class, seed):
    """Ids of `per_class` clips of every class from the training folds (test `test_fold`, validate on the next)."""
    table = clips.table  # columns clip_id, path, fold, target, category, source
    raise NotImplementedError


ch00.check_labelled_clips(labelled_clips)
''',
        sample="labelled_clips", check="check_labelled_clips"),
    Exercise(
        "lab-00-leak-check", "Which training clips leak?",
        prompt="""
Write `leaking_clips(train, test)`: the set of ids of the clips of `train` that would let a model recognise a
test *recording* rather than a test *class*. Two `ClipSet`s are given; compare them through their `path` and
`source` columns. The check compares your set with the clips `esclib.data.splits.check_no_leak` refuses, on a
split that ignores the recordings and on a random split.
""",
        solution="""
A training clip leaks when it is a test file or was cut from a recording that has a test clip: match `path` or
`source` against the test table. Matching files alone misses the other takes of a recording; matching
(recording, class) pairs misses recordings whose slices carry two classes.
""",
        template='''
from esclib.labs import ch00


def leaking_clips(train, test):
    """Ids of the clips of `train` that are test files or share a source recording with a test clip."""
    raise NotImplementedError


ch00.check_leaking_clips(leaking_clips)
''',
        sample="leaking_clips", check="check_leaking_clips"),
    Exercise(
        "lab-00-one-percent", "Predict the size of a 1 % subset",
        prompt="""
Predict how many labelled clips per class `labelled_subset(split.train, fraction=0.01)` gives on UrbanSound8K
with test fold 1 (validation fold 2, eight training folds), and on ESC-50 with test fold 1. Then check your
prediction with the chapter's split helpers on the dataset of this run, and say for which budget a class with
fewer clips than the others would make the function refuse.
""",
        solution="""
A fraction is turned into a number of clips first, then spread evenly over the classes: UrbanSound8K's eight
training folds hold about 7,000 clips, so 1 % of them is about 70 clips, seven per class (some classes get one
more). ESC-50's three training folds hold 1,200 clips, so 1 % of them is 12 clips for 50 classes: most classes get
none, which is why few-label experiments on ESC-50 count labels per class instead. The function refuses when a
class has fewer training clips than its quota, which happens first for UrbanSound8K's smallest classes (car horn,
gun shot) at large per-class counts.
"""),
    Exercise(
        "lab-00-validation-budget", "Who pays for the validation labels?",
        prompt="""
In the split of study 000, a 10 % labelled subset of UrbanSound8K's training folds has fewer labels than the fully
labelled validation fold used to pick the best epoch. Explain why this makes few-label results optimistic, and
describe a protocol that does not (see Oliver et al. 2018).
""",
        solution="""
Choosing the epoch (or any hyper-parameter) on a labelled validation set uses those labels: a method reported at
"10 % of the labels" has in fact seen more labelled clips than that, and the selection rewards what works on the
validation labels. Oliver et al. show that realistic validation sets of the labelled budget's size make the
differences between methods shrink. A fair protocol counts validation labels against the budget (draw them from
the same budget, class-balanced) or fixes the schedule in advance and reports the last epoch.
"""),
)
