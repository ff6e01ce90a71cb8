"""ESResNet's waveform transforms (Guzhov et al.; reference ``utils/transforms.py``, book/protocols.md, study 004), the training
augmentation of study 004's networks (NPID pre-training and fine-tuning, chapter 04; Notebook: 04_npid).

Per clip, in the reference's order: :func:`time_flip` (time reversal with probability 0.5), :func:`random_scale`
(speed change by ``1.25 ** U(-1, 1)`` with linear interpolation: the clip gets longer or shorter), then
:func:`pad_or_crop` to the training length (a random placement in the padded window -- the pads take the value of
the clip's first / last sample -- or a random excerpt, replaced by the first or last excerpt when the random one
holds less than half the clip's standard deviation). At test time only the centred pad / crop.

Unlike :mod:`esclib.augment.waveform` (batch-wise, fixed length), these act on one clip ``(samples,)`` or
``(channels, samples)`` because the speed change alters its length; :class:`ESResNetTransform` is the per-item
``transform`` of :class:`esclib.data.torchdata.WaveformDataset`. Random draws come from ``generator`` (torch's
global generator when None, which the dataset seeds per item).

:class:`RandomBandGain` is not ESResNet's: it is lemniscate's colour jitter (brightness, per colour channel) carried
over to the 3-band "RGB" spectrogram -- a random gain in dB per band -- offered for NPID pre-training, whose study
names no augmentation (book/protocols.md, study 004).
"""

from __future__ import annotations

import torch

from esclib.augment.base import BatchAugment, check_probability, uniform


def _integer(low: int, high: int, generator: torch.Generator | None, like: torch.Tensor) -> int:
    """An integer uniform in [low, high) (``numpy.random.randint``'s convention, as the reference draws)."""
    return low + int(torch.floor(uniform(1, 0.0, 1.0, generator, like) * (high - low)))


def time_flip(x: torch.Tensor, p: float = 0.5, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """The clip reversed in time with probability ``p`` (the reference's ``RandomFlip``)."""
    check_probability(p)
    return x.flip(-1) if float(uniform(1, 0.0, 1.0, generator, x)) < p else x


def random_scale(x: torch.Tensor, max_scale: float = 1.25, *, scale: float | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """The clip played ``s`` times slower, ``s = max_scale ** U(-1, 1)`` (or ``scale``): ``int(L s)`` samples
    linearly interpolated at positions ``k / s`` (the reference's ``RandomScale``)."""
    if max_scale < 1:
        raise ValueError(f"random_scale: max_scale must be >= 1, got {max_scale}")
    if scale is None:
        scale = max_scale ** float(uniform(1, -1.0, 1.0, generator, x))
    length = x.shape[-1]
    position = torch.arange(int(length * scale), device=x.device, dtype=torch.float64) / scale
    below = position.long()
    above = torch.clamp(below + 1, max=length - 1)
    frac = (position - below).to(x.dtype)
    return x[..., below] * (1 - frac) + x[..., above] * frac


def pad_or_crop(x: torch.Tensor, length: int, *, train: bool = True,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """The clip brought to ``length`` samples as the reference's ``RandomPadding`` then ``RandomCrop``.

    Shorter: padded to ``length``, the clip at a random offset in [0, length - L) (``train``) or centred, the left
    pad filled with the first sample's value and the right pad with the last one's (averaged over channels).
    Longer: a random excerpt in [0, L - length) (``train``) or the centred one; when the random excerpt's standard
    deviation is below half the clip's, the first excerpt is taken instead, and the last one if that is still
    quieter than half the clip yet louder than the random one (the reference's rule).
    """
    if length < 1:
        raise ValueError(f"pad_or_crop: length must be >= 1, got {length}")
    size = x.shape[-1]
    if size < length:
        left = _integer(0, length - size, generator, x) if train else int(round(0.5 * (length - size)))
        right = length - left - size
        fill_left = x[..., :1].mean().expand(*x.shape[:-1], left)
        fill_right = x[..., -1:].mean().expand(*x.shape[:-1], right)
        return torch.cat([fill_left, x, fill_right], dim=-1)
    if size > length:
        left = _integer(0, size - length, generator, x) if train else int(round(0.5 * (size - length)))
        half_std = x.float().std() * 0.5
        out = x[..., left:left + length]
        out_std = out.float().std()
        if out_std < half_std:
            out = x[..., :length]
        if half_std > out.float().std() > out_std:
            out = x[..., -length:]
        return out
    return x


class ESResNetTransform:
    """ESResNet's per-clip transform to ``length`` samples: flip, speed scale and random pad / crop when ``train``
    (the reference's training transforms), the centred pad / crop otherwise (its test transforms)."""

    def __init__(self, length: int, *, train: bool, flip_p: float = 0.5, max_scale: float = 1.25,
                 generator: torch.Generator | None = None) -> None:
        if length < 1:
            raise ValueError(f"ESResNetTransform: length must be >= 1 samples, got {length}")
        self.length, self.train, self.flip_p, self.max_scale = length, train, check_probability(flip_p), max_scale
        self.generator = generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.train:
            x = time_flip(x, self.flip_p, generator=self.generator)
            x = random_scale(x, self.max_scale, generator=self.generator)
        return pad_or_crop(x, self.length, train=self.train, generator=self.generator)

    def __repr__(self) -> str:
        return (f"ESResNetTransform(length={self.length}, train={self.train}, flip_p={self.flip_p}, "
                f"max_scale={self.max_scale})")


def band_gain(spec: torch.Tensor, max_db: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """A 3-band dB spectrogram batch ``(B, ..., bands, bins, frames)`` plus a gain drawn per example and band
    uniformly in [-max_db, max_db] dB (channels of one example share the draw)."""
    if max_db < 0:
        raise ValueError(f"band_gain: max_db must be >= 0, got {max_db}")
    if spec.dim() < 4:
        raise ValueError(f"band_gain: expected (B, ..., bands, bins, frames), got shape {tuple(spec.shape)}")
    bands = spec.shape[-3]
    gains = uniform((spec.shape[0], bands), -max_db, max_db, generator, spec)
    shape = (spec.shape[0],) + (1,) * (spec.dim() - 4) + (bands, 1, 1)
    return spec + gains.to(device=spec.device, dtype=spec.dtype).reshape(shape)


class RandomBandGain(BatchAugment):
    """:func:`band_gain` as a module on ``(B, [C,] 3, bins, frames)`` dB spectrograms (identity in eval mode)."""

    example_dims = 3

    def __init__(self, max_db: float, *, p: float = 1.0, generator: torch.Generator | None = None) -> None:
        super().__init__(p, generator=generator)
        self.max_db = max_db

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        return band_gain(x, self.max_db, generator=self.generator)

    def extra_repr(self) -> str:
        return f"max_db={self.max_db}, p={self.p}"
