"""Training steps and validation functions for :func:`esclib.train.fit` beyond the plain supervised step.

Notebook: 03_cae (the autoencoder's reconstruction step and validation loss).
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn


def reconstruction_step(model: nn.Module, batch, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
    """One autoencoder training step: the mean squared error between ``model(x)`` and ``x`` (study 002, Sec. 2.2;
    the mean over every bin, as Keras' ``mse``)."""
    x = batch[0]
    loss = F.mse_loss(model(x), x)
    return loss, {"loss": float(loss.detach())}


@torch.no_grad()
def reconstruction_loss(model: nn.Module, loader: Iterable, device: str | torch.device = "cpu") -> dict[str, float]:
    """Mean squared reconstruction error over every bin of ``loader``'s inputs, as ``{"val_loss": ...}`` (the
    ``val_fn`` of autoencoder training)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in loader:
        x = batch[0].to(device)
        total += float(F.mse_loss(model(x), x, reduction="sum"))
        count += x.numel()
    model.train(was_training)
    return {"val_loss": total / count}
