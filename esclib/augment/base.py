"""The common ground of esclib's augmentations: reproducible random draws and the batch-wise module base class.

Every augmentation draws its randomness from an optional ``torch.Generator`` (on the generator's device; the global
RNG on the input's device when None), so one seed reproduces a whole batch. Modules derive from
:class:`BatchAugment`: they act on a batch (or one unbatched example), apply to each example with probability
``p`` in training mode, and are the identity in evaluation mode.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def _device(generator: torch.Generator | None, x: torch.Tensor | None = None) -> torch.device:
    if generator is not None:
        return generator.device
    return x.device if x is not None else torch.device("cpu")


def uniform(shape: Sequence[int] | int, low: float | torch.Tensor, high: float | torch.Tensor,
            generator: torch.Generator | None = None, like: torch.Tensor | None = None) -> torch.Tensor:
    """Uniform draws in [low, high) (float64, on ``like``'s device), from ``generator`` when given."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    u = torch.rand(shape, generator=generator, device=_device(generator, like), dtype=torch.float64)
    u = u.to(like.device) if like is not None else u
    return low + (high - low) * u


def randperm(n: int, generator: torch.Generator | None = None, like: torch.Tensor | None = None) -> torch.Tensor:
    """A random permutation of ``range(n)`` on ``like``'s device, from ``generator`` when given."""
    perm = torch.randperm(n, generator=generator, device=_device(generator, like))
    return perm.to(like.device) if like is not None else perm


def per_example(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``values`` (B,) reshaped to broadcast over the example dimensions of ``x`` (B, ...), in ``x``'s dtype."""
    return values.to(device=x.device, dtype=x.dtype).reshape((-1,) + (1,) * (x.dim() - 1))


def value_or_range(spec: float | tuple[float, float], n: int, generator: torch.Generator | None,
                   like: torch.Tensor) -> torch.Tensor:
    """``n`` values (float64): ``spec`` itself when a number, uniform draws from ``spec = (low, high)`` otherwise."""
    if isinstance(spec, (tuple, list)):
        if len(spec) != 2 or spec[0] > spec[1]:
            raise ValueError(f"expected a number or a range (low, high) with low <= high, got {spec!r}")
        return uniform(n, float(spec[0]), float(spec[1]), generator, like)
    return torch.full((n,), float(spec), dtype=torch.float64, device=like.device)


def check_probability(p: float) -> float:
    """``p`` if it is a probability, else ``ValueError`` naming it."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p (probability of applying the augmentation) must be in [0, 1], got {p}")
    return float(p)


class BatchAugment(nn.Module):
    """Base of the augmentation modules: :meth:`augment` transforms a whole batch; :meth:`forward` applies it to each
    example with probability ``p`` in training mode and is the identity in evaluation mode. ``example_dims`` is the
    rank of one example (1: waveform ``(samples,)``; 2: spectrogram ``(frames, bins)``); an input of that rank is
    treated as a batch of one, any dimensions between the batch and the example ones (channels) share the draws."""

    example_dims: int = 1

    def __init__(self, p: float = 1.0, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = check_probability(p)
        self.generator = generator

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """The augmented batch ``x`` (B, ..., example dims); every example augmented."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` augmented (each example with probability ``p``) in training mode; ``x`` unchanged in eval mode."""
        if not self.training or self.p == 0.0:
            return x
        if x.dim() < self.example_dims:
            raise ValueError(f"{type(self).__name__}: expected at least {self.example_dims} dimensions, got shape "
                             f"{tuple(x.shape)}")
        single = x.dim() == self.example_dims
        batch = x.unsqueeze(0) if single else x
        out = self.augment(batch)
        if self.p < 1.0:
            applied = uniform(batch.shape[0], 0.0, 1.0, self.generator, batch) < self.p
            out = torch.where(per_example(applied, out).bool(), out, batch)
        return out[0] if single else out


class RandomChoice(BatchAugment):
    """One of ``choices`` per example, uniformly (as SSLH's and QUACLRS's augmentation pools); its generator is
    also the choices' generator."""

    def __init__(self, *choices: nn.Module, p: float = 1.0, generator: torch.Generator | None = None) -> None:
        if not choices:
            raise ValueError("RandomChoice needs at least one augmentation")
        super().__init__(p)
        self.choices = nn.ModuleList(choices)
        self.generator = generator
        self.example_dims = min(getattr(c, "example_dims", 1) for c in choices)

    @property
    def generator(self) -> torch.Generator | None:
        """The generator of the choice and of every choice's draws."""
        return self._generator

    @generator.setter
    def generator(self, generator: torch.Generator | None) -> None:
        self._generator = generator
        for choice in getattr(self, "choices", ()):
            choice.generator = generator

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        pick = torch.floor(uniform(x.shape[0], 0.0, len(self.choices), self.generator, x)).long()
        out = x.clone()
        for k, choice in enumerate(self.choices):
            rows = pick == k
            if rows.any():
                out[rows] = choice(x[rows])
        return out


class FunctionAugment(BatchAugment):
    """A :class:`BatchAugment` that calls the class's ``function(x, **params, generator=...)`` on the batch; the
    named augmentations (``AddNoise``, ``Occlusion``, ...) are subclasses that set ``function`` and ``params``."""

    function = None

    def __init__(self, p: float = 1.0, *, generator: torch.Generator | None = None, **params: object) -> None:
        super().__init__(p, generator=generator)
        self.params = params

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        return type(self).function(x, **self.params, generator=self.generator)

    def extra_repr(self) -> str:
        return ", ".join([f"{k}={v!r}" for k, v in self.params.items()] + [f"p={self.p}"])
