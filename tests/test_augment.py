"""esclib.augment: each augmentation's stated properties, reproducibility, eval-mode identity, shapes and devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from esclib.augment import (AddNoise, CutOutSpec, Gain, Occlusion, PatchAugment, PitchShift, RandomChoice, SpecAugment,
                            SpeedPerturbation, TimeShift, TimeStretch, add_noise, cutout_spec, do_mixup, gain,
                            get_policy, mixup_batch, mixup_lambdas, occlusion, patch_augment, pitch_shift,
                            random_crop, speed_perturb, time_shift, time_stretch)
from esclib.augment.policies import POLICY_NAMES

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def runs(flags: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a 1-D boolean tensor."""
    padded = torch.cat([torch.tensor([False]), flags.cpu(), torch.tensor([False])]).int()
    edges = torch.diff(padded)
    return (torch.nonzero(edges == -1).flatten() - torch.nonzero(edges == 1).flatten()).tolist()


# --- SpecAugment -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("time_w, time_n, freq_w, freq_n", [(64, 2, 8, 2), (32, 1, 8, 1), (64, 2, 35, 2)])
def test_specaugment_stripes_within_bounds(time_w, time_n, freq_w, freq_n):
    x = torch.ones(64, 2, 300, 64)
    out = SpecAugment(time_w, time_n, freq_w, freq_n, generator=gen()).train()(x)
    assert torch.equal(out[:, 0], out[:, 1]), "channels of one example share the stripes"
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    dropped_frames = dropped_bins = 0
    for example in out[:, 0]:
        zero = example == 0
        frame_runs, bin_runs = runs(zero.all(dim=1)), runs(zero.all(dim=0))
        assert len(frame_runs) <= time_n and sum(frame_runs) <= time_n * (time_w - 1)
        assert len(bin_runs) <= freq_n and sum(bin_runs) <= freq_n * (freq_w - 1)
        if time_n == 1:
            assert max(frame_runs, default=0) <= time_w - 1
        # every zero lies in a dropped frame or a dropped bin
        assert torch.equal(zero, zero.all(dim=1, keepdim=True) | zero.all(dim=0, keepdim=True))
        dropped_frames += sum(frame_runs)
        dropped_bins += sum(bin_runs)
    mean_width = (time_w - 1) / 2 * time_n
    assert 0.6 * mean_width < dropped_frames / 64 <= time_n * (time_w - 1)
    assert dropped_bins > 0


def test_specaugment_reproducible_eval_identity_and_3d():
    x = torch.randn(8, 100, 64)
    a = SpecAugment(20, 2, 10, 2, generator=gen(3))(x)
    b = SpecAugment(20, 2, 10, 2, generator=gen(3))(x)
    c = SpecAugment(20, 2, 10, 2, generator=gen(4))(x)
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == x.shape
    assert SpecAugment(20, 2, 10, 2).eval()(x) is x


