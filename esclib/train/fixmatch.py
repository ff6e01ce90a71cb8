"""FixMatch training for :func:`esclib.train.fit`: paired labelled/unlabelled batches, weak and strong views, and the
per-epoch diagnostics of chapter 02 (study 000, ROCLING 2021; Sohn et al. 2020; PROTOCOLS.md A0, B3).

- :class:`PairedLoader` yields ``(labelled batch, unlabelled batch)``: one epoch is one pass over the unlabelled
  clips (μB per batch); the labelled loader (B per batch) is cycled, reshuffled on each pass.
- :class:`FixMatchStep` is ``fit``'s ``step_fn``. A view is a pair of policies (:class:`View`): one on the waveform,
  before the frontend (SSLH's occlusion and speed perturbation), one on the model's log-mel after ``bn0`` (study
  000's SpecAugment, SSLH's cut-out). When neither view touches the waveform, the log-mel of an unlabelled clip is
  computed once and both spectrogram policies act on it. The labelled batch gets the weak view and, when mixup is
  on, is mixed in pairs on the log-mel as in the PANN recipe (the loader then yields 2B labelled clips, mixed
  into B).
- :class:`LabelledStep` is the same labelled half alone: the supervised arms train with exactly the augmentation
  the labelled half of FixMatch gets.

The model is a classifier with the two halves of a PANN: ``logmel(wave) -> (B, 1, T, F)`` and
``forward_logmel(x) -> logits`` (or a dict with ``logits``), or a
:class:`~esclib.models.transfer.TransferModel` (``base`` = a PANN, ``head`` = its classifier). The model's own
training-time SpecAugment must be off (``base.spec_augment = False``): the views are the augmentation.

Diagnostics (logged per batch and averaged per epoch by ``fit``; linear in the batch, so the epoch means are exact
for equal batch sizes): ``mask_rate`` (share of unlabelled clips whose confidence reaches τ), ``pseudo_acc`` (share
of all pseudo-labels that equal the hidden label), ``masked_correct`` (share of clips both confident and right),
``pseudo_share_<c>`` (share of clips confidently labelled ``c``). :func:`epoch_diagnostics` turns an epoch record
into the accuracy and class distribution of the confident pseudo-labels. The hidden labels come from the unlabelled
ClipSet's ``hidden_target`` column, looked up by the dataset index of each clip; they never enter a loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sized

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from esclib.losses.fixmatch import fixmatch_loss
from esclib.train.loop import logits_of

Policy = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class View:
    """One augmented view: ``wave`` acts on waveforms ``(B, samples)`` before the frontend, ``spec`` on the log-mel
    ``(B, 1, T, F)`` after ``bn0``; None leaves that stage untouched."""

    wave: Policy | None = None
    spec: Policy | None = None

    def on_logmel(self, x: torch.Tensor) -> torch.Tensor:
        """The spectrogram policy applied to a log-mel batch (identity when there is none)."""
        return x if self.spec is None else self.spec(x)

    def of(self, logmel: Callable[[torch.Tensor], torch.Tensor], wave: torch.Tensor) -> torch.Tensor:
        """The view's log-mel of a batch of waveforms: waveform policy, ``logmel`` (the model's frontend), then the
        spectrogram policy."""
        return self.on_logmel(logmel(wave if self.wave is None else self.wave(wave)))


class PairedLoader:
    """``(labelled batch, unlabelled batch)`` pairs; ``len`` = batches of the unlabelled loader (one epoch).

    The labelled loader restarts (a new pass, reshuffled by its sampler) whenever it runs out. Both loaders should
    drop their last partial batch so that every step sees B labelled and μB unlabelled clips.
    """

    def __init__(self, labelled: Iterable, unlabelled: Iterable) -> None:
        self.labelled, self.unlabelled = labelled, unlabelled

    def __len__(self) -> int:
        if not isinstance(self.unlabelled, Sized):
            raise TypeError("PairedLoader: the unlabelled loader has no length")
        return len(self.unlabelled)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        labelled = cycle(self.labelled)
        for unlabelled_batch in self.unlabelled:
            yield next(labelled), unlabelled_batch


class CycledLoader:
    """A loader cycled for a fixed number of ``steps`` per epoch (the supervised arms train for as many steps as
    FixMatch does with the same labels)."""

    def __init__(self, loader: Iterable, steps: int) -> None:
        if steps < 1:
            raise ValueError(f"CycledLoader: steps must be >= 1, got {steps}")
        self.loader, self.steps = loader, steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[Any]:
        batches = cycle(self.loader)
        return (next(batches) for _ in range(self.steps))


def cycle(loader: Iterable) -> Iterator[Any]:
    """Batches of ``loader`` without end, one pass after another (unlike ``itertools.cycle``, each pass is new)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("the loader yielded no batch (fewer clips than its batch size?)")


