"""Self-supervised pre-training of chapter 5 (study 001): one loop for every method, and the spectrogram input.

Notebook: 05_ssl. solo-learn style: :func:`pretrain` owns the training step -- two views of a batch of clips are
made on the device by a :class:`TwoViewInput` (log-mel if the loader yields waveforms, standardisation, the view
policy's spectrogram augmentations, resize to the backbone's input), the method returns its loss
(:meth:`esclib.models.ssl.SSLMethod.loss`), and after each optimiser step the method's ``after_step`` runs (the
teachers' momentum update). Every method gets the same recipe (:class:`SSLRecipe`: AdamW, linear warm-up then
cosine decay, the same epochs and batch), bf16 autocast on CUDA, progress bars, and checkpoint/resume through
:func:`esclib.train.fit` (the step counter that drives the methods' schedules is saved with the optimiser).

The study's input (:func:`study_frontend`): 4 s at 48 kHz, mel spectrogram n_fft 2048, hop 512, 128 mels,
20-8,000 Hz (an 8 kHz ceiling at a 48 kHz rate: three quarters of the spectrum is thrown away), in dB
(``ref=max``, ``top_db=80``, librosa's usual call [inferred]), standardised with the training folds' mean and
standard deviation, then resized to the backbone's input (224 x 224 in the study; smaller in the quick profile).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from tqdm.auto import tqdm

from esclib.augment.views import ViewPolicy
from esclib.features.logmel import LogMel
from esclib.models.ssl import FeatureQueue, SSLMethod
from esclib.train.early_stopping import EarlyStopping
from esclib.train.loop import History, autocast, fit, to_device
from esclib.train.probe import ProbeResult, effective_rank, knn_evaluation, linear_probe

Tensor = torch.Tensor

#: study 001's mel spectrogram (book/protocols.md, study 001)
STUDY_FRONTEND = {"sample_rate": 48000, "n_fft": 2048, "hop_length": 512, "n_mels": 128, "fmin": 20.0,
                  "fmax": 8000.0}


def study_frontend() -> LogMel:
    """Study 001's log-mel frontend (see the module docstring); ``(B, samples) -> (B, frames, 128)`` in dB."""
    return LogMel(**STUDY_FRONTEND, ref="max", top_db=80.0)


@dataclass(frozen=True)
class SSLRecipe:
    """The one optimisation recipe every method gets: AdamW (the study's optimiser) at ``lr`` with decoupled
    ``weight_decay``, ``warmup_epochs`` of linear warm-up then cosine decay to 0, ``epochs`` of ``batch_size``."""

    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 10

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError(f"SSLRecipe: epochs must be >= 1 and batch_size >= 2, got {self.epochs}, "
                             f"{self.batch_size}")
        if self.lr <= 0 or self.weight_decay < 0 or not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"SSLRecipe: need lr > 0, weight_decay >= 0 and 0 <= warmup_epochs < epochs, got "
                             f"lr={self.lr}, weight_decay={self.weight_decay}, warmup_epochs={self.warmup_epochs}")

    def lr_factor(self, epoch: int) -> float:
        """The learning-rate multiplier of ``epoch`` (0-based)."""
        if epoch < self.warmup_epochs:
            return (epoch + 1) / (self.warmup_epochs + 1)
        span = self.epochs - self.warmup_epochs
        return 0.5 * (1.0 + math.cos(math.pi * (epoch - self.warmup_epochs) / span))

    def optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.AdamW:
        """AdamW over ``params``."""
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)

    def scheduler(self, optimizer: Optimizer) -> LambdaLR:
        """Warm-up then cosine, stepped once per epoch."""
        return LambdaLR(optimizer, self.lr_factor)


