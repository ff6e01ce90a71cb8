"""esclib.metrics against scikit-learn and hand-computed cases."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.neighbors import KNeighborsClassifier

from esclib.metrics import classification_metrics, confusion, knn_accuracy, knn_predict, macro_auc_ovr


@pytest.fixture
def scored():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(5), 12)
    logits = rng.normal(size=(len(y), 5)) + 1.5 * np.eye(5)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


def test_classification_metrics_match_sklearn(scored):
    y, probs = scored
    pred = probs.argmax(axis=1)
    m = classification_metrics(y, probs)
    assert m["accuracy"] == pytest.approx(np.mean(pred == y))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["auc"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr", average="macro"))
    assert m["auc_classes"] == [0, 1, 2, 3, 4]
    cm = np.asarray(m["confusion"])
    assert cm.sum() == len(y) and np.trace(cm) == np.sum(pred == y)
    assert m["recall"] == pytest.approx((np.diag(cm) / cm.sum(axis=1)).tolist())
    assert m["precision"] == pytest.approx((np.diag(cm) / cm.sum(axis=0)).tolist())


def test_predictions_give_no_auc_and_keep_every_class():
    m = classification_metrics([0, 1, 1], [0, 1, 0], n_classes=4)
    assert "auc" not in m
    assert np.asarray(m["confusion"]).shape == (4, 4)
    assert m["macro_f1"] == pytest.approx(np.mean([2 / 3, 2 / 3, 0, 0]))


def test_auc_leaves_out_absent_classes_with_a_warning(scored):
    y, probs = scored
    keep = y != 3
    with pytest.warns(UserWarning, match=r"class\(es\) \[3\] absent"):
        auc, used = macro_auc_ovr(y[keep], probs[keep])
    expected = np.mean([roc_auc_score(y[keep] == c, probs[keep, c]) for c in (0, 1, 2, 4)])
    assert used == [0, 1, 2, 4] and auc == pytest.approx(expected)
    with pytest.warns(UserWarning, match="1 class"):
        assert np.isnan(macro_auc_ovr(np.zeros(4, int), probs[:4])[0])


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="y_true has 3 examples"):
        classification_metrics([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="integer class indices"):
        confusion([0.5, 1.0], [0, 1], 2)


def test_majority_knn_matches_sklearn():
    rng = np.random.default_rng(1)
    train, test = rng.normal(size=(80, 8)), rng.normal(size=(30, 8))
    train_y = rng.integers(0, 4, 80)
    for k in (1, 5, 9):
        sk = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute").fit(train, train_y)
        ours, _ = knn_predict(train, train_y, test, k=k, temperature=None)
        np.testing.assert_array_equal(ours, sk.predict(test))
    test_y = sk.predict(test)
    assert knn_accuracy(train, train_y, test, test_y, k=9, temperature=None) == 1.0


def test_weighted_knn_hand_computed():
    # test point e1; neighbours by cosine: a (1.0, class 0), b (0.8, class 1), c (0.6, class 1), d (-1, class 0)
    train = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [-1.0, 0.0]])
    train_y = np.array([0, 1, 1, 0])
    test = np.array([[2.0, 0.0]])
    # k = 3: class 0 weight exp(1/T), class 1 exp(0.8/T) + exp(0.6/T)
    _, votes = knn_predict(train, train_y, test, k=3, temperature=0.5)
    np.testing.assert_allclose(votes[0], [np.exp(2.0), np.exp(1.6) + np.exp(1.2)])
    assert knn_predict(train, train_y, test, k=3, temperature=0.5)[0][0] == 1  # e^1.6 + e^1.2 > e^2
    assert knn_predict(train, train_y, test, k=3, temperature=0.07)[0][0] == 0  # a sharp T favours the nearest
    assert knn_predict(train, train_y, test, k=3, temperature=None)[0][0] == 1  # majority 2 : 1


def test_knn_checks_its_arguments():
    x, y = np.eye(3), np.array([0, 1, 2])
    with pytest.raises(ValueError, match="k must be in"):
        knn_predict(x, y, x, k=4, temperature=0.4)
    with pytest.raises(ValueError, match="dimension"):
        knn_predict(x, y, np.ones((1, 2)), k=1, temperature=0.4)
    with pytest.raises(TypeError, match="temperature"):
        knn_predict(x, y, x, k=1)  # no silent default temperature