# --- mixup -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [1.0, 0.4, 4.0])
def test_mixup_lambdas_pairs_and_beta_distribution(alpha):
    lam = mixup_lambdas(4000, alpha, generator=gen())
    assert lam.shape == (4000,) and lam.dtype == torch.float32
    assert torch.allclose(lam[0::2] + lam[1::2], torch.ones(2000))
    assert stats.kstest(lam[0::2].numpy(), stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    assert torch.equal(lam, mixup_lambdas(4000, alpha, generator=gen()))
    with pytest.raises(ValueError, match="even"):
        mixup_lambdas(5)


def test_do_mixup_pairwise_formula_and_targets_sum_to_one():
    x, lam = torch.randn(6, 3, 5), mixup_lambdas(6, generator=gen(1))
    expected = torch.stack([x[2 * i] * lam[2 * i] + x[2 * i + 1] * lam[2 * i + 1] for i in range(3)])
    assert torch.allclose(do_mixup(x, lam), expected)
    targets = torch.nn.functional.one_hot(torch.tensor([0, 2, 1, 1, 3, 0]), 4).float()
    assert torch.allclose(do_mixup(targets, lam).sum(dim=1), torch.ones(3))


def test_mixup_batch_is_a_convex_mix_with_a_permutation():
    identity = torch.eye(8)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    x_mix, y_mix = mixup_batch(identity, labels, 1.0, gen(2), num_classes=3)
    assert torch.allclose(y_mix.sum(dim=1), torch.ones(8))
    lam = x_mix.diagonal()
    assert torch.allclose(lam, lam[0].expand(8)), "one lambda for the batch"
    mixing = (x_mix - lam[0] * identity) / (1 - lam[0])
    assert torch.allclose(mixing.sum(dim=0), torch.ones(8)) and torch.allclose(mixing.sum(dim=1), torch.ones(8))
    one_hot = torch.nn.functional.one_hot(labels, 3).float()
    assert torch.allclose(y_mix, x_mix @ one_hot, atol=1e-6), "targets mixed with the same lambda and permutation"
    with pytest.raises(ValueError, match="num_classes"):
        mixup_batch(identity, labels)


# --- waveform ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("snr", [5.0, 15.0, (0.0, 30.0)])
def test_add_noise_reaches_the_snr(device, snr):
    x = torch.randn(16, 8000, device=device) * torch.logspace(-3, 0, 16, device=device)[:, None]
    y = add_noise(x, snr, generator=gen())
    achieved = 10 * torch.log10(x.pow(2).sum(1) / (y - x).pow(2).sum(1))
    assert y.device == x.device and y.shape == x.shape
    if isinstance(snr, tuple):
        assert ((achieved > snr[0] - 0.5) & (achieved < snr[1] + 0.5)).all() and achieved.std() > 1
    else:
        assert (achieved - snr).abs().max() < 0.5
    silent = add_noise(torch.zeros(2, 100, device=device), 10.0, generator=gen())
    assert not silent.any()


def test_gain_shift_and_crop():
    x = torch.randn(32, 1000)
    ratio_db = 20 * torch.log10(gain(x, -6.0, 3.0, generator=gen()).norm(dim=1) / x.norm(dim=1))
    assert (ratio_db >= -6.0 - 1e-4).all() and (ratio_db <= 3.0 + 1e-4).all() and ratio_db.std() > 1
    ramp = torch.arange(1000.0).expand(32, 1000)
    rolled = time_shift(ramp, 100, "roll", generator=gen())
    shifts = torch.remainder(-(rolled[:, 0]), 1000)
    assert all(torch.equal(r, torch.roll(ramp[0], int(s))) for r, s in zip(rolled, shifts))
    assert shifts.abs().max() <= 100 or (1000 - shifts).abs().min() <= 100
    zeroed = time_shift(ramp + 1, 0.1, "zero", generator=gen())
    assert all((row == 0).sum() <= 100 for row in zeroed)
    crop = random_crop(ramp, 200, generator=gen())
    assert crop.shape == (32, 200) and torch.equal(torch.diff(crop, dim=1), torch.ones(32, 199))


def test_speed_perturbation_matches_nearest_resampling():
    length = 1000
    x = torch.randn(3, length)
    slow = speed_perturb(x, 2.0, align="left", generator=gen())
    expected = x[:, torch.arange(0, length, 0.5).round().long().clamp(max=length - 1)[:length]]
    assert torch.equal(slow, expected)
    fast = speed_perturb(x, 0.5, align="left", generator=gen())
    assert torch.equal(fast[:, :500], x[:, torch.arange(0, length, 2.0).long()]) and not fast[:, 500:].any()
    ramp = torch.arange(float(length)).expand(8, length)
    linear = speed_perturb(ramp, (0.5, 1.5), interpolation="linear", generator=gen())
    for row in linear:
        steps = torch.diff(row[row != 0])[:-2]  # the last samples hold the ramp's end value
        assert torch.allclose(steps, steps[0].expand_as(steps), atol=1e-3), "a linearly resampled ramp stays linear"
    assert torch.equal(speed_perturb(x, (0.5, 1.5), generator=gen(5)), speed_perturb(x, (0.5, 1.5), generator=gen(5)))


def test_occlusion_hides_one_section_of_the_stated_size():
    out = occlusion(torch.ones(64, 1000), (0.1, 0.3), fill=0.0, generator=gen())
    for row in out:
        hidden = runs(row == 0)
        assert len(hidden) == 1 and 100 <= hidden[0] < 300


# --- spectrogram -------------------------------------------------------------------------------------------------
def test_patch_augment_patches():
    x = torch.ones(16, 2, 100, 64)
    out = patch_augment(x, 5, 10, 0.0, generator=gen())
    zeros = (out[:, 0] == 0).flatten(1).sum(dim=1)
    assert torch.equal(out[:, 0], out[:, 1]) and ((zeros >= 100) & (zeros <= 500)).all()
    spec = torch.randn(4, 50, 40)
    filled = patch_augment(spec, 3, (5, 8), "mean", generator=gen())
    changed = filled != spec
    assert torch.allclose(filled[changed], spec.mean(dim=(1, 2), keepdim=True).expand_as(spec)[changed])


def test_cutout_spec_one_rectangle_within_scales():
    out = cutout_spec(torch.zeros(32, 200, 64), (0.1, 0.5), (0.2, 0.4), -80.0, generator=gen())
    for example in out:
        cut = example == -80.0
        frames, bins = cut.any(dim=1), cut.any(dim=0)
        assert cut.sum() == frames.sum() * bins.sum(), "a rectangle"
        assert len(runs(frames)) == 1 and 40 <= frames.sum() < 80
        assert len(runs(bins)) == 1 and 7 <= bins.sum() < 32


# --- modules: probability, eval mode, reproducibility, devices ----------------------------------------------------
def modules() -> list[tuple[torch.nn.Module, tuple[int, ...]]]:
    return [(AddNoise((5.0, 15.0)), (4, 4000)), (Gain(-6, 6), (4, 4000)), (TimeShift(0.2), (4, 4000)),
            (SpeedPerturbation((0.5, 1.5)), (4, 4000)), (Occlusion((0.1, 0.5)), (4, 4000)),
            (PatchAugment(5, 10), (4, 1, 60, 64)), (CutOutSpec(), (4, 60, 64)),
            (SpecAugment(20, 2, 8, 2), (4, 1, 60, 64)), (TimeStretch((0.8, 1.2)), (2, 4000)),
            (PitchShift(16000, (-2, 2)), (2, 4000)), (RandomChoice(Gain(-6, -3), Gain(3, 6)), (4, 4000))]


@pytest.mark.parametrize("module, shape", modules(), ids=[type(m).__name__ for m, _ in modules()])
def test_module_eval_identity_reproducible_and_shape(module, shape):
    x = torch.randn(shape, dtype=torch.float64)
    assert module.eval()(x) is x
    module.train()
    module.generator = gen(7)
    a = module(x)
    module.generator = gen(7)
    assert torch.equal(a, module(x)) and a.shape == x.shape and a.dtype == x.dtype and not torch.equal(a, x)
    single = module(x[0])
    assert single.shape == x[0].shape


@pytest.mark.parametrize("device", DEVICES)
def test_batch_augments_keep_device(device):
    wave, spec = torch.randn(4, 4000, device=device), torch.randn(4, 1, 60, 64, device=device)
    for module, x in [(AddNoise(10.0), wave), (SpeedPerturbation(), wave), (Occlusion(), wave),
                      (PatchAugment(), spec), (CutOutSpec(), spec), (SpecAugment(20, 2, 8, 2), spec)]:
        assert module(x).device == x.device


def test_probability_applies_to_a_fraction_of_the_batch():
    x = torch.ones(400, 100)
    out = Gain(6.0, 6.0, p=0.3, generator=gen())(x)
    changed = (out != x).any(dim=1).float().mean()
    assert 0.22 < changed < 0.38
    with pytest.raises(ValueError, match="probability"):
        Gain(0, 1, p=1.5)


# --- offline (librosa) --------------------------------------------------------------------------------------------
def test_time_stretch_and_pitch_shift_against_closed_forms():
    sr = 16000
    t = np.arange(sr) / sr
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    assert time_stretch(tone, 1.25).shape == tone.shape
    assert abs(len(time_stretch(tone, 2.0, keep_length=False)) - sr / 2) < 600
    shifted = pitch_shift(tone, sr, 2.0)
    peak = np.argmax(np.abs(np.fft.rfft(shifted[2000:-2000]))) * sr / len(shifted[2000:-2000])
    assert abs(peak - 440 * 2 ** (2 / 12)) < 5
    batch = TimeStretch((0.8, 1.2), generator=gen())(torch.from_numpy(np.stack([tone, tone])))
    assert batch.shape == (2, sr)


# --- policies ----------------------------------------------------------------------------------------------------
def test_policies_domains_and_application():
    expected = {"rocling_weak": "spectrogram", "rocling_strong": "spectrogram", "sslh_weak": "waveform",
                "sslh_strong": "waveform", "quaclrs_time_stretch": "waveform", "quaclrs_patch_augment": "spectrogram",
                "quaclrs_noise": "waveform", "quaclrs_spec_augment": "spectrogram"}
    assert set(expected) <= set(POLICY_NAMES)
    for name, domain in expected.items():
        assert get_policy(name, sample_rate=16000).domain == domain
    spec = torch.ones(32, 1, 400, 64)
    strong = get_policy("rocling_strong", generator=gen())(spec)
    for example in strong[:, 0]:
        zero = example == 0
        assert len(runs(zero.all(dim=0))) <= 2 and zero.all(dim=0).sum() <= 2 * 34
        assert len(runs(zero.all(dim=1))) <= 2 and zero.all(dim=1).sum() <= 2 * 63
    wave = torch.randn(4, 16000)
    sslh = get_policy("sslh_strong", generator=gen())
    with pytest.raises(ValueError, match="frontend"):
        sslh(wave)
    out = sslh(wave, frontend=lambda w: w.reshape(4, 100, 160))
    assert out.shape == (4, 100, 160) and (out == -80.0).any()
    assert torch.equal(get_policy("quaclrs_original")(spec), spec)
    with pytest.raises(ValueError, match="unknown augmentation policy"):
        get_policy("nope")
    with pytest.raises(ValueError, match="sample_rate"):
        get_policy("quaclrs_pitch_shift")
