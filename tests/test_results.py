"""esclib.results: runs keyed by identity, atomic and locked; the one summary; paired differences; the studies."""

import json
import multiprocessing
import time
import warnings

import numpy as np
import pytest

from esclib.results import ResultsStore, Results, paired_differences, setting_slug, summarise, summary_table
from esclib.results.store import CorruptResultWarning
from esclib.results.studies import STUDY_VALUES, study_claims, study_table, study_value
from esclib.results.summary import bootstrap_interval


def _identity(arm="fine-tune", fold=1, lr=1e-4, dataset="d0", seed=0):
    return {"experiment": "pann_transfer", "arm": arm, "seed": seed, "profile": "quick",
            "recipe": {"lr": lr, "epochs": 3}, "inputs": {"dataset": {"name": "esc50", "digest": dataset}},
            "split": f"split-{fold}-{seed}", "setting": {"dataset": "esc50", "fold": fold}}


def _finish(store, arm, fold, acc, **identity):
    ident = _identity(arm, fold, **identity)
    run = store.run("pann_transfer", arm, ident["setting"], ident)
    run.log_epoch(1, loss=1.0)
    return run.finish({"accuracy": acc, "n_train": 400, "confusion": [[1, 0], [0, 1]]})


def test_a_result_is_reused_only_for_exactly_its_identity(tmp_path):
    store = ResultsStore(tmp_path)
    _finish(store, "fine-tune", 1, 0.9)
    same = _identity()
    assert store.run("pann_transfer", "fine-tune", same["setting"], same).metrics["accuracy"] == 0.9
    for changed in (_identity(lr=1e-3), _identity(dataset="d1"), _identity(seed=1), _identity(fold=2)):
        run = store.run("pann_transfer", "fine-tune", changed["setting"], changed)
        assert not run.done, changed
        with pytest.raises(FileNotFoundError):
            run.result()
    # a new identity writes beside the old result, never over it
    _finish(store, "fine-tune", 1, 0.5, lr=1e-3)
    assert sorted(r["metrics"]["accuracy"] for r in store.results()) == [0.5, 0.9]


def test_finished_run_is_never_replaced_by_a_failed_one_and_force_recomputes(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    done = _finish(store, "fine-tune", 1, 0.9)
    ident = _identity()
    again = store.run("pann_transfer", "fine-tune", ident["setting"], ident)
    with pytest.raises(RuntimeError, match="already holds a finished run"):
        again.finish({"accuracy": 0.1})
    monkeypatch.setenv("ESC_FORCE_RESULTS", "1")  # esc run --force
    forced = store.run("pann_transfer", "fine-tune", ident["setting"], ident)
    assert not forced.done
    saved = forced.result_path.read_text()
    with pytest.raises(KeyError), forced:
        forced.log_epoch(1, loss=2.0)
        raise KeyError("training crashed")
    assert forced.result_path.read_text() == saved and json.loads(saved)["id"] == done["id"]
    progress = json.loads(forced.progress_path.read_text())
    assert progress["status"] == "failed" and "training crashed" in progress["error"]
    forced.finish({"accuracy": 0.95})
    monkeypatch.delenv("ESC_FORCE_RESULTS")
    assert store.run("pann_transfer", "fine-tune", ident["setting"], ident).metrics == {"accuracy": 0.95}
    assert not forced.progress_path.exists() and not list(tmp_path.rglob("*.tmp"))


def test_result_records_identity_split_environment_and_curves(tmp_path, monkeypatch):
    log = tmp_path / "written.log"
    monkeypatch.setenv("ESC_RESULTS_LOG", str(log))
    store = ResultsStore(tmp_path / "store", meta={"device": "cpu", "seed": 3})
    split = {"digest": "abc123", "dataset": "esc50", "kind": "official", "fold": 2, "sizes": {"train": 2, "test": 1},
             "parts": {"train": ["a.wav", "b.wav"], "test": ["c.wav"]}}
    ident = {"recipe": {"epochs": np.int64(5)}, "split": "abc123"}
    run = store.run("cae", "supervised", {"batch_size": 32, "fold": 2}, ident, split=split)
    run.log_epoch(1, loss=np.float32(2.0))
    run.log_epoch(2, loss=1.5)
    run.log_epoch(1, loss=1.9)  # re-logged after a resume: replaces epoch 1
    result = run.finish({"accuracy": np.float64(0.5), "auc": float("nan")})
    assert result["identity"] == {"recipe": {"epochs": 5}, "split": "abc123"} and result["id"] == run.id
    assert result["split"] == {"digest": "abc123", "sizes": {"train": 2, "test": 1}}
    assert store.split("abc123")["parts"]["test"] == ["c.wav"]
    assert result["curves"] == [{"epoch": 1, "loss": 1.9}, {"epoch": 2, "loss": 1.5}]
    assert result["metrics"] == {"accuracy": 0.5, "auc": None}
    env = result["environment"]
    assert env["device"] == "cpu" and env["seed"] == 3 and "commit" in env and "torch" in env["packages"]
    assert log.read_text().split() == [str(run.result_path.resolve())]
    assert run.dir.name.startswith("batch_size=32,fold=2-") and run.dir.name.endswith(run.id)


def test_a_corrupt_result_is_named_skipped_by_the_summary_and_trained_again(tmp_path):
    store = ResultsStore(tmp_path)
    _finish(store, "fine-tune", 1, 0.9)
    _finish(store, "fine-tune", 2, 0.8)
    broken = sorted(tmp_path.rglob("result.json"))[0]
    broken.write_text(broken.read_text()[:40])  # truncated mid-write by a crash
    with pytest.warns(CorruptResultWarning, match=str(broken)):
        table = store.aggregate("pann_transfer")
    assert table.set_index("metric").loc["accuracy", "n_runs"] == 1
    fold = json.loads(sorted(tmp_path.rglob("result.json"))[1].read_text())["setting"]["fold"]
    ident = _identity(fold=3 - fold)
    with pytest.warns(CorruptResultWarning):
        run = store.run("pann_transfer", "fine-tune", ident["setting"], ident)
    assert not run.done
    run.finish({"accuracy": 0.7})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(store.results())) == 2


