"""Lab of chapter 5 (the self-supervised comparison): the NT-Xent loss of SimCLR, and the EMA teacher update.

Sample solutions and checks against lightly's ``NTXentLoss`` and ``update_momentum`` (the losses and updates of
:mod:`esclib.models.ssl`). Notebook: 05_ssl.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import torch
import torch.nn.functional as F
from lightly.loss import NTXentLoss
from lightly.models.utils import update_momentum
from torch import nn

from esclib.labs.cells import Exercise
from esclib.labs.check import FunctionCheck, Mistake, Problem, compare_arrays, generator

STEM = "05_ssl"


# --- sample solutions -------------------------------------------------------------------------------------------

def nt_xent(z0: torch.Tensor, z1: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent: each of the 2N projections must pick its partner (the other view of its clip) among the
    2N - 1 others, by a softmax over cosine similarities divided by the temperature."""
    n = len(z0)
    z = F.normalize(torch.cat([z0, z1]), dim=1)
    similarity = z @ z.T / temperature
    similarity = similarity.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))  # not its own negative
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(similarity, partner)


@torch.no_grad()
def ema_update(student: nn.Module, teacher: nn.Module, momentum: float) -> None:
    """Move the teacher's parameters towards the student's, in place: θ_t <- m θ_t + (1 − m) θ_s."""
    for theta_s, theta_t in zip(student.parameters(), teacher.parameters()):
        theta_t.mul_(momentum).add_((1 - momentum) * theta_s)


# --- check of NT-Xent -------------------------------------------------------------------------------------------

def _ntxent_cases() -> list[dict[str, Any]]:
    g = generator(8)
    cases = []
    for n, dim, temperature in ((8, 16, 0.5), (5, 4, 0.1)):
        z0 = torch.randn(n, dim, generator=g) * 3
        cases.append({"z0": z0, "z1": z0 + torch.randn(n, dim, generator=g), "temperature": temperature})
    return cases


def _library_ntxent(z0, z1, temperature):
    return NTXentLoss(temperature=temperature)(z0, z1)


def _ntxent_variant(z0, z1, temperature, *, normalise=True, use_temperature=True, mask_self=True, views="both"):
    n = len(z0)
    z = torch.cat([z0, z1])
    z = F.normalize(z, dim=1) if normalise else z
    similarity = z @ z.T / (temperature if use_temperature else 1.0)
    if mask_self:
        similarity = similarity.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    if views == "cross":
        return F.cross_entropy(similarity[:n, n:], torch.arange(n))
    if views == "first":
        return F.cross_entropy(similarity[:n], partner[:n])
    return F.cross_entropy(similarity, partner)


check_nt_xent = FunctionCheck(
    "NT-Xent loss", _ntxent_cases, _library_ntxent,
    mistakes=[
        Mistake(lambda **c: _ntxent_variant(**c, normalise=False),
                "the projections were not L2-normalised: NT-Xent compares cosine similarities"),
        Mistake(lambda **c: _ntxent_variant(**c, use_temperature=False),
                "the temperature is ignored: divide the similarities by it before the softmax"),
        Mistake(lambda **c: _ntxent_variant(**c, mask_self=False),
                "each projection's similarity with itself is among the candidates: mask the diagonal, a view is "
                "neither its own positive nor its own negative"),
        Mistake(lambda **c: _ntxent_variant(**c, views="cross"),
                "only the cross-view similarities were used: SimCLR's negatives are all 2N - 2 other projections, "
                "from both views"),
        Mistake(lambda **c: _ntxent_variant(**c, views="first"),
                "only the first view's projections were scored: the loss is symmetric, averaged over all 2N"),
    ])
check_nt_xent.__doc__ = "Check an ``nt_xent(z0, z1, temperature)`` against ``lightly.loss.NTXentLoss``."


# --- check of the EMA update ------------------------------------------------------------------------------------

def _pair(seed: int) -> tuple[nn.Module, nn.Module]:
    g = generator(seed)
    student, teacher = (nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)) for _ in range(2))
    with torch.no_grad():
        for parameter in (*student.parameters(), *teacher.parameters()):
            parameter.copy_(torch.randn(parameter.shape, generator=g))
    return student, teacher


def _ema_outcome(update: Callable[..., Any], seed: int, momentum: float) -> dict[str, torch.Tensor]:
    """The two networks' parameters (flattened) before and after one call of ``update``."""
    def flat(module: nn.Module) -> torch.Tensor:
        return torch.cat([p.detach().flatten() for p in module.parameters()])

    student, teacher = _pair(seed)
    before = flat(teacher).clone()
    update(student=student, teacher=teacher, momentum=momentum)
    return {"teacher_before": before, "teacher": flat(teacher), "student": flat(student)}


def _library_ema(student, teacher, momentum):
    update_momentum(student, teacher, momentum)


@torch.no_grad()
def _swapped(student, teacher, momentum):
    for s, t in zip(student.parameters(), teacher.parameters()):
        t.copy_((1 - momentum) * t + momentum * s)


@torch.no_grad()
def _copied(student, teacher, momentum):
    teacher.load_state_dict(student.state_dict())


