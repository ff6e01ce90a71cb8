"""Mixup (Zhang et al. 2018): convex combinations of examples and of their targets.

Two forms:

- pairwise, as the PANN code trains (Kong et al. 2020, study 003; study 000): the loader yields 2B clips,
  :func:`mixup_lambdas` draws one lambda ~ Beta(alpha, alpha) per pair and returns ``[l, 1-l, l', 1-l', ...]``,
  :func:`do_mixup` mixes clip 2i with clip 2i+1 into B outputs (inputs and targets alike);
- within a batch, for FixMatch's labelled batch (study 000): :func:`mixup_batch` mixes the batch with a random
  permutation of itself using one lambda ~ Beta(alpha, alpha).

Lambdas are drawn by inverting the Beta distribution function on uniforms from the given ``torch.Generator``, so
they are reproducible from a seed.
"""

from __future__ import annotations

import torch
from scipy.special import betaincinv

from esclib.augment.base import per_example, randperm, uniform


def sample_beta(n: int, alpha: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` draws of Beta(alpha, alpha) (float64, CPU), by inverse transform of uniforms from ``generator``."""
    if alpha <= 0:
        raise ValueError(f"mixup alpha must be positive, got {alpha}")
    u = uniform(n, 0.0, 1.0, generator).cpu()
    return torch.from_numpy(betaincinv(alpha, alpha, u.numpy()))


def mixup_lambdas(batch_size: int, alpha: float = 1.0, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """PANN's mixup coefficients: shape (batch_size,), ``[l_0, 1-l_0, l_1, 1-l_1, ...]`` with l_i ~ Beta(alpha,
    alpha) per pair (``batch_size`` must be even); float32 on the CPU."""
    if batch_size < 2 or batch_size % 2:
        raise ValueError(f"mixup_lambdas: batch_size must be even and >= 2 (pairs of clips), got {batch_size}")
    lam = sample_beta(batch_size // 2, alpha, generator)
    return torch.stack([lam, 1.0 - lam], dim=1).reshape(-1).float()


def do_mixup(x: torch.Tensor, lambdas: torch.Tensor) -> torch.Tensor:
    """``x[0::2] * l[0::2] + x[1::2] * l[1::2]`` along dim 0, broadcast over the other dimensions: B/2 mixed
    examples from B (inputs or targets, any device; ``lambdas`` from :func:`mixup_lambdas`)."""
    if x.shape[0] != lambdas.shape[0] or x.shape[0] % 2:
        raise ValueError(f"do_mixup: x has {x.shape[0]} rows and lambdas {lambdas.shape[0]}; expected the same even "
                         f"number")
    return x[0::2] * per_example(lambdas[0::2], x[0::2]) + x[1::2] * per_example(lambdas[1::2], x[1::2])


def mixup_batch(x: torch.Tensor, y: torch.Tensor, alpha: float = 1.0, generator: torch.Generator | None = None, *,
                num_classes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Within-batch mixup: ``(l x + (1-l) x[perm], l y + (1-l) y[perm])`` with one l ~ Beta(alpha, alpha) and a
    random permutation ``perm``. ``y`` is (B, classes) soft or one-hot targets, or (B,) class indices with
    ``num_classes`` given (one-hot encoded first). Shapes, dtypes and devices are kept."""
    if y.dim() == 1:
        if num_classes is None:
            raise ValueError("mixup_batch: y holds class indices; pass num_classes to one-hot encode them")
        y = torch.nn.functional.one_hot(y.long(), num_classes).to(x.dtype if x.is_floating_point() else torch.float32)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"mixup_batch: x has {x.shape[0]} examples but y has {y.shape[0]}")
    lam = float(sample_beta(1, alpha, generator)[0])
    perm = randperm(x.shape[0], generator, x)
    return lam * x + (1.0 - lam) * x[perm], lam * y + (1.0 - lam) * y[perm.to(y.device)]
