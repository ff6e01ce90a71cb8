"""Evaluation of frozen embeddings: the linear probe (HEAR / EVAR style) and the weighted kNN (chapters 4-6).

Notebooks: 04_npid, 05_ssl, 06_overview. The linear probe follows BYOL-A's linear evaluation and EVAR
(book/protocols.md, study 001; daisukelab's TorchMLPClassifier without its hidden layer): features standardised with
the training set's statistics, one linear layer, Adam at 1e-3, batches of at most 200, at most 200 epochs, the
weights of the last epoch with the best validation accuracy kept, early stopping after 20 epochs without reaching it
again (EVAR's patience; BYOL-A's is 10). The kNN is the NPID / solo-learn weighted vote on cosine similarity
(:func:`esclib.metrics.knn_predict`) with an explicit temperature. :func:`label_budget_curve` repeats the probe with
1, 5, 10 labels per class and all of them.

Model selection (issue 11's ``selection``): ``"validation-fold"`` selects the epoch on the whole labelled validation
fold; ``"budgeted"`` on a class-balanced validation set cut from the label budget itself (a fifth of each class's
labels, at least one; none when a class has a single label); ``"last"`` trains the fixed schedule and keeps the
last epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.nn import functional as F

from esclib.data.clips import ClipSet
from esclib.data.splits import check_selection, labelled_subset
from esclib.metrics import classification_metrics, knn_predict


@dataclass
class ProbeResult:
    """A linear probe's test ``metrics`` (:func:`esclib.metrics.classification_metrics`), the selected epoch, the
    per-epoch history (``epoch``, ``train_loss``, ``val_loss``, ``val_acc``), the test class probabilities and the
    kept ``classifier``: one ``nn.Linear`` on the raw embeddings (the standardisation folded into its weights), so
    that it can be put after the backbone (Grad-CAM in chapter 05)."""

    metrics: dict
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    scores: np.ndarray | None = None
    classifier: nn.Linear | None = None


def _check(x: np.ndarray, y: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"{name}: expected embeddings (n, dim) and targets (n,), got {x.shape} and {y.shape}")
    if len(x) == 0:
        raise ValueError(f"{name}: no examples")
    return x, y.astype(np.int64)


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, *,
                 val: tuple[np.ndarray, np.ndarray] | None = None, n_classes: int | None = None, lr: float = 1e-3,
                 max_epochs: int = 200, patience: int = 20, batch_size: int = 200, weight_decay: float = 0.0,
                 seed: int = 0, device: str | torch.device = "cpu") -> ProbeResult:
    """A linear classifier on standardised frozen embeddings; with ``val`` (embeddings, targets) the last epoch of
    best validation accuracy is kept (early stopping ``patience`` epochs after it), without it the last of
    ``max_epochs``."""
    train_x, train_y = _check(train_x, train_y, "train")
    test_x, test_y = _check(test_x, test_y, "test")
    n_classes = n_classes or int(max(train_y.max(), test_y.max())) + 1
    scaler = StandardScaler().fit(train_x)
    tensor = lambda a: torch.as_tensor(scaler.transform(a), dtype=torch.float32, device=device)  # noqa: E731
    xs, ys = tensor(train_x), torch.as_tensor(train_y, device=device)
    if val is not None:
        val_x, val_y = _check(*val, "val")
        vx, vy = tensor(val_x), torch.as_tensor(val_y, device=device)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = nn.Linear(xs.shape[1], n_classes).to(device)
    optimizer = torch.optim.Adam(layer.parameters(), lr=lr, weight_decay=weight_decay)
    best_state, best_acc, best_epoch, history = None, -1.0, max_epochs, []
    for epoch in range(1, max_epochs + 1):
        order = torch.randperm(len(xs), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(xs), batch_size):
            rows = order[start:start + batch_size]
            loss = F.cross_entropy(layer(xs[rows]), ys[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(rows)
        record = {"epoch": epoch, "train_loss": total / len(xs)}
        if val is not None:
            with torch.no_grad():
                logits = layer(vx)
                record.update(val_loss=float(F.cross_entropy(logits, vy)),
                              val_acc=float((logits.argmax(1) == vy).float().mean()))
            if record["val_acc"] >= best_acc:
                best_acc, best_epoch = record["val_acc"], epoch
                best_state = {k: v.clone() for k, v in layer.state_dict().items()}
        history.append(record)
        if val is not None and epoch - best_epoch >= patience:
            break
    if best_state is not None:
        layer.load_state_dict(best_state)
    with torch.no_grad():
        scores = torch.softmax(layer(tensor(test_x)), dim=1).cpu().numpy()
    return ProbeResult(classification_metrics(test_y, scores, n_classes), best_epoch, history, scores,
                       _folded(layer, scaler))


@torch.no_grad()
def _folded(layer: nn.Linear, scaler: StandardScaler) -> nn.Linear:
    """``layer`` after the scaler as one linear layer on raw embeddings: ``W (x - m) / s + b = (W / s) x + b'``."""
    weight = layer.weight.detach().cpu().double() / torch.as_tensor(scaler.scale_, dtype=torch.float64)
    bias = layer.bias.detach().cpu().double() - weight @ torch.as_tensor(scaler.mean_, dtype=torch.float64)
    folded = nn.Linear(weight.shape[1], weight.shape[0])
    folded.weight.copy_(weight.float())
    folded.bias.copy_(bias.float())
    return folded.eval()


