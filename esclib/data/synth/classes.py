"""Sound classes of the synthetic worlds: a class is an event model (:mod:`.events`) with parameter ranges, a temporal
pattern and its two labels in the mini-AudioSet's ontology (:mod:`.ontology`): the sound type (``label``, AudioSet's
leaf, e.g. "Dog") and its parent category (``family``, e.g. "Domestic animals").

A clip of a class is made in three draws: a *source* draws one value per parameter range (one dog, one engine, one
room: ESC-50 takes of one ``src_file`` share it); each *event* of the clip jitters the source's values by a few
per cent (log-normal, ``jitter``); the *pattern* places events (bouts of barks, ticks at a regular spacing) or fills
the clip with one continuous event. Ranges overlap between deliberately confusable classes (rain / crackling fire /
frying, helicopter / engine / airplane, chainsaw / drilling / vacuum cleaner, crying baby / cat / children playing,
clock tick / mouse click / keyboard typing, ...).

Catalogues: :data:`ESC50` (50 classes named and ordered as ESC-50's ``target`` 0..49), :data:`ESC10` (the 10 names
ESC-50 marks ``esc10``), :data:`US8K` (UrbanSound8K's 10 classes in ``classID`` order), :data:`EXTRA` (families that
only the unlabelled pool and the mini-AudioSet contain), :data:`SOUND_TYPES` and :data:`FAMILIES` (the mini-AudioSet
label set).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class Range:
    """A parameter range drawn uniformly (in log space when ``log``); ``widen`` scales its width about the centre."""

    lo: float
    hi: float
    log: bool = False

    def draw(self, rng: np.random.Generator, widen: float = 1.0) -> float:
        """One value; a widened linear range within [0, 1] stays a fraction, one with ``lo >= 0`` stays >= 0."""
        if self.log:
            centre, half = (np.log(self.lo) + np.log(self.hi)) / 2, (np.log(self.hi) - np.log(self.lo)) / 2 * widen
            return float(np.exp(rng.uniform(centre - half, centre + half)))
        centre, half = (self.lo + self.hi) / 2, (self.hi - self.lo) / 2 * widen
        value = rng.uniform(centre - half, centre + half)
        if 0.0 <= self.lo and self.hi <= 1.0:
            return float(np.clip(value, 0.0, 1.0))
        return float(max(value, 0.0)) if self.lo >= 0 else float(value)


def L(lo: float, hi: float) -> Range:
    """A log-uniform range (frequencies, rates, durations spanning octaves)."""
    return Range(lo, hi, log=True)


def R(lo: float, hi: float) -> Range:
    """A uniform range."""
    return Range(lo, hi)


@dataclass(frozen=True)
class Pattern:
    """How a class's events sit in a clip: ``bouts`` groups of ``events`` onsets ``spacing`` seconds apart, or one
    ``continuous`` event covering a ``coverage`` fraction of the clip."""

    events: tuple[int, int] = (1, 1)
    bouts: tuple[int, int] = (1, 1)
    spacing: Range | None = None
    continuous: bool = False
    coverage: Range = R(0.6, 1.0)


CONTINUOUS = Pattern(continuous=True)


@dataclass(frozen=True)
class SoundClass:
    """A class of the synthetic world: an event ``generator`` (a key of :data:`.events.GENERATORS`), its parameter
    ranges (``Range`` or fixed numbers; ``duration`` in seconds unless the pattern is continuous), the temporal
    ``pattern``, the per-event ``jitter`` (log-normal sigma, per parameter overrides in ``jitter_by``), and the
    mini-AudioSet's parent category ``family`` and sound-type ``label`` (one label per event model: ESC-50's
    ``dog`` and UrbanSound8K's ``dog_bark`` share "Dog")."""

    name: str
    generator: str
    params: Mapping[str, Range | float]
    pattern: Pattern
    family: str
    label: str
    jitter: float = 0.05
    jitter_by: Mapping[str, float] = field(default_factory=dict)

    def draw_source(self, rng: np.random.Generator, widen: float = 1.0) -> dict[str, float]:
        """The parameter values of one source (one animal, one machine) of this class."""
        return {k: v.draw(rng, widen) if isinstance(v, Range) else v for k, v in self.params.items()}

    def draw_event(self, rng: np.random.Generator, source: Mapping[str, float]) -> dict[str, float]:
        """One event's parameters: the source's, each drawn range jittered multiplicatively."""
        out = dict(source)
        for k, v in self.params.items():
            if isinstance(v, Range):
                out[k] = source[k] * float(np.exp(rng.normal(0.0, self.jitter_by.get(k, self.jitter))))
        return out


