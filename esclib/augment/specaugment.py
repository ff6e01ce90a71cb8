"""SpecAugment as the PANN code applies it (Park et al. 2019; Kong et al. 2020, study 003; study 000's weak/strong
augmentations): stripes of time frames and of frequency bins set to zero, batch-wise on any device.

Semantics of torchlibrosa's ``DropStripes`` (used by qiuqiangkong/audioset_tagging_cnn): per example and per
stripe, a width drawn uniformly from {0, ..., drop_width - 1} and a start uniformly from {0, ..., size - width - 1};
time stripes first, then frequency stripes; identity in evaluation mode.
"""

from __future__ import annotations

import torch

from esclib.augment.base import BatchAugment, uniform


def stripe_mask(batch: int, size: int, drop_width: int, stripes_num: int, generator: torch.Generator | None,
                like: torch.Tensor) -> torch.Tensor:
    """Boolean mask (batch, size): the union of ``stripes_num`` stripes per example, each of width uniform in
    {0, ..., drop_width - 1} (at most size - 1) starting uniformly in {0, ..., size - width - 1}."""
    if drop_width < 1 or stripes_num < 0:
        raise ValueError(f"SpecAugment: drop_width must be >= 1 and stripes_num >= 0, got {drop_width}, {stripes_num}")
    width = torch.floor(uniform((batch, stripes_num), 0.0, min(drop_width, size), generator, like))
    start = torch.floor(uniform((batch, stripes_num), 0.0, 1.0, generator, like) * (size - width))
    position = torch.arange(size, device=like.device, dtype=torch.float64)
    inside = (position >= start[..., None]) & (position < (start + width)[..., None])
    return inside.any(dim=1)


def drop_stripes(x: torch.Tensor, dim: int, drop_width: int, stripes_num: int, *,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` (B, ..., frames, bins) with stripes along ``dim`` (-2: time, -1: frequency) set to zero per example."""
    if dim not in (-2, -1):
        raise ValueError(f"drop_stripes: dim must be -2 (time) or -1 (frequency), got {dim}")
    mask = stripe_mask(x.shape[0], x.shape[dim], drop_width, stripes_num, generator, x)
    shape = [x.shape[0]] + [1] * (x.dim() - 1)
    shape[dim] = x.shape[dim]
    return x.masked_fill(mask.reshape(shape), 0.0)


class SpecAugment(BatchAugment):
    """Time and frequency stripe dropping on ``(B, C, frames, bins)`` or ``(B, frames, bins)`` spectrograms.

    ``time_stripes_num`` stripes of up to ``time_drop_width - 1`` frames and ``freq_stripes_num`` stripes of up to
    ``freq_drop_width - 1`` bins are zeroed per example in training mode (channels share them); identity in eval
    mode. PANN training: ``SpecAugment(64, 2, 8, 2)``; study 000 (Table 1): weak (32, 1, 8, 1), strong (64, 2, 35, 2).
    """

    example_dims = 2

    def __init__(self, time_drop_width: int, time_stripes_num: int, freq_drop_width: int, freq_stripes_num: int, *,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(1.0, generator=generator)
        self.time_drop_width, self.time_stripes_num = int(time_drop_width), int(time_stripes_num)
        self.freq_drop_width, self.freq_stripes_num = int(freq_drop_width), int(freq_stripes_num)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        x = drop_stripes(x, -2, self.time_drop_width, self.time_stripes_num, generator=self.generator)
        return drop_stripes(x, -1, self.freq_drop_width, self.freq_stripes_num, generator=self.generator)

    def extra_repr(self) -> str:
        return (f"time_drop_width={self.time_drop_width}, time_stripes_num={self.time_stripes_num}, "
                f"freq_drop_width={self.freq_drop_width}, freq_stripes_num={self.freq_stripes_num}")
