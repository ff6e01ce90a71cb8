"""The four synthetic worlds, each planned in the exact layout of the real dataset it stands in for.

A planner draws, from the seed, every recording of a world as a :class:`.scene.Scene` plus the files cut from it
(:class:`Job`), and the world's metadata files, exactly as the real dataset names and formats them (layouts in the
package docstring, :mod:`esclib.data.synth`). Rendering the jobs (:func:`render_job`, in any order, in any process)
then writes the audio. The planners are sequential and cheap; the rendering is what :func:`.build.generate`
spreads over processes.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from esclib.data import dcase2013
from esclib.data.synth.classes import CATALOGUE, ESC10, FAMILIES, US8K, SoundClass
from esclib.data.synth.ontology import LABELS, SOURCE_TYPES, labels_of
from esclib.data.synth.files import write_audio
from esclib.data.synth.scene import Channel, Layer, Scene, render


#: the files each world owns under its root (glob patterns), what replacing a world deletes
LAYOUT_FILES: dict[str, tuple[str, ...]] = {
    "esc50": ("audio/*.wav", "meta/esc50.csv"),
    "us8k": ("audio/fold*/*.wav", "metadata/UrbanSound8K.csv"),
    "escus": ("[0-9][0-9]/*.ogg", "ESC-US.csv", "README.txt"),
    "audioset-mini": ("audios/balanced_train_segments/Y*.wav", "metadata/balanced_train_segments.csv",
                      "metadata/class_labels_indices.csv"),
    "dcase2013": ("scenes_stereo/*.wav", "scenes_stereo_testset/*.wav"),
}


@dataclass(frozen=True)
class Output:
    """One audio file cut from a job's scene: the whole scene, or [start, end) seconds of it."""

    path: str
    start: float | None = None
    end: float | None = None
    subtype: str = "PCM_16"


@dataclass(frozen=True)
class Job:
    """A scene to render and the files to write from it."""

    scene: Scene
    outputs: tuple[Output, ...]


@dataclass(frozen=True)
class Plan:
    """A world's jobs and its metadata files (path relative to the root -> text)."""

    jobs: list[Job]
    metadata: dict[str, str]


@dataclass(frozen=True)
class Difficulty:
    """How hard a world's recordings are: foreground-to-background SNR (dB), extra unlabelled sound sources
    (``distractors`` per recording, at ``distractor_db`` below the target), widening of the classes' parameter ranges,
    and the recording channel (reverberation time, wet level, equaliser bump gains up to ``eq_db``)."""

    snr_db: tuple[float, float] = (0.0, 20.0)
    distractors: tuple[int, int] = (0, 2)
    distractor_db: tuple[float, float] = (-18.0, -6.0)
    widen: float = 1.0
    rt60: tuple[float, float] = (0.05, 1.0)
    wet: tuple[float, float] = (0.0, 0.5)
    eq_db: float = 6.0


def render_job(job: Job) -> None:
    """Render ``job.scene`` and write each of its outputs."""
    samples = render(job.scene)
    sr = job.scene.sr
    for out in job.outputs:
        part = samples if out.start is None else samples[int(round(out.start * sr)) : int(round(out.end * sr))]
        write_audio(out.path, part, sr, out.subtype)


def _channel(rng: np.random.Generator, d: Difficulty) -> Channel:
    eq = tuple((float(np.exp(rng.uniform(np.log(100), np.log(8000)))), float(rng.uniform(-d.eq_db, d.eq_db)),
                float(rng.uniform(0.3, 1.5))) for _ in range(2))
    highpass = float(np.exp(rng.uniform(np.log(20), np.log(200))))
    return Channel(eq=eq, tilt_db=float(rng.uniform(-2.0, 1.0)), highpass=highpass, rt60=float(rng.uniform(*d.rt60)),
                   wet=float(rng.uniform(*d.wet)))


def _pool(labelled: Sequence[SoundClass]) -> tuple[SoundClass, ...]:
    """The catalogue's classes that are none of ``labelled`` (same model under another name included)."""
    return tuple(c for c in CATALOGUE.values()
                 if not any(c.generator == k.generator and c.params == k.params for k in labelled))


def _distractors(rng: np.random.Generator, pool: Sequence[SoundClass], d: Difficulty,
                 span: tuple[float, float] | None = None) -> tuple[Layer, ...]:
    count = int(rng.integers(d.distractors[0], d.distractors[1] + 1))
    picks = rng.choice(len(pool), size=count, replace=False)
    return tuple(Layer(pool[i].name, pool[i].draw_source(rng, d.widen), float(rng.uniform(*d.distractor_db)), span)
                 for i in picks)


