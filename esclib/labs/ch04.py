"""Lab of chapter 4 (NPID / DLS): the weighted kNN vote, and the memory-bank update.

Sample solutions and checks against :func:`esclib.metrics.knn_predict` and :class:`esclib.losses.npid.NPIDMemory`.
Notebook: 04_npid.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from esclib.labs.cells import Exercise
from esclib.labs.check import FunctionCheck, Mistake, generator
from esclib.losses.npid import NPIDMemory
from esclib.metrics import knn_predict

STEM = "04_npid"


# --- sample solutions -------------------------------------------------------------------------------------------

def weighted_knn(train_emb: np.ndarray, train_y: np.ndarray, test_emb: np.ndarray, k: int, temperature: float,
                 n_classes: int) -> np.ndarray:
    """NPID's kNN: the k training embeddings most cosine-similar to a test embedding vote for their classes with
    weight exp(similarity / temperature); the class with the most weight wins."""
    train = train_emb / np.linalg.norm(train_emb, axis=1, keepdims=True)
    test = test_emb / np.linalg.norm(test_emb, axis=1, keepdims=True)
    similarity = test @ train.T  # (n_test, n_train) cosine similarities
    nearest = np.argsort(-similarity, axis=1)[:, :k]
    votes = np.zeros((len(test), n_classes))
    for row, neighbours in enumerate(nearest):
        for j in neighbours:
            votes[row, train_y[j]] += np.exp(similarity[row, j] / temperature)
    return votes.argmax(axis=1)


def update_memory(memory: torch.Tensor, features: torch.Tensor, index: torch.Tensor,
                  momentum: float) -> torch.Tensor:
    """The memory bank after NPID's update: the rows ``index`` move towards the batch's features,
    v <- normalise(m v + (1 - m) f); every other row stays."""
    updated = memory.clone()
    mixed = momentum * memory[index] + (1 - momentum) * features
    updated[index] = F.normalize(mixed, dim=1)
    return updated


# --- check of the weighted kNN ----------------------------------------------------------------------------------

def _knn_cases() -> list[dict[str, Any]]:
    rng = np.random.default_rng(6)
    cases = []
    for n_classes, temperature in ((3, 0.07), (4, 0.5)):
        centres = rng.normal(size=(n_classes, 6))
        train_y = rng.integers(0, n_classes, 60)
        scale = rng.uniform(0.2, 5.0, size=(60, 1))  # norms that vary: only cosine similarity ignores them
        train = (centres[train_y] + 0.9 * rng.normal(size=(60, 6))) * scale
        test = centres[rng.integers(0, n_classes, 40)] + 0.9 * rng.normal(size=(40, 6))
        cases.append({"train_emb": train, "train_y": train_y, "test_emb": test, "k": 7, "temperature": temperature,
                      "n_classes": n_classes})
    # directions all over the sphere, many neighbours: negative similarities and a temperature above one
    cases.append({"train_emb": rng.normal(size=(50, 3)), "train_y": rng.integers(0, 3, 50),
                  "test_emb": rng.normal(size=(40, 3)), "k": 20, "temperature": 2.0, "n_classes": 3})
    return cases


def _library_knn(train_emb, train_y, test_emb, k, temperature, n_classes):
    return knn_predict(train_emb, train_y, test_emb, k=k, temperature=temperature, n_classes=n_classes)[0]


def _knn_variant(train_emb, train_y, test_emb, k, temperature, n_classes, *, normalise=True, weight="exp",
                 farthest=False):
    train, test = train_emb, test_emb
    if normalise:
        train = train / np.linalg.norm(train, axis=1, keepdims=True)
        test = test / np.linalg.norm(test, axis=1, keepdims=True)
    similarity = test @ train.T
    order = np.argsort(similarity if farthest else -similarity, axis=1)[:, :k]
    near = np.take_along_axis(similarity, order, axis=1)
    with np.errstate(over="ignore"):  # raw dot products over a small temperature overflow: that is the mistake
        weights = {"exp": lambda: np.exp(near / temperature), "one": lambda: np.ones_like(near),
                   "linear": lambda: near, "times": lambda: np.exp(near * temperature)}[weight]()
    votes = np.zeros((len(test), n_classes))
    np.add.at(votes, (np.repeat(np.arange(len(test)), k), train_y[order].ravel()), weights.ravel())
    return votes.argmax(axis=1)


def _compare_predictions(got: Any, expected: np.ndarray) -> str | None:
    got = np.asarray(got.detach().cpu() if isinstance(got, torch.Tensor) else got)
    if got.shape != expected.shape:
        return f"the predictions have shape {got.shape}, expected one class per test embedding {expected.shape}"
    wrong = int((got != expected).sum())
    return None if wrong == 0 else f"{wrong} of {len(expected)} predictions differ from the library's"


check_weighted_knn = FunctionCheck(
    "weighted kNN vote", _knn_cases, _library_knn,
    mistakes=[
        Mistake(lambda **c: _knn_variant(**c, normalise=False),
                "the embeddings were not L2-normalised: NPID compares directions (cosine similarity), and a long "
                "training embedding would otherwise win every vote"),
        Mistake(lambda **c: _knn_variant(**c, weight="one"),
                "the temperature is ignored: every neighbour votes with weight exp(similarity / temperature), not 1"),
        Mistake(lambda **c: _knn_variant(**c, weight="linear"),
                "the neighbours vote with their similarity: NPID's weight is exp(similarity / temperature)"),
        Mistake(lambda **c: _knn_variant(**c, weight="times"),
                "the similarity was multiplied by the temperature: the weight is exp(similarity / temperature)"),
        Mistake(lambda **c: _knn_variant(**c, farthest=True),
                "the k *least* similar training embeddings voted: sort the similarities in decreasing order"),
    ],
    compare=_compare_predictions)
check_weighted_knn.__doc__ = ("Check a ``weighted_knn(train_emb, train_y, test_emb, k, temperature, n_classes)`` "
                              "against ``esclib.metrics.knn_predict``.")


# --- check of the memory update ---------------------------------------------------------------------------------

def _memory_cases() -> list[dict[str, Any]]:
    g = generator(7)
    cases = []
    for n, dim, momentum in ((10, 4, 0.5), (12, 6, 0.8)):
        memory = F.normalize(torch.randn(n, dim, generator=g), dim=1)
        cases.append({"memory": memory, "features": F.normalize(torch.randn(3, dim, generator=g), dim=1),
                      "index": torch.tensor([1, 4, 7]), "momentum": momentum})
    return cases


def _library_memory(memory, features, index, momentum):
    bank = NPIDMemory(len(memory), memory.shape[1], nce_k=1, momentum=momentum)
    bank.memory.copy_(memory)
    bank.update(features, index)
    return bank.memory


def _memory_variant(memory, features, index, momentum, *, renormalise=True, swapped=False, axis=1):
    updated = memory.clone()
    m = 1 - momentum if swapped else momentum
    mixed = m * memory[index] + (1 - m) * features
    updated[index] = F.normalize(mixed, dim=axis) if renormalise else mixed
    return updated


check_update_memory = FunctionCheck(
    "NPID memory-bank update", _memory_cases, _library_memory,
    mistakes=[
        Mistake(lambda **c: _memory_variant(**c, renormalise=False),
                "the updated rows were not re-normalised: a mix of two unit vectors is shorter than one, and the "
                "non-parametric softmax needs unit vectors"),
        Mistake(lambda **c: _memory_variant(**c, swapped=True),
                "the momentum weighs the new feature: the memory keeps m of its old row, v <- m v + (1 - m) f"),
        Mistake(lambda **c: _memory_variant(**c, axis=0),
                "the rows were normalised along the wrong axis: each embedding (row) gets unit length"),
    ])
check_update_memory.__doc__ = ("Check an ``update_memory(memory, features, index, momentum)`` against "
                               "``esclib.losses.npid.NPIDMemory.update``.")


# --- the lab ----------------------------------------------------------------------------------------------------

EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        "lab-04-weighted-knn", "The weighted kNN vote",
        prompt="""