def _rename(cls: SoundClass, name: str, **changes: object) -> SoundClass:
    return replace(cls, name=name, **changes)


# --- animals -----------------------------------------------------------------------------------------------------
_BARK = dict(n_harmonics=12, rolloff=R(0.6, 1.2), formant_hz=L(800, 2200), formant_gain=R(1, 4), attack=R(0.005, 0.02))
DOG = SoundClass("dog", "harmonic", dict(_BARK, f0=L(330, 900), glide_oct=R(-0.4, 0.1), arch_oct=R(0.0, 0.4),
                 noise_mix=R(0.2, 0.55), release=R(0.05, 0.15), duration=R(0.12, 0.35)),
                 Pattern(events=(1, 4), bouts=(1, 3), spacing=R(0.25, 0.6)), "Domestic animals", "Dog")
ROOSTER = SoundClass("rooster", "harmonic", dict(f0=L(420, 900), glide_oct=R(-0.8, -0.2), arch_oct=R(0.3, 0.8),
                     n_harmonics=10, rolloff=R(0.8, 1.4), formant_hz=L(1200, 2500), formant_gain=2.0,
                     noise_mix=R(0.1, 0.35), attack=0.03, release=R(0.1, 0.3), duration=R(0.8, 1.8)),
                     Pattern(bouts=(1, 2)), "Farm animals", "Rooster")
PIG = SoundClass("pig", "harmonic", dict(f0=L(90, 220), n_harmonics=20, rolloff=R(0.5, 1.0), formant_hz=L(400, 900),
                 formant_gain=2.0, noise_mix=R(0.4, 0.7), attack=0.02, release=0.08, duration=R(0.15, 0.4)),
                 Pattern(events=(2, 5), spacing=R(0.3, 0.6), bouts=(1, 2)), "Farm animals", "Pig")
COW = SoundClass("cow", "harmonic", dict(f0=L(85, 180), arch_oct=R(0.1, 0.4), n_harmonics=16, rolloff=R(0.9, 1.5),
                 formant_hz=L(400, 900), formant_gain=R(1, 3), noise_mix=R(0.05, 0.2), attack=0.1, release=0.3,
                 duration=R(1.0, 2.5)), Pattern(bouts=(1, 2)), "Farm animals", "Cow")
FROG = SoundClass("frog", "harmonic", dict(f0=L(200, 700), n_harmonics=8, rolloff=1.0, tremolo_rate=L(15, 40),
                  tremolo_depth=R(0.6, 1.0), attack=0.01, release=0.05, duration=R(0.15, 0.5)),
                  Pattern(events=(2, 6), spacing=R(0.3, 0.8), bouts=(1, 2)), "Wild animals", "Frog")
CAT = SoundClass("cat", "harmonic", dict(f0=L(380, 900), arch_oct=R(0.3, 0.8), glide_oct=R(-0.6, 0.2), n_harmonics=10,
                 rolloff=R(0.8, 1.3), formant_hz=L(1000, 2500), formant_gain=2.0, noise_mix=R(0.05, 0.2),
                 attack=0.05, release=0.15, duration=R(0.5, 1.2)),
                 Pattern(events=(1, 2), spacing=R(0.8, 1.5)), "Domestic animals", "Cat")
HEN = SoundClass("hen", "harmonic", dict(f0=L(300, 650), glide_oct=R(-0.5, 0.0), n_harmonics=10, rolloff=1.0,
                 noise_mix=R(0.2, 0.4), attack=0.005, release=0.04, duration=R(0.08, 0.2)),
                 Pattern(events=(3, 8), spacing=R(0.12, 0.3), bouts=(1, 2)), "Farm animals", "Hen")
