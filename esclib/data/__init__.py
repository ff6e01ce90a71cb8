"""The datasets and everything between their files and a model's input batch.

- :func:`load` (:mod:`~esclib.data.registry`): ESC-50, ESC-10, UrbanSound8K, ESC-US, DCASE 2013 SCD and
  ``audioset-mini`` from their official layouts, as a :class:`ClipSet`; :func:`download_dataset`,
  :func:`verify_dataset`.
- :mod:`~esclib.data.splits`: official folds, random split, class-balanced labelled subsets, the leak guard.
- :mod:`~esclib.data.audio` and :mod:`~esclib.data.cache`: decoding, resampling, the memory-mapped waveform cache.
- :mod:`~esclib.data.torchdata`: torch datasets and loaders (imported on first use: it imports torch).
"""

from __future__ import annotations

import importlib

from esclib.data.audio import AudioError, fix_length, load_audio
from esclib.data.cache import cached_waveforms
from esclib.data.clips import ClipSet
from esclib.data.download import DownloadError, download_dataset
from esclib.data.registry import DataFileError, default_root, load, names
from esclib.data.splits import FoldSplit, LeakError, check_no_leak, fold_split, labelled_subset, random_split
from esclib.data.verify import verify_dataset

_TORCH = ("WaveformDataset", "TwoViewDataset", "EpochSampler", "array_loader", "clip_loader", "spectrogram_bank")

__all__ = ["AudioError", "ClipSet", "DataFileError", "DownloadError", "FoldSplit", "LeakError", "cached_waveforms",
           "check_no_leak", "default_root", "download_dataset", "fix_length", "fold_split", "labelled_subset", "load",
           "load_audio", "names", "random_split", "verify_dataset", *_TORCH]


def __getattr__(name: str) -> object:
    if name in _TORCH:
        return getattr(importlib.import_module("esclib.data.torchdata"), name)
    raise AttributeError(f"module 'esclib.data' has no attribute {name!r}")
