"""torch Datasets and DataLoaders over cached waveforms: one view of a clip, or two augmented views (chapters 4-5).

Every random choice of an item -- its crop, and the torch random numbers its ``transform`` draws -- comes from a
generator seeded by ``(seed, epoch, index, view)``: runs repeat exactly, workers never repeat each other's crops,
and each epoch draws new ones. :class:`EpochSampler` hands the epoch to the dataset with each index, so this holds
with any number of (persistent) workers.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from esclib.data.audio import fix_length
from esclib.data.cache import cached_waveforms
from esclib.data.clips import ClipSet
from esclib.data.splits import assert_trainable

Transform = Callable[[torch.Tensor], torch.Tensor]
Key = int | tuple[int, int]


class WaveformDataset(Dataset):
    """Items ``(wave, target, index)`` from rows of ``waves`` (e.g. :func:`~esclib.data.cache.cached_waveforms`).

    ``wave`` is a float32 tensor of ``crop_samples`` samples (a random crop when ``train``, else the centre crop;
    the whole row when None), passed through ``transform`` if given. ``target`` is an int (1-D ``targets``) or a
    float32 multi-hot tensor (2-D ``targets``). ``rows`` maps item i to row ``rows[i]`` of ``waves`` (default: row
    i), so splits can share one cached array. ``ends`` (one per item, e.g. :func:`sounding_ends`): a training crop
    of item i is drawn from the first ``max(ends[i], crop_samples)`` positions of its row, i.e. within the clip's
    sound rather than the zero padding that brings a short clip to the dataset's length. An item is ``dataset[i]``
    (epoch :meth:`set_epoch`) or ``dataset[(i, epoch)]``.
    """

    def __init__(self, waves: np.ndarray, targets: Sequence | np.ndarray, *, crop_samples: int | None = None,
                 train: bool = False, transform: Transform | None = None, seed: int = 0,
                 rows: Sequence[int] | np.ndarray | None = None,
                 ends: Sequence[int] | np.ndarray | None = None) -> None:
        self.rows = np.arange(len(waves)) if rows is None else np.asarray(rows, dtype=np.int64)
        self.targets = np.asarray(targets)
        if len(self.targets) != len(self.rows):
            raise ValueError(f"targets has {len(self.targets)} entries for {len(self.rows)} waveforms")
        if crop_samples is not None and crop_samples <= 0:
            raise ValueError(f"crop_samples must be positive, got {crop_samples}")
        self.ends = None if ends is None else np.asarray(ends, dtype=np.int64)
        if self.ends is not None and self.ends.shape != self.rows.shape:
            raise ValueError(f"ends has {len(self.ends)} entries for {len(self.rows)} waveforms")
        self.waves, self.crop_samples, self.train = waves, crop_samples, train
        self.transform, self.seed, self.epoch = transform, seed, 0

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """The epoch used by plain integer indexing."""
        self.epoch = epoch

    def _split_key(self, key: Key) -> tuple[int, int]:
        return (int(key[0]), int(key[1])) if isinstance(key, tuple) else (int(key), self.epoch)

    def _target(self, index: int) -> int | torch.Tensor:
        target = self.targets[index]
        return torch.as_tensor(target, dtype=torch.float32) if self.targets.ndim == 2 else int(target)

    def view(self, index: int, epoch: int, view: int = 0) -> torch.Tensor:
        """Item ``index``'s wave at ``epoch``, drawn with the generator of ``(seed, epoch, index, view)``."""
        rng = np.random.default_rng([self.seed, epoch, index, view])
        wave = np.asarray(self.waves[self.rows[index]], dtype=np.float32)
        if self.crop_samples is not None:
            if self.train and self.ends is not None:
                wave = wave[..., :max(int(self.ends[index]), self.crop_samples)]
            wave = fix_length(wave, self.crop_samples, rng if self.train else None)
        tensor = torch.from_numpy(np.array(wave, dtype=np.float32))
        transform = self.transform_of(view)
        if transform is None:
            return tensor
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2 ** 63)))
            return transform(tensor)

    def transform_of(self, view: int) -> Transform | None:
        """The transform that makes view ``view`` (here ``transform`` for every view)."""
        return self.transform

    def __getitem__(self, key: Key) -> tuple[torch.Tensor, int | torch.Tensor, int]:
        index, epoch = self._split_key(key)
        return self.view(index, epoch), self._target(index), index

    def __getstate__(self) -> dict:
        """Pickle a memmap as its file (workers re-map it) instead of copying the array."""
        state = self.__dict__.copy()
        if (isinstance(self.waves, np.memmap) and self.waves.filename is not None
                and np.load(self.waves.filename, mmap_mode="r").shape == self.waves.shape):
            state["waves"] = ("memmap", self.waves.filename)
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state["waves"], tuple):
            state["waves"] = np.load(state["waves"][1], mmap_mode="r")
        self.__dict__.update(state)