def _train_once(root, marker, started):
    store = ResultsStore(root)
    ident = _identity()
    run = store.run("pann_transfer", "fine-tune", ident["setting"], ident)
    if run.done:
        return
    with run:
        if run.done:
            return
        started.set()
        with open(marker, "a") as f:
            f.write("trained\n")
        time.sleep(1.0)
        run.finish({"accuracy": 0.9})


def test_two_processes_asking_for_one_run_train_it_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    marker = tmp_path / "trainings.txt"
    first = context.Process(target=_train_once, args=(tmp_path / "store", marker, started))
    first.start()
    assert started.wait(60)
    unused = context.Event()
    second = context.Process(target=_train_once, args=(tmp_path / "store", marker, unused))
    second.start()
    first.join(60)
    second.join(60)
    assert first.exitcode == 0 and second.exitcode == 0
    assert marker.read_text().splitlines() == ["trained"]


def test_summary_matches_numpy_over_true_repeats_and_never_averages_other_parameters(tmp_path):
    store = ResultsStore(tmp_path)
    accs = [0.91, 0.95, 0.93, 0.96, 0.90]
    for fold, acc in enumerate(accs, 1):
        _finish(store, "fine-tune", fold, acc)
    for fold, acc in ((1, 0.5), (2, 0.6)):
        _finish(store, "fine-tune", fold, acc, lr=1e-2)
    _finish(store, "scratch", 1, 0.7)
    table = summarise(store.results("pann_transfer"))
    assert set(table["metric"]) == {"accuracy"}  # counts and matrices are not metrics
    default = table[(table["arm"] == "fine-tune") & (table["setting"] == "lr=0.0001")].iloc[0]
    assert default["mean"] == pytest.approx(np.mean(accs)) and default["std"] == pytest.approx(np.std(accs, ddof=1))
    assert default["n_runs"] == 5 and default["folds"] == "1,2,3,4,5"
    high = table[(table["arm"] == "fine-tune") & (table["setting"] == "lr=0.01")].iloc[0]
    assert high["mean"] == pytest.approx(0.55) and high["n_runs"] == 2
    assert default["study_value"] == 0.947 and "Table IX" in default["study_source"]
    assert "5-fold" in default["study_protocol"]
    scratch = table[table["arm"] == "scratch"].iloc[0]
    assert np.isnan(scratch["std"]) and scratch["study_value"] == 0.833
    shown = summary_table(store.results("pann_transfer")).set_index(["arm", "setting"])
    assert shown.loc[("fine-tune", "lr=0.0001"), "accuracy"] == f"{np.mean(accs):.3f} ± {np.std(accs, ddof=1):.3f}"
    assert shown.loc[("fine-tune", "lr=0.0001"), "published accuracy"] == "0.947"


