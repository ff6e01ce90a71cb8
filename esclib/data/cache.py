"""A disk cache of decoded, resampled, fixed-length waveforms, read back as memory-mapped arrays.

One ``.npy`` file (float32, one mono clip per row) per configuration, named by a hash of the dataset, sample rate,
length, resampler and every file's path, size and modification time: a second epoch or a second run maps the file
instead of decoding, and a changed rate, length or audio file gives a new key, never a stale array. A JSON manifest
beside each array lists its files; building a new array copies the rows of files already cached at the same rate and
length (e.g. a fold's training set after the whole dataset was cached) instead of decoding them again. Files are
written to a temporary name and renamed when complete. Decoding runs in one process: on 2 cores neither threads nor
processes decode clearly faster (``benchmarks/bench_data.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from esclib import paths
from esclib.data import audio
from esclib.data.clips import ClipSet

#: bump when the cached content changes meaning (invalidates every cache)
CACHE_VERSION = 1

FileStat = tuple[str, int, int]


def file_stats(clips: ClipSet) -> list[FileStat]:
    """``(path, size, mtime_ns)`` of every clip's file, the part of a cache key that notices changed files."""
    stats = []
    for path in clips.paths:
        try:
            st = os.stat(path)
        except FileNotFoundError as err:
            raise audio.AudioError(path, "file not found") from err
        stats.append((path, st.st_size, st.st_mtime_ns))
    return stats


def cache_key(name: str, sample_rate: int, samples: int, files: list[FileStat]) -> str:
    """The hash naming a cache: dataset, rate, length, resampler, and every file's path, size and mtime."""
    payload = json.dumps({"version": CACHE_VERSION, "dataset": name, "sample_rate": sample_rate, "samples": samples,
                          "resampler": audio.RESAMPLER, "files": files})
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def cached_waveforms(clips: ClipSet, sample_rate: int, seconds: float | None = None, *,
                     cache_dir: str | Path | None = None, progress: bool = True) -> np.ndarray:
    """The clips as a read-only ``(len(clips), round(seconds * sample_rate))`` float32 memmap, built on first use.

    Mono, resampled to ``sample_rate``, centre-cropped or zero-padded at the end to ``seconds`` (default
    ``clips.clip_seconds``). ``cache_dir`` defaults to ``esclib.paths.cache_dir()/waveforms``. A file that cannot
    be decoded raises :class:`~esclib.data.audio.AudioError` naming it.
    """
    samples = round((clips.clip_seconds if seconds is None else seconds) * sample_rate)
    if samples <= 0:
        raise ValueError(f"seconds * sample_rate must give at least one sample, got {samples}")
    if len(clips) == 0:
        empty = np.zeros((0, samples), dtype=np.float32)
        empty.flags.writeable = False
        return empty
    folder = Path(cache_dir) if cache_dir is not None else paths.cache_dir() / "waveforms"
    files = file_stats(clips)
    prefix = f"{re.sub(r'[^A-Za-z0-9_.-]', '_', clips.name)}-{sample_rate}hz-{samples}"
    array = folder / f"{prefix}-{cache_key(clips.name, sample_rate, samples, files)}.npy"
    if not (array.is_file() and array.with_suffix(".json").is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        _build(array, files, sample_rate, samples, clips.name, progress)
    return np.load(array, mmap_mode="r")


def _donors(folder: Path, sample_rate: int, samples: int) -> dict[tuple, tuple[Path, int]]:
    """Every file already cached at this rate and length: ``(path, size, mtime) -> (array, row)``."""
    rows: dict[tuple, tuple[Path, int]] = {}
    for manifest in folder.glob(f"*-{sample_rate}hz-{samples}-*.json"):
        if manifest.with_suffix(".npy").is_file():
            for row, stat in enumerate(json.loads(manifest.read_text())["files"]):
                rows[tuple(stat)] = (manifest.with_suffix(".npy"), row)
    return rows


def _build(array: Path, files: list[FileStat], sample_rate: int, samples: int, name: str, progress: bool) -> None:
    donors = _donors(array.parent, sample_rate, samples)
    opened: dict[Path, np.ndarray] = {}
    tmp = array.with_name(f".{array.stem}.{os.getpid()}.{os.urandom(4).hex()}.tmp.npy")
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(files), samples))
        for row, stat in enumerate(tqdm(files, desc=f"caching {name} at {sample_rate} Hz", unit="clip",
                                        disable=not progress)):
            if stat in donors:
                source, source_row = donors[stat]
                out[row] = opened.setdefault(source, np.load(source, mmap_mode="r"))[source_row]
            else:
                out[row] = audio.fix_length(audio.load_audio(stat[0], sample_rate), samples)
        out.flush()
        del out
        os.replace(tmp, array)
        manifest = {"dataset": name, "sample_rate": sample_rate, "samples": samples, "resampler": audio.RESAMPLER,
                    "files": files}
        tmp_manifest = tmp.with_suffix(".json.tmp")
        tmp_manifest.write_text(json.dumps(manifest))
        os.replace(tmp_manifest, array.with_suffix(".json"))
    finally:
        tmp.unlink(missing_ok=True)


