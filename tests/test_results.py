"""esclib.results: the store's atomicity and reuse, aggregation against numpy, the studies' registry."""

import json

import numpy as np
import pytest

from esclib.results import AGGREGATE_COLUMNS, ResultsStore, results_table, setting_slug
from esclib.results.studies import STUDY_VALUES, study_table, study_value


def _finish(store, arm, fold, acc, **setting):
    run = store.run("pann_transfer", arm, {"dataset": "esc50", "fold": fold, **setting}, {"lr": 1e-4})
    run.log_epoch(1, loss=1.0)
    return run.finish({"accuracy": acc, "n": 400, "confusion": [[1, 0], [0, 1]]})


def test_finished_run_is_reused_and_never_replaced_by_a_failed_one(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    _finish(store, "fine-tune", 1, 0.9)
    saved = (tmp_path / "pann_transfer/fine-tune/dataset=esc50,fold=1/result.json").read_text()
    again = store.run("pann_transfer", "fine-tune", {"dataset": "esc50", "fold": 1}, {"lr": 1e-4})
    assert again.done and again.metrics["accuracy"] == 0.9
    with pytest.raises(RuntimeError, match="already holds a finished run"):
        again.finish({"accuracy": 0.1})
    monkeypatch.setenv("ESC_FORCE_RESULTS", "1")  # esc run --force
    forced = store.run("pann_transfer", "fine-tune", {"dataset": "esc50", "fold": 1}, {"lr": 1e-4})
    assert not forced.done
    with pytest.raises(KeyError), forced:
        forced.log_epoch(1, loss=2.0)
        raise KeyError("training crashed")
    assert (forced.dir / "result.json").read_text() == saved
    progress = json.loads((forced.dir / "progress.json").read_text())
    assert progress["status"] == "failed" and "training crashed" in progress["error"]
    forced.finish({"accuracy": 0.95})
    assert store.run("pann_transfer", "fine-tune", {"dataset": "esc50", "fold": 1}, {}).metrics == {"accuracy": 0.95}
    assert not (forced.dir / "progress.json").exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_result_records_params_environment_and_curves(tmp_path, monkeypatch):
    log = tmp_path / "written.log"
    monkeypatch.setenv("ESC_RESULTS_LOG", str(log))
    store = ResultsStore(tmp_path / "store", meta={"device": "cpu", "seed": 3})
    run = store.run("cae", "supervised", {"batch_size": 32, "fold": 2}, {"epochs": np.int64(5)})
    run.log_epoch(1, loss=np.float32(2.0))
    run.log_epoch(2, loss=1.5)
    run.log_epoch(1, loss=1.9)  # re-logged after a resume: replaces epoch 1
    result = run.finish({"accuracy": np.float64(0.5), "auc": float("nan")})
    assert result["params"] == {"epochs": 5}
    assert result["curves"] == [{"epoch": 1, "loss": 1.9}, {"epoch": 2, "loss": 1.5}]
    assert result["metrics"] == {"accuracy": 0.5, "auc": None}
    env = result["environment"]
    assert env["device"] == "cpu" and env["seed"] == 3 and "commit" in env and "torch" in env["packages"]
    assert log.read_text().split() == [str(run.result_path.resolve())]


def test_aggregate_matches_numpy_and_shows_study_values(tmp_path):
    store = ResultsStore(tmp_path)
    accs = [0.91, 0.95, 0.93, 0.96, 0.90]
    for fold, acc in enumerate(accs, 1):
        _finish(store, "fine-tune", fold, acc)
    _finish(store, "scratch", 1, 0.7)
    table = store.aggregate("pann_transfer")
    assert list(table.columns) == list(AGGREGATE_COLUMNS)
    assert set(table["metric"]) == {"accuracy"}  # counts and matrices are not aggregated
    row = table.set_index("arm").loc["fine-tune"]
    assert row["mean"] == pytest.approx(np.mean(accs)) and row["std"] == pytest.approx(np.std(accs, ddof=1))
    assert row["n_runs"] == 5 and row["setting"] == "dataset=esc50"
    assert row["study_value"] == 0.947 and "Table IX" in row["study_source"]
    scratch = table.set_index("arm").loc["scratch"]
    assert np.isnan(scratch["std"]) and scratch["study_value"] == 0.833
    shown = results_table("pann_transfer", store)
    assert shown.set_index("arm").loc["fine-tune", "ours"] == f"{np.mean(accs):.3f} ± {np.std(accs, ddof=1):.3f}"
    assert shown.set_index("arm").loc["fine-tune", "published"] == "0.947"


def test_settings_are_grouped_and_slugs_never_collide_silently(tmp_path):
    store = ResultsStore(tmp_path)
    store.run("cae", "cae-unpool", {"batch_size": 16, "fold": 1}, {}).finish({"accuracy": 0.4})
    store.run("cae", "cae-unpool", {"batch_size": 32, "fold": 1}, {}).finish({"accuracy": 0.5})
    assert sorted(store.aggregate("cae")["setting"]) == ["batch_size=16", "batch_size=32"]
    assert setting_slug({"b": [1, 2], "a": "x/y"}) == "a=x-y,b=1+2"
    store.run("x", "arm", {"a": "x/y"}, {}).finish({"accuracy": 1.0})
    with pytest.raises(ValueError, match="share the folder name"):
        store.run("x", "arm", {"a": "x-y"}, {})
    with pytest.raises(ValueError, match="arm must be"):
        store.run("x", "bad arm/", {}, {})


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
    assert all(0 <= v.value <= 1 for v in STUDY_VALUES)
    assert set(study_table("cae")["arm"]) == {"supervised", "cae-unpool", "cae-upsample", "random-forest", "piczak-cnn"}
    assert study_value("cae", "cae-unpool", "accuracy", {"dataset": "esc50", "split": "random", "batch_size": 32,
                                                         "labelled_fraction": 1.0}).study.source.endswith("Table 1")
    with pytest.raises(ValueError, match="unknown experiment"):
        study_table("nope")
