"""Lab of chapter 2 (FixMatch): the unlabelled loss, and the mask rate and accuracy of the pseudo-labels.

Sample solutions and checks against :mod:`esclib.losses.fixmatch` (``fixmatch_loss``, ``pseudo_labels``).
Notebook: 02_fixmatch.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from esclib.labs.cells import Exercise
from esclib.labs.check import FunctionCheck, Mistake, Problem, compare_tuples, generator
from esclib.losses.fixmatch import fixmatch_loss, pseudo_labels

STEM = "02_fixmatch"


# --- sample solutions -------------------------------------------------------------------------------------------

def unlabelled_loss(weak_logits: torch.Tensor, strong_logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """FixMatch's ℓ_u: hard pseudo-labels from the weak view, kept where their confidence reaches τ, taught to the
    strong view by cross-entropy, averaged over every unlabelled clip."""
    with torch.no_grad():  # the pseudo-labels are targets, not something to learn
        confidence, labels = torch.softmax(weak_logits, dim=1).max(dim=1)
        mask = (confidence >= threshold).float()
    per_clip = F.cross_entropy(strong_logits, labels, reduction="none")
    return (per_clip * mask).mean()


def mask_rate_and_accuracy(weak_logits: torch.Tensor, hidden_targets: torch.Tensor,
                           threshold: float) -> tuple[float, float]:
    """The share of unlabelled clips whose pseudo-label is kept (confidence ≥ τ) and the accuracy of the kept
    pseudo-labels against the clips' hidden classes (NaN when none is kept)."""
    confidence, labels = torch.softmax(weak_logits, dim=1).max(dim=1)
    kept = confidence >= threshold
    accuracy = (labels[kept] == hidden_targets[kept]).float().mean().item() if kept.any() else float("nan")
    return kept.float().mean().item(), accuracy


# --- check of the unlabelled loss -------------------------------------------------------------------------------

def _loss_cases() -> list[dict[str, Any]]:
    g = generator(2)
    ties = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 0.0], [-1.0, 1.0]])  # confidence exactly 0.5 in rows 0, 2
    return [
        {"weak_logits": 4 * torch.randn(16, 5, generator=g), "strong_logits": 2 * torch.randn(16, 5, generator=g),
         "threshold": 0.9},
        {"weak_logits": ties, "strong_logits": torch.randn(4, 2, generator=g), "threshold": 0.5},
        {"weak_logits": 5 * torch.randn(8, 10, generator=g), "strong_logits": torch.randn(8, 10, generator=g),
         "threshold": 0.95},
    ]


def _library_loss(weak_logits, strong_logits, threshold):
    dummy = torch.zeros(1, weak_logits.shape[1])
    return fixmatch_loss(dummy, torch.zeros(1, dtype=torch.long), weak_logits, strong_logits,
                         threshold=threshold, lambda_u=1.0).unsupervised


def _variant(weak_logits, strong_logits, threshold, *, label_from="weak", mask_from="weak", loss_on="strong",
             masked=True, strict=False, on_logits=False, soft=False, over_kept=False):
    """ℓ_u with one of the usual mistakes switched on."""
    views = {"weak": weak_logits, "strong": strong_logits}
    labels = views[label_from].argmax(dim=1)
    scores = views[mask_from] if on_logits else torch.softmax(views[mask_from], dim=1)
    confidence = scores.max(dim=1).values
    mask = (confidence > threshold if strict else confidence >= threshold).float() if masked else torch.ones(
        len(labels))
    if soft:
        per_clip = -(torch.softmax(weak_logits, 1) * F.log_softmax(views[loss_on], 1)).sum(1)
    else:
        per_clip = F.cross_entropy(views[loss_on], labels, reduction="none")
    total = (per_clip * mask).sum()
    return total / mask.sum().clamp(min=1) if over_kept else total / len(labels)


def _weak_gets_no_gradient(student: Callable[..., Any]) -> Problem:
    case = _loss_cases()[0]
    weak = case["weak_logits"].clone().requires_grad_(True)
    strong = case["strong_logits"].clone().requires_grad_(True)
    student(weak, strong, case["threshold"]).backward()
    if weak.grad is not None:  # the loss's graph reaches the weak view's logits
        return ("a gradient flows into the weak view's logits: the pseudo-labels are targets, compute them under "
                "`torch.no_grad()` (or from `weak_logits.detach()`)")
    if strong.grad is None or strong.grad.abs().sum() == 0:
        return "no gradient reaches the strong view's logits: the loss must be computed from them"
    return None