def _compare_ema(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> Problem:
    if compare_arrays(got["student"], expected["student"]):
        return ("the student's parameters changed: the teacher follows the student; only the optimizer trains the "
                "student")
    if torch.equal(got["teacher"], got["teacher_before"]):
        return ("the teacher's parameters did not change: update them in place (`parameter.mul_(m).add_(...)` "
                "under `torch.no_grad()`); rebinding a local name changes nothing")
    return compare_arrays(got["teacher"], expected["teacher"], "the teacher's parameters after the update")


def check_ema_update(student: Callable[..., Any]):
    """Check an ``ema_update(student, teacher, momentum)`` against lightly's ``update_momentum``."""
    return FunctionCheck(
        "EMA teacher update", lambda: [{"seed": 0, "momentum": 0.9}, {"seed": 1, "momentum": 0.5}],
        partial(_ema_outcome, _library_ema),
        mistakes=[
            Mistake(partial(_ema_outcome, _swapped),
                    "the momentum weighs the student: the teacher keeps m of itself, θ_t <- m θ_t + (1 − m) θ_s"),
            Mistake(partial(_ema_outcome, _copied),
                    "the teacher became a copy of the student (momentum 0): it must average the student over many "
                    "steps"),
        ],
        compare=_compare_ema)(partial(_ema_outcome, student))


# --- the lab ----------------------------------------------------------------------------------------------------

EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        "lab-05-nt-xent", "SimCLR's NT-Xent loss",
        prompt="""
Write `nt_xent(z0, z1, temperature)`: `z0` and `z1` are the projections `(N, d)` of two augmented views of the
same N clips. Each of the 2N projections must recognise its partner (the other view of its clip) among the 2N - 1
other projections: a softmax over cosine similarities divided by the temperature, and the cross-entropy of picking
the partner, averaged over all 2N.
""",
        solution="""
Normalise the 2N projections, compute all pairwise similarities divided by the temperature, remove each
projection's similarity with itself (set it to $-\\infty$), and take the cross-entropy whose target for row i is
its partner (i + N for the first view, i − N for the second). The temperature sets how sharply the softmax
concentrates on the hardest negatives.
""",
        template='''
import torch
import torch.nn.functional as F

from esclib.labs import ch05


def nt_xent(z0, z1, temperature):
    """SimCLR's loss: each of the 2N projections picks its partner among the 2N - 1 others (cosine / T)."""
    raise NotImplementedError


ch05.check_nt_xent(nt_xent)
''',
        sample="nt_xent", check="check_nt_xent"),
    Exercise(
        "lab-05-ema", "The teacher's exponential moving average",
        prompt="""
MoCo, BYOL and DINO compare the student network with a *teacher* that follows it slowly. Write
`ema_update(student, teacher, momentum)`: after every optimiser step, each parameter of the teacher becomes
$m\\,\\theta_t + (1-m)\\,\\theta_s$. The two networks have the same architecture; update the teacher in place and
return nothing.
""",
        solution="""
Under `torch.no_grad()`, walk the two parameter lists together and update each teacher parameter in place
(`theta_t.mul_(m).add_((1 - m) * theta_s)`). A teacher that copies the student (m = 0) gives the student no stable
target and the methods without negatives collapse; a teacher that never moves (m = 1) stays at its random
initialisation.
""",
        template='''
import torch

from esclib.labs import ch05


def ema_update(student, teacher, momentum):
    """In place: every teacher parameter <- momentum * teacher + (1 - momentum) * student."""
    raise NotImplementedError


ch05.check_ema_update(ema_update)
''',
        sample="ema_update", check="check_ema_update"),
    Exercise(
        "lab-05-probe-vs-knn", "Linear probe or kNN?",
        prompt="""
The chapter evaluates every pre-trained backbone twice: a linear probe on frozen, standardised embeddings and a
weighted kNN. Predict which of the two ranks the methods differently when an embedding is good but its classes lie
along a few directions among many noisy ones, then compare the two columns of this run's table.
""",
        solution="""
The linear probe learns which directions matter and can ignore noisy ones; the kNN weighs every direction through
the cosine similarity and has nothing to learn, so it exposes embeddings whose class structure is not the dominant
one (X-ARES reports large gaps of this kind). A method ahead in the probe but behind in kNN has useful but not
well-clustered features.
"""),
    Exercise(
        "lab-05-undefined-protocol", 'What does "1-fold-1-epoch" mean?',
        prompt="""
Study 001 reports its self-supervised methods under a "1-fold-1-epoch" evaluation and a projection-head ablation
whose best value is far above its headline. List what a reader needs to know to reproduce an SSL number, and check
which of those the chapter's table states for each row.
""",
        solution="""
The pre-training data (which folds, with or without labels, which augmentations), its length (epochs, batch),
the backbone and projection head, the evaluation (linear probe or kNN, on which folds, with which labelled subset,
how the epoch or hyper-parameters were chosen) and the number of runs. Two numbers measured under different
evaluations cannot be compared, which is why the chapter evaluates every method the same way and states it.
"""),
)