class SpectrogramInput(nn.Module):
    """A raw batch -> the backbone's input ``(B, 1, height, width)``.

    Waveforms ``(B, samples)`` go through ``frontend`` first (give one when the loader yields waveforms);
    spectrograms ``(B, frames, bins)`` are standardised with the training folds' ``mean`` and ``std``, get a
    channel, optionally pass through ``augment`` (before or after the resize), and are resized to ``size``
    (bilinear, antialiased).
    """

    def __init__(self, size: tuple[int, int], mean: float, std: float, frontend: nn.Module | None = None) -> None:
        super().__init__()
        if min(size) < 1 or std <= 0:
            raise ValueError(f"SpectrogramInput: size must be positive and std > 0, got size={size}, std={std}")
        self.size, self.mean, self.std, self.frontend = tuple(size), float(mean), float(std), frontend

    def standardised(self, x: Tensor) -> Tensor:
        """``(B, samples)`` or ``(B, frames, bins)`` -> standardised ``(B, 1, frames, bins)`` spectrograms."""
        if self.frontend is not None:
            x = self.frontend(x)
        elif x.dim() != 3:
            raise ValueError(f"SpectrogramInput without a frontend expects spectrograms (B, frames, bins), got shape "
                             f"{tuple(x.shape)}; pass frontend= for waveforms")
        return ((x.float() - self.mean) / self.std)[:, None]

    def resize(self, x: Tensor) -> Tensor:
        """``(B, 1, frames, bins)`` -> ``(B, 1, *size)``."""
        if tuple(x.shape[-2:]) == self.size:
            return x
        return F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=True)

    def forward(self, x: Tensor, augment: Callable[[Tensor], Tensor] | None = None, at: str = "native") -> Tensor:
        """The backbone's input; ``augment`` runs at the spectrogram's own resolution (``at="native"``) or after
        the resize (``at="input"``)."""
        if at not in ("native", "input"):
            raise ValueError(f"SpectrogramInput: at must be 'native' or 'input', got {at!r}")
        spec = self.standardised(x)
        if augment is None:
            return self.resize(spec)
        return self.resize(augment(spec)) if at == "native" else augment(self.resize(spec))

    def extra_repr(self) -> str:
        return f"size={self.size}, mean={self.mean:.4g}, std={self.std:.4g}"


def input_statistics(spectrograms: np.ndarray, rows: np.ndarray | None = None) -> tuple[float, float]:
    """Mean and standard deviation of the spectrograms (rows ``rows``: the training folds only)."""
    values = spectrograms if rows is None else spectrograms[rows]
    return float(values.mean()), float(values.std())


class TwoViewInput(nn.Module):
    """Two views of a raw batch on the device: :class:`SpectrogramInput` with view ``v``'s spectrogram operations of
    ``policy``. The random draws come from a generator seeded by ``(seed, step)``, so a resumed run repeats them."""

    def __init__(self, spectrogram: SpectrogramInput, policy: ViewPolicy, seed: int = 0) -> None:
        super().__init__()
        self.input, self.policy, self.seed = spectrogram, policy, seed

    def forward(self, x0: Tensor, x1: Tensor, step: int = 0) -> tuple[Tensor, Tensor]:
        generator = torch.Generator(device=x0.device)
        generator.manual_seed(self.seed * 1_000_003 + step)
        self.policy.set_generator(generator)
        at = self.policy.resolution
        return (self.input(x0, lambda s: self.policy(s, 0), at), self.input(x1, lambda s: self.policy(s, 1), at))


class SSLTraining(nn.Module):
    """What :func:`esclib.train.fit` trains and checkpoints: the method and the view maker (whose buffers must move
    to the device with it)."""

    def __init__(self, method: SSLMethod, views: TwoViewInput) -> None:
        super().__init__()
        self.method, self.views = method, views


class StepCounter:
    """Optimiser steps taken out of ``total``: the training progress that drives the methods' schedules."""

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError(f"StepCounter: total steps must be >= 1, got {total}")
        self.total, self.done = total, 0

    @property
    def progress(self) -> float:
        """Fraction of the optimiser steps already taken (0 to 1)."""
        return min(self.done / self.total, 1.0)