INSECTS = SoundClass("insects", "harmonic", dict(f0=L(150, 600), n_harmonics=20, rolloff=R(0.5, 0.9),
                     lfo_rate=L(0.3, 1.5), lfo_depth_oct=R(0.05, 0.2), attack=0.3, release=0.3),
                     CONTINUOUS, "Wild animals", "Insect")
SHEEP = SoundClass("sheep", "harmonic", dict(f0=L(250, 500), n_harmonics=12, rolloff=1.0, formant_hz=L(900, 2000),
                   formant_gain=2.0, tremolo_rate=R(6, 12), tremolo_depth=R(0.4, 0.8), noise_mix=0.15, attack=0.05,
                   release=0.15, duration=R(0.6, 1.2)), Pattern(events=(1, 2), spacing=R(1.0, 2.0)), "Farm animals",
                   "Sheep")
CROW = SoundClass("crow", "harmonic", dict(f0=L(400, 900), glide_oct=R(-0.4, 0.0), n_harmonics=14,
                  rolloff=R(0.4, 0.8), noise_mix=R(0.5, 0.8), attack=0.01, release=0.06, duration=R(0.2, 0.45)),
                  Pattern(events=(2, 4), spacing=R(0.4, 0.8)), "Wild animals", "Crow")

# --- natural soundscapes & water -----------------------------------------------------------------------------------
RAIN = SoundClass("rain", "crackle", dict(rate=L(150, 900), lo=L(700, 2000), hi=L(6000, 12000), click_ms=R(0.5, 2.0),
                  amp_sigma=R(0.5, 1.0), bed_level=R(0.3, 1.0), bed_lo=300.0, bed_hi=8000.0),
                  CONTINUOUS, "Weather", "Rain")
SEA_WAVES = SoundClass("sea_waves", "noise", dict(lo=L(80, 200), hi=L(2000, 6000), tilt=R(-4, -1),
                       am_rate=L(0.08, 0.25), am_depth=R(0.5, 0.9), am_sharpness=R(1, 2), gust_rate=0.3,
                       gust_depth=0.2, attack=0.5, release=0.5), CONTINUOUS, "Water", "Waves, surf")
CRACKLING_FIRE = SoundClass("crackling_fire", "crackle", dict(rate=L(8, 80), lo=L(300, 1000), hi=L(4000, 10000),
                            click_ms=R(1.0, 5.0), amp_sigma=R(0.8, 1.4), bed_level=R(0.2, 0.6), bed_lo=60.0,
                            bed_hi=1500.0), CONTINUOUS, "Fire", "Crackling fire")
CRICKETS = SoundClass("crickets", "harmonic", dict(f0=L(3000, 5500), n_harmonics=2, rolloff=2.0,
                      tremolo_rate=L(20, 60), tremolo_depth=1.0, attack=0.01, release=0.02, duration=R(0.2, 0.6)),
                      Pattern(events=(3, 8), spacing=R(0.4, 0.9)), "Wild animals", "Cricket")
CHIRPING_BIRDS = SoundClass("chirping_birds", "harmonic", dict(f0=L(2000, 5000), glide_oct=R(-1, 1),
                            arch_oct=R(-0.5, 0.5), n_harmonics=2, rolloff=2.0, attack=0.005, release=0.02,
                            duration=R(0.05, 0.25)), Pattern(events=(3, 10), spacing=R(0.1, 0.4), bouts=(1, 3)),
                            "Wild animals", "Bird chirp", jitter_by={"f0": 0.15, "glide_oct": 0.5})
WATER_DROPS = SoundClass("water_drops", "modal", dict(freq=L(600, 2000), n_modes=2, decay=R(0.02, 0.06),
                         glide_oct=R(0.5, 1.5), burst_level=0.1, duration=0.2),
                         Pattern(events=(2, 8), spacing=R(0.2, 0.9)), "Water", "Drip", jitter_by={"freq": 0.2})
WIND = SoundClass("wind", "noise", dict(lo=L(60, 200), hi=L(800, 3000), tilt=R(-6, -2), gust_rate=R(0.2, 0.8),
                  gust_depth=R(0.5, 1.0), attack=0.5, release=0.5), CONTINUOUS, "Weather", "Wind")
