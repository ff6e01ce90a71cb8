"""Scene mixing: placing a class's events in time, mixing layers over a background at a signal-to-noise ratio, and
passing the mix through a recording channel (equalisation, room reverberation, level, silence padding).

A :class:`Scene` is a complete, picklable description of one recording (every random choice that matters is drawn
by the planner in :mod:`.worlds`; the rest comes from ``Scene.seed``), so :func:`render` is a pure function of it:
the same scene renders to the same samples in any process, in any order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft

from esclib.data.synth.classes import CATALOGUE
from esclib.data.synth.events import GENERATORS, shaped_noise


@dataclass(frozen=True)
class Layer:
    """Events of class ``cls`` (a :data:`.classes.CATALOGUE` name) from one source (``source`` parameters), at
    ``level_db`` relative to the scene's loudest layer, placed within ``span`` = (start, end) seconds (whole scene
    when None)."""

    cls: str
    source: dict[str, float]
    level_db: float = 0.0
    span: tuple[float, float] | None = None


@dataclass(frozen=True)
class Channel:
    """A recording channel: equaliser bumps ``(centre Hz, gain dB, width octaves)``, a tilt in dB/octave about
    1 kHz, a high-pass corner (Hz), and a room (exponential-decay reverberation of ``rt60`` s mixed at ``wet``)."""

    eq: tuple[tuple[float, float, float], ...] = ()
    tilt_db: float = 0.0
    highpass: float = 20.0
    rt60: float = 0.0
    wet: float = 0.0


@dataclass(frozen=True)
class Scene:
    """One recording: ``layers`` over a coloured-noise background (spectral tilt ``background_tilt`` dB/octave) at
    ``snr_db`` (active foreground level over background RMS), through ``channel``, peak-normalised to ``peak_db``
    dBFS, silent after ``pad_after`` seconds when set, with ``channels`` (1 or 2) channels."""

    sr: int
    seconds: float
    layers: tuple[Layer, ...]
    snr_db: float
    background_tilt: float
    channel: Channel
    peak_db: float
    seed: int
    pad_after: float | None = None
    channels: int = 1

    @property
    def n_samples(self) -> int:
        """Length of the rendered scene in samples."""
        return int(round(self.seconds * self.sr))


def active_rms(x: np.ndarray, sr: int, frame_s: float = 0.02, floor_db: float = -20.0) -> float:
    """RMS over the frames whose energy is within ``floor_db`` of the loudest frame: the level of a sound while it
    sounds, so that sparse (impulsive) and continuous sounds mix at comparable loudness."""
    hop = max(int(frame_s * sr), 1)
    n = (len(x) // hop) * hop
    if n == 0:
        return float(np.sqrt(np.mean(x**2)))
    energy = np.mean(x[:n].reshape(-1, hop) ** 2, axis=1)
    active = energy[energy >= energy.max() * 10.0 ** (floor_db / 10.0)]
    return float(np.sqrt(np.mean(active)))


def _add(out: np.ndarray, event: np.ndarray, start: int) -> None:
    """Add ``event`` into ``out`` at sample ``start``, truncating what falls outside."""
    lo, hi = max(start, 0), min(start + len(event), len(out))
    if hi > lo:
        out[lo:hi] += event[lo - start : hi - start]


def render_layer(rng: np.random.Generator, sr: int, n: int, layer: Layer) -> np.ndarray:
    """The events of one layer placed in an ``n``-sample buffer following the class's :class:`.classes.Pattern`."""
    cls = CATALOGUE[layer.cls]
    generate = GENERATORS[cls.generator]
    pattern = cls.pattern
    t0, t1 = layer.span if layer.span is not None else (0.0, n / sr)
    length = t1 - t0
    out = np.zeros(n)
    if pattern.continuous:
        params = cls.draw_event(rng, layer.source)
        params["duration"] = max(pattern.coverage.draw(rng) * length, 0.05)
        start = t0 + rng.uniform(0.0, max(length - params["duration"], 0.0))
        _add(out, generate(rng, sr, **params), int(start * sr))
        return out
    for _ in range(rng.integers(pattern.bouts[0], pattern.bouts[1] + 1)):
        count = int(rng.integers(pattern.events[0], pattern.events[1] + 1))
        spacing = pattern.spacing.draw(rng) if pattern.spacing is not None else 0.0
        span = (count - 1) * spacing + float(layer.source.get("duration", 0.0))
        onset = t0 + rng.uniform(-0.1 * span, max(length - 0.9 * span, 0.0))
        for _ in range(count):
            _add(out, generate(rng, sr, **cls.draw_event(rng, layer.source)), int(onset * sr))
            onset += spacing * rng.uniform(0.93, 1.07)
    return out