class TwoViewDataset(WaveformDataset):
    """Items ``(view1, view2, target, index)``: two independent random crops of a clip, each through its view's
    transform with its own random numbers (SimCLR-style positives, chapters 4-5). ``transform`` makes the first
    view and ``transform1`` the second (default: ``transform``); with neither, both views are the clip itself (the
    spectrogram-side augmentations of :class:`esclib.augment.views.ViewPolicy` then make them differ). A view is
    made from its own clip only: no view of a clip leaves the rows this dataset is given."""

    def __init__(self, waves: np.ndarray, targets: Sequence | np.ndarray, *, transform: Transform | None = None,
                 transform1: Transform | None = None, crop_samples: int | None = None, seed: int = 0,
                 rows: Sequence[int] | np.ndarray | None = None,
                 ends: Sequence[int] | np.ndarray | None = None) -> None:
        super().__init__(waves, targets, crop_samples=crop_samples, train=True, transform=transform, seed=seed,
                         rows=rows, ends=ends)
        self.transform1 = transform if transform1 is None else transform1

    def transform_of(self, view: int) -> Transform | None:
        """``transform`` for view 0, ``transform1`` for view 1."""
        return self.transform1 if view == 1 else self.transform

    def __getitem__(self, key: Key) -> tuple[torch.Tensor, torch.Tensor, int | torch.Tensor, int]:
        index, epoch = self._split_key(key)
        return self.view(index, epoch, 0), self.view(index, epoch, 1), self._target(index), index


class EpochSampler(Sampler):
    """Yields ``(index, epoch)``: shuffled by ``(seed, epoch)`` when ``shuffle``; each pass counts one epoch."""

    def __init__(self, size: int, *, shuffle: bool, seed: int = 0) -> None:
        self.size, self.shuffle, self.seed, self.epoch = size, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch of the next pass."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        order = (np.random.default_rng([self.seed, epoch]).permutation(self.size) if self.shuffle
                 else np.arange(self.size))
        return iter([(int(i), epoch) for i in order])


def collate(items: list[tuple]) -> tuple:
    """Stack a batch field by field: tensors with ``numpy.stack`` (a plain copy; ``torch.stack`` runs on torch's
    thread pool, 100x slower on 2 busy cores, see ``benchmarks/bench_data.py``), numbers as a tensor."""
    return tuple(torch.from_numpy(np.stack([value.numpy() for value in field])) if torch.is_tensor(field[0])
                 else torch.as_tensor(field) for field in zip(*items))


def clip_targets(clips: ClipSet) -> np.ndarray:
    """Class indices (single-label) or a float32 multi-hot matrix from the ``labels`` column (multi-label)."""
    if not clips.multi_label:
        return clips.targets
    multi_hot = np.zeros((len(clips), clips.num_classes), dtype=np.float32)
    for row, labels in enumerate(clips.table["labels"]):
        multi_hot[row, list(labels)] = 1.0
    return multi_hot


def clip_loader(clips: ClipSet, sample_rate: int, *, train: bool, batch_size: int, crop_seconds: float | None = None,
                transform: Transform | None = None, seed: int = 0, num_workers: int = 0,
                drop_last: bool | None = None, views: int = 1, pool: ClipSet | None = None,
                seconds: float | None = None, cache_dir: str | None = None, within_sound: bool = False,
                progress: bool = True) -> DataLoader:
    """A DataLoader over the cached waveforms of ``clips`` at ``sample_rate``.

    ``train``: shuffle each epoch, random crops, drop the last partial batch (unless ``drop_last`` says otherwise),
    and refuse clips a split marked as test (:func:`~esclib.data.splits.assert_trainable`). ``views=2`` yields
    :class:`TwoViewDataset` items. ``pool``: the whole dataset the clips were cut from; its single cache then
    serves every split and fold (no per-split cache files). ``seconds``: length of the cached waveforms (default
    ``clips.clip_seconds``), from which ``crop_seconds`` are cut. ``within_sound``: training crops lie within each
    clip's sound, up to its last non-zero sample (:func:`sounding_ends`), not in the padding of a short clip.
    """
    if views not in (1, 2):
        raise ValueError(f"views must be 1 or 2, got {views}")
    if train:
        assert_trainable(clips)
    source = clips if pool is None else pool
    waves = cached_waveforms(source, sample_rate, seconds, cache_dir=cache_dir, progress=progress)
    rows = None if pool is None else pool_rows(clips, pool)
    crop = None if crop_seconds is None else round(crop_seconds * sample_rate)
    ends = sounding_ends(waves, rows=rows) if within_sound and train and crop is not None else None
    return _loader(waves, clips, rows, train=train, batch_size=batch_size, crop_samples=crop, transform=transform,
                   seed=seed, num_workers=num_workers, drop_last=drop_last, views=views, ends=ends)


