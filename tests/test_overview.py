"""Chapter 06's overview (esclib.experiments.overview): the same labelled clips for every method, nested budgets, no
test clip in any training stream, the chapters' own splits (so their stored runs are reused), reuse without
training, and the ranking / advice read from known results."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from esclib.data.splits import fold_split
from esclib.experiments import overview as ov
from esclib.experiments.base import Experiment, Recipe
from esclib.labs.toys import toy_clips
from esclib.results.store import ResultsStore
from esclib.results.summary import Results
from esclib.runner.spec import resolve
from esclib.runner.specs import get_spec

FOLDS = (1, 3, 5)
PER_CLASS = (1, 2, 5)


@pytest.fixture(scope="module")
def clips():
    return toy_clips(recordings_per_class=4)


def budgets(clips, selection="budgeted"):
    return [ov.budget_clips(clips, fold, n, selection) for fold in FOLDS for n in (*PER_CLASS, None)]


def ids(part) -> set[str]:
    return set(part.table["clip_id"])


@pytest.mark.parametrize("selection", ["budgeted", "validation-fold", "last"])
def test_every_family_reads_the_budgets_labelled_clips(clips, selection):
    for budget in budgets(clips, selection):
        expected = ids(budget.labelled) | (ids(budget.val) if budget.val is not None else set())
        for name, family in ov.FAMILIES.items():
            assert ov.labelled_ids(family.split(budget)) == expected, (name, budget.fold, budget.name)
        table = ov.same_clips(ov.Overview(None, selection=selection), clips, list(ov.METHODS), [budget.fold],
                              PER_CLASS)
        assert table["same labelled clips for every method"].all()


def test_budgets_are_class_balanced_and_budgeted_validation_comes_out_of_them(clips):
    for budget in budgets(clips):
        if budget.per_class is None:
            assert ids(budget.labelled) == ids(fold_split(clips, budget.fold).train)
            continue
        assert np.bincount(budget.labelled.targets).tolist() == [budget.per_class] * clips.num_classes
        held = ids(budget.val) if budget.val is not None else set()
        assert held <= ids(budget.labelled) and not held & ids(budget.train)
        assert ids(budget.train) | held == ids(budget.labelled)
        assert len(held) == (0 if budget.per_class == 1 else clips.num_classes * max(1, int(0.2 * budget.per_class)))


def test_a_budgets_clips_are_inside_the_next_budgets(clips):
    for fold in FOLDS:
        chain = [ov.budget_clips(clips, fold, n) for n in (*PER_CLASS, None)]
        for small, large in zip(chain, chain[1:]):
            assert ids(small.labelled) < ids(large.labelled), (fold, small.name, large.name)
            assert ids(large.unlabelled) < ids(small.unlabelled) or not len(large.unlabelled)


def test_no_test_clip_or_test_recording_is_ever_training_data(clips):
    for budget in budgets(clips):
        test, test_sources = ids(budget.test), set(budget.test.table["source"])
        assert test == ids(fold_split(clips, budget.fold).test)
        for name, family in ov.FAMILIES.items():
            split = family.split(budget)
            assert ids(split.test) == test
            assert not ov.training_ids(split) & test, name
            trained = [part for role, part in split.parts.items() if role != "test"]
            assert not set().union(*(set(p.table["source"]) for p in trained)) & test_sources, name
        assert ids(budget.labelled) | ids(budget.unlabelled) == ids(fold_split(clips, budget.fold).train)


def _bare(cls, **attributes):
    experiment = cls.__new__(cls)
    experiment.__dict__.update(attributes)
    return experiment


def test_each_familys_split_is_its_chapters_own_so_stored_runs_are_reused(clips):
    """The overview's splits are the ones chapters 01-03 make themselves (same clips, same order: same digest), so
    a run a chapter stored has the identity the overview asks for."""
    from esclib.experiments.cae import CAEExperiment
    from esclib.experiments.fixmatch import FixMatchExperiment, FixMatchRecipe
    from esclib.experiments.pann_transfer import FewShotTransfer

    transfer = _bare(FewShotTransfer, clips=clips, seed=0)
    fixmatch = _bare(FixMatchExperiment, clips=clips, seed=0, _folds={})
    cae = _bare(CAEExperiment, esc50=clips, seed=0)
    fixmatch_params = resolve(get_spec("02_fixmatch"), "quick")
    for budget in budgets(clips):
        digest = {name: family.split(budget).record.digest for name, family in ov.FAMILIES.items()}
        if budget.per_class is not None:
            assert digest["transfer"] == transfer.split(budget.fold, "budgeted", budget.per_class).record.digest
        recipe = FixMatchRecipe.from_config(fixmatch_params, labelled_fraction=budget.fraction, selection="budgeted")
        assert digest["fixmatch"] == fixmatch.split(budget.fold, recipe).record.digest
        assert digest["cae"] == cae.split_of("folds", budget.fold, budget.fraction, "budgeted").record.digest


def test_fixmatch_is_skipped_without_unlabelled_clips_or_a_labelled_batch(clips):
    from esclib.experiments.fixmatch import FixMatchRecipe

    assert ov.METHODS["pann-fixmatch"].unlabelled
    skip = ov.FAMILIES["fixmatch"].skip
    recipe = FixMatchRecipe.from_config(resolve(get_spec("02_fixmatch"), "quick"), labelled_fraction=0.1,
                                        selection="budgeted")
    assert "no unlabelled" in skip(recipe, ov.budget_clips(clips, 1, None))
    assert skip(recipe.replace(batch_size=4, mixup=False), ov.budget_clips(clips, 1, 2)) is None
    assert "fewer than one labelled batch of 8" in skip(recipe.replace(batch_size=4, mixup=True),
                                                          ov.budget_clips(clips, 1, 2))
    assert "unlabelled clips, fewer" in skip(recipe.replace(batch_size=4, mixup=False, mu=64),
                                             ov.budget_clips(clips, 1, 2))
    assert all(ov.FAMILIES[f].skip(None, ov.budget_clips(clips, 1, 1)) is None for f in ("transfer", "cae"))


def test_the_specs_methods_are_the_overviews():
    from esclib.runner.specs.ch06_overview import METHODS, QUICK_METHODS

    assert METHODS == tuple(ov.METHODS) and set(QUICK_METHODS) <= set(METHODS)
    assert set(ov.DESCRIPTIONS) == set(ov.METHODS)


def test_bad_selection_is_refused(clips):
    with pytest.raises(ValueError, match="selection"):
        ov.budget_clips(clips, 1, 2, "best-test")
    with pytest.raises(ValueError, match="selection"):
        ov.Overview(None, selection="oracle")


# ------------------------------------------------------------------------------------------- reuse, via run()
@dataclass(frozen=True)
class ToyRecipe(Recipe):
    selection: str


class CountingExperiment(Experiment):
    """A chapter experiment stand-in that counts its trainings."""

    name = "toy_overview"
    arms = ("centroid",)
    trainings = 0

    def train(self, ctx, arm, recipe, split):
        type(self).trainings += 1
        return {"accuracy": len(split.train) / 100}


def test_a_rerun_reuses_every_run_and_trains_nothing(clips, tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    family = ov.Family("none", lambda overview, c: CountingExperiment(**overview.run_args()),
                       lambda params, budget: ToyRecipe(budget.selection), ov.cae_split, lambda *a: None,
                       lambda *a: (0, 0))
    monkeypatch.setitem(ov.FAMILIES, "toy", family)
    monkeypatch.setitem(ov.METHODS, "toy", ov.Method("toy", "toy", "centroid"))
    store = ResultsStore(tmp_path / "results")

    def run():
        overview = ov.Overview(store, progress=False)
        overview.chapter_params = lambda chapter: {}
        return overview.run({"toy": clips}, ["toy"], {"toy": (1, 2)}, (1, 2))

    first = run()
    assert CountingExperiment.trainings == len(first) == 6 and not any(r["reused"] for r in first)
    second = run()
    assert CountingExperiment.trainings == 6 and all(r["reused"] for r in second)
    assert [r["id"] for r in first] == [r["id"] for r in second]
    frame = ov.run_frame(second)
    assert frame.loc[frame["budget"] == "all", "clips_per_class"].iloc[0] == pytest.approx(
        len(fold_split(clips, 1).train) / clips.num_classes)


# ------------------------------------------------------------------------------------------- what it shows
def fake_results() -> Results:
    """Three methods on three folds at one budget: b is 0.1 below a on every fold, c within ±0.05 of a."""
    a = [0.5, 0.6, 0.7]
    accuracies = {"a": a, "b": [x - 0.1 for x in a], "c": [x + d for x, d in zip(a, (-0.05, 0.04, -0.02))]}
    seconds = {"a": 10.0, "b": 1.0, "c": 2.0}
    return Results({"arm": m, "label": m, "dataset": "toy", "budget": "2", "clips_per_class": 2.0, "reused": False,
                    "setting": {"fold": fold}, "metrics": {"accuracy": acc},
                    "timing": {"train_seconds": seconds[m], "device": "cpu"}}
                   for m, values in accuracies.items() for fold, acc in zip((1, 2, 3), values))


def test_ranking_marks_what_the_folds_cannot_tell_apart():
    table = ov.ranking(fake_results()).set_index("other")
    assert set(table["best"]) == {"a"}
    assert table.loc["b", "difference"] == pytest.approx(-0.1) and not table.loc["b", "inside the noise"]
    assert table.loc["c", "difference"] == pytest.approx(-0.01) and table.loc["c", "inside the noise"]


def test_advice_picks_the_cheapest_method_inside_the_noise():
    import pandas as pd

    costs = pd.DataFrame({"dataset": "toy", "method": ["a", "b", "c"],
                          "needs unlabelled target clips": [False, False, False]})
    text = ov.advice(fake_results(), costs)
    assert "a is best (0.600)" in text and "cannot tell it from c" in text and "cheapest of these is c" in text
    costs["needs unlabelled target clips"] = [False, False, True]
    assert "cheapest of these is a" in ov.advice(fake_results(), costs)


def test_published_points_are_theirs_with_their_protocol():
    points = ov.published_points(["esc50", "us8k"])
    usb = points[points["who"].str.startswith("USB")]
    assert sorted(usb.loc[usb["dataset"] == "esc50", "clips_per_class"].unique()) == [5, 10]
    assert sorted(usb.loc[usb["dataset"] == "us8k", "clips_per_class"].unique()) == [10, 40]
    assert points["who"].str.endswith("(theirs)").all() and points["protocol"].str.len().gt(0).all()
    assert ov.published_points(["esc50"])["dataset"].eq("esc50").all()


def test_one_fold_is_never_evidence():
    one_fold = Results(r for r in fake_results() if r["setting"]["fold"] == 1)
    table = ov.ranking(one_fold)
    assert (table["folds"] == 1).all() and table["inside the noise"].all()
