"""Spectrogram augmentations on ``(B, ..., frames, bins)`` tensors (esclib's time-by-frequency convention), batch-wise
on any device, reproducible from a generator. (SpecAugment's stripes are in :mod:`.specaugment`.)

- :func:`patch_augment` / :class:`PatchAugment` -- ``n`` random rectangular patches filled (study 001: 5 patches
  of 10 x 10);
- :func:`cutout_spec` / :class:`CutOutSpec` -- one rectangle whose sides are random fractions of the frames and bins,
  filled with a value (SSLH's CutOutSpec, Cancès et al. 2022: fill -80 dB).
"""

from __future__ import annotations

import math

import torch

from esclib.augment.base import FunctionAugment, uniform


def _fill_value(x: torch.Tensor, fill: float | str) -> torch.Tensor | float:
    if fill == "mean":
        return x.mean(dim=(-2, -1), keepdim=True)
    if isinstance(fill, str):
        raise ValueError(f"fill must be a number or 'mean' (each example's mean), got {fill!r}")
    return float(fill)


def _fill(x: torch.Tensor, mask: torch.Tensor, fill: float | str) -> torch.Tensor:
    """``x`` with ``mask`` (B, frames, bins) set to ``fill`` (a number, or ``"mean"``: each example's mean)."""
    mask = mask.reshape((x.shape[0],) + (1,) * (x.dim() - 3) + mask.shape[1:])
    return torch.where(mask, torch.as_tensor(_fill_value(x, fill), dtype=x.dtype, device=x.device), x)


def _intervals(start: torch.Tensor, size: torch.Tensor, n: int) -> torch.Tensor:
    """Boolean (..., n): position within [start, start + size) for each leading index."""
    position = torch.arange(n, device=start.device, dtype=torch.float64)
    return (position >= start[..., None]) & (position < (start + size)[..., None])


def patch_augment(x: torch.Tensor, n_patches: int = 5, size: int | tuple[int, int] = 10, fill: float | str = 0.0, *,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """``n_patches`` patches of ``size`` (frames, bins) (one int: square) per example at uniform positions (entirely
    inside the spectrogram), set to ``fill`` (a number, or ``"mean"``)."""
    frames, bins = x.shape[-2], x.shape[-1]
    pt, pf = (size, size) if isinstance(size, int) else size
    if not (0 < pt <= frames and 0 < pf <= bins) or n_patches < 0:
        raise ValueError(f"patch_augment: patches of {pt}x{pf} do not fit a {frames}x{bins} spectrogram "
                         f"(or n_patches={n_patches} < 0)")
    shape = (x.shape[0], n_patches)
    t0 = torch.floor(uniform(shape, 0, frames - pt + 1, generator, x))
    f0 = torch.floor(uniform(shape, 0, bins - pf + 1, generator, x))
    in_t = _intervals(t0, torch.full_like(t0, pt), frames).double()
    in_f = _intervals(f0, torch.full_like(f0, pf), bins).double()
    return _fill(x, torch.einsum("bnt,bnf->btf", in_t, in_f) > 0, fill)


def _cut_range(n: int, scales: tuple[float, float], count: int, generator: torch.Generator | None,
               like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SSLH's ``gen_range``: size uniform in {ceil(lo n), ..., max(ceil(hi n), ceil(lo n) + 1) - 1}, start uniform
    in {0, ..., max(n - size + 1, 1) - 1}."""
    size_lo = math.ceil(scales[0] * n)
    size_hi = max(math.ceil(scales[1] * n), size_lo + 1)
    size = torch.floor(uniform(count, size_lo, size_hi, generator, like))
    start = torch.floor(uniform(count, 0.0, 1.0, generator, like) * torch.clamp(n - size + 1, min=1))
    return start, size


def cutout_spec(x: torch.Tensor, freq_scales: tuple[float, float] = (0.1, 0.5),
                time_scales: tuple[float, float] = (0.1, 0.5), fill: float | str = -80.0, *,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """One rectangle per example spanning a random fraction ``time_scales`` of the frames and ``freq_scales`` of the
    bins (SSLH's size and position rules) set to ``fill`` (a number, -80 dB in SSLH, or ``"mean"``)."""
    for name, (lo, hi) in (("freq_scales", freq_scales), ("time_scales", time_scales)):
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"cutout_spec: {name} must satisfy 0 <= low <= high <= 1, got {(lo, hi)}")
    t0, tn = _cut_range(x.shape[-2], time_scales, x.shape[0], generator, x)
    f0, fn = _cut_range(x.shape[-1], freq_scales, x.shape[0], generator, x)
    mask = _intervals(t0, tn, x.shape[-2])[:, :, None] & _intervals(f0, fn, x.shape[-1])[:, None, :]
    return _fill(x, mask, fill)


class PatchAugment(FunctionAugment):
    """:func:`patch_augment` as a module (study 001: ``PatchAugment(5, 10)``)."""

    example_dims = 2
    function = staticmethod(patch_augment)

    def __init__(self, n_patches: int = 5, size: int | tuple[int, int] = 10, fill: float | str = 0.0, *,
                 p: float = 1.0, generator: torch.Generator | None = None) -> None:
        super().__init__(p, generator=generator, n_patches=n_patches, size=size, fill=fill)


class CutOutSpec(FunctionAugment):
    """:func:`cutout_spec` as a module: SSLH's CutOutSpec (weak: scales (0.1, 0.5), strong: (0.5, 1.0); fill -80)."""

    example_dims = 2
    function = staticmethod(cutout_spec)

    def __init__(self, freq_scales: tuple[float, float] = (0.1, 0.5), time_scales: tuple[float, float] = (0.1, 0.5),
                 fill: float | str = -80.0, *, p: float = 1.0, generator: torch.Generator | None = None) -> None:
        super().__init__(p, generator=generator, freq_scales=freq_scales, time_scales=time_scales, fill=fill)