def test_paired_difference_is_per_fold_with_a_bootstrap_interval():
    runs = Results()
    for fold, (a, b) in enumerate([(0.5, 0.6), (0.4, 0.55), (0.6, 0.62), (0.5, 0.5)], 1):
        runs += [{"arm": "scratch", "setting": {"fold": fold}, "metrics": {"accuracy": a}},
                 {"arm": "fine-tune", "setting": {"fold": fold}, "metrics": {"accuracy": b}}]
    diff = paired_differences(runs, "scratch", "fine-tune")
    np.testing.assert_allclose(diff.per_fold["difference"], [0.1, 0.15, 0.02, 0.0], atol=1e-12)
    assert diff.mean == pytest.approx(0.0675) and diff.favour_b == 3
    assert 0 <= diff.low <= diff.mean <= diff.high <= 0.15 and not diff.inside_noise
    assert "fine-tune − scratch: +0.068" in diff.verdict()
    flat = paired_differences([{"arm": a, "setting": {"fold": f}, "metrics": {"accuracy": v}}
                               for f, (x, y) in enumerate([(0.5, 0.6), (0.6, 0.5)], 1) for a, v in (("a", x), ("b", y))],
                              "a", "b")
    assert flat.inside_noise and flat.mean == pytest.approx(0.0)
    with pytest.raises(ValueError, match="share no fold"):
        paired_differences(runs, "scratch", "freeze_l1")


def test_bootstrap_interval_is_that_of_the_mean_and_repeatable():
    values = [0.1, 0.2, 0.3, 0.4]
    low, high = bootstrap_interval(values)
    assert (low, high) == bootstrap_interval(values)
    assert 0.1 <= low < np.mean(values) < high <= 0.4
    assert bootstrap_interval([0.3, 0.3, 0.3]) == (0.3, 0.3)


def test_setting_slug_is_readable_and_names_must_be_names(tmp_path):
    assert setting_slug({"b": [1, 2], "a": "x/y"}) == "a=x-y,b=1+2"
    with pytest.raises(ValueError, match="arm must be"):
        ResultsStore(tmp_path).run("x", "bad arm/", {}, {})


def test_study_values_pick_the_most_specific_primary_number():
    assert study_value("pann_transfer", "freeze_l3", "accuracy", {"dataset": "esc50", "fold": 1}).value == 0.918
    assert study_value("pann_transfer", "freeze_l3", "accuracy", {"dataset": "us8k"}) is None
    p1 = {"dataset": "us8k", "labelled_fraction": 0.01}
    assert study_value("fixmatch", "fixmatch-pann", "auc", p1).value == 0.9328
    assert study_value("fixmatch", "fixmatch-pann", "accuracy", {**p1, "mixup": False}).value == 0.7391
    sgd = {**p1, "threshold": 0.75, "batch_size": 32, "optimizer": "sgd"}
    assert study_value("fixmatch", "fixmatch-pann", "accuracy", sgd).study.source.endswith("Table 4")
    usb = study_value("fixmatch", "fixmatch-pann", "accuracy", {"dataset": "esc50", "labels_per_class": 5})
    assert usb.value == pytest.approx(1 - 0.4358) and not usb.primary
    assert study_value("cae", "supervised", "accuracy", {"dataset": "esc50", "split": "random", "batch_size": 32,
                                                         "labelled_fraction": 1.0}).value == 0.492
    assert study_value("cae", "supervised", "accuracy", {"dataset": "esc50", "split": "random", "batch_size": 32,
                                                         "labelled_fraction": 0.25}) is None
    assert all(0 <= v.value <= 1 and v.study.protocol for v in STUDY_VALUES)
    assert set(study_table("cae")["arm"]) == {"supervised", "cae-unpool", "cae-upsample", "random-forest", "piczak-cnn"}
    with pytest.raises(ValueError, match="unknown experiment"):
        study_table("nope")
    claims = study_claims("npid")  # study 004 gives curves only: its claims, read off Fig. 4, with their protocol
    assert list(claims["dataset"]) == ["esc10", "esc50", "us8k", "dcase2013"]
    assert claims["source"].str.contains("Fig. 4").all() and claims["protocol"].str.contains("pooled").all()
    assert study_claims("cae").empty
    with pytest.raises(ValueError, match="unknown experiment"):
        study_claims("nope")
