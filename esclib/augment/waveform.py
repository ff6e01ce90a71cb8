"""Waveform augmentations, batch-wise on ``(B, ..., samples)`` tensors on any device, reproducible from a generator.

- :func:`add_noise` / :class:`AddNoise` -- white (or given) noise at an exact per-example SNR (study 000's background
  noise; study 001's noise at 5 and 15 dB);
- :func:`gain` / :class:`Gain` -- a random gain in dB (USB's sox ``gain``, study 000's comparison);
- :func:`time_shift` / :class:`TimeShift` -- a circular or zero-filled shift;
- :func:`random_crop` / :class:`RandomCrop` -- a random excerpt of fixed length (USB's weak augmentation);
- :func:`speed_perturb` / :class:`SpeedPerturbation` -- resampling by a rate, then padding or cropping back to the
  input length (SSLH's SpeedPerturbation / ResamplePadCrop, Cancès et al. 2022);
- :func:`occlusion` / :class:`Occlusion` -- a random section of the signal set to a value (SSLH's Occlusion).
"""

from __future__ import annotations

import torch

from esclib.augment.base import FunctionAugment, _device, per_example, uniform, value_or_range


def _take(x: torch.Tensor, index: torch.Tensor, valid: torch.Tensor | None = None, fill: float = 0.0) -> torch.Tensor:
    """``x`` (B, ..., L) gathered along its last dimension at per-example positions ``index`` (B, L'); positions where
    ``valid`` (B, L') is False become ``fill``."""
    shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (index.shape[1],)
    full = index.clamp(0, x.shape[-1] - 1).reshape(shape).expand(*x.shape[:-1], index.shape[1])
    out = x.gather(-1, full)
    return out if valid is None else out.masked_fill(~valid.reshape(shape), fill)


def _positions(x: torch.Tensor, n: int | None = None) -> torch.Tensor:
    return torch.arange(x.shape[-1] if n is None else n, device=x.device, dtype=torch.float64)


