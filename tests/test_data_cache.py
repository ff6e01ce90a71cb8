"""The waveform cache: contents equal decoding, a second load maps the file without decoding, every change of
rate, length or file gives a new key, rows of cached files are reused, and a failed build leaves nothing."""

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from esclib.data import audio, cache
from esclib.data.clips import ClipSet
from esclib.data.metadata import clip_table


def _clips(folder: Path, rates=(8000, 22050, 44100, 16000), seconds=(0.3, 0.5, 0.25, 0.6)) -> ClipSet:
    rng = np.random.default_rng(0)
    paths = []
    for i, (rate, length) in enumerate(zip(rates, seconds)):
        path = folder / f"clip{i}.wav"
        sf.write(path, rng.uniform(-0.5, 0.5, (int(rate * length), 1 + i % 2)).astype(np.float32), rate)
        paths.append(str(path))
    n = len(paths)
    table = clip_table(clip_id=[Path(p).name for p in paths], path=paths, fold=[1] * n, target=[0] * n,
                       category=["a"] * n, source=[str(i) for i in range(n)])
    return ClipSet("toy", folder, ("a",), 1, 0.4, table)


@pytest.fixture
def counting(monkeypatch):
    """Counts calls of the decoder that the cache uses."""
    calls = []
    real = audio.load_audio

    def load(path, sample_rate=None):
        calls.append(path)
        return real(path, sample_rate)

    monkeypatch.setattr(audio, "load_audio", load)
    return calls


def test_cached_rows_equal_decoding_and_a_second_load_does_not_decode(tmp_path, counting):
    clips = _clips(tmp_path)
    waves = cache.cached_waveforms(clips, 16000, cache_dir=tmp_path / "cache", progress=False)
    assert isinstance(waves, np.memmap) and not waves.flags.writeable
    assert waves.shape == (4, 6400) and waves.dtype == np.float32 and len(counting) == 4
    for row, path in zip(waves, clips.paths):
        np.testing.assert_array_equal(row, audio.fix_length(audio.load_audio(path, 16000), 6400))
    counting.clear()
    again = cache.cached_waveforms(clips, 16000, cache_dir=tmp_path / "cache", progress=False)
    assert counting == [] and again.filename == waves.filename
    assert sorted(p.suffix for p in (tmp_path / "cache").iterdir()) == [".json", ".npy"]


def test_rate_length_and_file_changes_give_new_keys(tmp_path):
    clips = _clips(tmp_path)
    files = cache.file_stats(clips)
    key = cache.cache_key("toy", 16000, 6400, files)
    assert key == cache.cache_key("toy", 16000, 6400, list(files))
    assert key != cache.cache_key("toy", 32000, 6400, files)
    assert key != cache.cache_key("toy", 16000, 8000, files)
    assert key != cache.cache_key("other", 16000, 6400, files)
    assert key != cache.cache_key("toy", 16000, 6400, files[::-1])
    path = Path(clips.paths[0])
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert key != cache.cache_key("toy", 16000, 6400, cache.file_stats(clips))


def test_a_changed_file_is_decoded_again_and_the_others_are_copied(tmp_path, counting):
    clips = _clips(tmp_path)
    folder = tmp_path / "cache"
    first = np.array(cache.cached_waveforms(clips, 16000, cache_dir=folder, progress=False))
    sf.write(clips.paths[2], np.full(4000, 0.25, dtype=np.float32), 16000)
    counting.clear()
    second = cache.cached_waveforms(clips, 16000, cache_dir=folder, progress=False)
    assert counting == [clips.paths[2]]
    np.testing.assert_array_equal(second[[0, 1, 3]], first[[0, 1, 3]])
    np.testing.assert_allclose(second[2, :4000], 0.25)
    counting.clear()
    subset = cache.cached_waveforms(clips.subset([3, 1]), 16000, cache_dir=folder, progress=False)
    assert counting == [] and subset.shape == (2, 6400)
    np.testing.assert_array_equal(subset, first[[3, 1]])
    longer = cache.cached_waveforms(clips, 16000, seconds=1.0, cache_dir=folder, progress=False)
    assert longer.shape == (4, 16000) and len(counting) == 4


def test_an_undecodable_file_names_itself_and_leaves_no_partial_cache(tmp_path):
    clips = _clips(tmp_path)
    Path(clips.paths[1]).write_bytes(b"not audio")
    with pytest.raises(audio.AudioError, match="clip1.wav"):
        cache.cached_waveforms(clips, 16000, cache_dir=tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []
    Path(clips.paths[1]).unlink()
    with pytest.raises(audio.AudioError, match="clip1.wav: file not found"):
        cache.cached_waveforms(clips, 16000, cache_dir=tmp_path / "cache", progress=False)


def test_empty_clip_sets_give_an_empty_array(tmp_path):
    clips = _clips(tmp_path)
    empty = cache.cached_waveforms(clips.subset(np.zeros(4, dtype=bool)), 32000, cache_dir=tmp_path / "c",
                                   progress=False)
    assert empty.shape == (0, 12800)
    assert not (tmp_path / "c").exists()