def _halves(model: nn.Module) -> tuple[Callable, Callable]:
    """``(logmel, logits_from_logmel)`` of a PANN-style classifier or of a TransferModel."""
    if hasattr(model, "logmel") and hasattr(model, "forward_logmel"):
        base, head = model, None
    elif hasattr(model, "base") and hasattr(model, "head") and hasattr(model.base, "forward_logmel"):
        base, head = model.base, model.head
    else:
        raise TypeError(f"FixMatch needs a model with logmel() and forward_logmel(), or a TransferModel over a PANN; "
                        f"got {type(model).__name__}")
    if getattr(base, "spec_augment", False):
        raise ValueError(f"{type(base).__name__}.spec_augment is on: its built-in SpecAugment would augment every "
                         "view again. Set spec_augment = False; the views are the augmentation")

    def logits(x: torch.Tensor) -> torch.Tensor:
        out = base.forward_logmel(x)
        return logits_of(out if head is None else head(out["embedding"]))

    return base.logmel, logits


class LabelledStep:
    """``fit``'s step for labelled batches ``(wave, target, index)``: weak view, optional pair mixup, cross-entropy.

    With ``mixup_alpha`` the 2B clips of a batch are mixed into B pairs on the (augmented) log-mel with
    λ ~ Beta(α, α), targets mixed alike (the PANN recipe, :mod:`esclib.augment.mixup`).
    """

    def __init__(self, weak: View, num_classes: int, *, mixup_alpha: float | None = None) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if mixup_alpha is not None and mixup_alpha <= 0:
            raise ValueError(f"mixup_alpha must be > 0 (or None for no mixup), got {mixup_alpha}")
        self.weak, self.num_classes, self.mixup_alpha = weak, num_classes, mixup_alpha

    def labelled_inputs(self, model: nn.Module, wave: torch.Tensor,
                        target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The weak view's log-mel of a labelled batch (mixed in pairs with mixup) and its targets (class indices,
        or mixed one-hot probabilities)."""
        logmel, _ = _halves(model)
        x = self.weak.of(logmel, wave)
        if self.mixup_alpha is None:
            return x, target
        from esclib.augment.mixup import do_mixup, mixup_lambdas

        if len(x) % 2:
            raise ValueError(f"mixup mixes pairs: the labelled batch must have an even size, got {len(x)}")
        lam = mixup_lambdas(len(x), self.mixup_alpha).to(x.device)
        return do_mixup(x, lam), do_mixup(F.one_hot(target, self.num_classes).to(x.dtype), lam)

    def __call__(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        x, target = self.labelled_inputs(model, batch[0], batch[1])
        loss = F.cross_entropy(_halves(model)[1](x).float(), target)
        return loss, {"loss": float(loss.detach())}


class FixMatchStep(LabelledStep):
    """``fit``'s step for :class:`PairedLoader` batches: ℓ_s on the labelled half (:class:`LabelledStep`) plus
    λ_u ℓ_u on the strong view of the unlabelled clips, pseudo-labelled from their weak view
    (:func:`esclib.losses.fixmatch.fixmatch_loss`).

    The labelled inputs and the strong views go through the model as one batch (shared batch-norm statistics, as
    in Sohn et al.'s code); the weak views go through without gradient, also in training mode. ``hidden_targets``
    (the unlabelled ClipSet's ``hidden_target``, indexed like its dataset) feeds the diagnostics only.
    """

    def __init__(self, weak: View, strong: View, num_classes: int, *, threshold: float = 0.95,
                 lambda_u: float = 1.0, mixup_alpha: float | None = None,
                 hidden_targets: np.ndarray | None = None) -> None:
        super().__init__(weak, num_classes, mixup_alpha=mixup_alpha)
        self.strong, self.threshold, self.lambda_u = strong, threshold, lambda_u
        self.hidden_targets = None if hidden_targets is None else torch.tensor(np.asarray(hidden_targets))

    def unlabelled_views(self, model: nn.Module, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel of the weak and of the strong view of a batch of unlabelled clips."""
        logmel, _ = _halves(model)
        if self.weak.wave is None and self.strong.wave is None:
            x = logmel(wave)
            return self.weak.on_logmel(x), self.strong.on_logmel(x)
        return self.weak.of(logmel, wave), self.strong.of(logmel, wave)

    def __call__(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        (wave_l, target, _), (wave_u, _, index_u) = batch[0][:3], batch[1][:3]
        _, logits = _halves(model)
        x_l, target = self.labelled_inputs(model, wave_l, target)
        weak_x, strong_x = self.unlabelled_views(model, wave_u)
        with torch.no_grad():
            weak_logits = logits(weak_x)
        out = logits(torch.cat([x_l, strong_x]))
        result = fixmatch_loss(out[:len(x_l)], target, weak_logits, out[len(x_l):], threshold=self.threshold,
                               lambda_u=self.lambda_u)
        logs = {"loss": float(result.loss.detach()), "loss_s": float(result.supervised.detach()),
                "loss_u": float(result.unsupervised.detach())}
        return result.loss, logs | self.diagnostics(result.pseudo.labels, result.pseudo.mask, index_u)

    def diagnostics(self, labels: torch.Tensor, mask: torch.Tensor, index: torch.Tensor) -> dict[str, float]:
        """Mask rate, pseudo-label accuracy and the class shares of the confident pseudo-labels of one batch."""
        labels, mask = labels.cpu(), mask.cpu()
        logs = {"mask_rate": float(mask.mean())}
        shares = torch.bincount(labels, weights=mask, minlength=self.num_classes) / len(labels)
        logs |= {f"pseudo_share_{c}": float(s) for c, s in enumerate(shares)}
        if self.hidden_targets is not None:
            correct = (labels == self.hidden_targets[index.cpu()]).float()
            logs |= {"pseudo_acc": float(correct.mean()), "masked_correct": float((correct * mask).mean())}
        return logs


def epoch_diagnostics(record: dict[str, float]) -> dict[str, float]:
    """From an epoch record of :class:`FixMatchStep` logs: ``pseudo_acc_masked`` (accuracy of the confident
    pseudo-labels; NaN when none was confident) and ``pseudo_dist_<c>`` (their class distribution)."""
    mask = record.get("mask_rate")
    if mask is None:
        raise KeyError(f"epoch_diagnostics: the record has no 'mask_rate' (keys: {sorted(record)})")
    out: dict[str, float] = {}
    if "masked_correct" in record:
        out["pseudo_acc_masked"] = record["masked_correct"] / mask if mask > 0 else float("nan")
    for key, share in record.items():
        if key.startswith("pseudo_share_"):
            out["pseudo_dist_" + key.removeprefix("pseudo_share_")] = share / mask if mask > 0 else float("nan")
    return out
