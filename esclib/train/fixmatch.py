"""FixMatch training for :func:`esclib.train.fit`: paired labelled/unlabelled batches, weak and strong views, and the
per-epoch diagnostics of chapter 02 (study 000, ROCLING 2021; Sohn et al. 2020; book/protocols.md).

- :class:`PairedLoader` yields ``(labelled batch, unlabelled batch)``: one epoch is one pass over the unlabelled
  clips (μB per batch); the labelled loader (B per batch) is cycled, reshuffled on each pass.
- :class:`FixMatchStep` is ``fit``'s ``step_fn``. A view is a pair of policies (:class:`View`): one on the waveform,
  before the frontend (SSLH's occlusion and speed perturbation), one on the model's log-mel after ``bn0`` (study
  000's SpecAugment, SSLH's cut-out). When neither view touches the waveform, the log-mel of an unlabelled clip is
  computed once and both spectrogram policies act on it. The labelled batch gets the weak view and, when mixup is
  on, is mixed in pairs on the log-mel as in the PANN recipe (the loader then yields 2B labelled clips, mixed
  into B).
- Its pass structure (:data:`PASS_STRUCTURES`): ``"joint"``, the reference (Sohn et al.'s code, kekmodel's and
  USB's PyTorch ports): the labelled inputs, the weak and the strong views go through the network as **one**
  batch, so batch-norm normalises them with the statistics of that whole batch; the pseudo-labels come from the
  weak part of that forward pass, detached (in training mode, dropout on, as in the reference). Sohn et al.
  interleave the batch across devices only so that each device's batch-norm sees the same mix; on one device the
  concatenation is that batch. ``"separate"``: the weak views go through the network in a pass of their own
  (training mode, no gradient), then the labelled inputs and the strong views in a second one, so batch-norm
  normalises the weak views with the statistics of the weak views alone (chapter 02 compares the two).
- :class:`LabelledStep` is the same labelled half alone: the supervised arms train with exactly the augmentation
  the labelled half of FixMatch gets.

The model is a PANN-style classifier cut in three (:func:`model_parts`): its frontend (``spectrogram_extractor``
then ``logmel_extractor``: waveform -> log-mel ``(B, 1, T, F)``, no learnt statistics), ``bn0`` (a batch-norm over
the mel bins) and ``forward_logmel`` (everything after ``bn0``; logits, or a dict with ``logits``) -- a PANN itself
or a :class:`~esclib.models.transfer.TransferModel` (``base`` = a PANN, ``head`` = its classifier). The model's own
training-time SpecAugment must be off (``base.spec_augment = False``): the views are the augmentation. The batches
hold waveforms ``(B, samples)`` or, with ``inputs="logmel"``, the frontend's log-mels ``(B, F, T)`` computed once
per clip (:data:`INPUTS`; the frontend is deterministic, so a crop of a clip's log-mel is what the frontend gives
the crop, up to the frames at its edges); views with a waveform policy need waveforms. :class:`Classifier` is the
model as :func:`esclib.train.predict` calls it, on either input.

Diagnostics (logged per batch and averaged per epoch by ``fit``; linear in the batch, so the epoch means are exact
for equal batch sizes): ``mask_rate`` (share of unlabelled clips whose confidence reaches τ), ``pseudo_acc`` (share
of all pseudo-labels that equal the hidden label), ``masked_correct`` (share of clips both confident and right),
``pseudo_share_<c>`` (share of clips confidently labelled ``c``). :func:`epoch_diagnostics` turns an epoch record
into the accuracy and class distribution of the confident pseudo-labels. The hidden labels come from the unlabelled
ClipSet's ``hidden_target`` column, looked up by the dataset index of each clip; they never enter a loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Sized

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from esclib.losses.fixmatch import fixmatch_loss
from esclib.train.loop import logits_of

Policy = Callable[[torch.Tensor], torch.Tensor]

#: how the views go through the network (module docstring): ``joint`` (Sohn et al.'s reference) or ``separate``
PASS_STRUCTURES: tuple[str, ...] = ("joint", "separate")
#: what a batch holds: waveforms ``(B, samples)`` or the frontend's log-mels ``(B, mel_bins, frames)``
INPUTS: tuple[str, ...] = ("waveform", "logmel")


@dataclass(frozen=True)
class View:
    """One augmented view: ``wave`` acts on waveforms ``(B, samples)`` before the frontend, ``spec`` on the log-mel
    ``(B, 1, T, F)`` after ``bn0``; None leaves that stage untouched."""

    wave: Policy | None = None
    spec: Policy | None = None

    def on_wave(self, wave: torch.Tensor) -> torch.Tensor:
        """The waveform policy applied to a batch of waveforms (identity when there is none)."""
        return wave if self.wave is None else self.wave(wave)

    def on_logmel(self, x: torch.Tensor) -> torch.Tensor:
        """The spectrogram policy applied to a log-mel batch (identity when there is none)."""
        return x if self.spec is None else self.spec(x)

    def of(self, logmel: Callable[[torch.Tensor], torch.Tensor], wave: torch.Tensor) -> torch.Tensor:
        """The view's log-mel of a batch of waveforms: waveform policy, ``logmel`` (frontend and ``bn0``), then the
        spectrogram policy."""
        return self.on_logmel(logmel(self.on_wave(wave)))


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


class ModelParts(NamedTuple):
    """A PANN-style classifier cut where FixMatch needs it: ``frontend`` (waveform -> log-mel before ``bn0``),
    ``bn0`` (log-mel -> normalised log-mel, batch statistics in training mode) and ``logits`` (normalised, augmented
    log-mel -> class logits)."""

    frontend: Callable[[torch.Tensor], torch.Tensor]
    bn0: Callable[[torch.Tensor], torch.Tensor]
    logits: Callable[[torch.Tensor], torch.Tensor]


def model_parts(model: nn.Module, inputs: str = "waveform") -> ModelParts:
    """The :class:`ModelParts` of a PANN-style classifier or of a TransferModel over one (module docstring), for
    batches of ``inputs`` (:data:`INPUTS`): with ``"logmel"`` the frontend only lays the cached log-mels out as the
    network reads them."""
    if inputs not in INPUTS:
        raise ValueError(f"inputs must be one of {INPUTS}, got {inputs!r}")
    needed = ("spectrogram_extractor", "logmel_extractor", "bn0", "forward_logmel")
    if all(hasattr(model, name) for name in needed):
        base, head = model, None
    elif hasattr(model, "base") and hasattr(model, "head") and all(hasattr(model.base, n) for n in needed):
        base, head = model.base, model.head
    else:
        raise TypeError(f"FixMatch needs a PANN-style model ({', '.join(needed)}) or a TransferModel over one; got "
                        f"{type(model).__name__}")
    if getattr(base, "spec_augment", False):
        raise ValueError(f"{type(base).__name__}.spec_augment is on: its built-in SpecAugment would augment every "
                         "view again. Set spec_augment = False; the views are the augmentation")

    def logits(x: torch.Tensor) -> torch.Tensor:
        out = base.forward_logmel(x)
        return logits_of(out if head is None else head(out["embedding"]))

    def bn0(x: torch.Tensor) -> torch.Tensor:
        return base.bn0(x.transpose(1, 3)).transpose(1, 3)

    if inputs == "logmel":
        return ModelParts(lambda logmel: logmel.transpose(1, 2).unsqueeze(1), bn0, logits)
    return ModelParts(lambda wave: base.logmel_extractor(base.spectrogram_extractor(wave)), bn0, logits)


class Classifier(nn.Module):
    """``model`` as :func:`esclib.train.predict` calls it: logits of a batch of ``inputs`` (waveforms or cached
    log-mels), through the frontend, ``bn0`` and the rest, without augmentation."""

    def __init__(self, model: nn.Module, inputs: str = "waveform") -> None:
        super().__init__()
        self.model, self.inputs = model, inputs
        model_parts(model, inputs)  # refuses a model it cannot cut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = model_parts(self.model, self.inputs)
        return parts.logits(parts.bn0(parts.frontend(x)))


class LabelledStep:
    """``fit``'s step for labelled batches ``(wave, target, index)``: weak view, optional pair mixup, cross-entropy.

    With ``mixup_alpha`` the 2B clips of a batch are mixed into B pairs on the (augmented) log-mel with
    λ ~ Beta(α, α), targets mixed alike (the PANN recipe, :mod:`esclib.augment.mixup`).
    """

    def __init__(self, weak: View, num_classes: int, *, mixup_alpha: float | None = None,
                 inputs: str = "waveform") -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if mixup_alpha is not None and mixup_alpha <= 0:
            raise ValueError(f"mixup_alpha must be > 0 (or None for no mixup), got {mixup_alpha}")
        self.weak, self.num_classes, self.mixup_alpha, self.inputs = weak, num_classes, mixup_alpha, inputs
        self._check_views(weak)

    def _check_views(self, *views: View) -> None:
        if self.inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {INPUTS}, got {self.inputs!r}")
        if self.inputs == "logmel" and any(view.wave is not None for view in views):
            raise ValueError("a view with a waveform policy needs waveform batches (inputs='waveform'), not cached "
                             "log-mels")

    def labelled_inputs(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The weak view's spectrogram policy on a labelled batch's normalised log-mel ``x``, then (with mixup) the
        pairs mixed; returns the inputs and their targets (class indices, or mixed one-hot probabilities)."""
        x = self.weak.on_logmel(x)
        if self.mixup_alpha is None:
            return x, target
        from esclib.augment.mixup import do_mixup, mixup_lambdas

        if len(x) % 2:
            raise ValueError(f"mixup mixes pairs: the labelled batch must have an even size, got {len(x)}")
        lam = mixup_lambdas(len(x), self.mixup_alpha).to(x.device)
        return do_mixup(x, lam), do_mixup(F.one_hot(target, self.num_classes).to(x.dtype), lam)

    def __call__(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        parts = model_parts(model, self.inputs)
        x, target = self.labelled_inputs(parts.bn0(parts.frontend(self.weak.on_wave(batch[0]))), batch[1])
        loss = F.cross_entropy(parts.logits(x).float(), target)
        return loss, {"loss": float(loss.detach())}


class FixMatchStep(LabelledStep):
    """``fit``'s step for :class:`PairedLoader` batches: ℓ_s on the labelled half (:class:`LabelledStep`) plus
    λ_u ℓ_u on the strong view of the unlabelled clips, pseudo-labelled from their weak view
    (:func:`esclib.losses.fixmatch.fixmatch_loss`).

    ``passes`` is the pass structure (module docstring): ``"joint"`` (the reference: labelled inputs, weak and strong
    views through ``bn0`` and the network as one batch, pseudo-labels from its weak part, detached) or
    ``"separate"`` (``bn0`` on the labelled and the unlabelled clips apart, the weak views through the network in a
    pass of their own without gradient). ``hidden_targets`` (the unlabelled ClipSet's ``hidden_target``, indexed
    like its dataset) feeds the diagnostics only.
    """

    def __init__(self, weak: View, strong: View, num_classes: int, *, threshold: float = 0.95,
                 lambda_u: float = 1.0, mixup_alpha: float | None = None, passes: str = "joint",
                 inputs: str = "waveform", hidden_targets: np.ndarray | None = None) -> None:
        super().__init__(weak, num_classes, mixup_alpha=mixup_alpha, inputs=inputs)
        self._check_views(strong)
        if passes not in PASS_STRUCTURES:
            raise ValueError(f"FixMatchStep: passes must be one of {PASS_STRUCTURES}, got {passes!r}")
        self.strong, self.threshold, self.lambda_u, self.passes = strong, threshold, lambda_u, passes
        self.hidden_targets = None if hidden_targets is None else torch.tensor(np.asarray(hidden_targets))

    def normalised(self, parts: ModelParts, wave_l: torch.Tensor, wave_u: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The ``bn0``-normalised log-mels of the labelled clips (weak waveform policy), and of the unlabelled clips
        under the weak and the strong waveform policy. The frontend runs once per unlabelled clip when neither view
        touches the waveform. ``joint``: one ``bn0`` call over all three; ``separate``: one for the labelled clips,
        one for the unlabelled ones (one per view when the views differ on the waveform)."""
        raw_l = parts.frontend(self.weak.on_wave(wave_l))
        shared = self.weak.wave is None and self.strong.wave is None
        raw_w = parts.frontend(self.weak.on_wave(wave_u))
        raw_s = raw_w if shared else parts.frontend(self.strong.on_wave(wave_u))
        if self.passes == "joint":
            return parts.bn0(torch.cat([raw_l, raw_w, raw_s])).split([len(raw_l), len(raw_w), len(raw_s)])
        z_l = parts.bn0(raw_l)
        z_w = parts.bn0(raw_w)
        return z_l, z_w, z_w if shared else parts.bn0(raw_s)

    def forward_passes(self, parts: ModelParts, x_l: torch.Tensor, weak_x: torch.Tensor, strong_x: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits of the labelled inputs, of the weak views (detached) and of the strong views, computed with the
        step's pass structure."""
        n_l, n_u = len(x_l), len(weak_x)
        if self.passes == "joint":
            out = parts.logits(torch.cat([x_l, weak_x, strong_x]))
            return out[:n_l], out[n_l:n_l + n_u].detach(), out[n_l + n_u:]
        with torch.no_grad():
            weak_logits = parts.logits(weak_x)
        out = parts.logits(torch.cat([x_l, strong_x]))
        return out[:n_l], weak_logits, out[n_l:]

    def __call__(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        (wave_l, target, _), (wave_u, _, index_u) = batch[0][:3], batch[1][:3]
        parts = model_parts(model, self.inputs)
        z_l, z_w, z_s = self.normalised(parts, wave_l, wave_u)
        x_l, target = self.labelled_inputs(z_l, target)
        labelled_logits, weak_logits, strong_logits = self.forward_passes(
            parts, x_l, self.weak.on_logmel(z_w), self.strong.on_logmel(z_s))
        result = fixmatch_loss(labelled_logits, target, weak_logits, strong_logits, threshold=self.threshold,
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
