"""Chapter 05's experiment (study 001): the pre-training pool, run identity, one protocol for every arm, the random
arm as every method's initialisation, the evaluation's known answers, and the chapter's spec."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from esclib.data.clips import ClipSet
from esclib.data.splits import fold_split
from esclib.experiments import ssl as exp
from esclib.experiments.base import RunContext, Split
from esclib.results.store import ResultsStore
from esclib.runner.spec import resolve
from esclib.runner.specs.ch05_ssl import SPEC

RATE, SECONDS = 48000, 4.0


def _us8k(tmp_path, n_classes=3, per_fold=2) -> ClipSet:
    """A ten-fold UrbanSound8K-like set of 4-s WAV files at 48 kHz: class c is a tone at 500 (c + 1) Hz."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(RATE * SECONDS)) / RATE
    rows = []
    for fold in range(1, 11):
        for c in range(n_classes):
            for i in range(per_fold):
                path = tmp_path / f"{fold}-{c}-{i}.wav"
                wave = 0.3 * np.sin(2 * np.pi * 500 * (c + 1) * (1 + 0.03 * i) * t) + 0.01 * rng.standard_normal(t.size)
                sf.write(path, wave.astype("float32"), RATE)
                rows.append({"clip_id": path.name, "path": str(path), "fold": fold, "target": c,
                             "category": f"class{c}", "source": f"{fold}-{c}-{i}"})
    return ClipSet("us8k", tmp_path, tuple(f"class{c}" for c in range(n_classes)), 10, SECONDS, pd.DataFrame(rows))


def _recipe(**changes) -> exp.EvalRecipe:
    base = dict(backbone="resnet18", input_frames=32, input_bins=32, view_policy="byola", ssl_epochs=2, batch_size=8,
                lr=1e-3, weight_decay=1e-4, warmup_epochs=0, head_scale=0.0625, queue_size=8, simclr_proj_dim=16,
                probe_epochs=5, probe_budgets=(1,), knn_k=3, knn_temperature=0.07, selection="validation-fold",
                supervised_epochs=1)
    return exp.EvalRecipe(**{**base, **changes})


def _experiments(clips, store, folds=(1, 2), pool="shared"):
    splits = [fold_split(clips, k) for k in folds]
    pretraining = exp.SSLPretraining(clips, store, progress=False)
    return pretraining, exp.SSLExperiment(clips, pretraining, splits, store, pool=pool, progress=False)


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    return _us8k(tmp_path / "data"), ResultsStore(tmp_path / "results")


# ------------------------------------------------------------------------------------------- the pool
def test_the_shared_pool_holds_no_test_or_validation_clip_of_any_split_and_no_label(tmp_path):
    clips = _us8k(tmp_path, per_fold=1)
    splits = [fold_split(clips, k) for k in (1, 2, 3)]
    pool = exp.pretraining_pool(splits, "shared")
    ids = set(pool.table["clip_id"])
    for s in splits:
        assert not ids & set(s.test.table["clip_id"]) and not ids & set(s.val.table["clip_id"])
        assert ids <= set(s.train.table["clip_id"])
    assert sorted(set(pool.folds)) == [5, 6, 7, 8, 9, 10]  # tests 1-3 and validations 2-4 are out
    assert (pool.targets == -1).all()
    per_fold = exp.pretraining_pool(splits, "per-fold", 2)
    assert set(per_fold.table["clip_id"]) == set(splits[1].train.table["clip_id"]) and (per_fold.targets == -1).all()
    with pytest.raises(ValueError, match="no split has test fold 7"):
        exp.pretraining_pool(splits, "per-fold", 7)
    with pytest.raises(ValueError, match="pool must be one of"):
        exp.pretraining_pool(splits, "all")


def test_pretraining_reads_only_its_pool_and_never_a_label(world, monkeypatch):
    clips, store = world
    pretraining, experiment = _experiments(clips, store)
    seen = {}
    original = exp.pretrain

    def spy(method, loader, views, recipe, **kwargs):
        seen["rows"] = np.asarray(loader.dataset.rows)
        seen["targets"] = np.concatenate([np.asarray(b[2]) for b in loader])
        return original(method, loader, views, recipe, **kwargs)

    monkeypatch.setattr(exp, "pretrain", spy)
    split = experiment.split(1)
    pretraining.pretrained("simclr", _recipe(), experiment.pool_of(split))
    read = set(clips.table["clip_id"].iloc[seen["rows"]])
    held_out = {c for s in experiment.splits for part in (s.test, s.val) for c in part.table["clip_id"]}
    assert read and not read & held_out
    assert read == set(experiment.pool_of(split).table["clip_id"])
    assert (seen["targets"] == -1).all()
    labelled = clips.subset(clips.folds == 9)
    with pytest.raises(ValueError, match="must be unlabelled"):
        pretraining.loader(_recipe(), labelled, 0)


