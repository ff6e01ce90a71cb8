"""Per-dataset feature standardisation with statistics from the training folds only.

Mean and standard deviation are estimated on the training clips of a split (never on validation or test clips,
which would leak their statistics into training) and stored in a :class:`Normaliser` module that travels with the
model's state dict. Statistics are per feature bin (e.g. one mean/std per mel bin) or global, chosen by ``dims``.

Typical use (a log-mel frontend on the training loader of a fold)::

    norm = fit_normaliser(train_loader, dims=(0, 1), transform=LogMel(32000, 1024, 320, 64, 50, 14000))
    model = nn.Sequential(logmel, norm, classifier)
    torch.save(norm.state_dict(), path); Normaliser.from_state_dict(torch.load(path))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm


class Normaliser(nn.Module):
    """``(x - mean) / std`` with fixed statistics (buffers ``mean`` and ``std``, saved in the state dict).

    ``mean`` and ``std`` have the shape of one example's features with the averaged dimensions kept as size 1,
    so they broadcast over a batch (e.g. ``(1, n_mels)`` for per-mel-bin statistics of ``(B, frames, n_mels)``).
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        if mean.shape != std.shape:
            raise ValueError(f"Normaliser: mean shape {tuple(mean.shape)} != std shape {tuple(std.shape)}")
        if bool((std <= 0).any()):
            raise ValueError("Normaliser: std must be positive everywhere (constant features? raise eps)")
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("std", std.detach().clone())

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> "Normaliser":
        """A Normaliser rebuilt from ``normaliser.state_dict()``."""
        missing = {"mean", "std"} - set(state)
        if missing:
            raise KeyError(f"Normaliser state dict lacks {sorted(missing)}; has {sorted(state)}")
        return cls(state["mean"], state["std"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised features (same shape as ``x``)."""
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class _RunningMoments:
    """Mean and sum of squared deviations merged batch by batch (Chan et al.'s parallel update, float64)."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        self.dims, self.count, self.mean, self.m2 = dims, 0, None, None

    def update(self, batch: torch.Tensor) -> None:
        batch = batch.detach().to(torch.float64)
        n = int(np.prod([batch.shape[d] for d in self.dims]))
        mean = batch.mean(dim=self.dims, keepdim=True)
        m2 = (batch - mean).square().sum(dim=self.dims, keepdim=True)
        if self.mean is None:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        if mean.shape != self.mean.shape:
            raise ValueError(f"fit_normaliser: feature shape changed between batches ({tuple(self.mean.shape)} "
                             f"vs {tuple(mean.shape)} after reduction over dims {self.dims})")
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta.square() * (self.count * n / total)
        self.count = total


def _features(item: object) -> torch.Tensor:
    """The feature tensor of a loader item: the item itself or the first element of a tuple/list."""
    if isinstance(item, (tuple, list)):
        item = item[0]
    return torch.as_tensor(item)


def fit_normaliser(
    data: torch.Tensor | np.ndarray | Iterable,
    dims: Sequence[int] = (0, 1),
    *,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    eps: float = 1e-8,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> Normaliser:
    """Fit a :class:`Normaliser` on training features (training folds only; see the module docstring).

    ``data`` is a feature array ``(N, ...)`` or an iterable of batches (tensors, or tuples whose first element is the
    batch, as a ``DataLoader`` over :class:`esclib.data.torchdata.WaveformDataset` yields); ``transform`` (e.g. a
    :class:`~esclib.features.LogMel`) is applied to each batch first, on ``device``. ``dims`` are the dimensions of
    a batch averaged over and must include 0 (the clips): ``(0, 1)`` on ``(N, frames, n_mels)`` gives one
    mean/std per mel bin, ``(0, 1, 2)`` a global mean/std. The std is the population std (ddof 0) plus ``eps``.
    """
    dims = tuple(sorted(set(dims)))
    if 0 not in dims:
        raise ValueError(f"fit_normaliser: dims must include 0 (statistics are taken across clips), got {dims}")
    batches = [data] if isinstance(data, (torch.Tensor, np.ndarray)) else data
    moments = _RunningMoments(dims)
    with torch.no_grad():
        for item in tqdm(batches, desc="normalisation statistics", disable=not progress):
            batch = _features(item)
            if device is not None:
                batch = batch.to(device)
            if transform is not None:
                batch = transform(batch)
            if max(dims) >= batch.ndim:
                raise ValueError(f"fit_normaliser: dims {dims} out of range for features of shape "
                                 f"{tuple(batch.shape)}")
            moments.update(batch)
    if moments.mean is None:
        raise ValueError("fit_normaliser: no data (the training set or loader is empty)")
    std = (moments.m2 / moments.count).sqrt() + eps
    return Normaliser(moments.mean.squeeze(0).float().cpu(), std.squeeze(0).float().cpu())