class AfterStep(Optimizer):
    """An optimiser that counts its steps in ``counter`` and calls ``hook(progress)`` after each (the momentum
    update of a teacher); its state (saved by :func:`~esclib.train.fit`'s checkpoints) holds the count."""

    def __init__(self, optimizer: Optimizer, counter: StepCounter, hook: Callable[[float], None]) -> None:
        self.optimizer, self.counter, self.hook = optimizer, counter, hook
        super().__init__(optimizer.param_groups, {})
        self.param_groups = optimizer.param_groups

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """The inner optimiser's step, then the count and the hook."""
        loss = self.optimizer.step(closure)
        self.counter.done += 1
        self.hook(self.counter.progress)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        """The inner optimiser's state and the step count."""
        return {"optimizer": self.optimizer.state_dict(), "steps": self.counter.done}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.optimizer.load_state_dict(state_dict["optimizer"])
        self.param_groups = self.optimizer.param_groups
        self.counter.done = int(state_dict["steps"])


def ssl_step(counter: StepCounter) -> Callable[[SSLTraining, tuple, torch.device], tuple[Tensor, dict[str, float]]]:
    """The training step of every method: two views of the batch ``(x0, x1, target, index)``, then the method's
    loss at the current progress. Labels are never used."""

    def step(model: SSLTraining, batch: tuple, device: torch.device) -> tuple[Tensor, dict[str, float]]:
        view0, view1 = model.views(batch[0], batch[1], counter.done)
        loss = model.method.loss(view0, view1, counter.progress)
        return loss, {"loss": float(loss.detach())}

    return step


def _warn_large_queues(method: SSLMethod, clips: int) -> None:
    for name, module in method.named_modules():
        if isinstance(module, FeatureQueue) and len(module.items) >= clips:
            warnings.warn(f"{type(method).__name__}: queue {name!r} holds {len(module.items)} vectors but the "
                          f"training set has {clips} clips: the queue repeats clips (and their positives)",
                          stacklevel=3)


def pretrain(method: SSLMethod, loader: Iterable, views: TwoViewInput, recipe: SSLRecipe, *,
             device: str | torch.device = "cpu", checkpoint: str | Path | None = None, amp: bool | None = None,
             progress: bool = True, desc: str | None = None,
             monitor: Callable[[SSLMethod], dict[str, float]] | None = None, monitor_every: int = 10) -> History:
    """Pre-train ``method`` without labels on ``loader``'s two-view batches (e.g. :func:`esclib.data.torchdata.
    array_loader` with ``views=2, train=True``) for ``recipe.epochs`` epochs. Returns the per-epoch history (the
    mean loss, the learning rate, and what ``monitor(method)`` returns every ``monitor_every`` epochs and after the
    last: an online kNN or probe accuracy, solo-learn style). ``checkpoint``: resume from / save to this file after
    every epoch. Notebook: 05_ssl."""
    batches = len(loader)  # type: ignore[arg-type]
    if batches == 0:
        raise ValueError("pretrain: the loader yields no batch (fewer clips than the batch size?)")
    if monitor_every < 1:
        raise ValueError(f"pretrain: monitor_every must be >= 1, got {monitor_every}")
    dataset = getattr(loader, "dataset", None)
    if dataset is not None:
        _warn_large_queues(method, len(dataset))
    counter = StepCounter(recipe.epochs * batches)
    optimizer = AfterStep(recipe.optimizer(method.trainable_parameters()), counter, method.after_step)

    def monitored(model: SSLTraining, _loader: object, _device: torch.device) -> dict[str, float]:
        epoch = counter.done // batches
        if monitor is None or (epoch % monitor_every and epoch != recipe.epochs):
            return {}
        was_training = model.training
        try:
            return monitor(model.method)
        finally:
            model.train(was_training)

    return fit(SSLTraining(method, views), loader, epochs=recipe.epochs, optimizer=optimizer,
               step_fn=ssl_step(counter), val_loader=() if monitor is not None else None, val_fn=monitored,
               scheduler=recipe.scheduler(optimizer), device=device, checkpoint=checkpoint, amp=amp,
               progress=progress, desc=desc or f"pretrain {type(method).__name__}")