POURING_WATER = SoundClass("pouring_water", "crackle", dict(rate=L(300, 1500), lo=L(400, 1000), hi=L(3000, 6000),
                           click_ms=R(1.0, 3.0), amp_sigma=0.6, bed_level=0.5, bed_lo=300.0, bed_hi=3000.0,
                           attack=0.2, release=0.3, duration=R(2.0, 4.0)), Pattern(), "Water", "Pour")
TOILET_FLUSH = SoundClass("toilet_flush", "noise", dict(lo=L(200, 500), hi=L(3000, 7000), gust_rate=0.5,
                          gust_depth=0.5, attack=0.3, release=1.0, duration=R(2.5, 4.0)), Pattern(), "Water",
                          "Toilet flush")
THUNDERSTORM = SoundClass("thunderstorm", "noise", dict(lo=L(30, 60), hi=L(400, 1200), tilt=-4.0,
                          gust_rate=R(0.3, 1.0), gust_depth=R(0.8, 1.2), attack=0.2, release=2.0,
                          duration=R(2.0, 4.0)), Pattern(), "Weather", "Thunder")

# --- human, non-speech ---------------------------------------------------------------------------------------------
CRYING_BABY = SoundClass("crying_baby", "harmonic", dict(f0=L(300, 560), arch_oct=R(0.1, 0.5), glide_oct=R(-0.4, 0.0),
                         n_harmonics=12, formant_hz=L(1000, 2500), formant_gain=R(2, 4), noise_mix=R(0.1, 0.3),
                         lfo_rate=R(4, 8), lfo_depth_oct=R(0.02, 0.08), attack=0.05, release=0.15,
                         duration=R(0.5, 1.3)), Pattern(events=(2, 4), spacing=R(0.9, 1.6)), "Human voice", "Baby cry")
SNEEZING = SoundClass("sneezing", "noise", dict(lo=L(500, 1500), hi=L(5000, 10000), attack=R(0.01, 0.05),
                      release=R(0.15, 0.4), duration=R(0.25, 0.6)), Pattern(events=(1, 2), spacing=R(0.8, 2.0)),
                      "Respiratory sounds", "Sneeze")
CLAPPING = SoundClass("clapping", "modal", dict(freq=L(800, 2000), n_modes=2, decay=R(0.005, 0.015),
                      burst_level=R(1.5, 3.0), burst_lo=800.0, burst_hi=6000.0, burst_ms=R(3, 8), duration=0.1),
                      Pattern(events=(4, 12), spacing=R(0.15, 0.4)), "Human activity", "Clapping")
BREATHING = SoundClass("breathing", "noise", dict(lo=L(200, 600), hi=L(1500, 4000), attack=R(0.3, 0.8),
                       release=R(0.3, 0.8), duration=R(0.8, 1.8)), Pattern(events=(2, 3), spacing=R(1.4, 2.2)),
                       "Respiratory sounds", "Breathing")
COUGHING = SoundClass("coughing", "harmonic", dict(f0=L(150, 350), n_harmonics=12, noise_mix=R(0.6, 0.9),
                      formant_hz=L(500, 1500), attack=0.005, release=0.15, duration=R(0.15, 0.35)),
                      Pattern(events=(1, 3), spacing=R(0.3, 0.6), bouts=(1, 2)), "Respiratory sounds", "Cough")
FOOTSTEPS = SoundClass("footsteps", "modal", dict(freq=L(60, 200), n_modes=3, decay=R(0.02, 0.06),
                       burst_level=R(0.5, 1.5), burst_lo=200.0, burst_hi=3000.0, burst_ms=R(5, 15), duration=0.25),
                       Pattern(events=(4, 9), spacing=R(0.4, 0.7)), "Human activity", "Footsteps")
LAUGHING = SoundClass("laughing", "harmonic", dict(f0=L(180, 400), n_harmonics=12, noise_mix=R(0.3, 0.6),
                      formant_hz=L(700, 1500), formant_gain=2.0, attack=0.01, release=0.04, duration=R(0.08, 0.18)),
                      Pattern(events=(4, 10), spacing=R(0.15, 0.28), bouts=(1, 2)), "Human voice", "Laughter")
