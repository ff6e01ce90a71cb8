"""Data augmentation for audio classification, batch-wise in torch and reproducible from a ``torch.Generator``.

- :mod:`~esclib.augment.specaugment` -- :class:`SpecAugment` (PANN / torchlibrosa stripes; studies 000, 003);
- :mod:`~esclib.augment.mixup` -- PANN's pairwise :func:`mixup_lambdas` / :func:`do_mixup` and within-batch
  :func:`mixup_batch`;
- :mod:`~esclib.augment.waveform` -- noise at an exact SNR, gain, time shift, random crop, speed perturbation and
  occlusion (SSLH);
- :mod:`~esclib.augment.spectrogram` -- PatchAugment (study 001) and CutOutSpec (SSLH);
- :mod:`~esclib.augment.offline` -- librosa time stretch and pitch shift (study 001);
- :mod:`~esclib.augment.policies` -- named weak/strong policies (:func:`get_policy`).

Every module is the identity in evaluation mode and applies to each example with probability ``p`` in training.
"""

from esclib.augment.base import BatchAugment, RandomChoice
from esclib.augment.mixup import do_mixup, mixup_batch, mixup_lambdas
from esclib.augment.offline import PitchShift, TimeStretch, pitch_shift, time_stretch
from esclib.augment.policies import POLICY_NAMES, Policy, get_policy
from esclib.augment.specaugment import SpecAugment
from esclib.augment.spectrogram import CutOutSpec, PatchAugment, cutout_spec, patch_augment
from esclib.augment.waveform import (AddNoise, Gain, Occlusion, RandomCrop, SpeedPerturbation, TimeShift, add_noise,
                                     gain, occlusion, random_crop, speed_perturb, time_shift)

__all__ = [
    "AddNoise", "BatchAugment", "CutOutSpec", "Gain", "Occlusion", "POLICY_NAMES", "PatchAugment", "PitchShift",
    "Policy", "RandomChoice", "RandomCrop", "SpecAugment", "SpeedPerturbation", "TimeShift", "TimeStretch",
    "add_noise", "cutout_spec", "do_mixup", "gain", "get_policy", "mixup_batch", "mixup_lambdas", "occlusion",
    "patch_augment", "pitch_shift", "random_crop", "speed_perturb", "time_shift", "time_stretch",
]
