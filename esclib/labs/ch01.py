"""Lab of chapter 1 (PANN transfer): one training step of Freeze_L1 on a frozen base, and the mixup of pairs.

Sample solutions and checks against :class:`esclib.models.transfer.TransferModel` (strategy ``freeze_l1``) and
:func:`esclib.augment.mixup.do_mixup`. Notebook: 01_pann_transfer.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from esclib.augment.mixup import do_mixup, mixup_lambdas
from esclib.labs.cells import Exercise
from esclib.labs.check import FunctionCheck, Mistake, Problem, compare_arrays, compare_tuples, generator
from esclib.labs.toys import ToyBase
from esclib.models.transfer import TransferModel

STEM = "01_pann_transfer"
N_CLASSES = 3


# --- sample solutions -------------------------------------------------------------------------------------------

def freeze_l1_step(base: nn.Module, head: nn.Module, waveforms: torch.Tensor, targets: torch.Tensor,
                   optimizer: torch.optim.Optimizer) -> float:
    """One optimiser step of Freeze_L1: the base is a fixed feature extractor, only the linear head learns."""
    base.eval()  # batch-norm statistics fixed, dropout off
    with torch.no_grad():  # no gradient reaches the base
        embedding = base(waveforms)["embedding"]
    head.train()
    loss = F.cross_entropy(head(embedding), targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def mixup_pairs(x: torch.Tensor, targets: torch.Tensor, lambdas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """PANN's mixup: clip 2i mixed with clip 2i+1 with weights ``lambdas[2i]`` and ``lambdas[2i+1]`` (which sum to
    one), inputs and targets alike; 2B examples in, B out."""
    def mix(values: torch.Tensor) -> torch.Tensor:
        shape = (-1,) + (1,) * (values.dim() - 1)  # one weight per example, broadcast over its other axes
        return values[0::2] * lambdas[0::2].reshape(shape) + values[1::2] * lambdas[1::2].reshape(shape)
    return mix(x), mix(targets)


# --- check of the Freeze_L1 step --------------------------------------------------------------------------------

def _setup(seed: int) -> dict[str, Any]:
    g = generator(seed)
    base, head = ToyBase(seed=seed), nn.Linear(ToyBase.embedding_size, N_CLASSES)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=g))
        head.bias.zero_()
    base.train()
    optimizer = torch.optim.SGD([*base.parameters(), *head.parameters()], lr=0.5)
    for parameter in head.parameters():  # gradients left over from a previous step
        parameter.grad = torch.ones_like(parameter)
    return {"base": base, "head": head, "waveforms": torch.randn(6, 32, generator=g),
            "targets": torch.randint(0, N_CLASSES, (6,), generator=g), "optimizer": optimizer}


def _outcome(step: Callable[..., Any], seed: int) -> dict[str, Any]:
    """What one call of ``step`` leaves behind: the loss it returns, the base's weights and batch-norm statistics,
    the head's weights."""
    setup = _setup(seed)
    loss = step(**setup)
    base = setup["base"]
    return {"loss": loss, "base_weights": [p.detach().clone() for p in base.parameters()],
            "base_stats": [b.clone() for b in base.buffers() if b.is_floating_point()],
            "head": [p.detach().clone() for p in setup["head"].parameters()]}