# -------------------------------------------------------------------------------------------- identity
def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, tuple):
        return (*value, 99)
    if isinstance(value, str):
        return {"resnet18": "mobilenet_v2", "byola": "quaclrs_spec_augment", "validation-fold": "last"}[value]
    return value * 2 if value else 1


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(exp.EvalRecipe)])
def test_every_recipe_field_changes_the_identity_of_every_arm(world, field):
    clips, store = world
    pretraining, experiment = _experiments(clips, store)
    recipe = _recipe()
    other = recipe.replace(**{field: _changed(getattr(recipe, field))})
    split = experiment.split(1)
    for arm in ("random", "simclr", "supervised-scratch"):
        setting = experiment.setting(arm, recipe, split)
        assert (experiment.identity(arm, recipe, split, setting)
                != experiment.identity(arm, other, split, experiment.setting(arm, other, split))), (arm, field)
    pretrain_fields = {f.name for f in dataclasses.fields(exp.PretrainRecipe)}
    pool = exp.pool_split(experiment.pool_of(split))
    same_pretraining = pretraining.open("dino", recipe.pretraining, pool).id == pretraining.open(
        "dino", other.pretraining, pool).id
    # a pre-training field trains the methods anew; an evaluation field reuses their pre-training
    assert same_pretraining == (field not in pretrain_fields)


def test_an_ssl_arm_names_the_pretraining_run_it_evaluates(world):
    clips, store = world
    pretraining, experiment = _experiments(clips, store, folds=(1,))
    recipe = _recipe()
    split = experiment.split(1)
    result = experiment.run("simclr", recipe, split)
    pretrained = list(store.results("ssl_pretrain"))
    assert len(pretrained) == 1 and result["identity"]["inputs"]["encoder"] == pretrained[0]["id"]
    assert "encoder" not in experiment.run("random", recipe, split)["identity"]["inputs"]
    # the pool is part of the pre-training's identity: the same clips are the same run, other clips another one
    _, shared = _experiments(clips, store, folds=(1, 2))
    _, per_fold = _experiments(clips, store, folds=(1, 2), pool="per-fold")
    mine = experiment.run_inputs("simclr", recipe, split)
    assert per_fold.run_inputs("simclr", recipe, split) == mine != shared.run_inputs("simclr", recipe, split)


# ------------------------------------------------------------------------------- arms and one protocol
def test_the_random_arm_is_the_initialisation_every_method_starts_from(world):
    clips, store = world
    pretraining, experiment = _experiments(clips, store)
    recipe = _recipe()
    random_net, _, _ = experiment.encoder("random", recipe, experiment.split(2))
    reference = random_net.state_dict()
    for arm in exp.METHOD_ARMS:
        method = pretraining.method(arm, recipe)
        encoder = method.teacher_backbone if arm == "dino" else method.backbone
        for name, value in encoder.state_dict().items():
            assert torch.equal(value, reference[name]), (arm, name)
    other, _ = exp.initial_backbone(recipe, seed=1)
    assert not torch.equal(other.state_dict()["conv1.weight"], reference["conv1.weight"])