def knn_evaluation(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, *, k: int,
                   temperature: float | None, n_classes: int | None = None) -> dict:
    """Test metrics (:func:`esclib.metrics.classification_metrics`) of the weighted kNN vote of the ``k`` nearest
    training embeddings (cosine), weights ``exp(sim / temperature)`` (None: majority vote)."""
    train_x, train_y = _check(train_x, train_y, "train")
    test_x, test_y = _check(test_x, test_y, "test")
    n_classes = n_classes or int(max(train_y.max(), test_y.max())) + 1
    k = min(k, len(train_x))
    predictions, _ = knn_predict(train_x, train_y, test_x, k=k, temperature=temperature, n_classes=n_classes)
    return classification_metrics(test_y, predictions, n_classes)


def effective_rank(embeddings: np.ndarray) -> float:
    """RankMe (Garrido et al. 2023): ``exp`` of the entropy of the normalised singular values of the embedding
    matrix -- how many dimensions the embeddings really use (1 when they have collapsed to a line; at most the
    width). A self-supervised encoder that scores below its random initialisation has lost dimensions."""
    singular = np.linalg.svd(np.asarray(embeddings, dtype=np.float64), compute_uv=False)
    p = singular / max(singular.sum(), 1e-12) + 1e-12
    return float(np.exp(-(p * np.log(p)).sum()))


def budget_rows(train: ClipSet, per_class: int, seed: int = 0) -> np.ndarray:
    """Row indices in ``train`` of ``per_class`` labelled clips of every class (:func:`esclib.data.splits.
    labelled_subset`: class-balanced, nested across budgets for one seed)."""
    labelled, _ = labelled_subset(train, per_class=per_class, seed=seed)
    position = {clip: row for row, clip in enumerate(train.table["clip_id"])}
    return np.sort(np.array([position[c] for c in labelled.table["clip_id"]], dtype=np.int64))


def _budgeted_validation(rows: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split budget rows into (train, val): a fifth of each class's rows (at least one) go to validation, none
    when a class has a single row."""
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y[rows]):
        mine = rows[y[rows] == c]
        if len(mine) >= 2:
            val.extend(rng.choice(mine, max(1, len(mine) // 5), replace=False).tolist())
    val = np.sort(np.array(val, dtype=np.int64))
    return np.setdiff1d(rows, val), val


def label_budget_curve(train_x: np.ndarray, train: ClipSet, val_x: np.ndarray, val_y: np.ndarray,
                       test_x: np.ndarray, test_y: np.ndarray, *, budgets: tuple[int | None, ...] = (1, 5, 10, None),
                       selection: str = "validation-fold", seed: int = 0, **probe: object) -> pd.DataFrame:
    """The linear probe's test accuracy and macro-F1 with ``budgets`` labels per class (None: every training label),
    one row per budget (``budget``, ``labels``, ``selection``, ``accuracy``, ``macro_f1``, ``best_epoch``).
    ``train_x`` rows follow ``train``'s clips. Notebooks: 05_ssl, 06_overview."""
    check_selection(selection)
    if len(train_x) != len(train):
        raise ValueError(f"train_x has {len(train_x)} rows but train has {len(train)} clips")
    y = train.targets
    rows_out = []
    for budget in budgets:
        rows = np.arange(len(train)) if budget is None else budget_rows(train, budget, seed)
        labels, val = len(rows), (val_x, val_y)
        if selection == "budgeted":
            rows, held = _budgeted_validation(rows, y, seed)
            val = (train_x[held], y[held]) if len(held) else None
        elif selection == "last":
            val = None
        result = linear_probe(train_x[rows], y[rows], test_x, test_y, val=val, n_classes=train.num_classes,
                              seed=seed, **probe)
        rows_out.append({"budget": "all" if budget is None else budget, "labels": labels,
                         "selection": selection, "accuracy": result.metrics["accuracy"],
                         "macro_f1": result.metrics["macro_f1"], "best_epoch": result.best_epoch})
    return pd.DataFrame(rows_out)
