"""Non-parametric instance discrimination (NPID; Wu et al. 2018), as used by study 004 (DLS) for pre-training.

Every training clip is its own class. Its L2-normalised embedding :math:`v_i` is kept in a memory bank; a clip's
new embedding :math:`f` is scored against the bank with a non-parametric softmax at temperature :math:`\\tau`

.. math:: P(i \\mid f) = \\frac{\\exp(v_i^\\top f / \\tau)}{Z}, \\qquad Z \\approx \\frac{N}{K+1}\\sum_j \\exp(v_j^\\top f/\\tau),

approximated by noise-contrastive estimation (NCE) with K noise clips drawn uniformly (:math:`P_n = 1/N`), and the
bank is updated as :math:`v_i \\leftarrow \\mathrm{normalise}(m\\,v_i + (1-m)\\,f)`. Following the reference
implementation (book/protocols.md, study 004), the normalising constant Z is estimated once, on the first batch. ``nce_k = 0``
gives the exact softmax over all N instances instead (lemniscate's ``LinearAverage``).

lemniscate updates the bank in the backward pass, after the loss was computed with the old entries; here
:meth:`NPIDMemory.update` replaces the bank by a new tensor (no in-place write), so calling it right after
:meth:`NPIDMemory.loss` and before ``backward`` gives the same result (:class:`esclib.train.npid.NPIDStep`).
Used by chapter 04 (Notebook: 04_npid).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from esclib.features.stft import full_precision


class NPIDMemory(nn.Module):
    """The memory bank of ``n_items`` embeddings of width ``dim`` and the NPID / NCE objective over it.

    Study 004's settings are the defaults: embedding 128, NCE-K 64, NCE-T 0.4, memory momentum 0.5.
    """

    def __init__(self, n_items: int, dim: int = 128, *, nce_k: int = 64, temperature: float = 0.4,
                 momentum: float = 0.5, generator: torch.Generator | None = None):
        super().__init__()
        if n_items < 2 or dim < 1:
            raise ValueError(f"NPIDMemory needs n_items >= 2 and dim >= 1 (got {n_items}, {dim})")
        if not 0 <= nce_k < n_items:
            raise ValueError(f"nce_k must be in [0, n_items) = [0, {n_items}), got {nce_k}")
        if temperature <= 0 or not 0 <= momentum < 1:
            raise ValueError(f"need temperature > 0 and momentum in [0, 1) (got {temperature}, {momentum})")
        self.n_items, self.nce_k, self.temperature, self.momentum = n_items, nce_k, temperature, momentum
        self.generator = generator
        std = 1.0 / math.sqrt(dim / 3)
        self.register_buffer("memory", torch.rand(n_items, dim, generator=generator) * 2 * std - std)
        self.register_buffer("log_z", torch.tensor(float("nan")))

    def loss(self, features: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The NCE loss (or, with ``nce_k = 0``, the full-softmax cross-entropy) of L2-normalised ``features``
        ``(B, dim)`` of the instances ``index`` ``(B,)``, computed in float32 (also under autocast)."""
        if features.shape[0] != index.shape[0]:
            raise ValueError(f"features and index disagree: {features.shape[0]} vs {index.shape[0]} items")
        with full_precision(features):
            return self._loss(features.float(), index)

    def _loss(self, features: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        if self.nce_k == 0:
            logits = features @ self.memory.t() / self.temperature
            return F.cross_entropy(logits, index)
        noise = torch.randint(0, self.n_items, (features.shape[0], self.nce_k), device=features.device,
                              generator=self.generator if features.device.type == "cpu" else None)
        candidates = torch.cat([index[:, None], noise], dim=1)
        logits = torch.einsum("bkd,bd->bk", self.memory[candidates], features) / self.temperature
        if torch.isnan(self.log_z):
            self.log_z = (torch.logsumexp(logits.detach().flatten(), 0) - math.log(logits.numel())
                          + math.log(self.n_items))
        log_p = logits - self.log_z
        log_noise = math.log(self.nce_k / self.n_items)
        # P(data | x) = p / (p + K Pn): the positive in slot 0 should be data, the K others noise
        log_denominator = torch.logaddexp(log_p, torch.full_like(log_p, log_noise))
        log_data = log_p[:, 0] - log_denominator[:, 0]
        log_is_noise = log_noise - log_denominator[:, 1:]
        return -(log_data + log_is_noise.sum(dim=1)).mean()

    @torch.no_grad()
    def update(self, features: torch.Tensor, index: torch.Tensor) -> None:
        """Move the bank entries of ``index`` toward ``features`` with the bank's momentum, and re-normalise:
        ``v_i <- normalise(m v_i + (1 - m) f_i)``. The bank becomes a new tensor, so a loss computed before (whose
        backward may need the old bank) is unaffected."""
        mixed = self.memory[index] * self.momentum + features.detach().to(self.memory.dtype) * (1 - self.momentum)
        self.memory = self.memory.index_copy(0, index, F.normalize(mixed, dim=1))