class _Decoded(Dataset):
    """Each clip decoded, mono, at ``sample_rate``, its first ``samples`` samples (zeros appended when shorter)."""

    def __init__(self, paths: list[str], sample_rate: int, samples: int) -> None:
        self.paths, self.sample_rate, self.samples = paths, sample_rate, samples

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        wave = audio.load_audio(self.paths[i], self.sample_rate)[: self.samples]
        return torch.from_numpy(np.pad(wave, (0, self.samples - len(wave))))


def cached_features(clips: ClipSet, feature: Callable[[torch.Tensor], torch.Tensor], *, sample_rate: int,
                    samples: int, shape: tuple[int, ...], config: Mapping[str, object], name: str = "features",
                    cache_dir: str | Path | None = None, batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """``feature`` of every clip (decoded mono at ``sample_rate``, its first ``samples`` samples, zero-padded), as a
    read-only ``(len(clips), *shape)`` float32 memmap computed once and cached on disk.

    The cache key is ``config`` (everything that defines ``feature``: give every parameter, e.g. its ``repr``), the
    rate, the length, the resampler and every file's path, size and mtime, so a changed feature or file is never
    read stale. ``feature`` must be deterministic (no augmentation). Clips are decoded one batch at a time: no
    whole-dataset waveform cache is needed (50,000 ESC-US clips). Used by chapter 03 (the CAE input) and for cached
    log-mel features.
    """
    folder = Path(cache_dir) if cache_dir is not None else paths.cache_dir() / name
    key = hashlib.sha256(json.dumps({"version": CACHE_VERSION, "dataset": clips.name, "config": dict(config),
                                     "sample_rate": sample_rate, "samples": samples, "resampler": audio.RESAMPLER,
                                     "files": file_stats(clips)}, default=str).encode()).hexdigest()[:24]
    target = folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', clips.name)}-{'x'.join(map(str, shape))}-{key}.npy"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.stem}.{os.getpid()}.{os.urandom(4).hex()}.tmp.npy")
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(clips), *shape))
            row = 0
            with torch.no_grad():
                for batch in tqdm(DataLoader(_Decoded(clips.paths, sample_rate, samples), batch_size=batch_size,
                                             generator=torch.Generator()),
                                  desc=f"{name} of {clips.name}", unit="batch", disable=not progress):
                    values = feature(batch)
                    if tuple(values.shape[1:]) != tuple(shape):
                        raise ValueError(f"cached_features: the feature gives shape {tuple(values.shape[1:])} per "
                                         f"clip, not the declared {tuple(shape)}")
                    out[row:row + len(batch)] = values.numpy()
                    row += len(batch)
            out.flush()
            del out
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return np.load(target, mmap_mode="r")
