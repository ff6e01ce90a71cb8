"""The FixMatch loss (Sohn et al. 2020; study 000, ROCLING 2021, eqs. 4-5; book/protocols.md).

For a labelled batch of B clips and an unlabelled batch of μB clips, each seen through a weak view α(u) and a strong
view A(u):

    ℓ = ℓ_s + λ_u ℓ_u,
    ℓ_s = 1/B  Σ_b H(y_b, p(y | x_b)),
    ℓ_u = 1/(μB) Σ_b 1[max q_b ≥ τ] H(argmax q_b, p(y | A(u_b))),   q_b = p(y | α(u_b)) (no gradient).

The hard pseudo-label comes from the weak view and is kept where its confidence *reaches* τ (≥, as in SSLH and
USB); ℓ_u is averaged over every unlabelled clip, so a batch with no confident clip contributes zero.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class PseudoLabels(NamedTuple):
    """Hard pseudo-labels from the weak view: class, confidence (max softmax) and the mask (confidence ≥ τ)."""

    labels: torch.Tensor
    confidence: torch.Tensor
    mask: torch.Tensor


class FixMatchLoss(NamedTuple):
    """The total loss and its parts (ℓ_s, ℓ_u before λ_u), with the pseudo-labels that produced ℓ_u."""

    loss: torch.Tensor
    supervised: torch.Tensor
    unsupervised: torch.Tensor
    pseudo: PseudoLabels


def _check_threshold(threshold: float) -> None:
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"FixMatch: threshold τ must be in [0, 1], got {threshold}")


@torch.no_grad()
def pseudo_labels(weak_logits: torch.Tensor, threshold: float) -> PseudoLabels:
    """Hard pseudo-labels of a batch of weak-view logits ``(N, C)``; ``mask`` is 1.0 where confidence ≥ τ."""
    _check_threshold(threshold)
    if weak_logits.ndim != 2:
        raise ValueError(f"pseudo_labels: weak_logits must be (N, classes), got shape {tuple(weak_logits.shape)}")
    confidence, labels = torch.softmax(weak_logits.detach().float(), dim=-1).max(dim=-1)
    return PseudoLabels(labels, confidence, (confidence >= threshold).float())


def fixmatch_loss(labelled_logits: torch.Tensor, targets: torch.Tensor, weak_logits: torch.Tensor,
                  strong_logits: torch.Tensor, *, threshold: float = 0.95, lambda_u: float = 1.0) -> FixMatchLoss:
    """ℓ_s + λ_u ℓ_u of FixMatch (module docstring).

    ``targets`` are class indices ``(B,)`` or class probabilities ``(B, C)`` (e.g. mixed up); ``weak_logits`` and
    ``strong_logits`` are the two views of the same unlabelled clips, in the same order. No gradient flows through
    the weak view.
    """
    if weak_logits.shape != strong_logits.shape:
        raise ValueError(f"fixmatch_loss: weak {tuple(weak_logits.shape)} and strong {tuple(strong_logits.shape)} "
                         "logits must have the same shape (two views of the same clips)")
    if lambda_u < 0:
        raise ValueError(f"fixmatch_loss: lambda_u must be >= 0, got {lambda_u}")
    supervised = F.cross_entropy(labelled_logits.float(), targets)
    pseudo = pseudo_labels(weak_logits, threshold)
    per_clip = F.cross_entropy(strong_logits.float(), pseudo.labels, reduction="none")
    unsupervised = (per_clip * pseudo.mask).mean()
    return FixMatchLoss(supervised + lambda_u * unsupervised, supervised, unsupervised, pseudo)
