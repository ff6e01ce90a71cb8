"""Audio I/O for every dataset: soundfile decoding, mono mix-down, resampling and fixed-length clips.

Decoding is soundfile's (libsndfile: WAV at any bit depth -- 8-bit unsigned, 16/24/32-bit, float --, FLAC, Ogg
Vorbis as in ESC-US); UrbanSound8K's clips keep their sources' 8-96 kHz rates and 1-2 channels, so every clip is
mixed down to mono (channel mean, as ``librosa.to_mono``) and resampled to the model's rate with
``librosa.resample(res_type="soxr_hq")`` -- the resampler ``librosa.load`` uses, band-limited and the fastest of
librosa's choices (see ``benchmarks/bench_data.py``). Every error names the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import librosa
import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

#: resampler passed to librosa.resample (part of the waveform cache key)
RESAMPLER = "soxr_hq"
#: levels of :func:`find_problems`: file exists / header readable and complete / whole file decodes
CHECK_LEVELS = ("exists", "header", "decode")
#: libsndfile's log line for a WAV whose data chunk is shorter than its header says
_SHORT_DATA = re.compile(r"data\s*:\s*(\d+)\s*\(should be (\d+)\)")
#: data-chunk sizes written by streaming encoders that did not know the length (not truncation)
_STREAMING_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)


class AudioError(RuntimeError):
    """An audio file is missing, empty, truncated, not audio, or fails to decode; the message names the file."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class AudioInfo:
    """What the header of an audio file says (as read by :func:`probe`)."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    subtype: str

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return self.frames / self.sample_rate


def probe(path: str | Path) -> AudioInfo:
    """Read an audio file's header; raises :class:`AudioError` if it is missing, empty, not audio or truncated.

    Truncation is what libsndfile reports for a WAV whose data chunk holds less than its header declares (a partly
    copied or interrupted download), or for an Ogg stream that ends without its end-of-stream page.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file not found")
    if path.stat().st_size == 0:
        raise AudioError(path, "zero-length file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(path, f"not a readable audio file ({err})") from err
    log = info.extra_info
    short = _SHORT_DATA.search(log)
    if short and int(short.group(1)) not in _STREAMING_SIZES and int(short.group(2)) < int(short.group(1)):
        raise AudioError(path, f"truncated: the header declares {short.group(1)} data bytes, the file holds "
                               f"{short.group(2)}")
    if "ended unexpectedly" in log:
        raise AudioError(path, "truncated: the stream ends without its end-of-stream page")
    if info.frames <= 0:
        raise AudioError(path, "no audio samples")
    return AudioInfo(str(path), int(info.samplerate), int(info.channels), int(info.frames), str(info.subtype))


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a whole file: ``(samples, channels)`` float32 in [-1, 1] and its sample rate."""
    probe(path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(path, f"decoding failed ({err})") from err
    if data.shape[0] == 0:
        raise AudioError(path, "no audio samples")
    return data, int(rate)


def to_mono(data: np.ndarray) -> np.ndarray:
    """Mix ``(samples, channels)`` down to ``(samples,)`` by the channel mean (as ``librosa.to_mono``)."""
    return data.mean(axis=1, dtype=np.float32) if data.ndim == 2 else data.astype(np.float32, copy=False)


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono wave with ``librosa.resample(res_type="soxr_hq")`` (identity when the rates agree)."""
    if orig_sr == target_sr:
        return wave
    return librosa.resample(wave, orig_sr=orig_sr, target_sr=target_sr, res_type=RESAMPLER).astype(np.float32)


def load_audio(path: str | Path, sample_rate: int | None = None) -> np.ndarray:
    """A file as a mono float32 wave at ``sample_rate`` (its own rate when None); equals ``librosa.load(path,
    sr=sample_rate, mono=True)``."""
    data, rate = read_audio(path)
    return resample(to_mono(data), rate, sample_rate or rate)


def fix_length(wave: np.ndarray, samples: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Cut or zero-pad the last axis to ``samples``.

    Without ``rng`` (evaluation): a centre crop, or zero-padding at the end. With ``rng`` (training): a crop, or
    a placement inside the zero-padded window, at an offset drawn uniformly from ``rng``.
    """
    if samples <= 0:
        raise ValueError(f"samples must be positive, got {samples}")
    length = wave.shape[-1]
    if length == samples:
        return wave
    if length > samples:
        start = (length - samples) // 2 if rng is None else int(rng.integers(0, length - samples + 1))
        return wave[..., start:start + samples]
    start = 0 if rng is None else int(rng.integers(0, samples - length + 1))
    padding = [(0, 0)] * (wave.ndim - 1) + [(start, samples - length - start)]
    return np.pad(wave, padding)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset's file: its path and what is wrong."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def check_file(path: str | Path, level: str) -> Problem | None:
    """The problem with one file at a check level of :data:`CHECK_LEVELS`, or None when it passes."""
    if level not in CHECK_LEVELS:
        raise ValueError(f"check level must be one of {CHECK_LEVELS}, got {level!r}")
    try:
        if level == "exists":
            if not Path(path).is_file():
                raise AudioError(path, "file not found")
        elif level == "header":
            probe(path)
        else:
            read_audio(path)
    except AudioError as err:
        return Problem(err.path, err.reason)
    return None


def find_problems(paths: Iterable[str], level: str = "exists", *, progress: bool = False) -> list[Problem]:
    """Every missing (``exists``), unreadable or truncated (``header``) or undecodable (``decode``) file.

    The existence check lists each folder once, so it stays fast on 250,000 ESC-US clips.
    """
    paths = list(paths)
    if level == "exists":
        listed: dict[Path, set[str]] = {}
        for folder in {Path(p).parent for p in paths}:
            listed[folder] = {e.name for e in _scandir(folder) if e.is_file()}
        return [Problem(p, "file not found") for p in paths if Path(p).name not in listed[Path(p).parent]]
    checks = (check_file(p, level) for p in tqdm(paths, desc=f"checking audio ({level})", disable=not progress))
    return [problem for problem in checks if problem is not None]


def _scandir(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except FileNotFoundError:
        return []
