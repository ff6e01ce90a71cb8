"""Log-mel spectrograms computed batch-wise in torch, equal to librosa's ``melspectrogram`` + ``power_to_db``.

The one log-mel of the book: the PANN frontend (Kong et al. 2020, study 003, Sec. II-A: 64 Slaney mel bins,
10 log10, no top_db), the 16 kHz frontend of study 000 and the CAE input of study 002 are all instances of it.
Runs on any device (CPU, CUDA, meta) and in the input's precision; no torchaudio.
"""

from __future__ import annotations

import math

import librosa
import torch
from torch import nn

from esclib.features.stft import analysis_window, full_precision, power_spectrogram

#: ``ref`` value that makes :func:`power_to_db` use each clip's own maximum (librosa's ``ref=np.max``)
REF_MAX = "max"


def check_db_args(*, ref: float | str, amin: float, top_db: float | None) -> None:
    """Raise ``ValueError`` naming the bad argument of :func:`power_to_db`."""
    if amin <= 0:
        raise ValueError(f"amin must be positive, got {amin}")
    if top_db is not None and top_db < 0:
        raise ValueError(f"top_db must be non-negative or None, got {top_db}")
    if ref != REF_MAX and not (isinstance(ref, (int, float)) and ref > 0):
        raise ValueError(f"ref must be a positive number or {REF_MAX!r} (each clip's maximum), got {ref!r}")


def power_to_db(
    spec: torch.Tensor, *, ref: float | str = 1.0, amin: float = 1e-10, top_db: float | None = None
) -> torch.Tensor:
    """``10 log10(max(spec, amin) / max(ref, amin))`` per clip, as ``librosa.power_to_db``.

    ``spec`` has shape ``(..., frames, bins)``; one clip is one ``(frames, bins)`` matrix. ``ref="max"`` uses each
    clip's maximum (librosa's ``ref=np.max``) and ``top_db`` clips each clip at ``its maximum - top_db`` dB, exactly
    what librosa does when called on that clip alone.
    """
    check_db_args(ref=ref, amin=amin, top_db=top_db)
    log_spec = 10.0 * torch.log10(spec.clamp_min(amin))
    if ref == REF_MAX:
        log_spec = log_spec - 10.0 * torch.log10(spec.amax(dim=(-2, -1), keepdim=True).clamp_min(amin))
    else:
        log_spec = log_spec - 10.0 * math.log10(max(float(ref), amin))
    if top_db is not None:
        log_spec = torch.maximum(log_spec, log_spec.amax(dim=(-2, -1), keepdim=True) - top_db)
    return log_spec


class LogMel(nn.Module):
    """Log-power mel spectrogram ``(..., samples) -> (..., frames, n_mels)`` in dB.

    Equals ``librosa.power_to_db(librosa.feature.melspectrogram(y, sr=sample_rate, n_fft=n_fft,
    hop_length=hop_length, win_length=win_length, window=window, center=center, pad_mode=pad_mode, power=power,
    n_mels=n_mels, fmin=fmin, fmax=fmax), ref=ref, amin=amin, top_db=top_db).T`` (Slaney mel scale and
    normalisation, htk=False) per clip. ``fmax=None`` means ``sample_rate / 2``; ``ref="max"`` is librosa's
    ``ref=np.max``. Note librosa >= 0.10 pads with ``"constant"`` by default; this class defaults to
    ``"reflect"``, the convention of the PANN frontend and of librosa < 0.10.
    """

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        n_mels: int,
        fmin: float = 0.0,
        fmax: float | None = None,
        *,
        win_length: int | None = None,
        window: str | tuple = "hann",
        center: bool = True,
        pad_mode: str = "reflect",
        power: float = 2.0,
        ref: float | str = 1.0,
        amin: float = 1e-10,
        top_db: float | None = None,
    ) -> None:
        super().__init__()
        win_length = n_fft if win_length is None else win_length
        fmax = sample_rate / 2 if fmax is None else fmax
        for name, value in (("sample_rate", sample_rate), ("n_fft", n_fft), ("hop_length", hop_length),
                            ("n_mels", n_mels), ("power", power)):
            if value <= 0:
                raise ValueError(f"LogMel: {name} must be positive, got {value}")
        if not 0 < win_length <= n_fft:
            raise ValueError(f"LogMel: win_length must be in [1, n_fft={n_fft}], got {win_length}")
        if not 0 <= fmin < fmax <= sample_rate / 2:
            raise ValueError(f"LogMel: need 0 <= fmin < fmax <= sample_rate / 2 = {sample_rate / 2}, "
                             f"got fmin={fmin}, fmax={fmax}")
        check_db_args(ref=ref, amin=amin, top_db=top_db)
        self.sample_rate, self.n_fft, self.hop_length, self.n_mels = sample_rate, n_fft, hop_length, n_mels
        self.fmin, self.fmax, self.center, self.pad_mode, self.power = fmin, fmax, center, pad_mode, power
        self.ref, self.amin, self.top_db = ref, amin, top_db
        self.register_buffer("window", analysis_window(window, win_length), persistent=False)
        mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        self.register_buffer("mel_basis", torch.from_numpy(mel), persistent=False)

    def num_frames(self, samples: int) -> int:
        """Frames produced for a clip of ``samples`` samples."""
        return 1 + (samples // self.hop_length if self.center else (samples - self.n_fft) // self.hop_length)

    def mel_power(self, x: torch.Tensor) -> torch.Tensor:
        """Mel power spectrogram ``(..., frames, n_mels)`` (before the dB conversion)."""
        spec = power_spectrogram(x, n_fft=self.n_fft, hop_length=self.hop_length, window=self.window,
                                 center=self.center, pad_mode=self.pad_mode, power=self.power)
        with full_precision(spec):
            return torch.matmul(self.mel_basis.to(spec.dtype), spec).transpose(-1, -2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-mel in dB, ``(..., samples) -> (..., frames, n_mels)``."""
        return power_to_db(self.mel_power(x), ref=self.ref, amin=self.amin, top_db=self.top_db)

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
                f"n_mels={self.n_mels}, fmin={self.fmin}, fmax={self.fmax}, ref={self.ref!r}, top_db={self.top_db}")
