"""Named augmentation policies: the weak and strong augmentations of the studies, by name (:func:`get_policy`).

A :class:`Policy` holds a waveform part and a spectrogram part (either may be empty). Its ``domain`` is the domain of
its input: ``"waveform"`` when it has waveform operations, else ``"spectrogram"``. Calling it runs the waveform
part, then -- only when it also has spectrogram operations -- the ``frontend`` it is given (waveform ->
spectrogram), then the spectrogram part; a waveform-only policy returns a waveform. This is how a policy spanning
both domains (SSLH's: occlusion and speed perturbation, then CutOutSpec) is applied. A model whose frontend is
inside it (the PANNs) applies ``policy.waveform`` to its input and ``policy.spectrogram`` after its frontend.

Policies (widths and counts of SpecAugment in frames / mel bins):

- ``rocling_weak``, ``rocling_strong`` -- study 000, Table 1: SpecAugment freq 8/1, time 32/1 (weak); freq 35/2,
  time 64/2 (strong);
- ``panns_specaugment`` -- the PANN training SpecAugment (time 64/2, freq 8/2; study 003);
- ``sslh_weak``, ``sslh_strong`` -- SSLH (Cancès et al. 2022; book/protocols.md): Occlusion (scales 0-0.25, p 0.5) ->
  SpeedPerturbation (rates 0.5-1.5, p 0.5) -> CutOutSpec (0.1-0.5 x 0.1-0.5, fill -80 dB, p 0.5); strong:
  Occlusion (0-0.75) -> SpeedPerturbation (0.25-1.75) -> CutOutSpec (0.5-1.0 x 0.5-1.0, fill -80), all p 1;
- study 001 (QUACLRS), one augmentation each, for the SSL chapter's ablation: ``quaclrs_original`` (none),
  ``quaclrs_time_stretch`` (x0.8 or x1.2; ``_0.8``, ``_1.2``), ``quaclrs_pitch_shift`` (-2 or +2 semitones;
  ``_-2``, ``_2``), ``quaclrs_spec_augment`` (2 time and 2 frequency masks, widths < 20), ``quaclrs_patch_augment``
  (5 patches of 10 x 10), ``quaclrs_noise`` (5 or 15 dB SNR; ``_5db``, ``_15db``). The pitch shift needs
  ``sample_rate``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from esclib.augment.base import RandomChoice
from esclib.augment.offline import PitchShift, TimeStretch
from esclib.augment.specaugment import SpecAugment
from esclib.augment.spectrogram import CutOutSpec, PatchAugment
from esclib.augment.waveform import AddNoise, Occlusion, SpeedPerturbation

DOMAINS = ("waveform", "spectrogram")


class Policy(nn.Module):
    """A named augmentation policy: ``waveform`` operations, then (given a frontend) ``spectrogram`` operations."""

    def __init__(self, name: str, waveform: Sequence[nn.Module] = (), spectrogram: Sequence[nn.Module] = ()) -> None:
        super().__init__()
        self.name = name
        self.waveform = nn.Sequential(*waveform)
        self.spectrogram = nn.Sequential(*spectrogram)

    @property
    def domain(self) -> str:
        """``"waveform"`` if the policy starts with waveform operations, else ``"spectrogram"``."""
        return DOMAINS[0] if len(self.waveform) else DOMAINS[1]

    def forward(self, x: torch.Tensor, frontend: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """``x`` (in :attr:`domain`) augmented; a policy with both parts needs ``frontend`` and returns its output
        domain (a spectrogram)."""
        if self.domain == "spectrogram":
            return self.spectrogram(x)
        x = self.waveform(x)
        if not len(self.spectrogram):
            return x
        if frontend is None:
            raise ValueError(f"policy {self.name!r} ends with spectrogram operations: pass frontend= (waveform -> "
                             f"spectrogram), or apply policy.waveform and policy.spectrogram around your frontend")
        return self.spectrogram(frontend(x))

    def extra_repr(self) -> str:
        return f"name={self.name!r}, domain={self.domain!r}"


def _sslh(occlusion: tuple[float, float], rates: tuple[float, float], cutout: tuple[float, float], p: float,
          g: torch.Generator | None) -> tuple[list[nn.Module], list[nn.Module]]:
    return ([Occlusion(occlusion, p=p, generator=g), SpeedPerturbation(rates, p=p, generator=g)],
            [CutOutSpec(cutout, cutout, -80.0, p=p, generator=g)])


def _need_rate(sample_rate: int | None, name: str) -> int:
    if sample_rate is None:
        raise ValueError(f"policy {name!r} pitch-shifts: pass sample_rate=")
    return sample_rate


# name -> (generator, sample_rate) -> (waveform operations, spectrogram operations)
_POLICIES: dict[str, Callable[[torch.Generator | None, int | None], tuple[list, list]]] = {
    "rocling_weak": lambda g, sr: ([], [SpecAugment(32, 1, 8, 1, generator=g)]),
    "rocling_strong": lambda g, sr: ([], [SpecAugment(64, 2, 35, 2, generator=g)]),
    "panns_specaugment": lambda g, sr: ([], [SpecAugment(64, 2, 8, 2, generator=g)]),
    "sslh_weak": lambda g, sr: _sslh((0.0, 0.25), (0.5, 1.5), (0.1, 0.5), 0.5, g),
    "sslh_strong": lambda g, sr: _sslh((0.0, 0.75), (0.25, 1.75), (0.5, 1.0), 1.0, g),
    "quaclrs_original": lambda g, sr: ([], []),
    "quaclrs_time_stretch": lambda g, sr: ([TimeStretch((0.8, 1.2), generator=g)], []),
    "quaclrs_time_stretch_0.8": lambda g, sr: ([TimeStretch(0.8, generator=g)], []),
    "quaclrs_time_stretch_1.2": lambda g, sr: ([TimeStretch(1.2, generator=g)], []),
    "quaclrs_pitch_shift": lambda g, sr: ([PitchShift(_need_rate(sr, "quaclrs_pitch_shift"), (-2, 2), generator=g)],
                                          []),
    "quaclrs_pitch_shift_-2": lambda g, sr: ([PitchShift(_need_rate(sr, "quaclrs_pitch_shift_-2"), -2, generator=g)],
                                             []),
    "quaclrs_pitch_shift_2": lambda g, sr: ([PitchShift(_need_rate(sr, "quaclrs_pitch_shift_2"), 2, generator=g)],
                                            []),
    "quaclrs_spec_augment": lambda g, sr: ([], [SpecAugment(20, 2, 20, 2, generator=g)]),
    "quaclrs_patch_augment": lambda g, sr: ([], [PatchAugment(5, 10, generator=g)]),
    "quaclrs_noise": lambda g, sr: ([RandomChoice(AddNoise(5.0), AddNoise(15.0), generator=g)], []),
    "quaclrs_noise_5db": lambda g, sr: ([AddNoise(5.0, generator=g)], []),
    "quaclrs_noise_15db": lambda g, sr: ([AddNoise(15.0, generator=g)], []),
}

#: every policy name :func:`get_policy` knows
POLICY_NAMES: tuple[str, ...] = tuple(_POLICIES)


def get_policy(name: str, *, generator: torch.Generator | None = None, sample_rate: int | None = None) -> Policy:
    """The policy called ``name`` (see the module docstring and :data:`POLICY_NAMES`), its random draws taken from
    ``generator``; ``sample_rate`` is needed by the pitch-shifting policies."""
    if name not in _POLICIES:
        raise ValueError(f"unknown augmentation policy {name!r}; expected one of {POLICY_NAMES}")
    waveform, spectrogram = _POLICIES[name](generator, sample_rate)
    return Policy(name, waveform, spectrogram)


def scale_time(policy: Policy, factor: float) -> Policy:
    """``policy`` with the time widths of its SpecAugment stripes multiplied by ``factor`` (rounded, at least 2: a
    stripe of up to one frame), so that on a crop ``factor`` times as long as the clips a policy was written for,
    its stripes mask the same share of time; the other operations are the policy's own (shared, not copied).
    ``factor`` 1 returns ``policy`` itself."""
    if factor <= 0:
        raise ValueError(f"scale_time: factor must be > 0, got {factor}")
    if factor == 1:
        return policy
    spectrogram = [SpecAugment(max(2, round(op.time_drop_width * factor)), op.time_stripes_num, op.freq_drop_width,
                               op.freq_stripes_num, generator=op.generator) if isinstance(op, SpecAugment) else op
                   for op in policy.spectrogram]
    return Policy(policy.name, list(policy.waveform), spectrogram)
