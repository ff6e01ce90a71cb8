"""The PANN log-mel frontend, stored under the key names of the released checkpoints.

Kong et al. 2020 (study 003), Sec. II-A; the authors' code builds it with torchlibrosa: a Hann-window STFT as two
frozen convolutions (``spectrogram_extractor.stft.conv_real.weight`` / ``conv_imag.weight``, the DFT rows times the
window, shape ``(n_fft/2+1, 1, n_fft)``), power 2, the Slaney mel matrix ``logmel_extractor.melW``
``(n_fft/2+1, mel_bins)`` and ``10 log10(max(x, 1e-10))``. Here those tensors are buffers (loaded and saved with the
checkpoint, never trained) and the STFT is computed by FFT (:func:`esclib.features.power_spectrogram`) with the
window read from the stored DFT's first row -- the same numbers as the convolutions, faster.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np
import torch
from torch import nn

from esclib.features.logmel import power_to_db
from esclib.features.stft import analysis_window, full_precision, power_spectrogram

#: state-dict keys of the frontend tensors in the released checkpoints
CONV_REAL_KEY = "spectrogram_extractor.stft.conv_real.weight"
CONV_IMAG_KEY = "spectrogram_extractor.stft.conv_imag.weight"
MEL_KEY = "logmel_extractor.melW"


@dataclass(frozen=True)
class FrontendConfig:
    """The authors' frontend arguments (``sample_rate, window_size, hop_size, mel_bins, fmin, fmax``)."""

    sample_rate: int
    window_size: int
    hop_size: int
    mel_bins: int = 64
    fmin: float = 50
    fmax: float = 14000

    def __str__(self) -> str:
        return (f"{self.sample_rate / 1000:g} kHz, window {self.window_size}, hop {self.hop_size}, "
                f"{self.mel_bins} mel bins, {self.fmin:g}-{self.fmax:g} Hz")

    def mel_matrix(self) -> np.ndarray:
        """The Slaney mel matrix as stored in the checkpoints, ``(window_size // 2 + 1, mel_bins)`` float32."""
        return librosa.filters.mel(sr=self.sample_rate, n_fft=self.window_size, n_mels=self.mel_bins,
                                   fmin=self.fmin, fmax=self.fmax).T


#: the 32 kHz frontend of Cnn6/10/14, MobileNets, ResNets, Wavegram-Logmel (Kong et al. 2020, Sec. II-A)
FRONTEND_32K = FrontendConfig(32000, 1024, 320, 64, 50, 14000)
#: the 16 kHz frontend of ``Cnn14_16k`` (asserted in the authors' code; the backbone of study 000)
FRONTEND_16K = FrontendConfig(16000, 512, 160, 64, 50, 8000)
#: the ``quick`` profile's ``CnnMini16k``: the 16 kHz frontend of ``Cnn14_16k`` on a 20-ms hop, half its frames: the
#: quick pre-training takes 190 s instead of 330 s on 2 CPU cores, to a held-out mAP of 0.625 instead of 0.644
#: (``benchmarks/bench_pann_pretrain.py [--hop 160]``)
FRONTEND_MINI = FrontendConfig(16000, 512, 320, 64, 50, 8000)
#: the 8 kHz frontend of ``Cnn14_8k`` (released, not provided by esclib; used to name a file's frontend)
FRONTEND_8K = FrontendConfig(8000, 256, 80, 64, 50, 4000)
#: the released frontends, used to recognise the frontend of a checkpoint file
RELEASED_FRONTENDS = (FRONTEND_32K, FRONTEND_16K, FRONTEND_8K)


class FrontendMismatchError(ValueError):
    """A checkpoint's frontend tensors do not fit the model (e.g. a 16 kHz file into a 32 kHz model)."""