def test_every_arm_is_measured_by_the_same_probe_and_knn(world, monkeypatch):
    clips, store = world
    _, experiment = _experiments(clips, store, folds=(1,))
    calls = {"probe": [], "knn": []}
    probe, knn = exp.linear_probe, exp.knn_evaluation

    def spy_probe(tx, ty, sx, sy, **kwargs):
        calls["probe"].append((len(tx), len(sx), None if kwargs["val"] is None else len(kwargs["val"][0]),
                               kwargs["max_epochs"], kwargs["seed"]))
        return probe(tx, ty, sx, sy, **kwargs)

    def spy_knn(tx, ty, sx, sy, **kwargs):
        calls["knn"].append((len(tx), len(sx), kwargs["k"], kwargs["temperature"]))
        return knn(tx, ty, sx, sy, **kwargs)

    fitted = []
    fit = RunContext.fit

    def spy_fit(self, model, loader, **kwargs):
        fitted.append((loader.dataset.rows, kwargs["val_loader"].dataset.rows))
        return fit(self, model, loader, **kwargs)

    monkeypatch.setattr(exp, "linear_probe", spy_probe)
    monkeypatch.setattr(exp, "knn_evaluation", spy_knn)
    monkeypatch.setattr(RunContext, "fit", spy_fit)
    recipe = _recipe(probe_budgets=())
    split = experiment.split(1)
    for arm in ("random", "simclr", "byol", "supervised-scratch"):
        experiment.run(arm, recipe, split)
    # the supervised baseline trains on the training clips and picks its epoch on the validation fold
    ids = clips.table["clip_id"].to_numpy()
    (train_rows, val_rows), = fitted
    assert set(ids[train_rows]) == set(split.train.table["clip_id"])
    assert set(ids[val_rows]) == set(split.val.table["clip_id"])
    assert len(calls["probe"]) == 4 and len(set(calls["probe"])) == 1
    assert len(calls["knn"]) == 4 and len(set(calls["knn"])) == 1
    n_train, n_test, n_val, epochs, _ = calls["probe"][0]
    assert (n_train, n_test, n_val, epochs) == (len(split.train), len(split.test), len(split.val), 5)
    assert calls["knn"][0][2:] == (3, 0.07)


