"""Chapter 04's experiment (esclib.experiments.npid): the pre-training and fine-tuning runs on the foundation, what
each run reads and records, the phase-2 splits, the selection rule and the diagnostics, on tiny tone worlds."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from torch import nn

from esclib.data.clips import ClipSet
from esclib.experiments import npid
from esclib.losses.npid import NPIDMemory
from esclib.results import ResultsStore
from esclib.results.summary import Results
from esclib.runner.spec import resolve
from esclib.runner.specs import get_spec
from esclib.train.npid import NPIDModel

#: the tiny recipe: ResNet-18 on 0.5-s clips at 8 kHz, NCE with 4 noise clips, two epochs of each training
TINY = dict(arch="resnet18", attention=False, sample_rate=8000, n_fft=64, hop_length=128, win_length=64, augment=True,
            npid_epochs=2, npid_batch_size=4, npid_crop_seconds=None, low_dim=16, nce_k=4, temperature=0.4,
            memory_momentum=0.5, npid_lr=0.03, npid_weight_decay=1e-4, knn_ks=(1, 3), knn_temperature=None,
            finetune_epochs=3, finetune_batch_size=4, finetune_crop_seconds=None, finetune_lr=1e-3,
            finetune_weight_decay=5e-4, gamma=0.985, cold_epochs=0, warm_epochs=1, selection="validation-fold")


def _tones(root, name="tones", n_folds=4, per_fold=4, low=300.0, high=1500.0):
    """Two classes of 0.5-s tones (``low`` / ``high`` Hz, detuned per clip) at 8 kHz; clip i's recording is
    ``src{i // 2}`` (two takes per recording, on one fold)."""
    root.mkdir(parents=True, exist_ok=True)
    t = np.arange(4000) / 8000
    rows = []
    for i in range(n_folds * per_fold):
        path = root / f"{name}-{i}.wav"
        freq = (low if i % 2 else high) * (1 + 0.02 * i)
        sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype("float32"), 8000)
        rows.append(dict(clip_id=path.name, path=str(path), fold=i // per_fold + 1, target=i % 2,
                         category="ab"[i % 2], source=f"{name}-src{i // 2}"))
    return ClipSet(name, root, ("a", "b"), n_folds, 0.5, pd.DataFrame(rows))


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    tones = _tones(tmp_path / "tones")
    store = ResultsStore(tmp_path / "results")
    pretraining = npid.NPIDPretraining({"tones": tones}, store, progress=False)
    return tones, pretraining, npid.NPIDExperiment({"tones": tones}, pretraining, store, progress=False)


def _weights(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in module.state_dict().items() if not k.startswith("classifier.")}


# ------------------------------------------------------------------------------------------------- recipes
def test_the_recipes_build_the_library_recipes_field_by_field():
    recipe = npid.FinetuneRecipe(**TINY)
    built = recipe.npid(0.5)
    assert (built.arch, built.epochs, built.batch_size, built.nce_k, built.temperature, built.memory_momentum,
            built.lr, built.weight_decay, built.low_dim, built.knn_ks) == ("resnet18", 2, 4, 4, 0.4, 0.5, 0.03, 1e-4,
                                                                           16, (1, 3))
    assert built.input.sample_rate == 8000 and built.input.hop_length == 128 and built.input.clip_seconds == 0.5
    tuned = recipe.finetune(0.5)
    assert (tuned.epochs, tuned.batch_size, tuned.lr, tuned.weight_decay, tuned.gamma, tuned.cold_epochs,
            tuned.warm_epochs) == (3, 4, 1e-3, 5e-4, 0.985, 0, 1)
    assert recipe.pretraining == npid.PretrainRecipe(**{k: v for k, v in TINY.items()
                                                        if k in npid.PretrainRecipe.__dataclass_fields__})
    # a crop at least as long as the clips is no crop (UrbanSound8K's 4-s clips under a 5-s crop setting)
    assert recipe.replace(npid_crop_seconds=2.0).npid(4.0).crop_seconds == 2.0
    assert recipe.replace(npid_crop_seconds=5.0).npid(4.0).crop_seconds is None
    with pytest.raises(ValueError, match="selection"):
        recipe.replace(selection="best")