class SpectrogramClassifier(nn.Module):
    """Raw batch -> :class:`SpectrogramInput` -> backbone -> linear classifier (the supervised baselines: from
    scratch, ImageNet fine-tune, or a frozen backbone). ``augment`` (training only): view 0 of a
    :class:`ViewPolicy`, applied at the policy's resolution."""

    def __init__(self, spectrogram: SpectrogramInput, backbone: nn.Module, dim: int, n_classes: int, *,
                 augment: ViewPolicy | None = None, freeze_backbone: bool = False) -> None:
        super().__init__()
        self.input, self.backbone, self.augment = spectrogram, backbone, augment
        self.classifier = nn.Linear(dim, n_classes)
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> "SpectrogramClassifier":
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.augment is None:
            return self.classifier(self.backbone(self.input(x)))
        return self.classifier(self.backbone(self.input(x, lambda s: self.augment(s, 0), self.augment.resolution)))


def train_classifier(model: SpectrogramClassifier, train_loader: Iterable, val_loader: Iterable, recipe: SSLRecipe,
                     *, patience: int = 10, device: str | torch.device = "cpu", checkpoint: str | Path | None = None,
                     amp: bool | None = None, progress: bool = True, desc: str = "supervised") -> History:
    """Train a :class:`SpectrogramClassifier` with labels (cross-entropy, the same recipe as pre-training), keeping
    the epoch of best validation accuracy (early stopping after ``patience`` epochs without improvement). The
    study's supervised baselines. Notebook: 05_ssl."""
    optimizer = recipe.optimizer([p for p in model.parameters() if p.requires_grad])
    return fit(model, train_loader, epochs=recipe.epochs, optimizer=optimizer, loss_fn=nn.functional.cross_entropy,
               val_loader=val_loader, scheduler=recipe.scheduler(optimizer), device=device, checkpoint=checkpoint,
               early_stopping=EarlyStopping(patience, monitor="val_acc", mode="max"), amp=amp, progress=progress,
               desc=desc)


@torch.no_grad()
def embeddings(encode: Callable[[Tensor], Tensor], spectrogram: SpectrogramInput, loader: Iterable, *,
               device: str | torch.device = "cpu", amp: bool | None = None,
               progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``encode(spectrogram(x))`` (float32, ``(N, D)``) and targets of every batch ``(x, y, ...)`` of an
    evaluation loader, without augmentation. ``encode`` is e.g. ``method.embed`` or a backbone; modules are put in
    evaluation mode for the pass and restored after. Notebook: 05_ssl."""
    device = torch.device(device)
    owner = getattr(encode, "__self__", encode)
    modules = [m for m in (owner, spectrogram) if isinstance(m, nn.Module)]
    modes = [m.training for m in modules]
    for m in modules:
        m.to(device).eval()
    features, targets = [], []
    try:
        for batch in tqdm(loader, desc="embeddings", leave=False, disable=not progress):
            x = to_device(batch[0], device)
            with autocast(device, amp):
                features.append(encode(spectrogram(x)).float().cpu().numpy())
            targets.append(np.asarray(batch[1]))
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
    return np.concatenate(features), np.concatenate(targets)


@dataclass
class FrozenEvaluation:
    """One encoder on one split: the linear probe, the kNN's test metrics and the effective rank (RankMe) of the
    training embeddings."""

    probe: ProbeResult
    knn: dict
    rankme: float


def evaluate_encoder(encode: Callable[[Tensor], Tensor], spectrogram: SpectrogramInput, train_loader: Iterable,
                     val_loader: Iterable, test_loader: Iterable, *, n_classes: int, k: int,
                     temperature: float | None, device: str | torch.device = "cpu", seed: int = 0,
                     progress: bool = True) -> FrozenEvaluation:
    """The frozen-embedding evaluation of one encoder on one split: the linear probe (trained on the training
    embeddings, selected on the validation fold) and the weighted kNN (``k`` neighbours, ``temperature``), both on
    the test fold, and the training embeddings' effective rank. Notebook: 05_ssl."""
    (tx, ty), (vx, vy), (sx, sy) = (embeddings(encode, spectrogram, loader, device=device, progress=progress)
                                    for loader in (train_loader, val_loader, test_loader))
    probe = linear_probe(tx, ty, sx, sy, val=(vx, vy), n_classes=n_classes, seed=seed, device=device)
    knn = knn_evaluation(tx, ty, sx, sy, k=k, temperature=temperature, n_classes=n_classes)
    return FrozenEvaluation(probe, knn, effective_rank(tx))
