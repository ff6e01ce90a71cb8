"""The experiment foundation: run identity, reuse on an exact match only, seeding without paths, recording, specs."""

import dataclasses
import shutil
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from esclib.data.clips import ClipSet
from esclib.data.identity import dataset_digest, dataset_identity
from esclib.experiments.base import Experiment, Recipe, Split, recipe_class
from esclib.results import ResultsStore
from esclib.runner.spec import resolve
from esclib.runner.specs import get_spec


def _world(root, n=6, rate=8000):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        path = root / f"clip{i}.wav"
        sf.write(path, rng.standard_normal(rate).astype("float32") * 0.1, rate)
        rows.append({"clip_id": path.name, "path": str(path), "fold": i % 3 + 1, "target": i % 2,
                     "category": f"c{i % 2}", "source": path.stem})
    return ClipSet("toy", root, ("c0", "c1"), 3, 1.0, pd.DataFrame(rows))


@dataclass(frozen=True)
class ToyRecipe(Recipe):
    lr: float
    epochs: int


class Toy(Experiment):
    """Trains nothing: its 'accuracy' is a random draw after seeding, shifted by the recipe, so that reuse, seeding
    and identity are visible in the numbers."""

    name = "toy"
    arms = ("a", "b")
    artifacts = ("weights.pt",)

    def __init__(self, clips, **kwargs):
        super().__init__(**kwargs)
        self.clips, self.trained = clips, []

    def inputs(self):
        return {"dataset": dataset_identity(self.clips)}

    def split(self, fold):
        test = self.clips.subset(self.clips.folds == fold)
        return Split({"train": self.clips.subset(self.clips.folds != fold), "test": test}, "official", fold)

    def train(self, ctx, arm, recipe, split):
        self.trained.append((arm, recipe, split.fold))
        if recipe.epochs < 0:
            raise RuntimeError("diverged")
        torch.save({"w": torch.rand(3)}, ctx.artifact("weights.pt"))
        history = ctx.fit(torch.nn.Linear(1, 2), [(torch.rand(4, 1), torch.randint(0, 2, (4,)))], epochs=2,
                          optimizer=torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=recipe.lr),
                          loss_fn=lambda out, y: out.sum() * 0)
        return {"accuracy": float(torch.rand(())) + recipe.lr, "n_train": len(split.train),
                "logged_epochs": len(history.epochs)}


def _toy(tmp_path, store=None, clips=None, **kwargs):
    return Toy(clips or _world(tmp_path / "data"), store=store or ResultsStore(tmp_path / "results"),
               progress=False, **kwargs)


def test_a_run_is_reused_only_for_its_exact_identity(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    toy = _toy(tmp_path)
    recipe = ToyRecipe(lr=0.1, epochs=2)
    first = toy.run("a", recipe, toy.split(1))
    assert toy.run("a", recipe, toy.split(1)) == first and len(toy.trained) == 1
    assert first["metrics"]["logged_epochs"] == 2 and [c["epoch"] for c in first["curves"]] == [1, 2]
    assert first["identity"]["recipe"] == {"lr": 0.1, "epochs": 2}
    for arm, changed, fold in (("a", ToyRecipe(0.2, 2), 1), ("a", ToyRecipe(0.1, 3), 1), ("b", recipe, 1),
                               ("a", recipe, 2)):
        assert toy.run(arm, changed, toy.split(fold))["id"] != first["id"]
    assert len(toy.trained) == 5
    assert _toy(tmp_path, seed=1).run("a", recipe, toy.split(1))["id"] != first["id"]
    assert _toy(tmp_path, profile="paper").run("a", recipe, toy.split(1))["id"] != first["id"]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)  # another thread count sums in another order on the CPU: another run
        assert toy.run("a", recipe, toy.split(1))["id"] != first["id"]
    finally:
        torch.set_num_threads(threads)
    assert toy.run("a", recipe, toy.split(1))["id"] == first["id"]


