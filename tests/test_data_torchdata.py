"""torch datasets over cached waveforms: items and crops, reproducibility from (seed, epoch, index), workers that do
not repeat each other, two independent views, and the loader's refusal to train on test clips."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from esclib.data.cache import cached_waveforms
from esclib.data.clips import ClipSet
from esclib.data.metadata import clip_table
from esclib.data.splits import LeakError, fold_split
from esclib.data.torchdata import EpochSampler, TwoViewDataset, WaveformDataset, clip_loader, sounding_ends

WAVES = np.arange(6 * 100, dtype=np.float32).reshape(6, 100)
TARGETS = np.array([0, 1, 2, 0, 1, 2])


def _noise(wave: torch.Tensor) -> torch.Tensor:
    return wave + torch.randn_like(wave)


def test_items_are_wave_target_index_with_centre_or_random_crops():
    evaluation = WaveformDataset(WAVES, TARGETS, crop_samples=40)
    wave, target, index = evaluation[4]
    assert wave.dtype == torch.float32 and wave.shape == (40,) and (target, index) == (1, 4)
    np.testing.assert_array_equal(wave.numpy(), WAVES[4, 30:70])
    training = WaveformDataset(WAVES, TARGETS, crop_samples=40, train=True, seed=3)
    starts = {int(training[(4, epoch)][0][0]) - 400 for epoch in range(30)}
    assert len(starts) > 10 and min(starts) >= 0 and max(starts) <= 60
    assert torch.equal(training[(4, 2)][0], training[(4, 2)][0])
    assert not torch.equal(training[(4, 2)][0], training[(5, 2)][0] - 100)
    whole = WaveformDataset(WAVES, TARGETS)[0][0]
    assert whole.shape == (100,)
    with pytest.raises(ValueError, match="targets"):
        WaveformDataset(WAVES, TARGETS[:5])


def test_transforms_draw_from_the_item_seed_without_touching_the_global_rng():
    dataset = WaveformDataset(WAVES, TARGETS, transform=_noise, seed=1)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = dataset[(2, 0)][0]
    assert torch.equal(torch.rand(1), before)
    assert torch.equal(first, dataset[(2, 0)][0])
    assert not torch.equal(first, dataset[(2, 1)][0])
    assert not torch.equal(first, WaveformDataset(WAVES, TARGETS, transform=_noise, seed=2)[(2, 0)][0])


def test_two_views_are_independent_crops_and_augmentations():
    dataset = TwoViewDataset(WAVES, TARGETS, transform=_noise, crop_samples=50, seed=0)
    view1, view2, target, index = dataset[(3, 0)]
    assert view1.shape == view2.shape == (50,) and (target, index) == (0, 3)
    assert not torch.equal(view1, view2)
    again = dataset[(3, 0)]
    assert torch.equal(again[0], view1) and torch.equal(again[1], view2)


def test_sounding_ends_are_one_past_the_last_position_that_is_not_silence():
    waves = np.zeros((4, 10), np.float32)
    waves[0, :6] = 0.5  # sound then padding
    waves[1, 2] = -1e-6  # a single quiet sample inside: still sound
    waves[3] = 1.0  # no padding
    assert sounding_ends(waves).tolist() == [6, 3, 0, 10]
    assert sounding_ends(waves, rows=[3, 0], chunk=1).tolist() == [10, 6]
    logmels = np.full((3, 4, 8), -100.0, np.float32)  # (clips, bins, frames) at a floor of -100 dB
    logmels[0, 2, :5] = -20.0  # one bin sounds in frames 0-4
    logmels[1, 0, 7] = -99.0
    assert sounding_ends(logmels, -100.0).tolist() == [5, 8, 0]
    assert sounding_ends(logmels).tolist() == [8, 8, 8]  # against 0 dB every frame "sounds"


def test_training_crops_lie_within_a_clips_sound_and_evaluation_ignores_it():
    waves = np.zeros((3, 400), np.float32)
    waves[0, :100] = np.arange(1, 101)  # 100 samples of sound, 300 of padding
    waves[1, :30] = np.arange(1, 31)  # shorter than the crop
    waves[2] = np.arange(1, 401)  # sound throughout
    ends = sounding_ends(waves)
    training = WaveformDataset(waves, [0, 1, 2], crop_samples=50, train=True, seed=0, ends=ends)
    starts = {int(training[(0, epoch)][0][0]) - 1 for epoch in range(300)}
    assert starts == set(range(51))  # every start of [0, 100 - 50] drawn, none later
    assert all((training[(0, epoch)][0] > 0).all() for epoch in range(60))  # never a sample of padding
    for epoch in range(10):  # a short clip: its sound from the start, then the padding that makes up the crop
        np.testing.assert_array_equal(training[(1, epoch)][0].numpy(), waves[1, :50])
    assert max(int(training[(2, epoch)][0][0]) for epoch in range(60)) > 300  # a full clip: crops anywhere
    unbounded = WaveformDataset(waves, [0, 1, 2], crop_samples=50, train=True, seed=0)
    assert any((unbounded[(0, epoch)][0] == 0).all() for epoch in range(60))  # without ends: crops of padding only
    evaluation = WaveformDataset(waves, [0, 1, 2], crop_samples=50, ends=ends)
    np.testing.assert_array_equal(evaluation[0][0].numpy(), waves[0, 175:225])  # the centre crop, as without ends
    two = TwoViewDataset(waves, [0, 1, 2], crop_samples=50, seed=0, ends=ends)
    assert all((view > 0).all() for epoch in range(20) for view in two[(0, epoch)][:2])
    with pytest.raises(ValueError, match="ends has 2 entries for 3"):
        WaveformDataset(waves, [0, 1, 2], ends=[1, 2])


def test_epoch_sampler_reshuffles_each_pass_and_repeats_from_the_seed():
    sampler = EpochSampler(6, shuffle=True, seed=5)
    first, second = list(sampler), list(sampler)
    assert [e for _, e in first] == [0] * 6 and [e for _, e in second] == [1] * 6
    assert sorted(i for i, _ in first) == list(range(6)) and first != second
    assert list(EpochSampler(6, shuffle=True, seed=5)) == first
    assert [i for i, _ in EpochSampler(6, shuffle=False)] == list(range(6))


def _clip_set(folder: Path, n: int = 12) -> ClipSet:
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        paths.append(str(folder / f"{i}.wav"))
        sf.write(paths[-1], rng.uniform(-0.5, 0.5, 4000 + 100 * i).astype(np.float32), 8000)
    table = clip_table(clip_id=[Path(p).name for p in paths], path=paths, fold=[1 + i % 3 for i in range(n)],
                       target=[i % 2 for i in range(n)], category=["a", "b"] * (n // 2),
                       source=[str(i) for i in range(n)])
    return ClipSet("toy", folder, ("a", "b"), 3, 0.5, table)


def _epoch(loader) -> list[torch.Tensor]:
    return [batch[0] for batch in loader]


def test_loader_is_reproducible_and_workers_do_not_change_the_batches(tmp_path):
    clips = _clip_set(tmp_path)
    split = fold_split(clips, 1)
    options = dict(train=True, batch_size=2, crop_seconds=0.25, seed=4, cache_dir=tmp_path / "cache", progress=False)
    loader = clip_loader(split.train, 8000, **options)
    epoch0, epoch1 = _epoch(loader), _epoch(loader)
    assert len(epoch0) == 2 and epoch0[0].shape == (2, 2000)
    assert not all(torch.equal(a, b) for a, b in zip(epoch0, epoch1))
    with_workers = clip_loader(split.train, 8000, num_workers=2, **options)
    assert all(torch.equal(a, b) for a, b in zip(_epoch(with_workers), epoch0))
    assert all(torch.equal(a, b) for a, b in zip(_epoch(with_workers), epoch1))


def test_the_loader_crops_within_the_sound_of_short_clips_on_request(tmp_path):
    paths = [tmp_path / f"padded{i}.wav" for i in range(2)]
    for path in paths:  # 1000 samples of sound in 0.5-s (4000-sample) clips
        sf.write(path, np.full(1000, 0.25, np.float32), 8000)
    table = clip_table(clip_id=[p.name for p in paths], path=[str(p) for p in paths], fold=[1, 2], target=[0, 1],
                       category=["a", "b"], source=["p", "q"])
    world = ClipSet("padded", tmp_path, ("a", "b"), 2, 0.5, table)
    options = dict(train=True, batch_size=1, crop_seconds=0.1, seed=0, cache_dir=tmp_path / "cache", progress=False)
    within = clip_loader(world, 8000, within_sound=True, **options)
    anywhere = clip_loader(world, 8000, **options)
    crops = [batch[0] for _ in range(15) for batch in within]
    assert all((crop == 0.25).all() for crop in crops)  # every 800-sample crop inside the first 1000 samples
    assert any((batch[0] == 0).all() for _ in range(15) for batch in anywhere)


def test_loader_refuses_test_clips_for_training_and_shares_a_pool_cache(tmp_path):
    clips = _clip_set(tmp_path)
    split = fold_split(clips, 2)
    with pytest.raises(LeakError, match="refusing to train"):
        clip_loader(split.test, 8000, train=True, batch_size=2, cache_dir=tmp_path / "cache", progress=False)
    pooled = clip_loader(split.test, 8000, train=False, batch_size=8, pool=clips, cache_dir=tmp_path / "cache",
                         progress=False)
    own = clip_loader(split.test, 8000, train=False, batch_size=8, cache_dir=tmp_path / "cache", progress=False)
    (waves, targets, index), = list(pooled)
    assert torch.equal(waves, next(iter(own))[0]) and targets.tolist() == split.test.targets.tolist()
    assert index.tolist() == list(range(len(split.test)))
    full = cached_waveforms(clips, 8000, cache_dir=tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(waves.numpy(), full[np.flatnonzero(clips.folds == 2)])


def test_pickled_datasets_remap_their_memmap(tmp_path):
    clips = _clip_set(tmp_path)
    waves = cached_waveforms(clips, 8000, cache_dir=tmp_path / "cache", progress=False)
    dataset = WaveformDataset(waves, clips.targets, crop_samples=1000)
    blob = pickle.dumps(dataset)
    assert len(blob) < 10_000
    assert torch.equal(pickle.loads(blob)[5][0], dataset[5][0])


def test_multi_label_targets_become_multi_hot(tmp_path):
    clips = _clip_set(tmp_path, n=4)
    table = clips.table.assign(labels=[(0,), (1,), (0, 1), ()], target=-1)
    multi = ClipSet("toy", tmp_path, ("a", "b"), 3, 0.5, table, multi_label=True)
    loader = clip_loader(multi, 8000, train=False, batch_size=4, cache_dir=tmp_path / "cache", progress=False)
    _, targets, _ = next(iter(loader))
    assert targets.tolist() == [[1, 0], [0, 1], [1, 1], [0, 0]] and targets.dtype == torch.float32