Write `weighted_knn(train_emb, train_y, test_emb, k, temperature, n_classes)` with NumPy: for every test embedding,
find the k training embeddings with the highest cosine similarity and let each vote for its class with weight
$\\exp(s / T)$, where $s$ is its similarity and $T$ the temperature. Return the predicted class of every test
embedding. The embeddings of the check have very different lengths.
""",
        solution="""
L2-normalise both sets so that a dot product is a cosine similarity, take the k largest similarities per test row,
add $\\exp(s/T)$ to their classes' votes and take the arg max. Without the normalisation, long embeddings win
every vote; without the temperature every neighbour weighs the same, so the vote ignores how close they are.
""",
        template='''
import numpy as np

from esclib.labs import ch04


def weighted_knn(train_emb, train_y, test_emb, k, temperature, n_classes):
    """Class of every test embedding by the vote of its k most cosine-similar training embeddings, exp(s / T)."""
    raise NotImplementedError


ch04.check_weighted_knn(weighted_knn)
''',
        sample="weighted_knn", check="check_weighted_knn"),
    Exercise(
        "lab-04-memory-update", "The memory-bank update",
        prompt="""
NPID keeps one unit-length embedding per training clip in a memory bank. After each batch, the rows of the batch's
clips move towards their new features. Write `update_memory(memory, features, index, momentum)`: `memory` is the
bank `(N, d)`, `features` the batch's L2-normalised embeddings `(B, d)`, `index` the batch's rows in the bank.
Return the new bank.
""",
        solution="""