check_unlabelled_loss = FunctionCheck(
    "FixMatch unlabelled loss", _loss_cases, _library_loss,
    mistakes=[
        Mistake(lambda **c: _variant(**c, label_from="strong", mask_from="strong"),
                "the pseudo-labels come from the strong view: FixMatch labels the weakly augmented view, which the "
                "model classifies more reliably, and teaches that label to the strong view"),
        Mistake(lambda **c: _variant(**c, mask_from="strong"),
                "the confidence mask is computed on the strong view: mask and pseudo-label both come from the weak "
                "view"),
        Mistake(lambda **c: _variant(**c, loss_on="weak"),
                "the cross-entropy is taken on the weak view: the loss must teach the pseudo-label to the strong "
                "view's logits"),
        Mistake(lambda **c: _variant(**c, masked=False),
                "every clip contributes: forgot the mask (confidence ≥ τ)"),
        Mistake(lambda **c: _variant(**c, over_kept=True),
                "the loss is averaged over the confident clips only: ℓ_u divides by all μB unlabelled clips, so a "
                "batch with few confident clips contributes little"),
        Mistake(lambda **c: _variant(**c, strict=True),
                "clips whose confidence equals τ are dropped: the mask keeps confidence ≥ τ"),
        Mistake(lambda **c: _variant(**c, on_logits=True),
                "the threshold is applied to logits: confidence is the largest softmax probability"),
        Mistake(lambda **c: _variant(**c, soft=True),
                "soft pseudo-labels (the weak view's probabilities) were used: FixMatch uses the hard label, its "
                "arg max"),
    ],
    properties=[_weak_gets_no_gradient])
check_unlabelled_loss.__doc__ = ("Check an ``unlabelled_loss(weak_logits, strong_logits, threshold)`` against "
                                 "``esclib.losses.fixmatch.fixmatch_loss(...).unsupervised``.")


# --- check of the mask rate and pseudo-label accuracy -----------------------------------------------------------

def _rate_cases() -> list[dict[str, Any]]:
    g = generator(3)
    logits = 4 * torch.randn(20, 5, generator=g)
    ties = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 0.0], [0.0, 3.0]])
    return [
        {"weak_logits": logits, "hidden_targets": torch.randint(0, 5, (20,), generator=g), "threshold": 0.8},
        {"weak_logits": ties, "hidden_targets": torch.tensor([0, 0, 1, 0]), "threshold": 0.5},
        {"weak_logits": torch.zeros(3, 4), "hidden_targets": torch.tensor([0, 1, 2]), "threshold": 0.95},
    ]


def _library_rate(weak_logits, hidden_targets, threshold):
    pseudo = pseudo_labels(weak_logits, threshold)
    kept = pseudo.mask.bool()
    accuracy = (pseudo.labels[kept] == hidden_targets[kept]).float().mean() if kept.any() else float("nan")
    return pseudo.mask.mean(), accuracy


def _rate_variant(weak_logits, hidden_targets, threshold, *, all_clips=False, count=False, strict=False,
                  on_logits=False):
    scores = weak_logits if on_logits else torch.softmax(weak_logits, 1)
    confidence, labels = scores.max(1)
    kept = confidence > threshold if strict else confidence >= threshold
    correct = labels == hidden_targets
    accuracy = correct.float().mean() if all_clips else (correct[kept].float().mean() if kept.any()
                                                         else float("nan"))
    return (kept.sum() if count else kept.float().mean()), accuracy


check_mask_rate = FunctionCheck(
    "mask rate and pseudo-label accuracy", _rate_cases, _library_rate,
    mistakes=[
        Mistake(lambda **c: _rate_variant(**c, all_clips=True),
                "the accuracy counts every clip: it is the accuracy of the *kept* pseudo-labels, the ones that "
                "train the model"),
        Mistake(lambda **c: _rate_variant(**c, count=True),
                "the mask rate is a count: report the share of the unlabelled clips (between 0 and 1)"),
        Mistake(lambda **c: _rate_variant(**c, strict=True),
                "clips whose confidence equals τ are dropped: the mask keeps confidence ≥ τ"),
        Mistake(lambda **c: _rate_variant(**c, on_logits=True),
                "the threshold is applied to logits: confidence is the largest softmax probability"),
    ],
    compare=compare_tuples(("the mask rate", "the pseudo-label accuracy")))