BRUSHING_TEETH = SoundClass("brushing_teeth", "noise", dict(lo=L(1500, 3000), hi=L(6000, 12000), am_rate=R(2, 5),
                            am_depth=R(0.6, 0.95), am_sharpness=2.0), CONTINUOUS, "Human activity", "Toothbrush")
SNORING = SoundClass("snoring", "harmonic", dict(f0=L(40, 90), n_harmonics=25, rolloff=0.6, noise_mix=R(0.4, 0.7),
                     formant_hz=L(300, 800), attack=0.4, release=0.4, duration=R(1.0, 1.8)),
                     Pattern(events=(2, 3), spacing=R(2.0, 2.8)), "Respiratory sounds", "Snoring")
DRINKING_SIPPING = SoundClass("drinking_sipping", "crackle", dict(rate=L(20, 80), lo=500.0, hi=4000.0,
                              click_ms=R(2, 6), bed_level=0.2, attack=0.05, release=0.1, duration=R(0.5, 1.5)),
                              Pattern(events=(1, 3), spacing=R(1.0, 2.0)), "Human activity", "Sipping")

# --- interior / domestic ---------------------------------------------------------------------------------------------
DOOR_WOOD_KNOCK = SoundClass("door_wood_knock", "modal", dict(freq=L(100, 350), n_modes=4, inharmonicity=0.4,
                             decay=R(0.02, 0.07), burst_level=R(0.3, 0.8), burst_lo=300.0, burst_hi=3000.0,
                             burst_ms=3.0, duration=0.2), Pattern(events=(2, 5), spacing=R(0.12, 0.3), bouts=(1, 2)),
                             "Domestic sounds", "Knock")
MOUSE_CLICK = SoundClass("mouse_click", "modal", dict(freq=L(2000, 5000), n_modes=2, decay=R(0.002, 0.006),
                         burst_level=1.0, burst_lo=2000.0, burst_hi=10000.0, burst_ms=1.0, duration=0.05),
                         Pattern(events=(1, 3), spacing=R(0.1, 0.25), bouts=(1, 4)), "Mechanisms", "Mouse click")
KEYBOARD_TYPING = SoundClass("keyboard_typing", "modal", dict(freq=L(1000, 3500), n_modes=3, decay=R(0.003, 0.01),
                             burst_level=R(1.0, 2.0), burst_lo=1000.0, burst_hi=9000.0, burst_ms=2.0, duration=0.06),
                             Pattern(events=(5, 20), spacing=R(0.08, 0.25)), "Mechanisms",
                             "Typing", jitter_by={"freq": 0.2})
DOOR_WOOD_CREAKS = SoundClass("door_wood_creaks", "harmonic", dict(f0=L(80, 400), n_harmonics=20, rolloff=0.5,
                              glide_oct=R(-0.5, 0.8), lfo_rate=L(10, 40), lfo_depth_oct=R(0.02, 0.1), noise_mix=0.3,
                              attack=0.1, release=0.2, duration=R(0.6, 2.0)), Pattern(events=(1, 2), spacing=R(1, 2)),
                              "Domestic sounds", "Creak")
CAN_OPENING = SoundClass("can_opening", "modal", dict(freq=L(1500, 4000), n_modes=5, inharmonicity=0.6, decay=0.02,
                         burst_level=2.0, burst_lo=1500.0, burst_hi=10000.0, burst_ms=R(5, 20), duration=0.15),
                         Pattern(events=(1, 3), spacing=R(0.05, 0.2)), "Domestic sounds", "Can opening")
WASHING_MACHINE = SoundClass("washing_machine", "noise", dict(lo=L(100, 300), hi=L(1500, 4000), am_rate=R(0.5, 1.5),
                             am_depth=R(0.3, 0.7), hum_f0=L(40, 100), hum_level=R(0.2, 0.5)),
                             CONTINUOUS, "Appliances", "Washing machine")
VACUUM_CLEANER = SoundClass("vacuum_cleaner", "noise", dict(lo=L(300, 800), hi=L(6000, 12000), hum_f0=L(150, 400),
                            hum_level=R(0.2, 0.5), hum_harmonics=10), CONTINUOUS, "Appliances", "Vacuum cleaner")
