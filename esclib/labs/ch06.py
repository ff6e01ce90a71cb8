"""Lab of chapter 6 (the overview): a paired difference with a bootstrap interval over folds, and nested label
budgets.

Sample solutions and checks against ``scipy.stats.bootstrap`` (paired, percentile) and the split helpers of
:mod:`esclib.data.splits` (``fold_split``; ``labelled_subset``, whose subsets are nested by construction).
Notebook: 06_overview.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from scipy.stats import bootstrap

from esclib.data.clips import ClipSet
from esclib.data.splits import fold_split
from esclib.labs.cells import Exercise
from esclib.labs.ch00 import subset_problems
from esclib.labs.check import FunctionCheck, Mistake, Problem, Report, as_array, is_finite_number, run_cases
from esclib.labs.toys import toy_clips

STEM = "06_overview"
#: resamples of the reference interval (the student's own Monte Carlo error is allowed for by TOLERANCE)
REFERENCE_RESAMPLES = 20000
#: how far an interval end may be from the reference's, as a share of the reference interval's width
TOLERANCE = 0.25


# --- sample solutions -------------------------------------------------------------------------------------------

def paired_bootstrap(acc_a: np.ndarray, acc_b: np.ndarray, n_resamples: int, confidence: float,
                     seed: int) -> tuple[float, float, float]:
    """Mean difference of two methods' accuracies over the same folds, with a percentile bootstrap interval: the
    per-fold differences are resampled with replacement, because the folds pair the two methods' runs."""
    differences = np.asarray(acc_a) - np.asarray(acc_b)
    rng = np.random.default_rng(seed)
    means = rng.choice(differences, size=(n_resamples, len(differences)), replace=True).mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(differences.mean()), float(low), float(high)


def nested_budgets(clips: ClipSet, test_fold: int, budgets: list[int], seed: int) -> dict[int, list[str]]:
    """Class-balanced labelled subsets of ``b`` clips per class for every budget ``b``, from the training folds of
    the split that tests on ``test_fold``, each inside the next larger one: one ranking per class, cut at ``b``."""
    train = fold_split(clips, test_fold).train.table
    rng = np.random.default_rng(seed)
    ranked = [rng.permutation(of_class["clip_id"].to_numpy()) for _, of_class in train.groupby("target")]
    return {b: [clip for ranking in ranked for clip in ranking[:b]] for b in sorted(budgets)}


# --- check of the paired bootstrap ------------------------------------------------------------------------------

def _bootstrap_cases() -> list[dict[str, Any]]:
    rng = np.random.default_rng(9)
    cases = []
    for folds, confidence in ((5, 0.95), (10, 0.9)):
        difficulty = rng.uniform(0.4, 0.9, folds)  # folds differ far more than the methods do
        cases.append({"acc_a": difficulty + rng.normal(0.03, 0.015, folds), "acc_b": difficulty,
                      "n_resamples": 4000, "confidence": confidence, "seed": 0})
    return cases


def _scipy_interval(acc_a, acc_b, confidence, *, paired=True) -> tuple[float, float, float]:
    def statistic(a, b, axis):
        return np.mean(a - b, axis=axis) if paired else np.mean(a, axis=axis) - np.mean(b, axis=axis)
    result = bootstrap((np.asarray(acc_a), np.asarray(acc_b)), statistic, paired=paired, vectorized=True,
                       n_resamples=REFERENCE_RESAMPLES, confidence_level=confidence, method="percentile",
                       rng=np.random.default_rng(0))
    interval = result.confidence_interval
    return float(np.mean(acc_a) - np.mean(acc_b)), float(interval.low), float(interval.high)


def _library_bootstrap(acc_a, acc_b, n_resamples, confidence, seed):
    return _scipy_interval(acc_a, acc_b, confidence)