def channel_response(channel: Channel, freqs: np.ndarray) -> np.ndarray:
    """Magnitude response of the channel's equaliser, tilt and high-pass at ``freqs`` (Hz)."""
    logf = np.log2(np.maximum(freqs, 1.0))
    gain_db = channel.tilt_db * (logf - np.log2(1000.0))
    for centre, gain, width in channel.eq:
        gain_db += gain * np.exp(-0.5 * ((logf - np.log2(centre)) / width) ** 2)
    highpass = 1.0 / (1.0 + np.exp(-(logf - np.log2(channel.highpass)) * 8.0))
    return 10.0 ** (gain_db / 20.0) * highpass


def apply_channel(rng: np.random.Generator, x: np.ndarray, sr: int, channel: Channel) -> np.ndarray:
    """The signal as recorded through ``channel``: equalised and reverberated in one FFT pass (reverberation tail cut
    at the end of the signal)."""
    n = len(x)
    ir_n = int(min(channel.rt60, 1.5) * sr) if channel.wet > 0 else 0
    m = sfft.next_fast_len(n + ir_n, real=True)
    response = channel_response(channel, sfft.rfftfreq(m, 1.0 / sr)).astype(np.complex64)
    if ir_n > 0:
        ir = rng.standard_normal(ir_n, dtype=np.float32) * np.exp(-6.9 * np.arange(ir_n, dtype=np.float32)
                                                                  / np.float32(channel.rt60 * sr))
        ir /= np.sqrt(np.sum(ir**2))
        response *= 1.0 + np.float32(channel.wet) * sfft.rfft(ir, m)
    return sfft.irfft(sfft.rfft(x.astype(np.float32), m) * response, m)[:n].astype(np.float64)


def render(scene: Scene) -> np.ndarray:
    """The scene's samples: float32, shape ``(n,)`` for mono or ``(n, 2)`` for stereo, peak ``peak_db`` dBFS."""
    rng = np.random.default_rng(scene.seed)
    sr, n = scene.sr, scene.n_samples
    foreground = np.zeros(n)
    for layer in scene.layers:
        x = render_layer(rng, sr, n, layer)
        level = active_rms(x, sr)
        if level > 0:
            foreground += x / level * 10.0 ** (layer.level_db / 20.0)
    fg_level = active_rms(foreground, sr) if foreground.any() else 1.0
    background = shaped_noise(rng, n, sr, 20.0, 0.45 * sr, scene.background_tilt)
    mix = foreground + background * fg_level * 10.0 ** (-scene.snr_db / 20.0)
    mix = apply_channel(rng, mix, sr, scene.channel)
    if scene.channels == 2:
        delay = int(rng.integers(0, max(int(0.0005 * sr), 1) + 1))
        other = np.roll(mix, delay) * rng.uniform(0.7, 1.0) + 0.1 * np.std(mix) * rng.standard_normal(n)
        mix = np.stack([mix, other], axis=1)
    if scene.pad_after is not None:
        cut = int(scene.pad_after * sr)
        fade = min(int(0.01 * sr), cut)
        mix[cut - fade : cut] *= np.linspace(1.0, 0.0, fade).reshape((-1,) + (1,) * (mix.ndim - 1))
        mix[cut:] = 0.0
    peak = np.max(np.abs(mix))
    return (mix / (peak if peak > 0 else 1.0) * 10.0 ** (scene.peak_db / 20.0)).astype(np.float32)


def render_example(name: str, sr: int = 22050, seconds: float = 5.0, seed: int = 0, *,
                   snr_db: float = 30.0) -> np.ndarray:
    """One recording of catalogue class ``name`` alone (a dry channel, a quiet background at ``snr_db``), float32
    at ``sr``: for listening to and plotting the classes (chapter "The data")."""
    if name not in CATALOGUE:
        raise ValueError(f"unknown sound class {name!r}; expected one of {sorted(CATALOGUE)}")
    source = CATALOGUE[name].draw_source(np.random.default_rng([seed, 1]))
    return render(Scene(sr, seconds, (Layer(name, source),), snr_db, -3.0, Channel(), -1.0, seed))