def sounding_ends(array: np.ndarray, silence: float = 0.0, *, rows: Sequence[int] | np.ndarray | None = None,
                  chunk: int = 256) -> np.ndarray:
    """For each row of ``array`` (``rows``, default all), one past the last position along its last axis at which
    it holds anything but ``silence`` (any channel or bin); 0 for a row that is silence throughout. ``silence``: 0
    for waveforms zero-padded to a dataset's length; for log-mels, the frontend's output for digital silence.
    Read ``chunk`` rows at a time, so that a memmap is never loaded whole."""
    rows = np.arange(len(array)) if rows is None else np.asarray(rows, dtype=np.int64)
    ends = np.zeros(len(rows), dtype=np.int64)
    for start in range(0, len(rows), chunk):
        block = np.asarray(array[rows[start:start + chunk]])
        sounding = (block != silence).reshape(len(block), -1, block.shape[-1]).any(axis=1)
        last = block.shape[-1] - np.argmax(sounding[:, ::-1], axis=1)
        ends[start:start + len(block)] = np.where(sounding.any(axis=1), last, 0)
    return ends


def _loader(array: np.ndarray, clips: ClipSet, rows: np.ndarray | None, *, train: bool, batch_size: int,
            crop_samples: int | None, transform: Transform | None, seed: int, num_workers: int,
            drop_last: bool | None, views: int, transform1: Transform | None = None,
            ends: np.ndarray | None = None) -> DataLoader:
    if views == 2:
        dataset = TwoViewDataset(array, clip_targets(clips), transform=transform, transform1=transform1,
                                 crop_samples=crop_samples, seed=seed, rows=rows, ends=ends)
    else:
        dataset = WaveformDataset(array, clip_targets(clips), crop_samples=crop_samples, train=train,
                                  transform=transform, seed=seed, rows=rows, ends=ends)
    return DataLoader(dataset, batch_size=batch_size, sampler=EpochSampler(len(dataset), shuffle=train, seed=seed),
                      drop_last=train if drop_last is None else drop_last, num_workers=num_workers,
                      collate_fn=collate, pin_memory=torch.cuda.is_available())


def array_loader(clips: ClipSet, pool: ClipSet, array: np.ndarray, *, train: bool, batch_size: int,
                 views: int = 1, transforms: tuple[Transform | None, Transform | None] = (None, None), seed: int = 0,
                 num_workers: int = 0, drop_last: bool | None = None) -> DataLoader:
    """A DataLoader over the rows of ``array`` (one row per clip of ``pool``: waveforms, or spectrograms from
    :func:`spectrogram_bank`) that belong to ``clips`` -- and only those: a fold split's training set never reads
    a test or validation row. ``train`` shuffles each epoch, drops the last partial batch and refuses test clips;
    ``views=2`` yields :class:`TwoViewDataset` items, view ``v`` through ``transforms[v]``. Notebook: 05_ssl."""
    if views not in (1, 2):
        raise ValueError(f"views must be 1 or 2, got {views}")
    if len(array) != len(pool):
        raise ValueError(f"array has {len(array)} rows but pool {pool.name} has {len(pool)} clips")
    if train:
        assert_trainable(clips)
    return _loader(array, clips, pool_rows(clips, pool), train=train, batch_size=batch_size, crop_samples=None,
                   transform=transforms[0], transform1=transforms[1], seed=seed, num_workers=num_workers,
                   drop_last=drop_last, views=views)


_BANKS: dict[tuple, np.ndarray] = {}


def spectrogram_bank(pool: ClipSet, frontend: Callable[[torch.Tensor], torch.Tensor], sample_rate: int, *,
                     seconds: float | None = None, batch_size: int = 64, device: str | torch.device = "cpu",
                     cache_dir: str | None = None, progress: bool = True) -> np.ndarray:
    """The ``frontend`` (e.g. a :class:`~esclib.features.logmel.LogMel`) of every clip of ``pool``, computed once
    from the cached waveforms at ``sample_rate`` and kept in memory for the rest of the process: a float32 array
    ``(len(pool), frames, bins)`` whose rows follow ``pool``. Training augments these spectrograms on the fly
    (:class:`esclib.augment.views.ViewPolicy`). Notebook: 05_ssl."""
    key = (pool.name, tuple(pool.paths), repr(frontend), sample_rate, seconds)
    if key not in _BANKS:
        waves = cached_waveforms(pool, sample_rate, seconds, cache_dir=cache_dir, progress=progress)
        frontend = frontend.to(device) if isinstance(frontend, torch.nn.Module) else frontend
        parts = []
        with torch.no_grad():
            for start in tqdm(range(0, len(waves), batch_size), desc="spectrograms", leave=False,
                              disable=not progress):
                batch = torch.from_numpy(np.array(waves[start:start + batch_size], dtype=np.float32)).to(device)
                parts.append(frontend(batch).float().cpu().numpy())
        _BANKS.clear()
        _BANKS[key] = np.concatenate(parts)
    return _BANKS[key]


def pool_rows(clips: ClipSet, pool: ClipSet) -> np.ndarray:
    position = {path: row for row, path in enumerate(pool.paths)}
    missing = [p for p in clips.paths if p not in position]
    if missing:
        raise ValueError(f"pool {pool.name} lacks {len(missing)} of the clips, e.g. {missing[0]}")
    return np.array([position[p] for p in clips.paths], dtype=np.int64)