CLOCK_ALARM = SoundClass("clock_alarm", "harmonic", dict(f0=L(1500, 3500), n_harmonics=5, rolloff=1.0, attack=0.002,
                         release=0.01, duration=R(0.05, 0.15)),
                         Pattern(events=(4, 10), spacing=R(0.1, 0.25), bouts=(2, 4)), "Alarm", "Alarm clock")
CLOCK_TICK = SoundClass("clock_tick", "modal", dict(freq=L(1500, 4500), n_modes=3, decay=R(0.003, 0.01),
                        burst_level=R(0.5, 1.5), burst_lo=1500.0, burst_hi=9000.0, burst_ms=1.0, duration=0.05),
                        Pattern(events=(4, 9), spacing=R(0.45, 1.05)), "Mechanisms", "Tick", jitter=0.02)
GLASS_BREAKING = SoundClass("glass_breaking", "modal", dict(freq=L(2000, 5000), n_modes=8, inharmonicity=0.8,
                            decay=R(0.05, 0.2), burst_level=1.5, burst_lo=2000.0, burst_hi=12000.0, burst_ms=5.0,
                            duration=0.4), Pattern(events=(3, 8), spacing=R(0.02, 0.1)), "Domestic sounds",
                            "Glass breaking",
                            jitter_by={"freq": 0.3})

# --- exterior / urban ------------------------------------------------------------------------------------------------
HELICOPTER = SoundClass("helicopter", "noise", dict(lo=L(40, 100), hi=L(1000, 3000), tilt=-3.0, am_rate=R(12, 25),
                        am_depth=R(0.6, 0.95), am_sharpness=R(2, 4), hum_f0=L(30, 80), hum_level=R(0.2, 0.4)),
                        CONTINUOUS, "Vehicle", "Helicopter")
CHAINSAW = SoundClass("chainsaw", "noise", dict(lo=L(300, 800), hi=L(4000, 9000), hum_f0=L(80, 160),
                      hum_level=R(0.4, 0.7), hum_harmonics=12, hum_drift=R(0.05, 0.2), am_rate=R(0.3, 1.0),
                      am_depth=R(0.2, 0.5)), CONTINUOUS, "Tools", "Chainsaw")
SIREN = SoundClass("siren", "harmonic", dict(f0=L(500, 900), lfo_rate=L(0.15, 3.0), lfo_depth_oct=R(0.3, 0.7),
                   lfo_saw=R(0.0, 1.0), n_harmonics=6, rolloff=1.2, attack=0.2, release=0.3), CONTINUOUS, "Alarm",
                   "Siren")
CAR_HORN = SoundClass("car_horn", "harmonic", dict(f0=L(300, 500), n_harmonics=10, rolloff=0.6, attack=0.01,
                      release=0.03, duration=R(0.3, 1.2)), Pattern(events=(1, 3), spacing=R(0.5, 1.5)), "Alarm",
                      "Vehicle horn")
ENGINE = SoundClass("engine", "noise", dict(lo=50.0, hi=2000.0, hum_f0=L(25, 60), hum_level=R(0.5, 0.8),
                    hum_drift=R(0.02, 0.1), am_rate=R(20, 40), am_depth=0.3), CONTINUOUS, "Vehicle", "Engine")
TRAIN = SoundClass("train", "noise", dict(lo=L(60, 150), hi=L(2000, 5000), am_rate=R(1, 3), am_depth=R(0.3, 0.6),
                   am_sharpness=3.0, hum_f0=L(40, 90), hum_level=0.2), CONTINUOUS, "Vehicle", "Train")
CHURCH_BELLS = SoundClass("church_bells", "modal", dict(freq=L(250, 700), n_modes=6, inharmonicity=0.5,
                          decay=R(0.6, 1.5), decay_tilt=0.5, burst_level=0.1, duration=2.5),
                          Pattern(events=(2, 5), spacing=R(0.7, 1.3)), "Music", "Church bell")
