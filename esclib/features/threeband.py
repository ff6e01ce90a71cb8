"""The ESResNet input: a log-power STFT cut into three frequency bands stacked as image channels.

Guzhov et al. (ESResNet, 2020; reference code AndreyGuzhov/ESResNet, book/protocols.md, study 004), the input of study 004 (DLS,
NPID pre-training of ESResNet): the waveform scaled to 16-bit range, a Blackman-Harris STFT at 44.1 kHz, the
one-sided spectrum truncated to a multiple of 3 bins and split into 3 equal bands ("RGB", channel 0 = lowest).
"""

from __future__ import annotations

import torch
from torch import nn

from esclib.features.stft import analysis_window, power_spectrogram


class ThreeBandSpectrogram(nn.Module):
    """``(B, samples) -> (B, 3, bins, frames)`` or ``(B, C, samples) -> (B, C, 3, bins, frames)`` in dB.

    As ESResNet: ``x * scale`` -> ``torch.stft(n_fft, hop_length, win_length, window=scipy
    get_window(window, win_length, fftbins=True) (periodic), center=True, pad_mode="reflect", normalized=True)``
    -> the lowest ``3 * ((n_fft // 2 + 1) // 3)`` bins -> power ``re^2 + im^2`` -> zeros replaced by ``floor`` ->
    ``10 log10``. With the defaults (the ESC-50/US8K recipe at 44.1 kHz) a 5 s clip (220,500 samples) gives
    ``3 x 341 x 394``. Multi-channel input (stereo US8K in ESResNet) is transformed channel by channel.
    """

    def __init__(
        self,
        *,
        n_fft: int = 2048,
        hop_length: int = 561,
        win_length: int = 1654,
        window: str | tuple = "blackmanharris",
        scale: float = 32768.0,
        bands: int = 3,
        floor: float = 1e-18,
    ) -> None:
        super().__init__()
        if not 0 < win_length <= n_fft:
            raise ValueError(f"ThreeBandSpectrogram: win_length must be in [1, n_fft={n_fft}], got {win_length}")
        if bands < 1 or (n_fft // 2 + 1) < bands:
            raise ValueError(f"ThreeBandSpectrogram: bands must be in [1, {n_fft // 2 + 1}], got {bands}")
        self.n_fft, self.hop_length, self.scale, self.bands, self.floor = n_fft, hop_length, scale, bands, floor
        self.register_buffer("window", analysis_window(window, win_length), persistent=False)

    @property
    def bins_per_band(self) -> int:
        """Frequency bins in each band (341 for ``n_fft=2048``)."""
        return (self.n_fft // 2 + 1) // self.bands

    def num_frames(self, samples: int) -> int:
        """Frames produced for a clip of ``samples`` samples (centred frames)."""
        return 1 + samples // self.hop_length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-power bands ``(..., samples) -> (..., bands, bins_per_band, frames)``."""
        if x.ndim not in (2, 3):
            raise ValueError(f"ThreeBandSpectrogram expects (B, samples) or (B, C, samples), got {tuple(x.shape)}")
        power = power_spectrogram(x * self.scale, n_fft=self.n_fft, hop_length=self.hop_length, window=self.window,
                                  center=True, pad_mode="reflect", normalized=True)
        power = power[..., : self.bands * self.bins_per_band, :]
        power = torch.where(power > 0, power, torch.full_like(power, self.floor))
        db = 10.0 * torch.log10(power)
        return db.reshape(*x.shape[:-1], self.bands, self.bins_per_band, db.shape[-1])
