"""The input of the convolutional autoencoder of study 002 (DTU, CAE pre-training on ESC-US; book/protocols.md).

The study's data handler (Rasmusafj/02456-deep-learning-project12): librosa load at 44.1 kHz, zeros appended or the
clip cut to 220,500 samples (5 s), division by the clip's peak, ``librosa.feature.melspectrogram(n_mels=28,
n_fft=12288, hop_length=6144)`` (librosa 0.5: Hann window, centred frames, reflect padding, Slaney mel, fmax =
sr / 2), ``librosa.logamplitude(S, ref_power=np.max)`` (= ``power_to_db(S, ref=np.max, top_db=80)``) -> 1 x 28 x 36.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from esclib.features.logmel import REF_MAX, LogMel


class CAEInput(nn.Module):
    """``(B, samples) -> (B, 1, n_mels, frames)``: the study-002 log-mel, 1 x 28 x 36 with the defaults.

    ``n_mels``, ``n_fft`` and ``hop_length`` set a larger input (the study's proposed next step), e.g.
    ``CAEInput(n_mels=64, n_fft=2048, hop_length=1024)`` -> 1 x 64 x 216. Clips longer than ``samples`` keep their
    first ``samples`` samples, shorter ones get zeros appended (as the study), then each clip is divided by its peak
    absolute value (silent clips stay zero).
    """

    def __init__(
        self,
        *,
        sample_rate: int = 44100,
        samples: int = 220500,
        n_mels: int = 28,
        n_fft: int = 12288,
        hop_length: int = 6144,
        top_db: float | None = 80.0,
    ) -> None:
        super().__init__()
        if samples < 1:
            raise ValueError(f"CAEInput: samples must be positive, got {samples}")
        self.samples = samples
        self.logmel = LogMel(sample_rate, n_fft, hop_length, n_mels, center=True, pad_mode="reflect",
                             ref=REF_MAX, top_db=top_db)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of one clip's input, ``(1, n_mels, frames)``."""
        return 1, self.logmel.n_mels, self.logmel.num_frames(self.samples)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The CAE input of a batch of waveforms ``(B, samples)`` at ``sample_rate``."""
        if x.ndim != 2:
            raise ValueError(f"CAEInput expects waveforms of shape (B, samples), got {tuple(x.shape)}")
        x = F.pad(x[:, : self.samples], (0, max(0, self.samples - x.shape[-1])))
        peak = x.abs().amax(dim=-1, keepdim=True)
        x = x / torch.where(peak > 0, peak, torch.ones_like(peak))
        return self.logmel(x).transpose(-1, -2).unsqueeze(1)
