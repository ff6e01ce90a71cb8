"""The training loop every chapter shares: epochs, validation, early stopping, mixed precision, checkpoint/resume.

A chapter supplies the model, the loaders, the optimiser and either a loss function (``loss_fn(output, target)``)
or a whole training step (``step_fn(model, batch, device) -> (loss, logs)``, as FixMatch does); :func:`fit` does the
rest. After every epoch the full state (model, optimiser, scheduler, early stopping, history, RNG) is written
atomically to ``checkpoint``; calling :func:`fit` again with the same checkpoint resumes after the last finished epoch.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from esclib.train.checkpoint import atomic_save, load_checkpoint
from esclib.train.early_stopping import EarlyStopping

Batch = Any
StepFn = Callable[[nn.Module, Batch, torch.device], "tuple[torch.Tensor, dict[str, float]]"]
ValFn = Callable[[nn.Module, Iterable, torch.device], "dict[str, float]"]


@dataclass
class History:
    """Per-epoch records (one dict per epoch: ``epoch``, training logs, validation metrics, ``lr``), whether early
    stopping ended the run, and the optimiser steps and training seconds of this call (for cost and estimates)."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False
    steps: int = 0
    seconds: float = 0.0

    def frame(self) -> pd.DataFrame:
        """The history as a table, one row per epoch."""
        return pd.DataFrame(self.epochs)

    def best(self, monitor: str, mode: str = "min") -> dict[str, float]:
        """The epoch record with the best value of ``monitor``."""
        rows = [r for r in self.epochs if monitor in r]
        if not rows:
            raise KeyError(f"history has no {monitor!r}; recorded: {sorted(self.epochs[0]) if self.epochs else []}")
        pick = min if mode == "min" else max
        return pick(rows, key=lambda r: r[monitor])


def autocast(device: torch.device, amp: bool | None) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when ``amp`` is true or None (the default); no autocast on CPU."""
    if device.type == "cuda" and amp is not False:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Move every tensor in a (nested) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def logits_of(output: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
    """A model's class scores: the tensor itself, or ``output["logits"]`` for models that return a dict."""
    if isinstance(output, dict):
        if "logits" not in output:
            raise KeyError(f"model returned a dict without 'logits' (keys: {sorted(output)})")
        return output["logits"]
    return output


