"""Two-view policies for self-supervised pre-training: how the two views of a clip are made (chapter 5, study 001).

A :class:`ViewPolicy` says, for each of the two views, which waveform operations run on one clip in the dataset
(CPU, per example: librosa's time stretch and pitch shift, noise at an SNR; seeded per clip, view and epoch by
:class:`esclib.data.torchdata.TwoViewDataset`) and which spectrogram operations run batch-wise on the device after
the log-mel frontend and the standardisation (SpecAugment, PatchAugment, BYOL-A's mixup and random resize crop).
Each view draws its own random numbers, so the two views of a clip differ whenever the policy is random.

Named policies (:func:`get_view_policy`, :data:`VIEW_POLICIES`):

- ``byola`` -- the audio-SSL standard, BYOL-A (Niizumi et al. 2021; nttcslab/byol-a): mixup with a random past
  input from a FIFO memory of 2,048 inputs (weight U(0, 0.4), log-mixup-exp), then a random resize crop (virtual
  canvas 1.5x the time axis, crop 0.6-1.5x each axis, bicubic), on the backbone's input as BYOL-A does;
- ``quaclrs_<augmentation>`` -- study 001's augmentations, one per policy, drawn independently for each view
  (:func:`esclib.augment.policies.get_policy`): ``quaclrs_time_stretch`` (x0.8 or x1.2), ``quaclrs_pitch_shift``
  (-2 or +2 semitones), ``quaclrs_spec_augment`` (2 time and 2 frequency masks < 20), ``quaclrs_patch_augment``
  (5 patches 10 x 10), ``quaclrs_noise`` (5 or 15 dB SNR), ``quaclrs_original`` (no augmentation: the two views
  are equal, the degenerate baseline of the study's ablation).

The views of a clip are made from that clip alone (and, for BYOL-A's mixup, from inputs of earlier training batches,
which come from the same training folds): no view crosses a fold.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from esclib.augment.base import BatchAugment, per_example, uniform
from esclib.augment.policies import get_policy


class MixupMemory(BatchAugment):
    """BYOL-A's mixup with past inputs: each example ``x`` becomes ``log((1 - a) exp(x) + a exp(z))`` (or the linear
    ``(1 - a) x + a z`` with ``log_mixup_exp=False``), ``a ~ U(0, ratio)`` and ``z`` a random entry of a FIFO memory
    of the last ``size`` inputs (before mixing; a ring buffer). The memory starts empty (no mixing until it has
    entries), learns only in training mode and is not saved with a checkpoint. Input: standardised log-mel ``(B, ..., frames, bins)``.
    """

    example_dims = 2

    def __init__(self, ratio: float = 0.4, size: int = 2048, log_mixup_exp: bool = True, *, p: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(p, generator=generator)
        if not 0.0 <= ratio <= 1.0 or size < 1:
            raise ValueError(f"MixupMemory: ratio must be in [0, 1] and size >= 1, got ratio={ratio}, size={size}")
        self.ratio, self.size, self.log_mixup_exp = ratio, size, log_mixup_exp
        self.register_buffer("memory", torch.empty(0), persistent=False)
        self.next, self.stored = 0, 0

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        if self.memory.shape[1:] != x.shape[1:] or self.memory.device != x.device:
            self.memory = x.new_empty((self.size,) + tuple(x.shape[1:]))
            self.stored = 0
        mixed = x
        if self.stored:
            alpha = per_example(uniform(len(x), 0.0, self.ratio, self.generator, x), x)
            pick = torch.floor(uniform(len(x), 0.0, self.stored, self.generator, x)).long()
            z = self.memory[(self.next - 1 - pick) % self.size]
            if self.log_mixup_exp:
                mixed = torch.log((1 - alpha) * x.exp() + alpha * z.exp() + torch.finfo(x.dtype).eps)
            else:
                mixed = (1 - alpha) * x + alpha * z
        incoming = x.detach()[-self.size:]
        slots = (self.next + torch.arange(len(incoming), device=x.device)) % self.size
        self.memory[slots] = incoming
        self.next, self.stored = (self.next + len(incoming)) % self.size, min(self.stored + len(incoming), self.size)
        return mixed

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}, size={self.size}, log_mixup_exp={self.log_mixup_exp}, p={self.p}"


def random_resize_crop(x: torch.Tensor, virtual_scale: tuple[float, float] = (1.5, 1.0),
                       time_scale: tuple[float, float] = (0.6, 1.5), freq_scale: tuple[float, float] = (0.6, 1.5),
                       mode: str = "bicubic", *, generator: torch.Generator | None = None) -> torch.Tensor:
    """BYOL-A's random resize crop of ``x`` (B, ..., frames, bins): each example sits centred on a zero canvas
    ``virtual_scale`` (time, frequency) times its size; a box of ``int(U(time_scale) frames)`` x
    ``int(U(freq_scale) bins)`` (at most the canvas) at a uniform position of the canvas is resized back to
    (frames, bins) with ``mode`` interpolation (align_corners=True). Zero is the mean of a standardised input."""
    if x.dim() < 3:
        raise ValueError(f"random_resize_crop: expected (B, ..., frames, bins), got shape {tuple(x.shape)}")
    frames, bins = x.shape[-2:]
    batch = x.shape[0]
    canvas_t, canvas_f = int(frames * virtual_scale[0]), int(bins * virtual_scale[1])
    h = torch.clamp(torch.floor(uniform(batch, *time_scale, generator, x) * frames), 1, canvas_t)
    w = torch.clamp(torch.floor(uniform(batch, *freq_scale, generator, x) * bins), 1, canvas_f)
    i = torch.floor(uniform(batch, 0.0, 1.0, generator, x) * (canvas_t - h + 1))
    j = torch.floor(uniform(batch, 0.0, 1.0, generator, x) * (canvas_f - w + 1))
    top, left = i - (canvas_t - frames) // 2, j - (canvas_f - bins) // 2
    rows = top[:, None] + torch.arange(frames, device=x.device, dtype=torch.float64) * (h[:, None] - 1) / max(
        frames - 1, 1)
    cols = left[:, None] + torch.arange(bins, device=x.device, dtype=torch.float64) * (w[:, None] - 1) / max(
        bins - 1, 1)
    grid = torch.stack([(2 * cols / max(bins - 1, 1) - 1)[:, None, :].expand(batch, frames, bins),
                        (2 * rows / max(frames - 1, 1) - 1)[:, :, None].expand(batch, frames, bins)], dim=-1)
    flat = x.reshape(batch, -1, frames, bins)
    out = F.grid_sample(flat, grid.to(flat.dtype), mode=mode, padding_mode="zeros", align_corners=True)
    return out.reshape(x.shape)


class RandomResizeCrop(BatchAugment):
    """:func:`random_resize_crop` as a module (BYOL-A: virtual canvas 1.5x in time, scales 0.6-1.5, bicubic)."""

    example_dims = 2

    def __init__(self, virtual_scale: tuple[float, float] = (1.5, 1.0), time_scale: tuple[float, float] = (0.6, 1.5),
                 freq_scale: tuple[float, float] = (0.6, 1.5), mode: str = "bicubic", *, p: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(p, generator=generator)
        if min(virtual_scale) < 1.0:
            raise ValueError(f"RandomResizeCrop: virtual_scale must be >= 1 on both axes, got {virtual_scale}")
        self.virtual_scale, self.time_scale, self.freq_scale, self.mode = virtual_scale, time_scale, freq_scale, mode

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        return random_resize_crop(x, self.virtual_scale, self.time_scale, self.freq_scale, self.mode,
                                  generator=self.generator)

    def extra_repr(self) -> str:
        return (f"virtual_scale={self.virtual_scale}, time_scale={self.time_scale}, freq_scale={self.freq_scale}, "
                f"mode={self.mode!r}, p={self.p}")


class ViewPolicy(nn.Module):
    """The two views' operations: ``waveform[v]`` (per clip in the dataset, or None) and ``spectrogram[v]``
    (batch-wise on the device) for view ``v`` in (0, 1). ``policy(spec, v)`` applies view ``v``'s spectrogram part;
    :meth:`set_generator` points every random draw of the spectrogram part at one generator. ``resolution`` says
    where the spectrogram part runs: ``"native"`` (the frontend's frames x bins, before the resize to the
    backbone's input: the study's masks and patches are sized in spectrogram bins) or ``"input"`` (after the
    resize, as BYOL-A augments its network input)."""

    def __init__(self, name: str, waveform: tuple[nn.Module | None, nn.Module | None],
                 spectrogram: tuple[nn.Module, nn.Module], resolution: str = "native") -> None:
        super().__init__()
        if resolution not in ("native", "input"):
            raise ValueError(f"ViewPolicy: resolution must be 'native' or 'input', got {resolution!r}")
        self.name, self.resolution = name, resolution
        self.waveform = tuple(waveform)
        self.spectrogram = nn.ModuleList(spectrogram)

    @property
    def needs_waveforms(self) -> bool:
        """True when a view has waveform operations (the loader must yield waveforms, not cached spectrograms)."""
        return any(w is not None for w in self.waveform)

    def set_generator(self, generator: torch.Generator | None) -> None:
        """Draw the spectrogram operations' random numbers from ``generator``."""
        for module in self.spectrogram.modules():
            if isinstance(module, BatchAugment):
                module.generator = generator

    def forward(self, spec: torch.Tensor, view: int) -> torch.Tensor:
        """View ``view``'s spectrogram operations on a batch ``(B, C, frames, bins)``."""
        return self.spectrogram[view](spec)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, resolution={self.resolution!r}, needs_waveforms={self.needs_waveforms}"