def add_noise(x: torch.Tensor, snr_db: float | tuple[float, float], *, noise: torch.Tensor | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """``x + n`` with the noise ``n`` (white Gaussian unless ``noise``, same shape as ``x``, is given) scaled per
    example so that ``10 log10(sum x**2 / sum n**2)`` equals the SNR exactly: ``snr_db`` itself, or drawn per example
    from the range ``(low, high)``. A silent example stays silent."""
    snr = value_or_range(snr_db, x.shape[0], generator, x)
    if noise is None:
        noise = torch.randn(x.shape, generator=generator, device=_device(generator, x)).to(x)
    elif noise.shape != x.shape:
        raise ValueError(f"add_noise: noise shape {tuple(noise.shape)} differs from x shape {tuple(x.shape)}")
    p_signal = x.double().pow(2).flatten(1).sum(1)
    p_noise = noise.double().pow(2).flatten(1).sum(1).clamp_min(1e-30)
    return x + noise * per_example(torch.sqrt(p_signal / p_noise * 10.0 ** (-snr / 10.0)), x)


def gain(x: torch.Tensor, min_db: float, max_db: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` times a gain drawn per example uniformly in [min_db, max_db] dB."""
    return x * per_example(10.0 ** (uniform(x.shape[0], min_db, max_db, generator, x) / 20.0), x)


def time_shift(x: torch.Tensor, max_shift: int | float, mode: str = "roll", *,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` shifted in time per example by an integer drawn uniformly in [-S, S] samples (S = ``max_shift``, or
    ``max_shift * length`` when a float below 1): circularly (``mode="roll"``) or filling with zeros (``"zero"``)."""
    if mode not in ("roll", "zero"):
        raise ValueError(f"time_shift: mode must be 'roll' or 'zero', got {mode!r}")
    length = x.shape[-1]
    limit = int(round(max_shift * length)) if isinstance(max_shift, float) and max_shift < 1 else int(max_shift)
    shift = torch.floor(uniform(x.shape[0], -limit, limit + 1, generator, x))
    source = _positions(x)[None, :] - shift[:, None]
    if mode == "roll":
        return _take(x, torch.remainder(source, length).long())
    return _take(x, source.long(), (source >= 0) & (source < length))


def random_crop(x: torch.Tensor, length: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random excerpt of ``length`` samples per example (start uniform in {0, ..., L - length})."""
    if not 0 < length <= x.shape[-1]:
        raise ValueError(f"random_crop: length must be in [1, {x.shape[-1]}] (the input length), got {length}")
    start = torch.floor(uniform(x.shape[0], 0, x.shape[-1] - length + 1, generator, x))
    return _take(x, (start[:, None] + _positions(x, length)[None, :]).long())


def _offsets(excess: torch.Tensor, align: str, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """Offset of the output window in the stretched signal: in [0, excess] when it is longer (crop), in [excess, 0]
    when shorter (pad), by alignment."""
    if align == "random":
        return torch.floor(uniform(excess.shape[0], 0.0, 1.0, generator, like) * (excess.abs() + 1)) * excess.sign()
    return {"left": torch.zeros_like(excess), "right": excess, "center": torch.trunc(excess / 2)}[align]


def speed_perturb(x: torch.Tensor, rates: float | tuple[float, float] = (0.5, 1.5), *, align: str = "random",
                  interpolation: str = "nearest", fill: float = 0.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """SSLH's speed perturbation: each example resampled to ``rate`` times its length (rate ``rates`` or drawn per
    example from the range; > 1 slows down and lowers the pitch), then cropped or padded with ``fill`` back to the
    input length, the kept window aligned ``left``, ``right``, ``center`` or at ``random``. Interpolation
    ``nearest`` (SSLH's default) or ``linear``."""
    if align not in ("random", "left", "right", "center"):
        raise ValueError(f"speed_perturb: align must be random, left, right or center, got {align!r}")
    if interpolation not in ("nearest", "linear"):
        raise ValueError(f"speed_perturb: interpolation must be nearest or linear, got {interpolation!r}")
    rate = value_or_range(rates, x.shape[0], generator, x)
    if (rate <= 0).any():
        raise ValueError(f"speed_perturb: rates must be positive, got {rates!r}")
    length = x.shape[-1]
    stretched = torch.ceil(length * rate)
    k = _positions(x)[None, :] + _offsets(stretched - length, align, generator, x)[:, None]
    valid = (k >= 0) & (k < stretched[:, None])
    source = k / rate[:, None]
    if interpolation == "nearest":
        return _take(x, torch.round(source).long(), valid, fill)
    below = torch.floor(source)
    shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (length,)
    frac = (source - below).to(x.dtype).reshape(shape)
    mixed = _take(x, below.long()) * (1 - frac) + _take(x, below.long() + 1) * frac
    return mixed.masked_fill(~valid.reshape(shape), fill)


def occlusion(x: torch.Tensor, scales: float | tuple[float, float] = (0.0, 0.25), *, fill: float = 0.0,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """SSLH's occlusion: per example a section of ``size`` samples set to ``fill``, ``size`` uniform in
    {round(lo L), ..., max(round(hi L), round(lo L) + 1) - 1} (``scales = (lo, hi)`` or one scale), starting
    uniformly in {0, ..., max(L - size, 1) - 1}."""
    lo, hi = (scales, scales) if isinstance(scales, (int, float)) else scales
    length = x.shape[-1]
    size_lo = round(lo * length)
    size_hi = max(round(hi * length), size_lo + 1)
    size = torch.floor(uniform(x.shape[0], size_lo, size_hi, generator, x))
    start = torch.floor(uniform(x.shape[0], 0.0, 1.0, generator, x) * torch.clamp(length - size, min=1))
    position = _positions(x)[None, :]
    hidden = (position >= start[:, None]) & (position < (start + size)[:, None])
    return x.masked_fill(hidden.reshape((x.shape[0],) + (1,) * (x.dim() - 2) + (length,)), fill)


class AddNoise(FunctionAugment):
    """:func:`add_noise` as a module: noise at ``snr_db`` (a value or a (low, high) range) per example."""

    function = staticmethod(add_noise)

    def __init__(self, snr_db: float | tuple[float, float], *, p: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(p, generator=generator, snr_db=snr_db)


class Gain(FunctionAugment):
    """:func:`gain` as a module: a gain uniform in [min_db, max_db] dB per example."""

    function = staticmethod(gain)

    def __init__(self, min_db: float, max_db: float, *, p: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(p, generator=generator, min_db=min_db, max_db=max_db)


class TimeShift(FunctionAugment):
    """:func:`time_shift` as a module (``mode`` ``roll`` or ``zero``)."""

    function = staticmethod(time_shift)

    def __init__(self, max_shift: int | float, mode: str = "roll", *, p: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(p, generator=generator, max_shift=max_shift, mode=mode)


class RandomCrop(FunctionAugment):
    """:func:`random_crop` as a module (always applied: it changes the length)."""

    function = staticmethod(random_crop)

    def __init__(self, length: int, *, generator: torch.Generator | None = None) -> None:
        super().__init__(1.0, generator=generator, length=length)


class SpeedPerturbation(FunctionAugment):
    """:func:`speed_perturb` as a module: SSLH's SpeedPerturbation (rates (0.5, 1.5) weak, (0.25, 1.75) strong)."""

    function = staticmethod(speed_perturb)

    def __init__(self, rates: float | tuple[float, float] = (0.5, 1.5), align: str = "random",
                 interpolation: str = "nearest", *, p: float = 1.0, generator: torch.Generator | None = None) -> None:
        super().__init__(p, generator=generator, rates=rates, align=align, interpolation=interpolation)


class Occlusion(FunctionAugment):
    """:func:`occlusion` as a module: SSLH's Occlusion (scales (0, 0.25) weak, (0, 0.75) strong)."""

    function = staticmethod(occlusion)

    def __init__(self, scales: float | tuple[float, float] = (0.0, 0.25), fill: float = 0.0, *, p: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(p, generator=generator, scales=scales, fill=fill)