def _compare_intervals(got: Any, expected: tuple[float, float, float]) -> Problem:
    if not isinstance(got, (tuple, list)) or len(got) != 3 or not all(is_finite_number(v) for v in got):
        return "expected three numbers: (mean difference, low, high)"
    mean, low, high = (float(as_array(v)) for v in got)
    if not np.isclose(mean, expected[0], atol=1e-9):
        return f"the mean difference is {mean:.4f}, expected {expected[0]:.4f} (method a minus method b)"
    slack = TOLERANCE * (expected[2] - expected[1]) + 1e-9
    if abs(low - expected[1]) > slack or abs(high - expected[2]) > slack:
        return (f"the interval [{low:.4f}, {high:.4f}] is not the paired percentile bootstrap's "
                f"[{expected[1]:.4f}, {expected[2]:.4f}] (give or take {slack:.4f} of resampling noise)")
    return None


check_paired_bootstrap = FunctionCheck(
    "paired bootstrap interval over folds", _bootstrap_cases, _library_bootstrap,
    mistakes=[
        Mistake(lambda acc_a, acc_b, confidence, **_: _scipy_interval(acc_a, acc_b, confidence, paired=False),
                "the two methods were resampled independently: the folds pair them (a hard fold is hard for both), "
                "so resample the per-fold *differences*; unpaired, the differences between folds swamp the "
                "difference between methods"),
        Mistake(lambda acc_a, acc_b, confidence, **_: _scipy_interval(acc_b, acc_a, confidence),
                "the difference is b minus a: the question is how much better method a is"),
        Mistake(lambda acc_a, acc_b, **_: (float(np.mean(acc_a) - np.mean(acc_b)),) * 3,
                "the interval has no width: a bootstrap resamples *with* replacement (a resample without it is the "
                "same folds in another order)"),
    ],
    compare=_compare_intervals)
check_paired_bootstrap.__doc__ = ("Check a ``paired_bootstrap(acc_a, acc_b, n_resamples, confidence, seed)`` against "
                                  "``scipy.stats.bootstrap(..., paired=True, method='percentile')``.")


# --- check of the nested budgets --------------------------------------------------------------------------------

def _budget_problems(case: dict[str, Any], got: Any) -> list[str]:
    budgets = sorted(case["budgets"])
    if not isinstance(got, dict) or sorted(got) != budgets:
        return [f"expected a dict with one entry per budget {budgets}, got "
                + (f"keys {sorted(got)}" if isinstance(got, dict) else type(got).__name__)]
    for b in budgets:
        problems = subset_problems(case["clips"], case["test_fold"], got[b], b)
        if problems:
            return [f"budget {b}: {p}" for p in problems]
    for small, large in zip(budgets, budgets[1:]):
        outside = set(got[small]) - set(got[large])
        if outside:
            return [f"{len(outside)} clip(s) of the {small}-per-class subset are not in the {large}-per-class one: "
                    "draw one ranking per class and cut it at every budget, so that a larger budget only adds "
                    "labels and the curve measures the labels, not a new draw"]
    return []


def check_nested_budgets(student: Callable[..., Any]) -> Report:
    """Check a ``nested_budgets(clips, test_fold, budgets, seed)``: class-balanced subsets from the training folds
    (as ``labelled_subset`` draws them), each inside the next, reproducible from the seed."""
    title = "nested label budgets"
    clips = toy_clips()
    cases = [{"clips": clips, "test_fold": 1, "budgets": [1, 2, 5], "seed": 0},
             {"clips": clips, "test_fold": 4, "budgets": [4, 2], "seed": 3}]
    report = run_cases(title, student, cases, _budget_problems)
    if not report.passed:
        return report
    draws = [student(clips, 1, [2], seed)[2] for seed in (5, 5, 6, 7)]
    if set(draws[0]) != set(draws[1]):
        return Report(title, False, ["two calls with the same seed gave different subsets: draw from "
                                     "np.random.default_rng(seed)"])
    if set(draws[1]) == set(draws[2]) == set(draws[3]):
        return Report(title, False, ["seeds 5, 6 and 7 gave the same subsets: the seed is ignored"])
    report.messages.append("nested, reproducible from the seed, and different seeds give different subsets")
    return report


# --- the lab ----------------------------------------------------------------------------------------------------

EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        "lab-06-paired-bootstrap", "Is the difference inside the noise?",
        prompt="""
Two methods were run on the same folds. Write `paired_bootstrap(acc_a, acc_b, n_resamples, confidence, seed)`:
the mean over folds of `acc_a - acc_b` and a percentile bootstrap interval of that mean at the given confidence,
from `n_resamples` resamples drawn with `numpy.random.default_rng(seed)`. Return `(mean, low, high)`. In the
check's data the folds differ much more from each other than the two methods do.
""",
        solution="""
Resample the per-fold differences with replacement, average each resample, and take the percentiles
$(1-c)/2$ and $(1+c)/2$ of those means. Pairing matters: a fold that is hard for one method is hard for the other,
so the differences vary far less than the accuracies; resampling the two methods independently adds the folds'
spread to the interval and hides a consistent difference. With five folds the interval is coarse at best: a
difference whose interval contains zero is not evidence.
""",
        template='''
import numpy as np

from esclib.labs import ch06


def paired_bootstrap(acc_a, acc_b, n_resamples, confidence, seed):
    """(mean of acc_a - acc_b over folds, low, high) with a percentile bootstrap interval."""
    raise NotImplementedError


ch06.check_paired_bootstrap(paired_bootstrap)
''',
        sample="paired_bootstrap", check="check_paired_bootstrap"),
    Exercise(
        "lab-06-nested-budgets", "Nested label budgets",
        prompt="""
A curve of accuracy against labelled clips per class should change one thing from point to point: the number of
labels. Write `nested_budgets(clips, test_fold, budgets, seed)`: for every budget b in `budgets`, a class-balanced
list of b clip ids per class from the training folds of `esclib.data.splits.fold_split(clips, test_fold)`, each
subset inside every larger one, reproducible from `seed`. Return a dict {b: ids}.
""",
        solution="""
Rank each class's training clips once with one generator, and cut every ranking at each budget: the 1-per-class
subset is then the first clip of each class in the 5-per-class subset, and so on. Drawing each budget
independently would make every point of the curve a new random draw, so the curve would mix the effect of the
labels with the luck of the draw. `esclib.data.splits.labelled_subset` does the same with one permutation per
(seed, class).
""",
        template='''
import numpy as np

from esclib.data.splits import fold_split
from esclib.labs import ch06


def nested_budgets(clips, test_fold, budgets, seed):
    """{b: ids of b training clips per class} for every budget b, each subset inside the larger ones."""
    raise NotImplementedError


ch06.check_nested_budgets(nested_budgets)
''',
        sample="nested_budgets", check="check_nested_budgets"),
    Exercise(
        "lab-06-what-to-do", "What should a practitioner with N labels do?",
        prompt="""
From this run's figure and table only, write down which method you would choose with 1, 5 and 20 labelled clips
per class, how sure you are (which differences are inside the noise), and what each choice costs (pre-training
time, unlabelled data from the same distribution). Then say which of your answers could change on the real data.
""",
        solution="""
The answer must be read from the run, not typed in advance: the chapter glues its numbers from the executed
notebook, so the prose and the figure agree. A sound answer names the best method per budget only where its
interval excludes the others', states the cost columns, and notes that `quick` runs on synthetic worlds whose
difficulty and similarity to the pre-training data differ from ESC-50's and UrbanSound8K's.
"""),
    Exercise(
        "lab-06-published-points", "Placing published numbers on the same axes",
        prompt="""
The chapter places some studies' few-label numbers on its figure. For one of them, list what must match for the
point to be comparable with this run's curves (dataset, folds, labels per class, selection rule, number of runs),
and say which of these the study's protocol leaves open (see the appendix on protocols).
""",
        solution="""
The same dataset and official folds, the same number of labelled clips per class, a model selection that does not
use more labels than the budget, and the same summary (mean over folds, not the best of several runs). USB, for
instance, uses one fixed split and reports the best error over a run, and study 000's label ratio for its
ablations is inferred; such points are drawn as theirs, with their protocol stated, never as ours.
"""),
)
