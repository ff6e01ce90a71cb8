"""esclib.features against librosa, the PANN golden frontend tensors and closed forms."""

from __future__ import annotations


import librosa
import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from _reference import GOLDEN
from esclib.features import CAEInput, LogMel, Normaliser, ThreeBandSpectrogram, fit_normaliser, power_to_db

#: the authors' reference checkpoints (see tests/_reference.py)
#: float32 FFT round-off is relative to a frame's energy: compare bins within 60 dB (power) of the clip's maximum
DYNAMIC_RANGE = 1e-6


def _clips(sample_rate: int, seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    """White noise and a chirp sweeping 100 Hz -> 0.4 sr (the chirp leaves most bins near-silent)."""
    samples = int(seconds * sample_rate)
    noise = np.random.default_rng(seed).standard_normal(samples)
    chirp = librosa.chirp(fmin=100, fmax=0.4 * sample_rate, sr=sample_rate, length=samples)
    return np.stack([0.1 * noise, 0.5 * chirp])


LIBROSA_CONFIGS = [
    (16000, dict(n_fft=512, hop_length=160, n_mels=64, fmin=50, fmax=8000)),
    (32000, dict(n_fft=1024, hop_length=320, n_mels=64, fmin=50, fmax=14000)),
    (44100, dict(n_fft=2048, hop_length=512, n_mels=128, fmin=0.0, fmax=None, win_length=1500, window="hamming",
                 pad_mode="constant")),
    (44100, dict(n_fft=1024, hop_length=441, n_mels=40, fmin=20, fmax=20000, center=False, power=1.0)),
]


def _librosa_mel(y: np.ndarray, sr: int, cfg: dict) -> np.ndarray:
    return np.stack([librosa.feature.melspectrogram(y=clip, sr=sr, **{"pad_mode": "reflect", **cfg}).T for clip in y])


@pytest.mark.parametrize(("sr", "cfg"), LIBROSA_CONFIGS)
def test_logmel_power_matches_librosa(sr: int, cfg: dict) -> None:
    y = _clips(sr)
    ref = _librosa_mel(y, sr, cfg)
    logmel = LogMel(sr, **cfg)
    ours64 = logmel.mel_power(torch.from_numpy(y)).numpy()
    assert ours64.shape == ref.shape == (2, logmel.num_frames(y.shape[1]), cfg["n_mels"])
    np.testing.assert_allclose(ours64, ref, rtol=1e-4, atol=0)
    ours32 = logmel.mel_power(torch.from_numpy(y.astype(np.float32))).numpy()
    loud = ref >= DYNAMIC_RANGE ** (logmel.power / 2) * ref.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(ours32[loud], ref[loud], rtol=1e-4, atol=0)
    assert np.abs(ours32 - ref).max() <= 1e-4 * ref.max()


@pytest.mark.parametrize(("sr", "cfg"), LIBROSA_CONFIGS[:3])
def test_logmel_db_matches_librosa(sr: int, cfg: dict) -> None:
    y = _clips(sr, seed=1)
    ref = _librosa_mel(y, sr, cfg)
    ours = LogMel(sr, **cfg)(torch.from_numpy(y)).numpy()
    expected = librosa.power_to_db(ref, top_db=None)
    above_amin = ref > 1e-10
    np.testing.assert_allclose(ours[above_amin], expected[above_amin], atol=1e-3, rtol=0)
    ours32 = LogMel(sr, **cfg)(torch.from_numpy(y.astype(np.float32))).numpy()
    loud = ref >= DYNAMIC_RANGE * ref.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(ours32[loud], expected[loud], atol=1e-3, rtol=0)


def test_logmel_ref_max_and_top_db_are_per_clip() -> None:
    sr, cfg = LIBROSA_CONFIGS[1]
    y = _clips(sr, seed=2) * np.array([[1.0], [30.0]])
    ref = _librosa_mel(y, sr, cfg)
    ours = LogMel(sr, **cfg, ref="max", top_db=80.0)(torch.from_numpy(y)).numpy()
    expected = np.stack([librosa.power_to_db(m, ref=np.max, top_db=80.0) for m in ref])
    np.testing.assert_allclose(ours, expected, atol=1e-3, rtol=0)
    assert ours.max(axis=(1, 2)) == pytest.approx([0.0, 0.0], abs=1e-6)
    assert ours.min() >= -80.0 - 1e-6


def test_power_to_db_rejects_bad_arguments() -> None:
    spec = torch.ones(1, 2, 3)
    with pytest.raises(ValueError, match="amin"):
        power_to_db(spec, amin=0.0)
    with pytest.raises(ValueError, match="top_db"):
        power_to_db(spec, top_db=-1.0)
    with pytest.raises(ValueError, match="ref"):
        power_to_db(spec, ref="min")
    with pytest.raises(ValueError, match="fmax"):
        LogMel(16000, 512, 160, 64, 50, 9000)


def _torchlibrosa_logmel(waveform: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
    """The authors' frontend: conv1d with the stored DFT kernels, power, stored melW, 10 log10(max(x, 1e-10))."""
    conv_real = state["spectrogram_extractor.stft.conv_real.weight"]
    n_fft = conv_real.shape[-1]
    x = F.pad(waveform[:, None, :], (n_fft // 2, n_fft // 2), mode="reflect")
    real = F.conv1d(x, conv_real, stride=320)
    imag = F.conv1d(x, state["spectrogram_extractor.stft.conv_imag.weight"], stride=320)
    power = (real.square() + imag.square()).transpose(1, 2)
    return 10 * torch.log10(torch.matmul(power, state["logmel_extractor.melW"]).clamp_min(1e-10))


@pytest.mark.usefixtures("golden")
def test_logmel_equals_pann_frontend_of_golden_checkpoint() -> None:
    state = torch.load(GOLDEN / "Cnn6_random.pth", map_location="cpu", weights_only=True)["model"]
    waveform = torch.from_numpy(np.load(GOLDEN / "input_32k.npy"))
    theirs = _torchlibrosa_logmel(waveform, state)
    ours = LogMel(32000, 1024, 320, 64, 50, 14000)(waveform)
    assert ours.shape == theirs.shape == (1, 701, 64)
    assert (ours - theirs).abs().max().item() < 2e-3  # dB; measured 4e-4 (float32 conv1d vs FFT)


def test_three_band_shape_and_librosa_reference() -> None:
    rng = np.random.default_rng(3)
    y = (0.1 * rng.standard_normal((2, 220500))).astype(np.float32)
    three_band = ThreeBandSpectrogram()
    ours = three_band(torch.from_numpy(y)).numpy()
    assert ours.shape == (2, 3, 341, 394)
    stft = librosa.stft(y.astype(np.float64) * 32768.0, n_fft=2048, hop_length=561, win_length=1654,
                        window="blackmanharris", center=True, pad_mode="reflect") / np.sqrt(2048)
    power = (np.abs(stft[:, :1023]) ** 2).reshape(2, 3, 341, -1)
    loud = power >= DYNAMIC_RANGE * power.max(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(ours[loud], 10 * np.log10(power[loud]), atol=1e-3, rtol=0)
    periodic = scipy.signal.get_window("blackmanharris", 1654)  # scipy's default: fftbins=True (periodic)
    np.testing.assert_allclose(three_band.window.numpy(), periodic)


@pytest.mark.parametrize("bin_index", [40, 341 + 100, 2 * 341 + 250])
def test_three_band_pure_tone_lands_in_its_band_and_bin(bin_index: int) -> None:
    sr = 44100
    t = np.arange(sr) / sr
    tone = torch.from_numpy(0.5 * np.sin(2 * np.pi * bin_index * sr / 2048 * t)).float()
    spec = ThreeBandSpectrogram()(tone[None])[0]  # (3, 341, frames)
    frame = spec[:, :, spec.shape[-1] // 2]
    band, row = divmod(int(frame.argmax()), 341)
    assert (band, row) == divmod(bin_index, 341)


def test_three_band_stereo_is_per_channel_and_silence_hits_the_floor() -> None:
    stereo = torch.randn(2, 2, 44100)
    three_band = ThreeBandSpectrogram()
    out = three_band(stereo)
    assert out.shape == (2, 2, 3, 341, three_band.num_frames(44100))
    torch.testing.assert_close(out[:, 1], three_band(stereo[:, 1]))
    assert three_band(torch.zeros(1, 4410)).max().item() == pytest.approx(-180.0)


def _cae_reference(y: np.ndarray) -> np.ndarray:
    """Study 002's DataHandler with librosa: pad/crop to 220,500, peak-normalise, mel, logamplitude(ref=max)."""
    y = np.pad(y, (0, max(0, 220500 - len(y))))[:220500].astype(np.float64)
    y = y / np.abs(y).max()
    mel = librosa.feature.melspectrogram(y=y, sr=44100, n_mels=28, n_fft=12288, hop_length=6144, pad_mode="reflect")
    return librosa.power_to_db(mel, ref=np.max, top_db=80.0)


@pytest.mark.parametrize("samples", [220500, 150000, 250000])
def test_cae_input_matches_the_study_pipeline(samples: int) -> None:
    y = np.random.default_rng(samples).standard_normal((2, samples)).astype(np.float32) * np.array([[0.01], [0.7]],
                                                                                                  dtype=np.float32)
    cae = CAEInput()
    ours = cae(torch.from_numpy(y)).numpy()
    assert ours.shape == (2, 1, 28, 36) and cae.shape == (1, 28, 36)
    for clip, out in zip(y, ours):
        np.testing.assert_allclose(out[0], _cae_reference(clip), atol=1e-3, rtol=0)


def test_cae_input_larger_configuration_and_silence() -> None:
    cae = CAEInput(n_mels=64, n_fft=2048, hop_length=1024)
    assert cae(torch.randn(1, 220500)).shape == (1, *cae.shape) == (1, 1, 64, 216)
    assert torch.equal(CAEInput()(torch.zeros(1, 1000)), torch.zeros(1, 1, 28, 36))


def _two_populations(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    scale = torch.linspace(0.5, 3.0, 8)
    train = torch.randn(40, 20, 8, generator=gen) * scale + torch.arange(8.0)
    test = torch.randn(10, 20, 8, generator=gen) * scale + torch.arange(8.0) + 5.0
    return train, test


def test_normaliser_fitted_on_training_data_standardises_it() -> None:
    train, test = _two_populations()
    norm = fit_normaliser(train, dims=(0, 1), progress=False)
    assert norm.mean.shape == (1, 8)
    z = norm(train)
    torch.testing.assert_close(z.mean(dim=(0, 1)), torch.zeros(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(dim=(0, 1), unbiased=False), torch.ones(8), atol=1e-5, rtol=0)
    assert norm(test).mean().item() > 1.0  # test statistics were not used
    global_norm = fit_normaliser(train, dims=(0, 1, 2), progress=False)
    assert global_norm.mean.shape == (1, 1)
    assert global_norm(train).mean().abs().item() < 1e-5


def test_normaliser_streams_a_loader_through_a_transform_and_round_trips() -> None:
    waves = torch.randn(12, 8000) * torch.linspace(0.1, 1.0, 12)[:, None]
    targets = torch.zeros(12, dtype=torch.long)
    logmel = LogMel(16000, 512, 160, 64, 50, 8000)
    loader = DataLoader(TensorDataset(waves, targets), batch_size=5)
    streamed = fit_normaliser(loader, dims=(0, 1), transform=logmel, progress=False)
    whole = fit_normaliser(logmel(waves), dims=(0, 1), progress=False)
    torch.testing.assert_close(streamed.mean, whole.mean, atol=1e-4, rtol=0)
    torch.testing.assert_close(streamed.std, whole.std, atol=1e-4, rtol=1e-5)
    restored = Normaliser.from_state_dict(streamed.state_dict())
    torch.testing.assert_close(restored(logmel(waves)), streamed(logmel(waves)))
    with pytest.raises(ValueError, match="include 0"):
        fit_normaliser(waves, dims=(1,), progress=False)


def test_features_run_on_the_meta_device() -> None:
    waves = torch.empty(2, 220500, device="meta")
    assert LogMel(32000, 1024, 320, 64, 50, 14000).to("meta")(waves).shape == (2, 690, 64)
    assert ThreeBandSpectrogram().to("meta")(waves).shape == (2, 3, 341, 394)
    assert CAEInput().to("meta")(waves).shape == (2, 1, 28, 36)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_features_on_cuda_equal_cpu() -> None:
    waves = torch.randn(2, 44100)
    for module in (LogMel(32000, 1024, 320, 64, 50, 14000), ThreeBandSpectrogram(), CAEInput()):
        cpu = module(waves)
        torch.testing.assert_close(module.to("cuda")(waves.cuda()).cpu(), cpu, atol=1e-3, rtol=1e-4)