def _unique_ints(rng: np.random.Generator, count: int, lo: int, hi: int) -> list[int]:
    return [int(v) + lo for v in rng.choice(hi - lo, size=count, replace=False)]


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**63 - 1))


def plan_esc50(root: Path, seed: int, classes: Sequence[SoundClass], clips_per_class: int, difficulty: Difficulty,
               n_folds: int = 5) -> Plan:
    """ESC-50 (Piczak 2015; studies 002-004): ``audio/{fold}-{src_file}-{take}-{target}.wav`` (5 s, 44.1 kHz, mono,
    16-bit) and ``meta/esc50.csv``; the takes of one source recording share its parameters, room and fold; a fifth of
    the sources are shorter than 5 s and padded with digital silence, as in the real dataset."""
    if clips_per_class % n_folds:
        raise ValueError(f"clips_per_class={clips_per_class} must be a multiple of n_folds={n_folds}")
    rng = np.random.default_rng([seed, 50])
    sr, seconds, pool = 44100, 5.0, _pool(classes)
    src_ids = iter(_unique_ints(rng, len(classes) * clips_per_class, 10_000, 300_000))
    jobs, rows = [], []
    for target, cls in enumerate(classes):
        for fold in range(1, n_folds + 1):
            made = 0
            while made < clips_per_class // n_folds:
                takes = min(int(rng.integers(1, 4)), clips_per_class // n_folds - made)
                src, source, channel = next(src_ids), cls.draw_source(rng, difficulty.widen), _channel(rng, difficulty)
                tilt = float(rng.uniform(-6.0, -1.0))
                pad = float(rng.uniform(1.5, 4.5)) if rng.random() < 0.2 else None
                span = (0.0, pad) if pad is not None else None
                for take in string.ascii_uppercase[:takes]:
                    name = f"{fold}-{src}-{take}-{target}.wav"
                    layers = (Layer(cls.name, source, 0.0, span),) + _distractors(rng, pool, difficulty, span)
                    scene = Scene(sr, seconds, layers, float(rng.uniform(*difficulty.snr_db)), tilt, channel,
                                  float(rng.uniform(-12.0, -1.0)), _seed(rng), pad_after=pad)
                    jobs.append(Job(scene, (Output(str(root / "audio" / name)),)))
                    rows.append(dict(filename=name, fold=fold, target=target, category=cls.name,
                                     esc10=cls.name in ESC10, src_file=src, take=take))
                made += takes
    table = pd.DataFrame(rows).sort_values("filename", ignore_index=True)
    return Plan(jobs, {"meta/esc50.csv": table.to_csv(index=False, lineterminator="\n")})


#: UrbanSound8K's mix of source formats: sample rates (weights), channel counts, sample subtypes
US8K_RATES = {8000: 0.03, 16000: 0.12, 22050: 0.15, 44100: 0.45, 48000: 0.22, 96000: 0.03}
US8K_CHANNELS = {1: 0.4, 2: 0.6}
US8K_SUBTYPES = {"PCM_16": 0.7, "PCM_24": 0.15, "FLOAT": 0.1, "PCM_U8": 0.05}
#: occurrence lengths (seconds, log-uniform) of continuous classes and of event classes in UrbanSound8K sources
CONTINUOUS_OCCURRENCE = (4.0, 8.0)
EVENT_OCCURRENCE = (0.5, 6.0)


def _weighted(rng: np.random.Generator, weights: dict) -> object:
    keys = list(weights)
    return keys[int(rng.choice(len(keys), p=np.array(list(weights.values())) / sum(weights.values())))]


def _slices(rng: np.random.Generator, start: float, end: float, max_slices: int) -> list[tuple[int, float, float]]:
    """UrbanSound8K's slicing of an occurrence [start, end]: one slice if it lasts at most 4 s, else 4-s slices whose
    starts step by 0.5 s (slice k starts at start + 0.5 k), of which every ``stride``-th is kept."""
    if end - start <= 4.0:
        return [(0, start, end)]
    last = int((end - start - 4.0) / 0.5)
    stride = int(rng.integers(2, 9))
    return [(k, start + 0.5 * k, start + 0.5 * k + 4.0) for k in range(0, last + 1, stride)][:max_slices]


def plan_us8k(root: Path, seed: int, sources_per_fold: int, max_occurrences: int, max_slices: int,
              difficulty: Difficulty, classes: Sequence[SoundClass] = US8K, n_folds: int = 10) -> Plan:
    """UrbanSound8K (Salamon et al. 2014; study 000): ``audio/fold{k}/{fsID}-{classID}-{occurrence}-{slice}.wav``
    and ``metadata/UrbanSound8K.csv``. Each source recording (one ``fsID``, one fold) holds 1..``max_occurrences``
    occurrences of its class, foreground (salience 1) or background (salience 2), over an urban background with
    unlabelled distractors; it is rendered at its own sample rate, channel count and sample format, and cut into
    slices of at most 4 s (:func:`_slices`)."""
    rng = np.random.default_rng([seed, 8])
    pool = _pool(classes)
    fs_ids = iter(_unique_ints(rng, len(classes) * n_folds * sources_per_fold, 1_000, 200_000))
    jobs, rows = [], []
    for class_id, cls in enumerate(classes):
        for fold in np.repeat(np.arange(1, n_folds + 1), sources_per_fold):
            fs_id, source = next(fs_ids), cls.draw_source(rng, difficulty.widen)
            sr, channels = _weighted(rng, US8K_RATES), _weighted(rng, US8K_CHANNELS)
            subtype = _weighted(rng, US8K_SUBTYPES)
            duration = (CONTINUOUS_OCCURRENCE if cls.pattern.continuous else EVENT_OCCURRENCE)
            t, occurrences = float(rng.uniform(0.1, 0.5)), []
            for _ in range(int(rng.integers(1, max_occurrences + 1))):
                length = float(np.exp(rng.uniform(*np.log(duration))))
                occurrences.append((t, t + length, 1 if rng.random() < 0.65 else 2))
                t += length + float(rng.uniform(0.3, 1.5))
            layers = tuple(Layer(cls.name, source, 0.0 if sal == 1 else -float(rng.uniform(8.0, 14.0)), (a, b))
                           for a, b, sal in occurrences) + _distractors(rng, pool, difficulty)
            foreground = any(sal == 1 for _, _, sal in occurrences)
            snr = float(rng.uniform(*difficulty.snr_db)) if foreground else float(rng.uniform(-4.0, 4.0))
            scene = Scene(sr, t, layers, snr, float(rng.uniform(-6.0, -1.0)), _channel(rng, difficulty),
                          float(rng.uniform(-12.0, -1.0)), _seed(rng), channels=channels)
            outputs = []
            for occurrence, (a, b, salience) in enumerate(occurrences):
                for k, start, end in _slices(rng, a, b, max_slices):
                    name = f"{fs_id}-{class_id}-{occurrence}-{k}.wav"
                    outputs.append(Output(str(root / "audio" / f"fold{fold}" / name), start, end, subtype))
                    rows.append(dict(slice_file_name=name, fsID=fs_id, start=round(start, 6), end=round(end, 6),
                                     salience=salience, fold=int(fold), classID=class_id, **{"class": cls.name}))
            jobs.append(Job(scene, tuple(outputs)))
    table = pd.DataFrame(rows).sort_values("slice_file_name", ignore_index=True)
    return Plan(jobs, {"metadata/UrbanSound8K.csv": table.to_csv(index=False, lineterminator="\n")})



def _mixture(rng: np.random.Generator, pool: Sequence[SoundClass], d: Difficulty, counts: Sequence[int],
             weights: Sequence[float], below_db: float = 14.0
             ) -> tuple[list[SoundClass], list[dict[str, float]], list[float]]:
    """1..3 sources of distinct classes drawn from ``pool``, the first at 0 dB, the others 0..``below_db`` dB
    below it."""
    k = int(rng.choice(counts, p=weights))
    picks = [pool[i] for i in rng.choice(len(pool), size=k, replace=False)]
    levels = [0.0] + [-float(rng.uniform(0.0, below_db)) for _ in picks[1:]]
    return picks, [c.draw_source(rng, d.widen) for c in picks], levels


ESCUS_README = """# ESC-US (synthetic stand-in generated by esclib.data.synth)

Unlabelled 5-second clips in the layout of ESC-US (Piczak 2015, doi:10.7910/DVN/YDEPUT).

## File naming scheme

ID-Freesound_file_ID-slice_start_time-slice_end_time.ogg

ID - ESC-US file identifier (6 digits, running over the whole pool)
Freesound_file_ID - ID of the (synthetic) source recording from which the clip has been extracted
slice_start_time / slice_end_time - start/end time for the extracted part (seconds)

The recordings are arranged in numbered directories (01, 02, ...), 44100 Hz, mono, Ogg Vorbis.
ESC-US.csv lists the source recordings (freesound_id, n_clips, tags); tags are noisy family names.
"""


def plan_escus(root: Path, seed: int, n_clips: int, difficulty: Difficulty, n_dirs: int = 5) -> Plan:
    """ESC-US (study 002's unlabelled pool): ``{dir}/{ID}-{fsID}-{start}-{end}.ogg`` in ``n_dirs`` numbered
    directories, ``ESC-US.csv`` and ``README.txt``. Each source recording (1..6 consecutive 5-s clips) mixes 1..2
    sources from the whole catalogue (ESC-50, UrbanSound8K and extra families, ranges widened) with its own room."""
    rng = np.random.default_rng([seed, 250])
    pool = tuple(CATALOGUE.values())
    per_dir = math.ceil(n_clips / n_dirs)
    jobs, recordings, clip_id = [], [], 0
    while clip_id < n_clips:
        fs_id = int(rng.integers(1_000, 400_000))
        picks, sources, levels = _mixture(rng, pool, difficulty, (1, 2), (0.6, 0.4))
        channel, tilt = _channel(rng, difficulty), float(rng.uniform(-6.0, -1.0))
        first, count = int(rng.integers(0, 30)), min(int(rng.integers(1, 7)), n_clips - clip_id)
        for window in range(first, first + count):
            present = [Layer(c.name, s, lv) for c, s, lv in zip(picks, sources, levels) if rng.random() < 0.85]
            start = 5.0 * window
            name = f"{clip_id + 1:06d}-{fs_id}-{start:.1f}-{start + 5.0:.1f}.ogg"
            scene = Scene(44100, 5.0, tuple(present or [Layer(picks[0].name, sources[0])]),
                          float(rng.uniform(*difficulty.snr_db)), tilt, channel, float(rng.uniform(-12.0, -1.0)),
                          _seed(rng))
            jobs.append(Job(scene, (Output(str(root / f"{1 + clip_id // per_dir:02d}" / name)),)))
            clip_id += 1
        tags = {c.family.lower() for c in picks if rng.random() < 0.7} | (
            {FAMILIES[int(rng.integers(len(FAMILIES)))].lower()} if rng.random() < 0.1 else set())
        recordings.append(dict(freesound_id=fs_id, n_clips=count, tags=" ".join(sorted(tags))))
    table = pd.DataFrame(recordings)
    return Plan(jobs, {"ESC-US.csv": table.to_csv(index=False, lineterminator="\n"), "README.txt": ESCUS_README})


_YTID_CHARS = string.ascii_letters + string.digits + "-_"


def audioset_mid(index: int) -> str:
    """The machine identifier (``mid``) of mini-AudioSet label ``index``."""
    return f"/m/syn{index:02d}"


def plan_audioset(root: Path, seed: int, n_clips: int, difficulty: Difficulty, sr: int = 16000,
                  seconds: float = 10.0, sources: tuple[int, ...] = (1, 2, 3),
                  source_weights: tuple[float, ...] = (0.4, 0.4, 0.2), below_db: float = 6.0) -> Plan:
    """A mini-AudioSet (Gemmeke et al. 2017; study 003's pre-training corpus) in the layout PANN's code reads:
    ``audios/balanced_train_segments/Y{YTID}.wav``, ``metadata/balanced_train_segments.csv`` (three ``#`` lines, then
    ``YTID, start_seconds, end_seconds, positive_labels``) and ``metadata/class_labels_indices.csv``. A clip mixes
    ``sources`` (drawn with ``source_weights``) of distinct sound types (:data:`.ontology.SOURCE_TYPES`, ranges
    widened by ``difficulty.widen``), the first at 0 dB, the others up to ``below_db`` below it; its labels are each
    source's sound type and parent category (:mod:`.ontology`). Clips last ``seconds`` (AudioSet's 10 s by default;
    the quick world's are shorter, see :data:`.build.SIZES`) at ``sr``."""
    rng = np.random.default_rng([seed, 527])
    index = {label: i for i, label in enumerate(LABELS)}
    jobs, lines, ytids, n_positive = [], [], set(), 0
    while len(ytids) < n_clips:
        ytid = "".join(rng.choice(list(_YTID_CHARS), size=11))
        if ytid in ytids:
            continue
        ytids.add(ytid)
        picks, drawn, levels = _mixture(rng, SOURCE_TYPES, difficulty, sources, source_weights, below_db)
        labels = {label for cls in picks for label in labels_of(cls)}
        layers = tuple(Layer(c.name, s, lv) for c, s, lv in zip(picks, drawn, levels))
        scene = Scene(sr, seconds, layers, float(rng.uniform(*difficulty.snr_db)), float(rng.uniform(-6.0, -1.0)),
                      _channel(rng, difficulty), float(rng.uniform(-12.0, -1.0)), _seed(rng))
        jobs.append(Job(scene, (Output(str(root / "audios" / "balanced_train_segments" / f"Y{ytid}.wav")),)))
        start = 10.0 * int(rng.integers(0, 30))
        mids = ",".join(audioset_mid(i) for i in sorted(index[label] for label in labels))
        lines.append(f'{ytid}, {start:.3f}, {start + seconds:.3f}, "{mids}"')
        n_positive += len(labels)
    header = ["# Segments csv created by esclib.data.synth (synthetic mini-AudioSet)",
              f"# num_ytids={n_clips}, num_segs={n_clips}, num_unique_labels={len(LABELS)}, "
              f"num_positive_labels={n_positive}",
              "# YTID, start_seconds, end_seconds, positive_labels"]
    indices = ["index,mid,display_name"] + [f'{i},{audioset_mid(i)},"{name}"' for i, name in enumerate(LABELS)]
    return Plan(jobs, {"metadata/balanced_train_segments.csv": "\n".join(header + lines) + "\n",
                       "metadata/class_labels_indices.csv": "\n".join(indices) + "\n"})


#: DCASE 2013's ten scenes: the continuous catalogue classes that make each one's bed, and its events
DCASE2013_SCENES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bus": (("engine",), ("speech_babble", "beep", "car_horn", "footsteps")),
    "busystreet": (("engine", "motorcycle"), ("car_horn", "siren", "footsteps", "speech_babble")),
    "office": (("air_conditioner",), ("keyboard_typing", "mouse_click", "speech_babble", "door_wood_knock")),
    "openairmarket": (("wind",), ("speech_babble", "children_playing", "street_music", "footsteps", "clapping")),
    "park": (("wind",), ("chirping_birds", "bird_trill", "children_playing", "dog", "footsteps")),
    "quietstreet": (("wind", "engine"), ("footsteps", "chirping_birds", "car_horn", "door_wood_knock")),
    "restaurant": (("air_conditioner",), ("speech_babble", "laughing", "can_opening", "glass_breaking")),
    "supermarket": (("air_conditioner",), ("beep", "speech_babble", "footsteps", "crying_baby")),
    "tube": (("train",), ("speech_babble", "beep", "door_wood_creaks")),
    "tubestation": (("train", "air_conditioner"), ("footsteps", "speech_babble", "beep", "whistle")),
}