def test_every_recipe_field_is_a_chapter_parameter_with_the_study_values_in_paper():
    spec = get_spec("04_npid")
    paper = resolve(spec, "paper")
    recipe = npid.FinetuneRecipe.from_config(paper)
    assert (recipe.arch, recipe.sample_rate, recipe.n_fft, recipe.hop_length, recipe.win_length) == (
        "resnet50", 44100, 2048, 561, 1654)
    assert (recipe.low_dim, recipe.nce_k, recipe.temperature, recipe.memory_momentum, recipe.npid_epochs,
            recipe.npid_batch_size) == (128, 64, 0.4, 0.5, 200, 64)
    assert 5 in recipe.knn_ks and 200 in recipe.knn_ks
    assert (recipe.finetune_lr, recipe.finetune_weight_decay, recipe.gamma, recipe.finetune_batch_size) == (
        2.5e-4, 5e-4, 0.985, 16)
    assert recipe.npid(5.0).input.shape == (3, 341, 394)


# ------------------------------------------------------------------------------------------------- splits
def test_phase_one_trains_without_the_test_fold_and_phase_two_pools(tmp_path):
    a, b = _tones(tmp_path / "a", "a"), _tones(tmp_path / "b", "b", low=500, high=2000)
    datasets = {"a": a, "b": b}
    test_paths = set(a.subset(a.folds == 2).paths)
    phase1 = npid.pretraining_split("npid", datasets, "a", 2)
    assert not test_paths & set(phase1.train.paths) and set(phase1.test.paths) == test_paths
    assert set(phase1.train.paths) == set(a.paths) - test_paths
    study = npid.pretraining_split("npid-pooled", datasets)
    assert test_paths <= set(study.train.paths) and len(study.train) == len(a) + len(b)  # transductive, as the study
    free = npid.pretraining_split("npid-leak-free", datasets, "a", 2)
    assert not test_paths & set(free.train.paths)
    assert not set(a.subset(a.folds == 2).table["source"]) & set(free.train.table["source"])
    assert set(b.paths) <= set(free.train.paths)  # the other dataset's every fold stays in
    assert set(free.reference.paths) == set(phase1.train.paths) and (free.reference.targets >= 0).all()
    table = npid.pool_composition(datasets, "a", 2)
    assert table.loc["test clips of the run"].tolist() == [len(test_paths), 0]


def test_the_leak_free_pool_drops_the_copies_of_a_subset_dataset(tmp_path):
    big = _tones(tmp_path / "big", "big")
    small = ClipSet("small", big.root, big.classes, 4, 0.5, big.table[big.table.index % 4 == 0].reset_index(drop=True))
    datasets = {"big": big, "small": small}
    free = npid.pretraining_split("npid-leak-free", datasets, "small", 1)
    held = set(small.subset(small.folds == 1).paths)
    assert held and not held & set(free.train.paths)
    assert len(npid.pretraining_split("npid-pooled", datasets).train) == len(big)  # each file once


def test_fine_tuning_splits_follow_the_selection(world):
    tones, _, experiment = world
    by_fold = experiment.split_of("tones", 1, "validation-fold")
    assert set(by_fold.val.folds) == {2} and set(by_fold.train.folds) == {3, 4} and set(by_fold.test.folds) == {1}
    budgeted = experiment.split_of("tones", 1, "budgeted")
    assert set(budgeted.val.folds) <= {3, 4} and not set(budgeted.val.paths) & set(budgeted.train.paths)
    assert "val" not in experiment.split_of("tones", 1, "last").parts


# ------------------------------------------------------------------------------------------------- runs
def test_the_pretraining_run_records_the_random_network_and_keeps_its_weights(world):
    tones, pretraining, _ = world
    recipe = npid.FinetuneRecipe(**TINY).pretraining
    split = pretraining.split("npid", "tones", 1)
    result, path = pretraining.pretrained("npid", recipe, split)
    metrics, curve = result["metrics"], result["curves"]
    assert [r["epoch"] for r in curve] == [1, 2]
    assert metrics["knn_k3"] == curve[-1]["knn_k3"] and metrics["n_train"] == 12
    # epoch 0 is the same network at its initialisation: rebuild it from the run's seed and measure it
    from esclib.experiments.base import seed_everything
    from esclib.train.npid import knn_evaluation, npid_model

    lib = recipe.npid(0.5)
    seed_everything(pretraining.run_seed(split))
    fresh = npid_model(lib, 12)
    random = knn_evaluation(fresh.network, lib.loader(split.train, train=False, progress=False),
                            lib.loader(split.test, train=False, progress=False), ks=(1, 3), temperature=0.4)
    assert metrics["knn_k1_random"] == pytest.approx(random["knn_k1"])
    assert metrics["knn_k3_random"] == pytest.approx(random["knn_k3"])
    trained = torch.load(path, weights_only=True)
    assert any(not torch.equal(trained[k], v) for k, v in fresh.network.state_dict().items()
               if v.dtype.is_floating_point)
    assert 0 <= metrics["instance_recall"] <= 1 and 0 <= metrics["nn_same_source"] <= 1


