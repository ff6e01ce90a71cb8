"""Classification metrics of the book's chapters, computed with scikit-learn.

- Accuracy, macro-F1, per-class precision / recall and the confusion matrix: every chapter.
- Macro one-vs-rest AUC-ROC: the second metric of study 000 (ROCLING 2021, Tables 2-5).
- Weighted kNN accuracy on embeddings: the NPID evaluation (Wu et al. 2018; study 004 uses K = 5, NPID K = 200),
  and plain majority-vote kNN.

Metrics are fractions in [0, 1], as in the results store and the studies' registry (:mod:`esclib.results.studies`).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)


def _labels(y: np.ndarray | list, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class indices, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    return y.astype(np.int64)


def macro_auc_ovr(y_true: np.ndarray, y_score: np.ndarray) -> tuple[float, list[int]]:
    """Macro one-vs-rest AUC-ROC over the classes present in ``y_true`` (ROCLING 2021, study 000).

    Each class's AUC is the binary AUC of its score column against "this class vs the rest"; the macro average is
    their mean. A test fold may lack a class (a small labelled subset, a small fold): its AUC is undefined, so it is
    left out of the mean with a warning naming it. Returns ``(auc, classes_used)``; ``auc`` is NaN when fewer than
    two classes are present.
    """
    y_true = _labels(y_true, "y_true")
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_score.ndim != 2 or len(y_score) != len(y_true):
        raise ValueError(f"y_score must have shape (n_samples={len(y_true)}, n_classes), got {y_score.shape}")
    n_classes = y_score.shape[1]
    present = np.unique(y_true)
    if present.size and (present.min() < 0 or present.max() >= n_classes):
        raise ValueError(f"y_true holds class indices outside [0, {n_classes}) for y_score with {n_classes} columns")
    if present.size < 2:
        warnings.warn(f"macro AUC undefined: y_true holds {present.size} class(es)", stacklevel=2)
        return float("nan"), present.tolist()
    absent = sorted(set(range(n_classes)) - set(present.tolist()))
    if absent:
        warnings.warn(
            f"macro AUC over {present.size} of {n_classes} classes: class(es) {absent} absent from y_true were left out",
            stacklevel=2,
        )
    aucs = [roc_auc_score(y_true == c, y_score[:, c]) for c in present]
    return float(np.mean(aucs)), present.tolist()


def classification_metrics(
    y_true: np.ndarray | list,
    y_score_or_pred: np.ndarray | list,
    n_classes: int | None = None,
) -> dict:
    """Every metric the chapters report for single-label classification.

    ``y_score_or_pred`` is either scores / probabilities of shape (n, n_classes) (predictions are their argmax, and
    the AUC is computed) or predicted class indices of shape (n,) (no AUC). Returns a JSON-ready dict:

    - ``accuracy``, ``macro_f1`` (over all ``n_classes``; a class never predicted nor present scores 0);
    - ``auc`` (macro one-vs-rest AUC-ROC, see :func:`macro_auc_ovr`) and ``auc_classes`` (the classes it averages);
    - ``precision``, ``recall`` (per-class lists), ``confusion`` (list of rows: true class, columns: predicted);
    - ``n`` (number of examples).
    """
    y_true = _labels(y_true, "y_true")
    scores = np.asarray(y_score_or_pred)
    if scores.ndim == 2:
        n_classes = n_classes or scores.shape[1]
        if scores.shape[1] != n_classes:
            raise ValueError(f"y_score has {scores.shape[1]} columns but n_classes={n_classes}")
        y_pred = scores.argmax(axis=1)
    else:
        y_pred = _labels(scores, "y_pred")
        if n_classes is None:
            n_classes = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    if len(y_pred) != len(y_true):
        raise ValueError(f"y_true has {len(y_true)} examples but the predictions have {len(y_pred)}")
    labels = np.arange(n_classes)
    precision, recall, _, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "confusion": confusion(y_true, y_pred, n_classes).tolist(),
        "n": int(len(y_true)),
    }
    if scores.ndim == 2:
        metrics["auc"], metrics["auc_classes"] = macro_auc_ovr(y_true, scores)
    return metrics


def confusion(y_true: np.ndarray | list, y_pred: np.ndarray | list, n_classes: int) -> np.ndarray:
    """Confusion matrix (n_classes × n_classes; rows: true class, columns: predicted class)."""
    return confusion_matrix(_labels(y_true, "y_true"), _labels(y_pred, "y_pred"), labels=np.arange(n_classes))


def _unit(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, dim), got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def knn_predict(
    train_emb: np.ndarray,
    train_y: np.ndarray | list,
    test_emb: np.ndarray,
    *,
    k: int,
    temperature: float | None,
    n_classes: int | None = None,
    chunk: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """kNN class votes on cosine similarity, NPID style (Wu et al. 2018; lemniscate.pytorch ``kNN``).

    Each test embedding's ``k`` most cosine-similar training embeddings vote for their class with weight
    ``exp(sim / temperature)``, or with weight 1 when ``temperature`` is None (plain majority vote). Both are
    required: NPID weights by its NCE temperature (lemniscate 0.07, study 004 0.4) with K = 200, study 004 uses
    K = 5. Returns ``(predictions, votes)``, votes of shape (n_test, n_classes); ties go to the lowest class index.
    Chapters 01 (embedding kNN exercise) and 04 (Notebook: 04_npid).
    """
    train_y = _labels(train_y, "train_y")
    train = _unit(train_emb, "train_emb")
    test = _unit(test_emb, "test_emb")
    if len(train) != len(train_y):
        raise ValueError(f"train_emb has {len(train)} rows but train_y has {len(train_y)}")
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"train_emb has dimension {train.shape[1]} but test_emb has {test.shape[1]}")
    if not 1 <= k <= len(train):
        raise ValueError(f"k must be in [1, {len(train)}] (the number of training embeddings), got {k}")
    if temperature is not None and temperature <= 0:
        raise ValueError(f"temperature must be > 0 (or None for a majority vote), got {temperature}")
    n_classes = n_classes or int(train_y.max()) + 1
    votes = np.zeros((len(test), n_classes))
    for start in range(0, len(test), chunk):
        sim = test[start : start + chunk] @ train.T
        nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        near_sim = np.take_along_axis(sim, nearest, axis=1)
        weights = np.ones_like(near_sim) if temperature is None else np.exp(near_sim / temperature)
        rows = np.repeat(np.arange(len(nearest)), k)
        np.add.at(votes[start : start + chunk], (rows, train_y[nearest].ravel()), weights.ravel())
    return votes.argmax(axis=1), votes


def knn_accuracy(
    train_emb: np.ndarray,
    train_y: np.ndarray | list,
    test_emb: np.ndarray,
    test_y: np.ndarray | list,
    *,
    k: int,
    temperature: float | None,
) -> float:
    """Accuracy of :func:`knn_predict` on ``test_y`` (study 004: weighted kNN, K = 5, T = 0.4; NPID: K = 200,
    T = its NCE temperature; ``temperature=None``: majority vote)."""
    test_y = _labels(test_y, "test_y")
    n_classes = int(max(np.max(train_y), test_y.max(initial=0))) + 1
    predictions, _ = knn_predict(train_emb, train_y, test_emb, k=k, temperature=temperature, n_classes=n_classes)
    if len(predictions) != len(test_y):
        raise ValueError(f"test_emb has {len(predictions)} rows but test_y has {len(test_y)}")
    return float(np.mean(predictions == test_y))
