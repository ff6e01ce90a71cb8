"""Augmentation policies applied to one clip for showing and listening (the data tour, chapter 0).

A spectrogram has no sound of its own: :func:`preview` plays the clip with the time-frequency cells that the
policy's spectrogram part changed removed from its STFT, i.e. what the network no longer sees. SpecAugment and
PatchAugment write zeros, which in the PANN models means a mel band's average level (they act after a batch norm
of each band), so here they act on the log-mel minus each band's mean.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch
from torch import nn

from esclib.augment.policies import Policy
from esclib.augment.spectrogram import PatchAugment
from esclib.augment.specaugment import SpecAugment
from esclib.features import LogMel

#: spectrogram operations whose zero fill stands for the band's mean level
ZERO_IS_MEAN = (SpecAugment, PatchAugment)


def spectrogram_ops(ops: nn.Sequential, db: np.ndarray) -> np.ndarray:
    """Spectrogram operations on a ``(frames, mel bins)`` log-mel in dB (zero-filling ones relative to band means)."""
    x = torch.tensor(db)[None]
    mean = x.mean(dim=-2, keepdim=True)
    for op in ops:
        x = op(x - mean) + mean if isinstance(op, ZERO_IS_MEAN) else op(x)
    return x[0].numpy()


def without_cells(wave: np.ndarray, removed: np.ndarray, frontend: LogMel) -> np.ndarray:
    """``wave`` with the log-mel cells ``removed`` ``(frames, mel bins)`` silenced in its STFT via the mel weights."""
    stft = librosa.stft(wave, n_fft=frontend.n_fft, hop_length=frontend.hop_length, pad_mode="reflect")
    mel_basis = frontend.mel_basis.numpy()
    keep = 1.0 - removed.astype(np.float64)
    cover = mel_basis.sum(axis=0)
    gain = np.where(cover > 0, keep @ mel_basis / np.maximum(cover, 1e-12), keep.mean(axis=1, keepdims=True))
    return librosa.istft(stft * gain.T, hop_length=frontend.hop_length, length=len(wave))


def preview(policy: Policy, wave: np.ndarray, frontend: LogMel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``wave`` through ``policy``: the waveform to play, the log-mel to show, the cells its spectrogram part changed."""
    played = policy.waveform(torch.tensor(wave)[None])[0].numpy()
    before = frontend(torch.tensor(played)).numpy()
    after = spectrogram_ops(policy.spectrogram, before)
    changed = ~np.isclose(before, after, atol=1e-4)
    return (without_cells(played, changed, frontend) if changed.any() else played), after, changed
