"""The frozen-embedding evaluation (chapters 4-6): the linear probe and the weighted kNN reach ~100 % on separable
embeddings, standardise with the training statistics, keep the epoch of lowest validation loss, and the label
budgets are class-balanced subsets of the training clips."""

import numpy as np
import pandas as pd
import pytest

from esclib.data.clips import ClipSet
from esclib.data.metadata import clip_table
from esclib.train.probe import budget_rows, effective_rank, knn_evaluation, label_budget_curve, linear_probe


def _clusters(n_per_class=30, classes=4, dim=64, seed=0, spread=0.3, offset=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)) * 3
    y = np.repeat(np.arange(classes), n_per_class)
    x = centres[y] + spread * rng.normal(size=(len(y), dim))
    return (offset + scale * x).astype(np.float32), y


def test_probe_and_knn_reach_100_percent_on_separable_embeddings():
    tx, ty = _clusters(seed=0)
    vx, vy = _clusters(n_per_class=10, seed=0)
    sx, sy = _clusters(n_per_class=10, seed=0)
    rng = np.random.default_rng(9)
    sx = sx + 0.05 * rng.normal(size=sx.shape).astype(np.float32)
    result = linear_probe(tx, ty, sx, sy, val=(vx, vy))
    assert result.metrics["accuracy"] == 1.0 and result.metrics["macro_f1"] == 1.0
    assert np.trace(np.array(result.metrics["confusion"])) == len(sy)
    knn = knn_evaluation(tx, ty, sx, sy, k=5, temperature=0.07)
    assert knn["accuracy"] == 1.0


def test_probe_standardises_with_the_training_statistics():
    tx, ty = _clusters(seed=1, offset=1e4, scale=1e-3)
    sx, sy = _clusters(n_per_class=10, seed=1, offset=1e4, scale=1e-3)
    result = linear_probe(tx, ty, sx, sy, max_epochs=30)
    assert result.metrics["accuracy"] == 1.0 and result.best_epoch == 30
    one_class = sy == 2
    alone = linear_probe(tx, ty, sx[one_class], sy[one_class], n_classes=4, max_epochs=30)
    assert alone.metrics["accuracy"] == 1.0


def test_probe_keeps_the_last_epoch_of_best_validation_accuracy_and_stops_early():
    tx, ty = _clusters(seed=2, spread=2.5, dim=64, n_per_class=8)
    vx, vy = _clusters(seed=3, spread=2.5, dim=64, n_per_class=8)
    result = linear_probe(tx, ty, tx, ty, val=(vx, vy), patience=5, lr=3e-2, max_epochs=200)
    history = pd.DataFrame(result.history)
    best = history.val_acc.max()
    assert result.best_epoch == int(history[history.val_acc == best].epoch.max())
    assert len(history) == result.best_epoch + 5 < 200
    assert result.history[result.best_epoch - 1]["val_acc"] < 1.0
    on_val = linear_probe(tx, ty, vx, vy, val=(vx, vy), patience=5, lr=3e-2, max_epochs=200)
    assert on_val.metrics["accuracy"] == pytest.approx(on_val.history[on_val.best_epoch - 1]["val_acc"])
    assert on_val.metrics["accuracy"] > on_val.history[-1]["val_acc"]
    assert result.scores.shape == (len(ty), 4)



def test_the_kept_classifier_on_raw_embeddings_gives_the_probes_scores():
    import torch

    tx, ty = _clusters(seed=4, spread=2.5, offset=50.0, scale=3.0)  # far from standard: the scaler matters
    vx, vy = _clusters(seed=5, spread=2.5, offset=50.0, scale=3.0)
    result = linear_probe(tx, ty, vx, vy, val=(vx, vy), patience=5, lr=3e-2, max_epochs=60)
    with torch.no_grad():
        scores = torch.softmax(result.classifier(torch.as_tensor(vx)), dim=1).numpy()
    np.testing.assert_allclose(scores, result.scores, atol=1e-4)  # the kept epoch's layer, scaler folded in


def test_knn_uses_the_explicit_temperature_and_the_k_nearest():
    train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], dtype=np.float32)
    labels = np.array([0, 0, 1])
    test = np.array([[0.6, 0.8]], dtype=np.float32)
    near_one = knn_evaluation(train, labels, test, np.array([1]), k=1, temperature=0.07)
    assert near_one["accuracy"] == 1.0
    sharp = knn_evaluation(train, labels, test, np.array([1]), k=3, temperature=0.01)
    flat = knn_evaluation(train, labels, test, np.array([1]), k=3, temperature=None)
    assert sharp["accuracy"] == 1.0 and flat["accuracy"] == 0.0


def test_bad_inputs_are_named():
    x, y = _clusters()
    with pytest.raises(ValueError, match="train"):
        linear_probe(x[:5], y, x, y)
    with pytest.raises(ValueError, match="test"):
        knn_evaluation(x, y, x[:, :3][0], y, k=3, temperature=0.1)


def _train_clips(n_per_class=12, classes=3) -> ClipSet:
    n = n_per_class * classes
    table = clip_table(clip_id=[f"{i}.wav" for i in range(n)], path=[f"/x/{i}.wav" for i in range(n)],
                       fold=[1 + i % 5 for i in range(n)], target=[i % classes for i in range(n)],
                       category=[str(i % classes) for i in range(n)], source=[str(i) for i in range(n)])
    return ClipSet("toy", "/x", tuple(str(c) for c in range(classes)), 5, 1.0, table)


def test_budget_rows_are_class_balanced_and_nested():
    train = _train_clips()
    one, five = budget_rows(train, 1, seed=4), budget_rows(train, 5, seed=4)
    assert np.bincount(train.targets[one]).tolist() == [1, 1, 1]
    assert np.bincount(train.targets[five]).tolist() == [5, 5, 5]
    assert set(one) <= set(five)


def test_label_budget_curve_with_each_selection():
    train = _train_clips()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 3
    tx = (centres[train.targets] + 0.2 * rng.normal(size=(len(train), 8))).astype(np.float32)
    vy = np.arange(3).repeat(4)
    vx = (centres[vy] + 0.2 * rng.normal(size=(12, 8))).astype(np.float32)
    for selection in ("validation-fold", "budgeted", "last"):
        curve = label_budget_curve(tx, train, vx, vy, vx, vy, budgets=(1, 5, None), selection=selection,
                                   max_epochs=60)
        assert curve.budget.tolist() == [1, 5, "all"] and curve.labels.tolist() == [3, 15, 36]
        assert (curve.selection == selection).all() and (curve.accuracy > 0.9).all()
    last = label_budget_curve(tx, train, vx, vy, vx, vy, budgets=(5,), selection="last", max_epochs=60)
    assert last.best_epoch.tolist() == [60]
    with pytest.raises(ValueError, match="selection"):
        label_budget_curve(tx, train, vx, vy, vx, vy, selection="test-fold")


def test_effective_rank_counts_the_dimensions_in_use():
    rng = np.random.default_rng(0)
    line = np.outer(rng.normal(size=200), rng.normal(size=16))
    assert effective_rank(line) == pytest.approx(1.0, abs=1e-3)
    assert effective_rank(np.eye(8)) == pytest.approx(8.0)
    full = effective_rank(rng.normal(size=(500, 16)))
    assert 14 < full <= 16