def _byola(sample_rate: int | None) -> ViewPolicy:
    shared = nn.Sequential(MixupMemory(), RandomResizeCrop())
    return ViewPolicy("byola", (None, None), (shared, shared), resolution="input")


def _quaclrs(augmentation: str) -> Callable[[int | None], ViewPolicy]:
    def make(sample_rate: int | None) -> ViewPolicy:
        views = [get_policy(f"quaclrs_{augmentation}", sample_rate=sample_rate) for _ in range(2)]
        waveform = tuple(v.waveform if len(v.waveform) else None for v in views)
        return ViewPolicy(f"quaclrs_{augmentation}", waveform, tuple(v.spectrogram for v in views))
    return make


_VIEW_POLICIES: dict[str, Callable[[int | None], ViewPolicy]] = {
    "byola": _byola,
    **{f"quaclrs_{a}": _quaclrs(a) for a in ("original", "time_stretch", "pitch_shift", "spec_augment",
                                              "patch_augment", "noise")},
}

#: every two-view policy :func:`get_view_policy` knows
VIEW_POLICIES: tuple[str, ...] = tuple(_VIEW_POLICIES)


def get_view_policy(name: str, *, sample_rate: int | None = None) -> ViewPolicy:
    """The two-view policy ``name`` (see the module docstring); ``sample_rate`` is needed by pitch shifting.
    Notebook: 05_ssl."""
    if name not in _VIEW_POLICIES:
        raise ValueError(f"unknown view policy {name!r}; expected one of {VIEW_POLICIES}")
    return _VIEW_POLICIES[name](sample_rate)