def test_the_split_is_on_record(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    store = ResultsStore(tmp_path / "results")
    toy = _toy(tmp_path, store)
    result = toy.run("a", ToyRecipe(0.1, 1), toy.split(2))
    saved = store.split(result["split"]["digest"])
    assert saved["parts"]["test"] == ["clip1.wav", "clip4.wav"] and result["split"]["sizes"] == {"train": 4,
                                                                                                  "test": 2}
    assert result["identity"]["split"] == result["split"]["digest"] == toy.split(2).record.digest


def test_same_inputs_same_numbers_under_any_folder_and_another_tree_is_another_run(tmp_path, monkeypatch):
    recipe = ToyRecipe(0.1, 1)
    results = []
    for name in ("x", "y"):
        monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / name / "cache"))
        toy = _toy(tmp_path / name)
        results.append(toy.run("a", recipe, toy.split(1)))
    assert results[0]["id"] == results[1]["id"] and results[0]["metrics"] == results[1]["metrics"]
    other = _world(tmp_path / "other")
    sf.write(other.paths[0], np.zeros(8000, dtype="float32"), 8000)  # same names, one file changed
    toy = _toy(tmp_path / "z", clips=other)
    assert toy.run("a", recipe, toy.split(1))["id"] != results[0]["id"]


