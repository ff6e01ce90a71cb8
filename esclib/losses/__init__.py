"""Losses the chapters train with (lightly's self-supervised losses are used directly, not wrapped here).

- :mod:`esclib.losses.classification` -- soft-target cross-entropy for mixup targets and the PANN authors'
  ``clip_bce`` (Kong et al. 2020, study 003; chapter 01).
"""

from esclib.losses.classification import clip_bce, soft_cross_entropy

__all__ = ["clip_bce", "soft_cross_entropy"]
from esclib.losses.fixmatch import fixmatch_loss, pseudo_labels  # noqa: E402,F401 -- FixMatch (chapter 02)