check_mask_rate.__doc__ = ("Check a ``mask_rate_and_accuracy(weak_logits, hidden_targets, threshold)`` against "
                           "``esclib.losses.fixmatch.pseudo_labels``.")


# --- the lab ----------------------------------------------------------------------------------------------------

EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        "lab-02-unlabelled-loss", "FixMatch's unlabelled loss",
        prompt="""
Write `unlabelled_loss(weak_logits, strong_logits, threshold)`: the logits `(N, classes)` of the weak and the
strong view of the same N unlabelled clips, and τ. Return ℓ_u, the mean over the N clips of the cross-entropy
between the strong view's prediction and the hard pseudo-label of the weak view, counted only where the weak
view's confidence (its largest softmax probability) reaches τ. No gradient may flow through the weak view.
""",
        solution="""
Under `torch.no_grad()`, take the weak view's softmax, its maximum (the confidence) and arg max (the pseudo-label)
and the mask `confidence >= threshold`; then average `cross_entropy(strong_logits, labels, reduction="none") *
mask` over all N clips. Dividing by the number of confident clips instead would give a batch with one confident
clip the same weight as a batch of confident clips; taking the pseudo-label from the strong view would teach the
model its own noisiest guesses.
""",
        template='''
import torch
import torch.nn.functional as F

from esclib.labs import ch02


def unlabelled_loss(weak_logits, strong_logits, threshold):
    """FixMatch's ℓ_u: pseudo-labels and mask from the weak view, cross-entropy on the strong view."""
    raise NotImplementedError


ch02.check_unlabelled_loss(unlabelled_loss)
''',
        sample="unlabelled_loss", check="check_unlabelled_loss"),
    Exercise(
        "lab-02-mask-rate", "How many pseudo-labels are kept, and how many are right?",
        prompt="""
The chapter follows two numbers during training: the *mask rate*, the share of unlabelled clips whose pseudo-label
passes the threshold, and the *accuracy* of those kept pseudo-labels, measured with the clips' hidden classes
(which the model never sees). Write `mask_rate_and_accuracy(weak_logits, hidden_targets, threshold)` returning both
as numbers (the accuracy is NaN when no clip passes).
""",
        solution="""
The mask rate is the mean of the mask; the accuracy compares the pseudo-labels with the hidden classes on the kept
clips only. Together they show the trade-off τ controls: a low threshold keeps more clips and more wrong labels, a
high one keeps few but mostly right labels.
""",
        template='''
import torch

from esclib.labs import ch02


def mask_rate_and_accuracy(weak_logits, hidden_targets, threshold):
    """(share of clips whose weak-view confidence >= threshold, accuracy of their pseudo-labels)."""
    raise NotImplementedError


ch02.check_mask_rate(mask_rate_and_accuracy)
''',
        sample="mask_rate_and_accuracy", check="check_mask_rate"),
    Exercise(
        "lab-02-threshold", "Predict, then test: τ",
        prompt="""
Predict how the mask rate, the accuracy of the kept pseudo-labels and the test accuracy change when τ goes from
$0.95$ to the study's $0.75$, then from $0.75$ to $0.5$. Test your prediction with
`esc run 02_fixmatch -p threshold 0.5` and compare the mask-rate curves with this run's.
""",
        solution="""
Lowering τ raises the mask rate at once (more clips pass) and lowers the accuracy of the kept pseudo-labels (the
extra clips are the uncertain ones). Whether test accuracy improves depends on which effect wins: study 000 found
$\tau = 0.75$ better than $\tau = 0.95$ with few labels, where $0.95$ keeps almost nothing early in training; at
$\tau = 0.5$ many wrong pseudo-labels are learnt and reinforced (confirmation bias).
"""),
    Exercise(
        "lab-02-mu", "Predict, then test: μ",
        prompt="""
μ is the number of unlabelled clips per labelled clip in a step. Predict what changes in one optimiser step when μ
goes from 1 to the study's 7 (its cost, the weight of ℓ_u against ℓ_s, the number of clips that can pass the
mask), then run `esc run 02_fixmatch -p mu 3` and compare the time per step and the mask rate.
""",
        solution="""
A step costs about (1 + 2μ)/3 times as much as with μ = 1 (every unlabelled clip is seen in two views). ℓ_u stays
a mean over the μB unlabelled clips, so its weight against ℓ_s does not grow with μ, but more clips per step can
pass the mask, so the gradient of ℓ_u is less noisy and the unlabelled pool is covered μ times faster.
"""),
)
