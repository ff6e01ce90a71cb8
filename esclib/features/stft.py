"""Batch-wise short-time Fourier power spectra in torch, the common first step of every esclib frontend.

``torch.stft`` with the window built by librosa/scipy (``get_window(..., fftbins=True)``, zero-padded to ``n_fft``
about its centre) computes what ``librosa.stft`` computes; the frontends in :mod:`esclib.features` and the PANN
frontend (:mod:`esclib.models.panns.frontend`) all go through :func:`power_spectrogram`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import librosa
import numpy as np
import torch


def analysis_window(window: str | tuple | float, win_length: int) -> torch.Tensor:
    """The periodic (``fftbins=True``) analysis window ``window`` of ``win_length`` samples, as float64.

    ``window`` is any specification ``scipy.signal.get_window`` accepts (``"hann"``, ``"blackmanharris"``,
    ``("kaiser", 8.0)``, ...), the convention of librosa and of ESResNet.
    """
    if win_length < 1:
        raise ValueError(f"win_length must be a positive number of samples, got {win_length}")
    return torch.from_numpy(np.asarray(librosa.filters.get_window(window, win_length, fftbins=True), dtype=np.float64))


def full_precision(x: torch.Tensor) -> AbstractContextManager:
    """A context that turns autocast off on ``x``'s device (frontends compute in the input's own precision)."""
    device_type = x.device.type
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return nullcontext()


def power_spectrogram(
    x: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    window: torch.Tensor,
    center: bool = True,
    pad_mode: str = "reflect",
    power: float = 2.0,
    normalized: bool = False,
) -> torch.Tensor:
    """``|STFT(x)| ** power`` of a batch of waveforms ``x`` of shape ``(..., samples)`` -> ``(..., bins, frames)``.

    ``window`` (length ``<= n_fft``) is centred in the ``n_fft`` frame as librosa does; ``center`` pads
    ``n_fft // 2`` samples on both sides with ``pad_mode``; ``normalized`` scales by ``n_fft ** -0.5`` (torch's
    convention, used by ESResNet). Computed in ``x``'s dtype (float32 or float64), on ``x``'s device.
    """
    if x.ndim < 1 or x.shape[-1] == 0:
        raise ValueError(f"expected waveforms of shape (..., samples) with samples > 0, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point waveform tensor, got dtype {x.dtype}")
    leading = x.shape[:-1]
    with full_precision(x):
        spec = torch.stft(
            x.reshape(-1, x.shape[-1]),
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=window.shape[-1],
            window=window.to(device=x.device, dtype=x.dtype),
            center=center,
            pad_mode=pad_mode,
            normalized=normalized,
            onesided=True,
            return_complex=True,
        )
        power_spec = spec.real.square() + spec.imag.square()
        if power != 2.0:
            power_spec = power_spec.pow(power / 2.0)
    return power_spec.reshape(*leading, *power_spec.shape[-2:])
