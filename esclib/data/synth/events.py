"""Parametric sound-event generators: each function renders one sound from a physical-ish model and its parameters.

Four models cover the synthetic worlds (chapter "The data", section "A synthetic sound world"):

- :func:`harmonic` -- a voiced call: a harmonic stack on a pitch contour (glide, arch, LFO for sirens, vibrato),
  with spectral roll-off, a formant and breath noise (barks, calls, sirens, horns, birds, insects);
- :func:`modal` -- an impact: exponentially decaying resonant modes excited by a short noise burst (knocks, ticks,
  bells, drops, glass);
- :func:`noise` -- a band of noise with amplitude modulation, gusts and an optional engine hum (engines, rotors,
  tools, wind, waves, breathing);
- :func:`crackle` -- a Poisson train of clicks over a noise bed (rain, fire, frying, fireworks).

Every generator takes ``(rng, sr, duration, **params)``, returns a float64 mono array of ``round(duration * sr)``
samples with unit peak, and keeps its content below the Nyquist frequency of ``sr``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import fft as sfft

Generator = Callable[..., np.ndarray]


def _samples(sr: int, duration: float) -> int:
    n = int(round(duration * sr))
    if n < 1:
        raise ValueError(f"event duration {duration!r} s at {sr} Hz gives no samples; expected a positive duration")
    return n


def _unit_peak(x: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(x))
    return x / peak if peak > 0 else x


def band_gain(freqs: np.ndarray, lo: float, hi: float, tilt_db_per_oct: float = 0.0,
              edge_oct: float = 0.35) -> np.ndarray:
    """Amplitude response of a smooth band-pass: logistic skirts ``edge_oct`` octaves wide at ``lo`` and ``hi`` (Hz),
    times a spectral tilt in dB per octave relative to the band centre."""
    logf = np.log2(np.maximum(freqs, 1.0))
    lo_l, hi_l = np.log2(max(lo, 1.0)), np.log2(max(hi, lo * 1.01, 1.0))
    skirts = 1.0 / (1.0 + np.exp(-(logf - lo_l) / (edge_oct / 4))) / (1.0 + np.exp((logf - hi_l) / (edge_oct / 4)))
    tilt = 10.0 ** (tilt_db_per_oct * (logf - (lo_l + hi_l) / 2) / 20.0)
    return skirts * tilt


def shaped_noise(rng: np.random.Generator, n: int, sr: int, lo: float, hi: float, tilt: float = 0.0) -> np.ndarray:
    """White Gaussian noise filtered to the band [lo, hi] Hz (see :func:`band_gain`), unit RMS (float32 FFTs)."""
    m = sfft.next_fast_len(n, real=True)
    spectrum = sfft.rfft(rng.standard_normal(m, dtype=np.float32))
    spectrum *= band_gain(sfft.rfftfreq(m, 1.0 / sr), lo, min(hi, 0.45 * sr), tilt).astype(np.float32)
    x = sfft.irfft(spectrum, m)[:n].astype(np.float64)
    rms = np.sqrt(np.mean(x**2))
    return x / rms if rms > 0 else x


def envelope(n: int, sr: int, attack: float, release: float) -> np.ndarray:
    """Attack-sustain-release envelope: a raised-cosine rise over ``attack`` s and an exponential release whose last
    ``release`` seconds fall by 60 dB."""
    env = np.ones(n)
    rise = min(n, max(int(attack * sr), 1))
    env[:rise] = 0.5 - 0.5 * np.cos(np.pi * np.arange(rise) / rise)
    fall = min(n, int(release * sr))
    if fall > 0:
        env[n - fall :] *= np.exp(-6.9 * np.arange(fall) / max(release * sr, 1.0))
    return env


def slow_wander(rng: np.random.Generator, n: int, sr: int, rate: float) -> np.ndarray:
    """A smooth random curve with zero mean and unit standard deviation, wandering at about ``rate`` Hz."""
    knots = max(int(np.ceil(n / sr * max(rate, 0.05))) + 2, 3)
    values = rng.standard_normal(knots)
    return np.interp(np.linspace(0, knots - 1, n), np.arange(knots), values)


def _harmonic_sum(phase: np.ndarray, f_inst: np.ndarray, amps: np.ndarray, sr: int) -> np.ndarray:
    """Sum of ``amps[k] * sin((k+1) * phase)``, each partial silenced where it would exceed 0.45 sr; the partials
    come from the recurrence sin(k p) = 2 cos(p) sin((k-1) p) - sin((k-2) p)."""
    out = np.zeros_like(phase)
    previous, current, twice_cos = np.zeros_like(phase), np.sin(phase), 2.0 * np.cos(phase)
    for k, a in enumerate(amps, start=1):
        limit = 0.45 * sr / k
        if f_inst.min() >= limit:
            break
        if a:
            out += a * (current if f_inst.max() < limit else current * (f_inst < limit))
        previous, current = current, twice_cos * current - previous
    return out


def harmonic(
    rng: np.random.Generator,
    sr: int,
    duration: float,
    f0: float,
    glide_oct: float = 0.0,
    arch_oct: float = 0.0,
    lfo_rate: float = 0.0,
    lfo_depth_oct: float = 0.0,
    lfo_saw: float = 0.0,
    n_harmonics: int = 8,
    rolloff: float = 1.0,
    formant_hz: float = 1000.0,
    formant_gain: float = 0.0,
    noise_mix: float = 0.0,
    attack: float = 0.01,
    release: float = 0.05,
    tremolo_rate: float = 0.0,
    tremolo_depth: float = 0.0,
) -> np.ndarray:
    """A voiced sound: harmonics ``k = 1..n_harmonics`` of a fundamental following the contour
    ``log2 f(t) = log2 f0 + glide_oct * u + arch_oct * sin(pi u) + lfo_depth_oct * lfo(t)`` (``u`` = t / duration;
    the LFO is a sine blended with a rising saw by ``lfo_saw``), with amplitudes ``k**-rolloff`` boosted by
    ``formant_gain`` around ``formant_hz``, breath noise (``noise_mix``) around the formant, and tremolo."""
    n = _samples(sr, duration)
    t = np.arange(n) / sr
    u = t / max(duration, 1e-9)
    lfo_phase = 2 * np.pi * lfo_rate * t + rng.uniform(0, 2 * np.pi)
    saw = 2.0 * ((lfo_phase / (2 * np.pi)) % 1.0) - 1.0
    lfo = (1.0 - lfo_saw) * np.sin(lfo_phase) + lfo_saw * saw
    f_inst = f0 * 2.0 ** (glide_oct * u + arch_oct * np.sin(np.pi * u) + lfo_depth_oct * lfo)
    phase = 2 * np.pi * np.cumsum(f_inst) / sr + rng.uniform(0, 2 * np.pi)
    k = np.arange(1, int(n_harmonics) + 1)
    distance_oct = np.log2(k * f0 / formant_hz)
    amps = k**-rolloff * (1.0 + formant_gain * np.exp(-0.5 * (distance_oct / 0.4) ** 2))
    voiced = _unit_peak(_harmonic_sum(phase, f_inst, amps, sr))
    if noise_mix > 0:
        breath = shaped_noise(rng, n, sr, formant_hz / 1.6, formant_hz * 1.6)
        voiced = (1.0 - noise_mix) * voiced + noise_mix * 0.35 * breath
    if tremolo_depth > 0:
        voiced *= 1.0 - tremolo_depth * (0.5 + 0.5 * np.sin(2 * np.pi * tremolo_rate * t))
    return _unit_peak(voiced * envelope(n, sr, attack, release))


def modal(
    rng: np.random.Generator,
    sr: int,
    duration: float,
    freq: float,
    n_modes: int = 4,
    inharmonicity: float = 0.3,
    decay: float = 0.1,
    decay_tilt: float = 1.0,
    glide_oct: float = 0.0,
    burst_level: float = 0.3,
    burst_lo: float = 500.0,
    burst_hi: float = 8000.0,
    burst_ms: float = 5.0,
) -> np.ndarray:
    """An impact: ``n_modes`` exponentially decaying partials at ``freq * r_k`` (``r_k = k`` perturbed by
    ``inharmonicity``), mode k decaying in ``decay * k**-decay_tilt`` s (time constant), an optional pitch glide
    (``glide_oct`` octaves over the event, as a water drop), plus a noise burst of ``burst_ms`` in [burst_lo,
    burst_hi] Hz."""
    n = _samples(sr, duration)
    t = np.arange(n) / sr
    k = np.arange(1, int(n_modes) + 1)
    ratios = k * (1.0 + inharmonicity * rng.uniform(-0.5, 0.5, size=k.size) * (k > 1))
    glide = 2.0 ** (glide_oct * np.minimum(t / max(decay * 3, 1e-3), 1.0))
    out = np.zeros(n)
    for ratio, kk in zip(ratios, k):
        f = freq * ratio * glide
        if f[0] >= 0.45 * sr:
            continue
        phase = 2 * np.pi * np.cumsum(f) / sr + rng.uniform(0, 2 * np.pi)
        out += kk**-0.5 * np.exp(-t / (decay * kk**-decay_tilt)) * np.sin(phase)
    if burst_level > 0:
        m = min(n, max(int(burst_ms * 1e-3 * sr * 5), 8))
        burst = shaped_noise(rng, m, sr, burst_lo, burst_hi) * np.exp(-np.arange(m) / (burst_ms * 1e-3 * sr))
        out[:m] += burst_level * burst * (np.max(np.abs(out)) or 1.0)
    fade = envelope(n, sr, 0.0005, min(0.01, duration / 4))
    return _unit_peak(out * fade)


def noise(
    rng: np.random.Generator,
    sr: int,
    duration: float,
    lo: float,
    hi: float,
    tilt: float = 0.0,
    am_rate: float = 0.0,
    am_depth: float = 0.0,
    am_sharpness: float = 1.0,
    hum_f0: float = 0.0,
    hum_harmonics: int = 6,
    hum_level: float = 0.0,
    hum_drift: float = 0.0,
    gust_rate: float = 0.0,
    gust_depth: float = 0.0,
    attack: float = 0.05,
    release: float = 0.1,
) -> np.ndarray:
    """A noise band [lo, hi] Hz with spectral ``tilt`` (dB/octave), pulsed at ``am_rate`` Hz (depth ``am_depth``;
    ``am_sharpness`` > 1 narrows the pulses as a rotor or a jackhammer), slow gusts (``gust_rate``, ``gust_depth``),
    and an engine hum: harmonics of ``hum_f0`` drifting by ``hum_drift`` (relative), mixed at ``hum_level``."""
    n = _samples(sr, duration)
    t = np.arange(n) / sr
    x = shaped_noise(rng, n, sr, lo, hi, tilt)
    if hum_level > 0 and hum_f0 > 0:
        f_inst = hum_f0 * (1.0 + hum_drift * slow_wander(rng, n, sr, 0.5))
        phase = 2 * np.pi * np.cumsum(f_inst) / sr
        hum = _harmonic_sum(phase, f_inst, np.arange(1, int(hum_harmonics) + 1) ** -0.7, sr)
        hum /= np.sqrt(np.mean(hum**2)) or 1.0
        x = (1.0 - hum_level) * x + hum_level * hum
    if am_depth > 0:
        pulse = (0.5 + 0.5 * np.sin(2 * np.pi * am_rate * t + rng.uniform(0, 2 * np.pi))) ** am_sharpness
        x *= 1.0 - am_depth + am_depth * pulse
    if gust_depth > 0:
        x *= np.exp(gust_depth * slow_wander(rng, n, sr, gust_rate))
    return _unit_peak(x * envelope(n, sr, attack, release))


def crackle(
    rng: np.random.Generator,
    sr: int,
    duration: float,
    rate: float,
    lo: float = 500.0,
    hi: float = 10000.0,
    click_ms: float = 2.0,
    amp_sigma: float = 0.8,
    bed_level: float = 0.0,
    bed_lo: float = 200.0,
    bed_hi: float = 6000.0,
    attack: float = 0.05,
    release: float = 0.1,
) -> np.ndarray:
    """A Poisson train of clicks (``rate`` per second, log-normal amplitudes of spread ``amp_sigma``, each a decaying
    noise grain of ``click_ms``) band-limited to [lo, hi] Hz, over a noise bed [bed_lo, bed_hi] at ``bed_level``."""
    n = _samples(sr, duration)
    count = rng.poisson(rate * duration)
    train = np.zeros(n)
    positions = rng.integers(0, n, size=count)
    np.add.at(train, positions, rng.lognormal(0.0, amp_sigma, size=count) * rng.choice([-1.0, 1.0], size=count))
    grain_n = max(int(click_ms * 1e-3 * sr * 5), 4)
    grain = rng.standard_normal(grain_n) * np.exp(-np.arange(grain_n) / (click_ms * 1e-3 * sr))
    m = sfft.next_fast_len(n + grain_n, real=True)
    spectrum = sfft.rfft(train, m) * sfft.rfft(grain, m) * band_gain(sfft.rfftfreq(m, 1.0 / sr), lo, min(hi, 0.45 * sr))
    x = _unit_peak(sfft.irfft(spectrum, m)[:n])
    if bed_level > 0:
        x = x + bed_level * 0.3 * shaped_noise(rng, n, sr, bed_lo, bed_hi)
    return _unit_peak(x * envelope(n, sr, attack, release))


#: the generators by name, as the class definitions refer to them
GENERATORS: dict[str, Generator] = {"harmonic": harmonic, "modal": modal, "noise": noise, "crackle": crackle}