def _separable(n_per_class=12, classes=3, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.eye(classes, dim) * 10
    y = np.repeat(np.arange(classes), n_per_class)
    return (centres[y] + rng.standard_normal((len(y), dim))).astype(np.float32), y


def _toy_split(y_train, y_val, y_test):
    def part(y, fold):
        table = pd.DataFrame({"clip_id": [f"{fold}-{i}" for i in range(len(y))], "path": [f"/x/{fold}-{i}" for i in
                                                                                         range(len(y))],
                              "fold": fold, "target": y, "category": [f"c{c}" for c in y],
                              "source": [f"{fold}-{i}" for i in range(len(y))]})
        return ClipSet("toy", "/x", ("c0", "c1", "c2"), 10, 1.0, table)

    return Split({"train": part(y_train, 3), "val": part(y_val, 2), "test": part(y_test, 1)}, fold=1)


@pytest.mark.parametrize("selection", ["validation-fold", "budgeted", "last"])
def test_the_protocol_separates_separable_embeddings_under_every_selection(selection, monkeypatch):
    (tx, ty), (vx, vy), (sx, sy) = (_separable(seed=s) for s in (0, 1, 2))
    split = _toy_split(ty, vy, sy)
    seen = []
    probe = exp.linear_probe

    def spy(a, b, c, d, **kwargs):
        seen.append((len(a), None if kwargs["val"] is None else len(kwargs["val"][0])))
        return probe(a, b, c, d, **kwargs)

    monkeypatch.setattr(exp, "linear_probe", spy)
    metrics = exp.frozen_evaluation({"train": (tx, ty), "val": (vx, vy), "test": (sx, sy)}, split,
                                    _recipe(selection=selection, probe_epochs=1000, probe_budgets=(1, 5)), 0, 3)
    assert metrics["accuracy"] >= 0.95 and metrics["knn_accuracy"] == 1.0
    assert metrics["budget_5"] >= 0.9 and 0 <= metrics["budget_1"] <= 1
    confusion = np.asarray(metrics["confusion"])
    assert confusion.sum() == len(sy) and confusion.trace() / len(sy) == metrics["accuracy"]
    # the model is picked on the validation fold, on a fifth of the training labels, or not at all
    expected = {"validation-fold": (36, 36), "budgeted": (36 - 6, 6), "last": (36, None)}[selection]
    assert seen[0] == expected


def test_knn_uses_the_recipes_neighbours_and_temperature():
    """A test point whose nearest neighbour is of class 1 but whose next two are of class 0: k = 1 says 1, k = 3
    with a low temperature (the nearest dominates) says 1, with a high one (a near-majority vote) says 0."""
    train = np.array([[1.0, 0.0], [0.8, 0.6], [0.8, -0.6]], dtype=np.float32)
    ty = np.array([1, 0, 0])
    test, sy = np.array([[1.0, 0.05]], dtype=np.float32), np.array([1])
    split = _toy_split(ty, ty, sy)
    x = {"train": (train, ty), "val": (train, ty), "test": (test, sy)}
    for k, temperature, expected in ((1, 10.0, 1.0), (3, 0.01, 1.0), (3, 10.0, 0.0)):
        recipe = _recipe(knn_k=k, knn_temperature=temperature, probe_budgets=(), probe_epochs=1)
        assert exp.frozen_evaluation(x, split, recipe, 0, 3)["knn_accuracy"] == expected, (k, temperature)


# --------------------------------------------------------------------------------------- end to end
def test_a_tiny_chapter_runs_records_the_collapse_monitors_and_reuses_its_runs(world):
    clips, store = world
    pretraining, experiment = _experiments(clips, store, folds=(1, 2))
    recipe = _recipe()
    cells = [(arm, recipe, experiment.split(k)) for arm in ("random", "dino", "supervised-scratch") for k in (1, 2)]
    runs = experiment.grid(cells)
    assert len(runs) == 6 and all(0 <= r["metrics"]["accuracy"] <= 1 for r in runs)
    assert {"knn_accuracy", "rankme", "budget_1", "confusion"} <= set(runs.select(arm="dino")[0]["metrics"])
    pretrained = list(store.results("ssl_pretrain"))
    assert len(pretrained) == 1  # one shared pre-training serves both folds
    monitors = pretrained[0]["metrics"]
    assert 0 < monitors["teacher_entropy"] <= monitors["log_k"] + 1e-6 and monitors["rankme_init"] > 1
    assert len(pretrained[0]["curves"]) == recipe.ssl_epochs
    table = exp.pretraining_table(experiment, recipe, ["dino"])
    assert table.loc[0, "epochs"] == recipe.ssl_epochs and 0 < table.loc[0, "teacher entropy / log k"] <= 1
    paired = exp.paired_table(runs, ["dino", "supervised-scratch"])
    assert len(paired) == 4 and set(paired["folds"]) == {2}
    again = _experiments(clips, store, folds=(1, 2))[1].grid(cells)
    assert [r["id"] for r in again] == [r["id"] for r in runs]
    assert [r["metrics"]["accuracy"] for r in again] == [r["metrics"]["accuracy"] for r in runs]
    assert len(list(store.results("ssl"))) == 6


# ------------------------------------------------------------------------------------------------ spec
@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_the_spec_builds_both_recipes_in_both_profiles(profile):
    params = resolve(SPEC, profile)
    recipe = exp.EvalRecipe.from_config(params)
    assert recipe.pretraining == exp.PretrainRecipe.from_config(params)
    assert len(params["folds"] if params["folds"] != "all" else range(10)) >= 3
    if profile == "paper":
        assert set(params["arms"]) == set(exp.ARMS) and recipe.size == (224, 224)
        assert params["pretraining_pool"] == "per-fold"


def test_bad_recipe_values_are_refused_with_their_name():
    with pytest.raises(ValueError, match="selection must be one of"):
        _recipe(selection="best")
    with pytest.raises(ValueError, match="view_policy must be one of"):
        _recipe(view_policy="imagenet")
    with pytest.raises(ValueError, match="inception_v3"):
        _recipe(backbone="inception_v3")
    with pytest.raises(ValueError, match="warmup_epochs"):
        _recipe(warmup_epochs=2)
    with pytest.raises(ValueError, match=r"parameter 'arms'.*got \['moco'\]"):
        resolve(SPEC, "quick", arms="random,moco")


def _linears(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


def test_the_recipe_reaches_the_methods_it_names_and_only_those(world):
    clips, store = world
    pretraining, _ = _experiments(clips, store)
    recipe = _recipe(queue_size=24, simclr_proj_dim=40, head_scale=0.25)
    moco, swav, simclr = (pretraining.method(arm, recipe) for arm in ("mocov2", "swav", "simclr"))
    assert moco.queue.items.shape[0] == 24 and all(q.items.shape[0] == 24 for q in swav.queues)
    assert simclr.eval().head(torch.randn(4, 512)).shape == (4, 40)
    assert swav.prototypes.out_features == round(3000 * 0.25)  # the published 3,000 prototypes, scaled
    byol = pretraining.method("byol", recipe)
    assert recipe.method_params("byol") == {} and _linears(byol.head)[0].out_features == round(4096 * 0.25)


def _result(arm, fold, probe, knn):
    return {"experiment": "ssl", "arm": arm, "setting": {"dataset": "us8k", "fold": fold},
            "identity": {"recipe": {}}, "metrics": {"accuracy": probe, "knn_accuracy": knn}}


def test_the_prose_counts_and_words_follow_the_paired_differences():
    from esclib.results.summary import Results

    runs = Results([_result("random", k, 0.5, 0.3) for k in (1, 2, 3)]
                   + [_result("simclr", k, 0.6 + 0.01 * k, 0.25) for k in (1, 2, 3)]  # probe above, kNN below
                   + [_result("byol", k, 0.5 + d, 0.4) for k, d in ((1, -0.05), (2, 0.05), (3, 0.0))]  # noise, above
                   + [_result("supervised-scratch", k, 0.55, 0.5) for k in (1, 2, 3)])
    counts = exp.evaluation_counts(runs, ["simclr", "byol", "dino"])
    assert counts["n_methods"] == 2 and counts["n_probe_above"] == 1 and counts["n_knn_above"] == 1
    assert counts["best_probe"] == pytest.approx(0.62) and counts["sup_words"] == "no better than"
    numbers = exp.difference_numbers(runs, "simclr")
    assert numbers["dp_simclr"] == pytest.approx(0.12) and numbers["dp_simclr_verdict"] == "clearly above zero"
    assert numbers["dk_simclr_verdict"] == "clearly below zero" and numbers["dp_simclr_higher"] == "3 of 3"
    assert exp.difference_numbers(runs, "byol")["dp_byol_verdict"] == "inside the fold noise"
    assert exp.difference_numbers(runs, "dino")["dp_dino_verdict"] == "not run"
    words = exp.collapse_words({"rankme_init": 40.0, "rankme_simclr": 100.0, "rankme_byol": 20.0,
                                "dino_entropy": 0.95})
    assert words["rank_words_simclr"].startswith("above") and words["rank_words_byol"].startswith("below")
    assert words["rank_words_swav"] == "not run" and "uniform" in words["dino_words"]
    assert "same output" in exp.collapse_words({"dino_entropy": 0.05})["dino_words"]


def test_the_smoke_run_takes_the_paper_recipe_with_one_fold_and_few_steps(monkeypatch):
    from esclib import smoke

    monkeypatch.setenv(smoke.SMOKE_ENV, "1")
    params = resolve(SPEC, "paper")
    recipe = exp.EvalRecipe.from_config(params)
    assert params["folds"] == (1,) and "supervised-scratch" in params["arms"] and params["proj_dims"] == (64,)
    assert recipe.size == (224, 224) and recipe.backbone == "resnet18" and recipe.head_scale == 1.0
    assert recipe.ssl_epochs == 1 and recipe.probe_budgets == (1,)


def test_grad_cam_explains_the_probes_prediction_through_the_embedding_network(world):
    clips, store = world
    _, experiment = _experiments(clips, store, folds=(1,))
    split = experiment.split(1)
    assert exp.grad_cam_examples(experiment, "random", _recipe(), split) == []  # ResNet-18's layer4 is 1 x 1 at 32 x 32
    recipe = _recipe(input_frames=64, input_bins=80)
    shown = exp.grad_cam_examples(experiment, "dino", recipe, split, n=2)
    assert [e.true for e in shown] == ["class0", "class1"]
    assert [e.path for e in shown] == split.test.table.groupby("target").head(1)["path"].tolist()[:2]
    for example in shown:
        assert example.image.shape == example.cam.shape == (80, 64)  # (frequency, time) of the backbone's input
        assert example.cam.min() >= 0 and example.cam.max() == pytest.approx(1.0)
    # the class explained is the one the protocol's probe predicts on DINO's embedding (the teacher's)
    encode, spectrogram, _ = experiment.encoder("dino", recipe, split)
    probe, _ = exp.fit_probe(experiment.split_embeddings(encode, spectrogram, split, experiment.device), split, recipe,
                             experiment.seed, clips.num_classes)
    first = split.test.table.reset_index(drop=True).groupby("target").head(1).index[:2]
    assert [e.predicted for e in shown] == [clips.classes[i] for i in probe.scores[first].argmax(1)]