AIRPLANE = SoundClass("airplane", "noise", dict(lo=50.0, hi=L(1500, 4000), tilt=-4.0, gust_rate=0.2, gust_depth=0.3,
                      hum_f0=L(60, 200), hum_level=R(0.1, 0.3), attack=1.5, release=1.5),
                      CONTINUOUS, "Vehicle", "Aircraft")
FIREWORKS = SoundClass("fireworks", "modal", dict(freq=L(60, 200), decay=R(0.1, 0.3), burst_level=3.0,
                       burst_lo=100.0, burst_hi=6000.0, burst_ms=20.0, duration=0.8),
                       Pattern(events=(2, 5), spacing=R(0.4, 1.2)), "Explosion", "Fireworks")
HAND_SAW = SoundClass("hand_saw", "noise", dict(lo=L(1000, 2000), hi=L(6000, 10000), am_rate=R(1.5, 3.0),
                      am_depth=R(0.7, 1.0), am_sharpness=1.5), CONTINUOUS, "Tools", "Sawing")

#: the 50 ESC-50 classes, in the order of ESC-50's ``target`` (0 = dog ... 49 = hand_saw)
ESC50: tuple[SoundClass, ...] = (
    DOG, ROOSTER, PIG, COW, FROG, CAT, HEN, INSECTS, SHEEP, CROW,
    RAIN, SEA_WAVES, CRACKLING_FIRE, CRICKETS, CHIRPING_BIRDS, WATER_DROPS, WIND, POURING_WATER, TOILET_FLUSH,
    THUNDERSTORM,
    CRYING_BABY, SNEEZING, CLAPPING, BREATHING, COUGHING, FOOTSTEPS, LAUGHING, BRUSHING_TEETH, SNORING,
    DRINKING_SIPPING,
    DOOR_WOOD_KNOCK, MOUSE_CLICK, KEYBOARD_TYPING, DOOR_WOOD_CREAKS, CAN_OPENING, WASHING_MACHINE, VACUUM_CLEANER,
    CLOCK_ALARM, CLOCK_TICK, GLASS_BREAKING,
    HELICOPTER, CHAINSAW, SIREN, CAR_HORN, ENGINE, TRAIN, CHURCH_BELLS, AIRPLANE, FIREWORKS, HAND_SAW,
)

#: the ESC-50 classes that the ``esc10`` column marks (ESC-10's ten)
ESC10: tuple[str, ...] = ("dog", "rooster", "rain", "sea_waves", "crackling_fire", "crying_baby", "sneezing",
                          "clock_tick", "helicopter", "chainsaw")

#: UrbanSound8K's 10 classes in ``classID`` order
US8K: tuple[SoundClass, ...] = (
    SoundClass("air_conditioner", "noise", dict(lo=L(50, 150), hi=L(1500, 4000), tilt=-3.0, hum_f0=L(50, 120),
               hum_level=R(0.1, 0.3)), CONTINUOUS, "Appliances", "Air conditioning"),
    _rename(CAR_HORN, "car_horn"),
    SoundClass("children_playing", "harmonic", dict(f0=L(250, 520), arch_oct=R(-0.5, 0.6), glide_oct=R(-0.5, 0.5),
               n_harmonics=10, noise_mix=R(0.1, 0.3), formant_hz=L(800, 2000), formant_gain=2.0, attack=0.02,
               release=0.06, duration=R(0.15, 0.6)), Pattern(events=(4, 10), spacing=R(0.15, 0.5), bouts=(1, 3)),
               "Human voice", "Children playing", jitter_by={"f0": 0.15, "arch_oct": 0.5}),
    _rename(DOG, "dog_bark"),
    SoundClass("drilling", "noise", dict(lo=L(800, 1500), hi=L(6000, 10000), hum_f0=L(200, 600), hum_level=R(0.3, 0.6),
               hum_harmonics=8, hum_drift=0.05), CONTINUOUS, "Tools", "Drill"),
    _rename(ENGINE, "engine_idling"),
    SoundClass("gun_shot", "modal", dict(freq=L(60, 150), decay=R(0.1, 0.3), burst_level=4.0, burst_lo=200.0,
               burst_hi=8000.0, burst_ms=R(15, 40), duration=1.0), Pattern(events=(1, 3), spacing=R(0.2, 0.8)),
               "Explosion", "Gunshot"),
    SoundClass("jackhammer", "noise", dict(lo=L(200, 600), hi=L(4000, 8000), am_rate=R(12, 25), am_depth=R(0.8, 1.0),
               am_sharpness=R(3, 6)), CONTINUOUS, "Tools", "Jackhammer"),
    _rename(SIREN, "siren"),
    SoundClass("street_music", "harmonic", dict(f0=L(150, 600), n_harmonics=8, rolloff=1.2, attack=0.01,
               release=0.1, duration=R(0.2, 0.5)), Pattern(events=(6, 14), spacing=R(0.2, 0.5), bouts=(1, 2)),
               "Music", "Street music", jitter_by={"f0": 0.2}),
)

