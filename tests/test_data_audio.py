"""esclib.data.audio: decoding every UrbanSound8K-style format, mono, resampling against librosa, fixed length, and
errors that name the file."""

from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from esclib.data import audio


def _tone(rate: int, seconds: float = 0.5, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    wave = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([wave * (c + 1) / channels for c in range(channels)], axis=1).astype(np.float32)


@pytest.mark.parametrize("rate, channels, subtype, fmt", [
    (8000, 1, "PCM_U8", "WAV"), (11025, 2, "PCM_16", "WAV"), (48000, 2, "PCM_24", "WAV"),
    (96000, 1, "FLOAT", "WAV"), (44100, 1, "PCM_16", "FLAC"), (44100, 2, "VORBIS", "OGG"),
])
def test_formats_decode_to_mono_at_the_model_rate_like_librosa_load(tmp_path, rate, channels, subtype, fmt):
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, _tone(rate, channels=channels), rate, subtype=subtype, format=fmt)
    for target in (16000, 22050, 32000, 44100):
        ours = audio.load_audio(path, target)
        reference, _ = librosa.load(path, sr=target, mono=True)
        assert ours.dtype == np.float32 and ours.ndim == 1
        np.testing.assert_allclose(ours, reference, atol=1e-6)


def test_mono_mixdown_is_the_channel_mean():
    stereo = np.array([[1.0, 0.0], [0.5, -0.5]], dtype=np.float32)
    np.testing.assert_array_equal(audio.to_mono(stereo), [0.5, 0.0])


def test_resampling_agrees_with_scipy_polyphase_on_a_band_limited_tone():
    wave = _tone(44100, seconds=1.0, freq=1000.0)[:, 0]
    ours = audio.resample(wave, 44100, 16000)
    reference = scipy.signal.resample_poly(wave, 160, 441)
    assert ours.shape == reference.shape == (16000,)
    inner = slice(500, -500)  # the filters' edge transients differ
    assert np.max(np.abs(ours[inner] - reference[inner])) < 1e-3
    assert audio.resample(wave, 44100, 44100) is wave


def test_fix_length_centre_crop_zero_pad_and_seeded_random_crop():
    wave = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(audio.fix_length(wave, 4), [3, 4, 5, 6])
    np.testing.assert_array_equal(audio.fix_length(wave[:3], 5), [0, 1, 2, 0, 0])
    crops = {tuple(audio.fix_length(wave, 4, np.random.default_rng(s))) for s in range(50)}
    assert len(crops) == 7  # every offset 0..6 is drawn
    assert all(np.array_equal(np.diff(c), np.ones(3)) for c in crops)
    padded = audio.fix_length(wave[:3], 5, np.random.default_rng(1))
    assert padded.shape == (5,) and sorted(padded[padded != 0]) == [1, 2]
    with pytest.raises(ValueError, match="samples"):
        audio.fix_length(wave, 0)


def _bad_files(folder: Path) -> dict[str, Path]:
    sf.write(folder / "good.wav", _tone(22050, channels=2), 22050, subtype="PCM_16")
    data = (folder / "good.wav").read_bytes()
    files = {"truncated": data[: len(data) // 2], "zero-length": b"", "not audio": b"plain text, not audio" * 20,
             "corrupt header": b"XXXX" + data[4:], "header only": data[:44]}
    paths = {}
    for reason, content in files.items():
        paths[reason] = folder / f"{reason.replace(' ', '_')}.wav"
        paths[reason].write_bytes(content)
    paths["missing"] = folder / "missing.wav"
    return paths


@pytest.mark.parametrize("level", ["header", "decode"])
def test_every_broken_file_is_an_error_naming_it(tmp_path, level):
    bad = _bad_files(tmp_path)
    for reason, path in bad.items():
        with pytest.raises(audio.AudioError) as err:
            audio.load_audio(path, 16000)
        assert str(path) in str(err.value), reason
        problem = audio.check_file(path, level)
        assert problem is not None and problem.path == str(path), reason
    assert audio.check_file(tmp_path / "good.wav", level) is None
    found = audio.find_problems([str(p) for p in bad.values()] + [str(tmp_path / "good.wav")], level)
    assert {p.path for p in found} == {str(p) for p in bad.values()}


def test_truncation_reasons_say_truncated(tmp_path):
    bad = _bad_files(tmp_path)
    with pytest.raises(audio.AudioError, match="truncated"):
        audio.probe(bad["truncated"])
    sf.write(tmp_path / "clip.ogg", _tone(44100), 44100, format="OGG", subtype="VORBIS")
    data = (tmp_path / "clip.ogg").read_bytes()
    (tmp_path / "cut.ogg").write_bytes(data[: len(data) // 2])
    assert audio.check_file(tmp_path / "cut.ogg", "header") is not None


def test_exists_level_lists_missing_files_only(tmp_path):
    sf.write(tmp_path / "a.wav", _tone(8000), 8000)
    (tmp_path / "empty.wav").write_bytes(b"")
    found = audio.find_problems([str(tmp_path / n) for n in ("a.wav", "empty.wav", "gone.wav")], "exists")
    assert [p.path for p in found] == [str(tmp_path / "gone.wav")]
    with pytest.raises(ValueError, match="check level"):
        audio.check_file(tmp_path / "a.wav", "deep")