Mix each row with its clip's new feature, $m\\,v_i + (1-m)\\,f_i$, and normalise the result to unit length; the
other rows stay. The momentum m keeps the bank's entries from jumping with every noisy batch (study 004 and NPID
use m = 0.5).
""",
        template='''
import torch
import torch.nn.functional as F

from esclib.labs import ch04


def update_memory(memory, features, index, momentum):
    """The bank after NPID's update of rows `index`: normalise(m * v + (1 - m) * f); other rows unchanged."""
    raise NotImplementedError


ch04.check_update_memory(update_memory)
''',
        sample="update_memory", check="check_update_memory"),
    Exercise(
        "lab-04-temperature", "Predict: the kNN temperature",
        prompt="""
Predict what the weighted kNN becomes when its temperature tends to zero and when it grows very large, and where
the study's K = 5 and NPID's K = 200 sit between a 1-nearest-neighbour rule and a majority vote. Then check your
prediction with the chapter's kNN evaluation of one embedding at two temperatures.
""",
        solution="""
As $T \\to 0$ the most similar neighbour's weight dwarfs every other one: the rule becomes 1-nearest-neighbour
whatever K is. As $T \\to \\infty$ every weight tends to one: a plain majority vote of the K neighbours. With K =
200, the temperature decides how much the far neighbours count; with K = 5, the vote is local anyway.
"""),
    Exercise(
        "lab-04-pooled-pretraining", "Label-free, but not leak-free",
        prompt="""
The study's second phase pre-trains on every dataset and every fold pooled together, then evaluates on those
folds. No label is used in pre-training: is the evaluation still fair? And what happens to ESC-10's clips when
ESC-10 and ESC-50 are pooled?
""",
        solution="""
The test clips were seen during pre-training (transductive learning): the embedding has learnt to tell those very
clips apart, which can flatter the evaluation even without labels; a leak-free variant leaves the test folds out
of pre-training. ESC-10 is a subset of ESC-50, so pooling both counts its 400 clips twice, as distinct instances
that NPID must tell apart although they are identical -- a contradiction the pooled objective cannot satisfy.
"""),
)