def _library_step(base, head, waveforms, targets, optimizer) -> float:
    model = TransferModel(base, N_CLASSES, "freeze_l1")  # freezes the base: no gradient, eval mode
    model.head.layers = head
    model.train()
    loss = F.cross_entropy(model(waveforms)["logits"], targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _compare_outcomes(got: dict[str, Any], expected: dict[str, Any]) -> Problem:
    if any(compare_arrays(g, e) for g, e in zip(got["base_stats"], expected["base_stats"])):
        return ("the base's batch-norm running statistics changed: a frozen base stays in eval mode "
                "(`base.eval()`), otherwise every step moves its statistics and dropout changes its embedding "
                "(the PANN authors' transfer code has this flaw)")
    if any(compare_arrays(g, e) for g, e in zip(got["base_weights"], expected["base_weights"])):
        return ("the base's weights changed: compute the embedding under `torch.no_grad()` so that no gradient "
                "reaches the base (the optimizer holds the base's parameters too)")
    for name, g, e in zip(("weight", "bias"), got["head"], expected["head"]):
        problem = compare_arrays(g, e, f"the head's {name} after the step")
        if problem:
            return problem + " -- one step of cross-entropy on the head's logits was expected"
    if not isinstance(got["loss"], (float, int)) and not (isinstance(got["loss"], torch.Tensor)
                                                           and got["loss"].numel() == 1):
        return f"the step should return the loss as a number, got {type(got['loss']).__name__}"
    return compare_arrays(got["loss"], expected["loss"], "the returned loss")


def _double_softmax(base, head, waveforms, targets, optimizer) -> float:
    base.eval()
    with torch.no_grad():
        embedding = base(waveforms)["embedding"]
    loss = F.cross_entropy(torch.softmax(head(embedding), dim=1), targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _no_zero_grad(base, head, waveforms, targets, optimizer) -> float:
    base.eval()
    with torch.no_grad():
        embedding = base(waveforms)["embedding"]
    loss = F.cross_entropy(head(embedding), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def check_freeze_l1_step(student: Callable[..., Any]):
    """Check a ``freeze_l1_step(base, head, waveforms, targets, optimizer)`` against one step of the library's
    ``TransferModel(base, classes, "freeze_l1")``, on a toy base with batch-norm and dropout."""
    return FunctionCheck(
        "one Freeze_L1 training step", lambda: [{"seed": 0}, {"seed": 1}], partial(_outcome, _library_step),
        mistakes=[
            Mistake(partial(_outcome, _double_softmax),
                    "the loss was computed on probabilities: `F.cross_entropy` takes logits and applies the "
                    "softmax itself"),
            Mistake(partial(_outcome, _no_zero_grad),
                    "the gradients of the previous step were added to this one: call `optimizer.zero_grad()` "
                    "before `backward()`"),
        ],
        compare=_compare_outcomes)(partial(_outcome, student))


# --- check of the mixup of pairs --------------------------------------------------------------------------------

def _mixup_cases() -> list[dict[str, Any]]:
    cases = []
    for seed, shape in ((0, (6, 5, 4)), (1, (4, 8))):
        g = generator(seed)
        targets = F.one_hot(torch.randint(0, N_CLASSES, (shape[0],), generator=g), N_CLASSES).float()
        cases.append({"x": torch.randn(shape, generator=g), "targets": targets,
                      "lambdas": mixup_lambdas(shape[0], 1.0, generator=g)})
    return cases


def _library_mixup(x, targets, lambdas):
    return do_mixup(x, lambdas), do_mixup(targets, lambdas)


def _halves(x, targets, lambdas):
    half = x.shape[0] // 2
    def mix(v):
        shape = (-1,) + (1,) * (v.dim() - 1)
        return v[:half] * lambdas[0::2].reshape(shape) + v[half:] * lambdas[1::2].reshape(shape)
    return mix(x), mix(targets)


def _swapped(x, targets, lambdas):
    return mixup_pairs(x, targets, torch.stack([lambdas[1::2], lambdas[0::2]], 1).reshape(-1))


def _targets_unmixed(x, targets, lambdas):
    return mixup_pairs(x, targets, lambdas)[0], targets[0::2]


check_mixup_pairs = FunctionCheck(
    "mixup of pairs", _mixup_cases, _library_mixup,
    mistakes=[
        Mistake(_halves, "the first half of the batch was mixed with the second half: the PANN loader puts the "
                         "partners side by side, clip 2i with clip 2i+1"),
        Mistake(_swapped, "each pair's weights are swapped: clip 2i gets lambdas[2i], its partner lambdas[2i+1]"),
        Mistake(_targets_unmixed, "the inputs are mixed but the targets are not: a mixed clip's target is the same "
                                  "mixture of its two targets"),
    ],
    compare=compare_tuples(("the mixed inputs", "the mixed targets")))
check_mixup_pairs.__doc__ = "Check a ``mixup_pairs(x, targets, lambdas)`` against ``esclib.augment.mixup.do_mixup``."


# --- the lab ----------------------------------------------------------------------------------------------------

EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        "lab-01-freeze-l1", "One training step of Freeze_L1",
        prompt="""
Freeze_L1 trains one linear layer on the embedding of a frozen PANN. Write `freeze_l1_step(base, head,
waveforms, targets, optimizer)`: one optimiser step of cross-entropy on `head(embedding)`, where `embedding =
base(waveforms)["embedding"]`, and return the loss as a number. As in a careless training loop, the optimizer
holds the parameters of the base *and* the head, still has the gradients of a previous step, and both modules come
in training mode: after your step the base must be exactly as before. The check uses a small base with batch-norm
and dropout in place of a PANN.
""",
        solution="""
Put the base in eval mode (batch-norm uses its stored statistics and leaves them alone; dropout is off) and compute
the embedding under `torch.no_grad()`, so no gradient reaches the base; then zero the gradients, back-propagate the
head's cross-entropy and step. `requires_grad = False` alone, as the PANN authors' transfer code does it, still
lets every forward pass in training mode move the base's batch-norm statistics, so the "frozen" base drifts.
`esclib.models.transfer.TransferModel` keeps a frozen base in eval mode whatever `.train()` is called on.
""",
        template='''
import torch
import torch.nn.functional as F

from esclib.labs import ch01


def freeze_l1_step(base, head, waveforms, targets, optimizer):
    """One optimiser step of Freeze_L1 (frozen base, linear head, cross-entropy); returns the loss."""
    raise NotImplementedError


ch01.check_freeze_l1_step(freeze_l1_step)
''',
        sample="freeze_l1_step", check="check_freeze_l1_step"),
    Exercise(
        "lab-01-mixup-pairs", "The mixup of pairs",
        prompt="""
The PANN recipe loads 2B clips per step and mixes them in pairs. Write `mixup_pairs(x, targets, lambdas)`: `x`
is a batch of 2B examples of any shape (waveforms, log-mels or embeddings), `targets` their one-hot targets
`(2B, classes)`, and `lambdas` the 2B weights `[l0, 1 - l0, l1, 1 - l1, ...]` drawn by
`esclib.augment.mixup.mixup_lambdas`. Return the B mixed examples and their B mixed targets.
""",
        solution="""
Clip 2i is mixed with clip 2i + 1: `x[0::2] * lambdas[0::2] + x[1::2] * lambdas[1::2]`, with each weight reshaped
to broadcast over the example's other axes, and the targets the same way. Mixing the first half of the batch with
the second, swapping a pair's weights, or leaving the targets unmixed are the usual slips.
""",
        template='''
import torch

from esclib.labs import ch01


def mixup_pairs(x, targets, lambdas):
    """Mix clip 2i with clip 2i+1 (weights lambdas[2i], lambdas[2i+1]); returns (mixed x, mixed targets)."""
    raise NotImplementedError


ch01.check_mixup_pairs(mixup_pairs)
''',
        sample="mixup_pairs", check="check_mixup_pairs"),
    Exercise(
        "lab-01-few-labels", "Predict, then test: which strategy suffers most from few labels?",
        prompt="""
Before running anything, rank the four strategies (scratch, fine-tune, Freeze_L1, Freeze_L3) by how much accuracy
they lose when the labelled clips per class drop from the most to the fewest of this run's few-shot curve. Then
run the curve with more points, e.g. `esc run 01_pann_transfer -p few_shot_per_class 1,2,5,10`, and compare
with your ranking.
""",
        solution="""
The fewer the labels, the more the number of trained parameters matters: scratch trains every weight from a few
clips and collapses first; fine-tuning starts from good weights but can still overfit them; Freeze_L1 trains one
linear layer on a fixed embedding and usually degrades most gracefully, with Freeze_L3 between the two. How far
apart the curves are in this run depends on how well the pre-trained embedding separates the classes, which the
2-D map of the embeddings shows before any training.
"""),
    Exercise(
        "lab-01-text-vs-table", "When a study's text and table disagree",
        prompt="""
Study 003's text and its table of transfer results disagree about which of Freeze_L1 and Freeze_L3 is better on
ESC-50 (see the appendix on protocols). Which of the two should a reproduction compare against, and how does this
chapter make sure that the study's numbers beside ours are the ones it published?
""",
        solution="""
The table: it is the study's record of its results, and the text's swap of the two values is a slip in the prose.
The book never types the studies' numbers by hand: they are registered once with their source (table and row) in
`esclib.results.studies` and every table of published numbers is generated from that registry, so a correction is
made in one place and the appendix lists the discrepancy.
"""),
)
