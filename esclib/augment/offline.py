"""Time stretching and pitch shifting with librosa (study 001's offline augmentations: time stretch x0.8 and x1.2,
pitch shift +-2 semitones), for offline copies of a dataset or for data-loader workers.

The functions act on one NumPy waveform; the modules (:class:`TimeStretch`, :class:`PitchShift`) act on a batch of
torch waveforms example by example on the CPU (librosa's phase vocoder and resampler) and return the batch on its
device, so they fit a dataset's ``transform`` (one ``(samples,)`` example) as well as a policy.
"""

from __future__ import annotations

from typing import Sequence

import librosa
import numpy as np
import torch

from esclib.augment.base import BatchAugment, uniform


def time_stretch(y: np.ndarray, rate: float, *, keep_length: bool = True) -> np.ndarray:
    """``y`` played ``rate`` times faster at the same pitch (``librosa.effects.time_stretch``); with
    ``keep_length`` cut or zero-padded at the end back to ``len(y)``."""
    if rate <= 0:
        raise ValueError(f"time_stretch: rate must be positive, got {rate}")
    out = librosa.effects.time_stretch(np.asarray(y, dtype=np.float32), rate=rate)
    return librosa.util.fix_length(out, size=len(y)) if keep_length else out


def pitch_shift(y: np.ndarray, sample_rate: int, n_steps: float) -> np.ndarray:
    """``y`` shifted by ``n_steps`` semitones at the same duration (``librosa.effects.pitch_shift``)."""
    return librosa.effects.pitch_shift(np.asarray(y, dtype=np.float32), sr=sample_rate, n_steps=n_steps)


class _PerExample(BatchAugment):
    """Applies ``self.apply(waveform, value)`` to each example (rows of ``(B, ..., samples)``) on the CPU, with
    ``value`` drawn per example from ``self.values``."""

    def __init__(self, values: float | Sequence[float], p: float, generator: torch.Generator | None) -> None:
        super().__init__(p, generator=generator)
        self.values = tuple(values) if isinstance(values, (tuple, list)) else (float(values),)
        if not self.values:
            raise ValueError(f"{type(self).__name__}: needs at least one value to choose from")

    def apply(self, y: np.ndarray, value: float) -> np.ndarray:
        raise NotImplementedError

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        pick = torch.floor(uniform(x.shape[0], 0.0, len(self.values), self.generator, x)).long().tolist()
        rows = x.detach().cpu().numpy().reshape(x.shape[0], -1, x.shape[-1])
        out = np.stack([np.stack([self.apply(row, self.values[k]) for row in example])
                        for example, k in zip(rows, pick)])
        return torch.from_numpy(out.reshape(x.shape)).to(device=x.device, dtype=x.dtype)

    def extra_repr(self) -> str:
        return f"values={self.values}, p={self.p}"


class TimeStretch(_PerExample):
    """:func:`time_stretch` per example at a rate chosen uniformly among ``rates`` (study 001: (0.8, 1.2)); the
    length is kept."""

    def __init__(self, rates: float | Sequence[float] = (0.8, 1.2), *, p: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(rates, p, generator)

    def apply(self, y: np.ndarray, value: float) -> np.ndarray:
        return time_stretch(y, value)


class PitchShift(_PerExample):
    """:func:`pitch_shift` per example by a number of semitones chosen uniformly among ``steps`` (study 001:
    (-2, 2))."""

    def __init__(self, sample_rate: int, steps: float | Sequence[float] = (-2.0, 2.0), *, p: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(steps, p, generator)
        self.sample_rate = int(sample_rate)

    def apply(self, y: np.ndarray, value: float) -> np.ndarray:
        return pitch_shift(y, self.sample_rate, value)