def plan_dcase2013(root: Path, seed: int, clips_per_scene: int, difficulty: Difficulty, seconds: float = 30.0,
                   events: tuple[int, int] = (4, 8)) -> Plan:
    """DCASE 2013 scene classification (Stowell et al. 2015; study 004): ``scenes_stereo/<scene><NN>.wav`` and
    ``scenes_stereo_testset/<scene><NN>.wav``, ``clips_per_scene`` recordings of each of the ten scenes per set
    (30 s, 44.1 kHz, 16-bit stereo, as released; the real sets hold 10 each; no metadata file). A recording is the
    scene's bed (one of its continuous classes, :data:`DCASE2013_SCENES`) with ``events`` event layers of its
    event classes, each within a window of a few seconds, 2-12 dB below the bed."""
    rng = np.random.default_rng([seed, 2013])
    jobs = []
    for folder, _, _ in dcase2013.SETS:
        for scene_name, (beds, event_classes) in DCASE2013_SCENES.items():
            for number in sorted(_unique_ints(rng, clips_per_scene, 1, 100)):
                bed = CATALOGUE[beds[int(rng.integers(len(beds)))]]
                layers = [Layer(bed.name, bed.draw_source(rng, difficulty.widen))]
                for _ in range(int(rng.integers(events[0], events[1] + 1))):
                    cls = CATALOGUE[event_classes[int(rng.integers(len(event_classes)))]]
                    start = float(rng.uniform(0.0, max(seconds - 3.0, 0.0)))
                    span = (start, min(seconds, start + float(rng.uniform(3.0, 10.0))))
                    layers.append(Layer(cls.name, cls.draw_source(rng, difficulty.widen), -float(rng.uniform(2, 12)),
                                        span))
                scene = Scene(44100, seconds, tuple(layers), float(rng.uniform(*difficulty.snr_db)),
                              float(rng.uniform(-6.0, -2.0)), _channel(rng, difficulty), float(rng.uniform(-9.0, -1.0)),
                              _seed(rng), channels=2)
                jobs.append(Job(scene, (Output(str(root / folder / f"{scene_name}{number:02d}.wav")),)))
    return Plan(jobs, {})