def _dft_rows(window: np.ndarray) -> np.ndarray:
    """The one-sided DFT matrix times ``window``, ``(n/2+1, n)`` complex (torchlibrosa's STFT kernels)."""
    n = window.shape[0]
    k = np.arange(n // 2 + 1)[:, None]
    return np.exp(-2j * np.pi * k * np.arange(n)[None, :] / n) * window[None, :]


class _Weight(nn.Module):
    """A frozen tensor stored as ``<name>.weight`` (the checkpoints' ``stft.conv_real`` / ``stft.conv_imag``)."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight)


class _Kernels(nn.Module):
    def __init__(self, kernels: np.ndarray) -> None:
        super().__init__()
        self.conv_real = _Weight(torch.from_numpy(kernels.real[:, None, :].astype(np.float32)))
        self.conv_imag = _Weight(torch.from_numpy(kernels.imag[:, None, :].astype(np.float32)))


class Spectrogram(nn.Module):
    """Hann-window power spectrogram ``(B, samples) -> (B, 1, frames, window_size // 2 + 1)`` (centred, reflect)."""

    def __init__(self, window_size: int, hop_size: int) -> None:
        super().__init__()
        self.hop_size = hop_size
        self.stft = _Kernels(_dft_rows(analysis_window("hann", window_size).numpy()))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.ndim != 2:
            raise ValueError(f"PANN models take waveforms of shape (batch, samples), got {tuple(waveform.shape)}")
        window = self.stft.conv_real.weight[0, 0]
        power = power_spectrogram(waveform, n_fft=window.shape[0], hop_length=self.hop_size, window=window,
                                  center=True, pad_mode="reflect")
        return power.transpose(1, 2).unsqueeze(1)


class LogmelFilterBank(nn.Module):
    """Mel projection with the stored ``melW`` and ``10 log10(max(x, 1e-10))`` (ref 1.0, no top_db)."""

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__()
        self.register_buffer("melW", torch.from_numpy(config.mel_matrix()))

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        with full_precision(power):
            mel = torch.matmul(power, self.melW.to(power.dtype))
        return power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)


def identify_frontend(state_dict: dict[str, torch.Tensor]) -> FrontendConfig | None:
    """The released frontend whose STFT and mel tensors ``state_dict`` holds, or None if it holds another one."""
    conv_real, mel = state_dict.get(CONV_REAL_KEY), state_dict.get(MEL_KEY)
    if conv_real is None or mel is None:
        return None
    for config in RELEASED_FRONTENDS:
        expected = config.mel_matrix()
        if (conv_real.shape[-1] == config.window_size and tuple(mel.shape) == expected.shape
                and np.allclose(mel.detach().cpu().float().numpy(), expected, rtol=1e-4, atol=1e-6)):
            return config
    return None


def describe_frontend(state_dict: dict[str, torch.Tensor]) -> str:
    """Words for the frontend a checkpoint holds (released name if recognised, otherwise its tensor shapes)."""
    config = identify_frontend(state_dict)
    if config is not None:
        return f"the {config.sample_rate // 1000} kHz PANN frontend ({config})"
    conv_real, mel = state_dict.get(CONV_REAL_KEY), state_dict.get(MEL_KEY)
    if conv_real is None or mel is None:
        return f"no PANN frontend (no {CONV_REAL_KEY!r} / {MEL_KEY!r})"
    return (f"an unreleased frontend (window {conv_real.shape[-1]}, {mel.shape[-1]} mel bins; "
            f"sample rate unknown)")


def check_stft_kernels(conv_real: torch.Tensor, conv_imag: torch.Tensor) -> None:
    """Raise unless the stored STFT kernels are the windowed DFT this module computes by FFT."""
    real, imag = conv_real[:, 0].double().cpu().numpy(), conv_imag[:, 0].double().cpu().numpy()
    expected = _dft_rows(real[0])
    if not (np.allclose(real, expected.real, atol=1e-5) and np.allclose(imag, expected.imag, atol=1e-5)):
        raise FrontendMismatchError(f"{CONV_REAL_KEY} / {CONV_IMAG_KEY} are not windowed DFT kernels: "
                                    "not a PANN frontend esclib can compute")