#: families only the unlabelled pool and the mini-AudioSet contain (they broaden the pre-training distribution)
EXTRA: tuple[SoundClass, ...] = (
    SoundClass("whistle", "harmonic", dict(f0=L(800, 2500), n_harmonics=2, rolloff=3.0, arch_oct=R(-0.5, 0.8),
               glide_oct=R(-1, 1), attack=0.03, release=0.05, duration=R(0.3, 1.2)),
               Pattern(events=(1, 3), spacing=R(0.5, 1.5)), "Music", "Whistle"),
    SoundClass("motorcycle", "noise", dict(lo=60.0, hi=L(2000, 5000), hum_f0=L(40, 120), hum_level=R(0.6, 0.9),
               hum_drift=R(0.2, 0.5), hum_harmonics=10), CONTINUOUS, "Vehicle", "Motorcycle"),
    SoundClass("hammering", "modal", dict(freq=L(150, 500), n_modes=4, inharmonicity=0.5, decay=R(0.02, 0.06),
               burst_level=1.0, burst_lo=300.0, burst_hi=5000.0, burst_ms=3.0, duration=0.25),
               Pattern(events=(3, 8), spacing=R(0.3, 0.6)), "Tools", "Hammer"),
    SoundClass("beep", "harmonic", dict(f0=L(700, 3000), n_harmonics=1, attack=0.003, release=0.01,
               duration=R(0.1, 0.5)), Pattern(events=(1, 4), spacing=R(0.3, 1.0)), "Alarm", "Beep"),
    SoundClass("speech_babble", "harmonic", dict(f0=L(100, 250), arch_oct=R(-0.3, 0.3), glide_oct=R(-0.3, 0.3),
               n_harmonics=16, formant_hz=L(500, 2500), formant_gain=3.0, noise_mix=0.2, attack=0.02, release=0.04,
               duration=R(0.1, 0.3)), Pattern(events=(6, 16), spacing=R(0.12, 0.3), bouts=(1, 3)), "Human voice",
               "Speech",
               jitter_by={"f0": 0.15, "formant_hz": 0.3}),
    SoundClass("frying", "crackle", dict(rate=L(300, 1200), lo=2000.0, hi=12000.0, click_ms=0.5, bed_level=0.4,
               bed_lo=2000.0, bed_hi=10000.0), CONTINUOUS, "Fire", "Frying"),
    SoundClass("bird_trill", "harmonic", dict(f0=L(2500, 6000), n_harmonics=2, rolloff=2.0, tremolo_rate=R(15, 30),
               tremolo_depth=1.0, attack=0.01, release=0.03, duration=R(0.4, 1.2)),
               Pattern(events=(1, 3), spacing=R(0.6, 1.5)), "Wild animals", "Bird song"),
)

#: every class by name (ESC-50's ``dog`` and UrbanSound8K's ``dog_bark`` are distinct entries of one model)
CATALOGUE: dict[str, SoundClass] = {c.name: c for c in ESC50 + US8K + EXTRA}

#: the mini-AudioSet's sound-type labels, one per event model, in catalogue order
SOUND_TYPES: tuple[str, ...] = tuple(dict.fromkeys(c.label for c in CATALOGUE.values()))

#: the mini-AudioSet's parent categories (each sound type belongs to one), in catalogue order
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(c.family for c in CATALOGUE.values()))