def test_the_leak_free_pretraining_trains_on_the_pool_and_votes_with_the_labelled_folds(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    a, b = _tones(tmp_path / "a", "a"), _tones(tmp_path / "b", "b", low=500, high=2000)
    pretraining = npid.NPIDPretraining({"a": a, "b": b}, ResultsStore(tmp_path / "results"), progress=False)
    recipe = npid.FinetuneRecipe(**TINY).pretraining.replace(npid_epochs=1)
    split = pretraining.split("npid-leak-free", "a", 1)
    result = pretraining.run("npid-leak-free", recipe, split)
    assert result["metrics"]["n_train"] == len(a) + len(b) - 4 and 0 <= result["metrics"]["knn_k3"] <= 1
    assert result["setting"] == {"dataset": "a", "fold": 1, "pool": "leak-free"}
    assert set(result["identity"]["inputs"]["datasets"]) == {"a", "b"}
    # K above the 12 labelled clips that vote is cut to them, and named so
    many = pretraining.run("npid", recipe.replace(knn_ks=(3, 200)), pretraining.split("npid", "a", 1))["metrics"]
    assert {"knn_k3", "knn_k12", "knn_k12_random"} <= set(many) and "knn_k200" not in many
    phase1 = pretraining.open("npid", recipe, pretraining.split("npid", "a", 1)).identity["inputs"]["datasets"]
    assert set(phase1) == {"a"}


def test_the_random_network_s_knn_is_epoch_zero_and_npid_s_the_last_epoch():
    before = [{"epoch": 0, "knn_k5": 0.3, "knn_k20": 0.35}]
    last = {"epoch": 6, "knn_k5": 0.5, "knn_k20": 0.45, "loss": 4.0}
    assert npid.knn_metrics(before, last) == {"knn_k5_random": 0.3, "knn_k20_random": 0.35, "knn_k5": 0.5,
                                              "knn_k20": 0.45}
    assert npid.knn_metrics([], last) == {}  # no test fold (the study's pool): no kNN


def test_the_npid_arm_starts_from_its_pretraining_run_and_scratch_does_not(world):
    tones, pretraining, experiment = world
    recipe = npid.FinetuneRecipe(**TINY)
    split = experiment.split_of("tones", 1, "last")
    result, path = pretraining.pretrained("npid", recipe.pretraining, pretraining.split("npid", "tones", 1))
    assert experiment.run_inputs("npid", recipe, split)["pretraining"] == result["id"]
    assert "pretraining" not in experiment.run_inputs("scratch", recipe, split)
    trained = torch.load(path, weights_only=True)
    started = _weights(experiment.network("npid", recipe, split))
    assert all(torch.equal(started[k], trained[k]) for k in started)
    scratch = _weights(experiment.network("scratch", recipe, split))
    assert not all(torch.equal(scratch[k], trained[k]) for k in scratch if scratch[k].dtype.is_floating_point)


def test_a_changed_pretraining_recipe_changes_the_npid_arm_and_not_the_pretraining_of_another(world):
    tones, pretraining, experiment = world
    recipe = npid.FinetuneRecipe(**TINY)
    split = experiment.split_of("tones", 1, "last")
    first = experiment.open("npid", recipe, split).id
    other = recipe.replace(nce_k=3)
    assert experiment.open("npid", other, split).id != first
    assert experiment.run_inputs("npid", other, split)["pretraining"] != \
        experiment.run_inputs("npid", recipe, split)["pretraining"]
    # the baselines read no NPID field: a new pre-training recipe leaves them, a new fine-tuning recipe does not
    assert experiment.open("scratch", other, split).id == experiment.open("scratch", recipe, split).id
    assert experiment.open("scratch", recipe.replace(finetune_lr=2e-3), split).id != \
        experiment.open("scratch", recipe, split).id
    assert experiment.open("scratch", recipe.replace(n_fft=128), split).id != experiment.open("scratch", recipe, split).id
    assert npid.NPID_ONLY_FIELDS == {"npid_epochs", "npid_batch_size", "npid_crop_seconds", "low_dim", "nce_k",
                                     "temperature", "memory_momentum", "npid_lr", "npid_weight_decay", "knn_ks",
                                     "knn_temperature"}


@pytest.mark.parametrize("selection", ["validation-fold", "last"])
def test_the_reported_accuracy_is_the_test_accuracy_of_the_selected_epoch(world, selection):
    tones, _, experiment = world
    recipe = npid.FinetuneRecipe(**TINY).replace(selection=selection)
    result = experiment.run("scratch", recipe, experiment.split_of("tones", 1, selection))
    metrics, curve = result["metrics"], pd.DataFrame(result["curves"])
    assert len(curve) == 3 and metrics["accuracy_last"] == curve["test_acc"].iloc[-1]
    assert metrics["accuracy_peak"] == curve["test_acc"].max()
    if selection == "last":
        assert metrics["n_select"] == 0 and metrics["accuracy"] == metrics["accuracy_last"]
        assert "sel_acc" not in curve
    else:
        picked = int(curve["sel_acc"].idxmax())
        assert metrics["n_select"] == 4 and metrics["selected_epoch"] == curve["epoch"].iloc[picked]
        assert metrics["accuracy"] == curve["test_acc"].iloc[picked]


def test_unavailable_arms_are_named_with_the_reason():
    kept, why = npid.available_arms(["npid", "npid-pooled", "scratch"], "resnet18", phase2=False)
    assert kept == ["npid", "scratch"] and "phase2" in why[0]
    kept, why = npid.available_arms(list(npid.ARMS), "resnet18", phase2=True)
    assert ("imagenet" in kept) == (not any(w.startswith("imagenet") for w in why))


# ------------------------------------------------------------------------------------------------- diagnostics
class _Lookup(nn.Module):
    """A 'network' whose input is already the embedding."""

    def forward(self, x):
        return x


def test_neighbour_agreement_by_hand():
    # four clips: 0 and 1 are takes of one recording (different classes), 2 is nearest to 3 (same class)
    emb = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    clips = ClipSet("toy", "/", ("a", "b"), 1, 1.0, pd.DataFrame(
        dict(clip_id=list("wxyz"), path=list("wxyz"), fold=1, target=[0, 1, 0, 0], category="a",
             source=["r1", "r1", "r2", "r3"])))
    loader = [(emb, torch.tensor([0, 1, 0, 0]))]
    agreement = npid.neighbour_agreement(_Lookup(), loader, clips)
    assert agreement["nn_same_class"] == pytest.approx(0.5) and agreement["nn_same_source"] == pytest.approx(0.5)
    unit = torch.nn.functional.normalize(emb, dim=1)
    pairs = [float(unit[i] @ unit[j]) for i in range(4) for j in range(4) if i != j]
    assert agreement["mean_cosine"] == pytest.approx(np.mean(pairs))
    assert npid.neighbour_agreement(_Lookup(), None, clips, embedding=emb.numpy()) == pytest.approx(agreement)


def test_instance_recall_counts_clips_nearest_to_their_own_entry():
    memory = NPIDMemory(4, 2, nce_k=1)
    memory.memory = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    model = NPIDModel(_Lookup(), memory)
    own = [(torch.tensor([[1.0, 0.1], [0.1, 1.0], [-1.0, 0.0], [1.0, 0.0]]), torch.zeros(4))]
    assert npid.instance_recall(model, own) == pytest.approx(0.75)
    assert npid.instance_recall(model, None, embedding=own[0][0].numpy()) == pytest.approx(0.75)  # given, not embedded
    # by cosine: a long bank row (never updated since its random start) must not win on length
    memory = NPIDMemory(2, 2, nce_k=1)
    memory.memory = torch.tensor([[1.0, 0.0], [6.0, 8.0]])
    clips = [(torch.nn.functional.normalize(torch.tensor([[0.9, 0.436], [0.6, 0.8]]), dim=1), torch.zeros(2))]
    assert npid.instance_recall(NPIDModel(_Lookup(), memory), clips) == 1.0


def test_the_selection_monitor_scores_the_selection_clips_and_the_test_fold_apart():
    from esclib.train.loop import evaluate

    right = [(torch.tensor([[5.0, 0.0], [0.0, 5.0]]), torch.tensor([0, 1]))]
    wrong = [(torch.tensor([[5.0, 0.0], [0.0, 5.0]]), torch.tensor([1, 0]))]
    monitor = npid.SelectionMonitor(lambda m, loader, d: {"test_acc": evaluate(m, loader, d)["val_acc"]}, wrong)
    scores = monitor(_Lookup(), right, torch.device("cpu"))
    assert scores == {"test_acc": 1.0, "sel_acc": 0.0}


def test_knn_tables_and_numbers_from_stored_runs():
    def run(fold, random, trained):
        return {"arm": "npid", "setting": {"dataset": "d", "fold": fold, "pool": "none"}, "identity": {},
                "metrics": {"knn_k5": trained, "knn_k5_random": random, "instance_recall": 0.9, "n_train": 10,
                            "nn_same_class": 0.2, "nn_same_class_random": 0.3, "nn_same_source": 0.4,
                            "nn_same_source_random": 0.1, "mean_cosine": 0.5, "mean_cosine_random": 0.6},
                "curves": [{"epoch": 1, "knn_k5": trained, "loss": 6.0}, {"epoch": 2, "knn_k5": trained, "loss": 5.0}]}

    runs = Results([run(1, 0.3, 0.5), run(2, 0.2, 0.3), run(3, 0.4, 0.5)])
    numbers = npid.knn_numbers(runs, 5)
    assert numbers["knn_random"] == pytest.approx(0.3) and numbers["knn_npid"] == pytest.approx(0.4333333)
    assert numbers["knn_diff"] == pytest.approx(0.1333333) and numbers["knn_higher"] == "3 of 3"
    assert numbers["knn_verdict"] == "clearly above zero" and numbers["recall_chance"] == pytest.approx(0.1)
    assert (numbers["loss_first"], numbers["loss_last"], numbers["cos_npid"]) == (6.0, 5.0, 0.5)
    assert "learned its own task, but not through what makes a class" in numbers["npid_diagnosis"]
    assert "same recording" in numbers["npid_diagnosis"]
    assert "has not learned" in npid.diagnosis({**numbers, "recall_npid": 0.3})
    curves = npid.knn_curves(runs)
    assert curves.groupby("epoch")["kNN accuracy"].mean().round(4).to_dict() == {0: 0.3, 1: 0.4333, 2: 0.4333}
    assert npid.knn_table(runs)["NPID − random"].round(3).tolist() == [0.2, 0.1, 0.1]


def test_fine_tuning_tables_pair_the_arms_fold_by_fold():
    def run(arm, fold, accs):
        return {"experiment": "npid", "arm": arm, "identity": {},
                "setting": {"dataset": "d", "fold": fold, "selection": "last"},
                "metrics": {"accuracy": accs[-1], "accuracy_last": accs[-1], "accuracy_peak": max(accs),
                            "selected_epoch": len(accs), "n_train": 8, "n_select": 0},
                "curves": [{"epoch": e + 1, "test_acc": a} for e, a in enumerate(accs)]}

    runs = Results([run("scratch", 1, [0.1, 0.2]), run("npid", 1, [0.3, 0.3]), run("scratch", 2, [0.2, 0.4]),
                    run("npid", 2, [0.2, 0.5]), run("scratch", 3, [0.1, 0.1]), run("npid", 3, [0.4, 0.2])])
    early = npid.early_epochs(runs, "scratch", "npid", epochs=2).set_index("epoch")
    assert early.loc[1, "mean"] == pytest.approx((0.2 + 0.0 + 0.3) / 3)
    assert early.loc[2, "mean"] == pytest.approx((0.1 + 0.1 + 0.1) / 3)
    assert not early.loc[2, "inside the noise"] and early.loc[1, "inside the noise"] == (early.loc[1, "low"] <= 0)
    row = npid.paired_rows(runs, [("scratch", "npid")]).iloc[0]
    assert row["mean difference"] == pytest.approx(0.1) and row["per fold"] == "+0.100 +0.100 +0.100"
    numbers = npid.difference_numbers("d", runs, "scratch", "npid")
    assert numbers["d"] == pytest.approx(0.1) and numbers["d_higher"] == "3 of 3"
    assert numbers["d_verdict"] == "clearly above zero"
    table = npid.selection_table(runs).set_index("arm")
    assert table.loc["npid", "accuracy (best test epoch)"] == pytest.approx(round((0.3 + 0.5 + 0.4) / 3, 3))
    assert npid.difference_numbers("d", runs, "scratch", "imagenet")["d_verdict"].startswith("not run")
