"""Classification losses for mixed (soft) targets: single-label cross-entropy and multi-label binary cross-entropy.

Kong et al. 2020 (study 003) train AudioSet tagging with ``clip_bce`` (binary cross-entropy on the sigmoid
``clipwise_output``) and transfer to single-label tasks with a cross-entropy on mixup-mixed targets; chapter 01 uses
both. Under mixup a target is the λ-weighted mix of two one-hot (or multi-hot) vectors, hence the soft targets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_pair(name: str, output: torch.Tensor, target: torch.Tensor) -> None:
    if output.shape != target.shape:
        raise ValueError(f"{name}: output has shape {tuple(output.shape)} but target has {tuple(target.shape)}; "
                         "expected the same (batch, classes) shape (targets as probabilities, not class indices)")


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    r"""Cross-entropy against a target distribution, averaged over the batch.

    $\ell = -\frac{1}{B}\sum_b \sum_c p_{bc} \log \mathrm{softmax}(z_b)_c$. With one-hot targets this is the usual
    cross-entropy; with mixup targets $p = \lambda y_i + (1-\lambda) y_j$ it is the mixup loss. (The authors'
    ``clip_nll`` also averages over classes, i.e. it is this loss divided by the number of classes.)
    """
    _check_pair("soft_cross_entropy", logits, target_probs)
    log_probs = F.log_softmax(logits.float(), dim=-1)
    return -(target_probs.float() * log_probs).sum(dim=-1).mean()


def clip_bce(clipwise_output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The PANN authors' ``clip_bce``: binary cross-entropy of sigmoid clip-level outputs against (mixed) multi-hot
    targets, averaged over clips and classes (study 003, Sec. III).

    Computed in float32 with autocast disabled: binary cross-entropy on probabilities is not autocast-safe.
    """
    _check_pair("clip_bce", clipwise_output, target)
    with torch.autocast(device_type=clipwise_output.device.type, enabled=False):
        return F.binary_cross_entropy(clipwise_output.float().clamp(0.0, 1.0), target.float())