def test_a_failure_is_recorded_and_a_run_without_its_artifacts_trains_again(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    toy = _toy(tmp_path)
    with pytest.raises(RuntimeError, match="diverged"):
        toy.run("a", ToyRecipe(0.1, -1), toy.split(1))
    run = toy.open("a", ToyRecipe(0.1, -1), toy.split(1))
    assert not run.done and "diverged" in run.progress_path.read_text()
    result = toy.run("b", ToyRecipe(0.1, 1), toy.split(1))
    weights = toy.artifact(result, "weights.pt")
    kept = torch.load(weights)["w"]
    weights.unlink()
    again = toy.run("b", ToyRecipe(0.1, 1), toy.split(1))
    assert again["metrics"] == result["metrics"] and torch.equal(torch.load(weights)["w"], kept)
    assert len(toy.trained) == 3


def test_dataset_digest_follows_contents_and_labels_not_location(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    clips = _world(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    moved = clips.__class__(clips.name, tmp_path / "b", clips.classes, clips.n_folds, clips.clip_seconds,
                            clips.table.assign(path=[str(tmp_path / "b" / p) for p in clips.table["clip_id"]]))
    assert dataset_digest(moved) == dataset_digest(clips)
    relabelled = dataclasses.replace(clips, table=clips.table.assign(target=clips.table["target"][::-1].values))
    assert dataset_digest(relabelled) != dataset_digest(clips)
    sf.write(moved.paths[3], np.ones(8000, dtype="float32") * 0.1, 8000)
    assert dataset_digest(moved) != dataset_digest(clips)


def test_recipe_from_config_is_strict():
    assert ToyRecipe.from_config({"lr": 0.1, "epochs": 3, "other": 1}) == ToyRecipe(0.1, 3)
    assert ToyRecipe.from_config({"lr": 0.1}, epochs=5) == ToyRecipe(0.1, 5)
    with pytest.raises(ValueError, match=r"lack \['epochs'\]"):
        ToyRecipe.from_config({"lr": 0.1})


# ---------------------------------------------------------------------------------------------- the specs
#: per chapter: recipe fields the chapter fixes per run from its grid (not parameters of their own)
GRID_FIELDS = {"03_cae": {"batch_size", "filters", "labelled_fraction"}}
#: per chapter: the experiment class whose arms the spec's arm list must equal, and the parameter listing them
ARMS = {"01_pann_transfer": ("esclib.experiments.pann_transfer:TransferExperiment", "strategies"),
        "02_fixmatch": ("esclib.experiments.fixmatch:FixMatchExperiment", "arms"),
        "03_cae": ("esclib.experiments.cae:CAEExperiment", "arms"),
        "04_npid": ("esclib.experiments.npid:NPIDExperiment", "arms")}
CHAPTERS = ["01_pann_transfer", "02_fixmatch", "03_cae", "04_npid"]


def _other_value(param, value):
    """A valid value of ``param`` other than ``value``."""
    candidates = [param.paper, param.quick]
    if param.choices is not None:
        candidates += list(param.choices)
    if isinstance(value, bool):
        candidates.append(not value)
    elif isinstance(value, (int, float)):
        candidates += [value * 2, value + 1, value / 2, value - 1 if value > 1 else value + 2]
    elif value is None:
        candidates += [1, 2, 0.5, 3]
    for candidate in candidates:
        try:
            parsed = param.validate("x", candidate)
        except ValueError:
            continue
        if parsed is not None and parsed != value:
            return parsed
    raise AssertionError(f"no other valid value for {param}")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_recipe_parameters_are_exactly_the_recipe_fields(chapter):
    spec = get_spec(chapter)
    fields = {f.name for path in spec.recipes for f in dataclasses.fields(recipe_class(path))}
    scoped = {name for name, p in spec.params.items() if p.scope == "recipe"}
    assert scoped == fields - GRID_FIELDS.get(chapter, set())


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_recipe_parameter_changes_the_run_identity(chapter):
    spec = get_spec(chapter)
    for profile in ("quick", "paper"):
        config = resolve(spec, profile)
        fixed = {name: 1 for name in GRID_FIELDS.get(chapter, ())}
        for path in spec.recipes:
            cls = recipe_class(path)
            names = {f.name for f in dataclasses.fields(cls)} - set(fixed)
            base = cls.from_config(config, **fixed).identity()
            assert cls.from_config(config, **fixed).identity() == base
            for name in names:
                changed = {**config, name: _other_value(spec.params[name], config[name])}
                try:
                    identity = cls.from_config(changed, **fixed).identity()
                except ValueError:  # the recipe refuses this combination itself
                    continue
                assert identity != base, (chapter, profile, name)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_spec_arms_equal_the_experiment_arms(chapter):
    path, param = ARMS[chapter]
    module, _, name = path.partition(":")
    experiment = getattr(__import__(module, fromlist=[name]), name)
    spec = get_spec(chapter)
    assert spec.params[param].validate(param, spec.params[param].paper) == experiment.arms


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_parameter_has_a_scope_and_the_chapter_an_experiment(chapter):
    spec = get_spec(chapter)
    assert spec.experiment and spec.recipes
    assert {p.scope for p in spec.params.values()} <= {"recipe", "input", "run", "grid", "view"}
    assert spec.params["seed"].scope == "run"


@dataclass(frozen=True)
class ScheduledRecipe(Recipe):
    lr: float
    epochs: int
    steps_per_epoch: int
    batch_size: int = 8


def test_the_paper_plan_counts_runs_and_steps_and_estimates_from_the_smoke_runs(tmp_path, monkeypatch):
    from esclib.experiments.base import _duration

    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ESCLIB_RESULTS", str(tmp_path / "results"))
    clips = _world(tmp_path / "data")
    monkeypatch.setenv("ESC_SMOKE", "1")
    smoke_toy = Toy(clips, store=ResultsStore.for_profile("paper"), profile="paper", progress=False)
    smoke_toy.run("a", ScheduledRecipe(0.1, 1, 2, batch_size=2), smoke_toy.split(1))
    monkeypatch.delenv("ESC_SMOKE")
    toy = Toy(clips, store=ResultsStore.for_profile("paper"), profile="paper", progress=False)
    rates = toy.smoke_seconds_per_step()
    assert set(rates) == {"a"} and rates["a"][0] > 0 and rates["a"][1] == 2  # measured per arm, with its batch
    recipe = ScheduledRecipe(0.1, 10, 100)
    assert toy.planned_steps("a", recipe, toy.split(1)) == 1000
    assert toy.planned_steps("a", ToyRecipe(0.1, 3), toy.split(1)) is None  # no step count, no invented one
    toy.run("a", recipe, toy.split(3))
    plan = toy.plan([("a", recipe, toy.split(1)), ("a", recipe, toy.split(2)), ("a", recipe, toy.split(3))])
    assert plan.startswith("[toy] plan: 3 runs, 1 reused, 2 to train, 2,000 optimiser steps; about ")
    assert f"about {_duration(2000 * rates['a'][0] * 8 / 2)} on cpu" in plan  # batches of 8 against the smoke's 2
    unmeasured = toy.plan([("b", recipe, toy.split(1))])
    assert "1 to train" in unmeasured and "no estimate" in unmeasured and "--smoke" in unmeasured
    quick = Toy(clips, store=ResultsStore.for_profile("quick"), profile="quick", progress=False)
    assert quick.smoke_seconds_per_step() == {}  # the quick profile has no smoke runs on record
    assert [_duration(s) for s in (42, 450, 11520)] == ["42 s", "7.5 min", "3.2 h"]