def supervised_step(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> StepFn:
    """The ordinary training step for batches ``(x, y, ...)``: ``loss_fn(model(x), y)``."""

    def step(model: nn.Module, batch: Batch, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        x, y = batch[0], batch[1]
        loss = loss_fn(logits_of(model(x)), y)
        return loss, {"loss": float(loss.detach())}

    return step


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, device: str | torch.device = "cpu",
            amp: bool | None = None, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Class scores (softmax probabilities, ``(N, C)``) and targets of every batch ``(x, y, ...)`` in ``loader``."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    scores, targets = [], []
    for batch in tqdm(loader, desc="predict", leave=False, disable=not progress):
        x, y = to_device(batch[0], device), batch[1]
        with autocast(device, amp):
            logits = logits_of(model(x))
        scores.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        targets.append(np.asarray(y))
    model.train(was_training)
    return np.concatenate(scores), np.concatenate(targets)


def evaluate(model: nn.Module, loader: Iterable, device: str | torch.device = "cpu",
             amp: bool | None = None) -> dict[str, float]:
    """Validation accuracy and cross-entropy (``val_acc``, ``val_loss``) of a classifier on ``loader``."""
    scores, targets = predict(model, loader, device, amp)
    picked = scores[np.arange(len(targets)), targets]
    return {
        "val_acc": float((scores.argmax(1) == targets).mean()),
        "val_loss": float(-np.log(np.clip(picked, 1e-12, None)).mean()),
    }


def _state(model, optimizer, scheduler, stopper, history, epoch, best_state) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "early_stopping": stopper.state_dict() if stopper is not None else None,
        "best_model": best_state,
        "history": history,
        "torch_rng": torch.get_rng_state(),
    }


def fit(
    model: nn.Module,
    train_loader: Iterable,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    step_fn: StepFn | None = None,
    val_loader: Iterable | None = None,
    val_fn: ValFn | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    device: str | torch.device = "cpu",
    checkpoint: str | Path | None = None,
    early_stopping: EarlyStopping | None = None,
    restore_best: bool = True,
    accumulate: int = 1,
    amp: bool | None = None,
    progress: bool = True,
    desc: str = "train",
    limit_batches: int | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return the per-epoch :class:`History`.

    Give ``loss_fn`` for plain supervised batches ``(x, y, ...)`` or ``step_fn`` for anything else. ``val_fn``
    (default :func:`evaluate`) runs on ``val_loader`` after each epoch. ``scheduler`` steps once per epoch.
    ``accumulate`` > 1 sums gradients over that many batches before each optimiser step (study 000's gradient
    accumulation). With ``early_stopping`` the model ends with the weights of its best epoch, or, with
    ``restore_best=False``, of the epoch training stopped at (Keras' ``EarlyStopping`` before version 2.2.3, which
    study 002's code used). ``limit_batches`` reads at most that many batches of the training and validation
    loaders per epoch (smoke runs, :mod:`esclib.smoke`).
    """
    if (loss_fn is None) == (step_fn is None):
        raise ValueError("fit: give exactly one of loss_fn (plain supervised batches) or step_fn (a custom step)")
    if epochs < 1 or accumulate < 1:
        raise ValueError(f"fit: epochs and accumulate must be >= 1 (got epochs={epochs}, accumulate={accumulate})")
    device = torch.device(device)
    step = step_fn or supervised_step(loss_fn)
    val_fn = val_fn or evaluate
    if limit_batches is not None:
        train_loader = _Limited(train_loader, limit_batches)
        val_loader = _Limited(val_loader, limit_batches) if val_loader is not None else None
    started, steps = time.monotonic(), 0
    model.to(device)
    history = History()
    start, best_state = 0, None
    saved = load_checkpoint(checkpoint, map_location=device) if checkpoint else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved["scheduler"] is not None:
            scheduler.load_state_dict(saved["scheduler"])
        if early_stopping is not None and saved["early_stopping"] is not None:
            early_stopping.load_state_dict(saved["early_stopping"])
        torch.set_rng_state(saved["torch_rng"])
        history, start, best_state = saved["history"], saved["epoch"] + 1, saved["best_model"]
    if history.stopped_early:
        start = epochs

    for epoch in range(start, epochs):
        model.train()
        sums: dict[str, float] = {}
        n_batches = 0
        optimizer.zero_grad(set_to_none=True)
        bar = tqdm(train_loader, desc=f"{desc} {epoch + 1}/{epochs}", leave=False, disable=not progress)
        for i, batch in enumerate(bar):
            batch = to_device(batch, device)
            with autocast(device, amp):
                loss, logs = step(model, batch, device)
            (loss / accumulate).backward()
            if (i + 1) % accumulate == 0:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                steps += 1
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            n_batches += 1
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        if n_batches % accumulate:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            steps += 1
        if n_batches == 0:
            raise ValueError("fit: the training loader yielded no batch (too few clips for its batch size?)")
        record = {"epoch": epoch + 1, **{k: v / n_batches for k, v in sums.items()},
                  "lr": optimizer.param_groups[0]["lr"]}
        if val_loader is not None:
            record.update(val_fn(model, val_loader, device))
        if scheduler is not None:
            scheduler.step()
        history.epochs.append(record)
        if early_stopping is not None:
            if early_stopping.update(record):
                best_state = copy.deepcopy(model.state_dict())
            history.stopped_early = early_stopping.should_stop
        if progress:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k != "epoch")
            tqdm.write(f"{desc} epoch {epoch + 1}/{epochs}: {shown}")
        if checkpoint:
            atomic_save(_state(model, optimizer, scheduler, early_stopping, history, epoch, best_state), checkpoint)
        if history.stopped_early:
            break

    if early_stopping is not None and best_state is not None and restore_best:
        model.load_state_dict(best_state)
    history.steps, history.seconds = steps, round(time.monotonic() - started, 3)
    return history


class _Limited:
    """The first ``limit`` batches of a loader, each time it is iterated."""

    def __init__(self, loader: Iterable, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit_batches must be >= 1, got {limit}")
        self.loader, self.limit = loader, limit

    def __len__(self) -> int:
        return min(self.limit, len(self.loader)) if hasattr(self.loader, "__len__") else self.limit

    def __iter__(self):
        return itertools.islice(iter(self.loader), self.limit)
