"""ESResNet (study 004's network, chapter 04): the 3-band input against a direct numpy computation, band order, the
shared network over audio channels, the attention gates, smaller backbones, and ESResNet's waveform transforms."""

import numpy as np
import pytest
import scipy.signal
import torch
from torch.nn import functional as F

from esclib.augment.esresnet import ESResNetTransform, pad_or_crop, random_scale, time_flip
from esclib.features import ThreeBandSpectrogram
from esclib.models.esresnet import ESResNet, imagenet_status
from esclib.train.npid import QUICK_INPUT, ThreeBandInput


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return ESResNet(num_classes=10).eval()


def _three_band_numpy(y: np.ndarray) -> np.ndarray:
    """ESResNet's input computed frame by frame: x 32768, reflect-pad n_fft/2, periodic Blackman-Harris of 1654
    samples centred in 2048, rfft / sqrt(2048), |.|^2, bins 0..1022 cut into 3 bands of 341, floor 1e-18, 10 log10."""
    n_fft, hop, win = 2048, 561, 1654
    window = np.zeros(n_fft)
    left = (n_fft - win) // 2
    window[left:left + win] = scipy.signal.get_window("blackmanharris", win)  # periodic (fftbins=True)
    padded = np.pad(y.astype(np.float64) * 32768.0, n_fft // 2, mode="reflect")
    frames = 1 + (len(padded) - n_fft) // hop
    power = np.empty((1025, frames))
    for t in range(frames):
        spectrum = np.fft.rfft(padded[t * hop:t * hop + n_fft] * window) / np.sqrt(n_fft)
        power[:, t] = spectrum.real ** 2 + spectrum.imag ** 2
    bands = power[:1023].reshape(3, 341, frames)
    return 10 * np.log10(np.where(bands > 0, bands, 1e-18))


def test_three_band_input_of_a_5_s_clip_equals_the_direct_computation():
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(220500)).astype(np.float32)
    ours = ThreeBandSpectrogram()(torch.from_numpy(y)[None])[0].numpy()
    assert ours.shape == (3, 341, 394) == ThreeBandInput().shape
    reference = _three_band_numpy(y)
    loud = reference > reference.max() - 80  # float32 round-off dominates far below the peak
    np.testing.assert_allclose(ours[loud], reference[loud], atol=2e-3)


def test_band_zero_is_the_lowest_frequencies():
    sr = 44100
    t = np.arange(sr) / sr
    low, high = 40 * sr / 2048, 900 * sr / 2048  # bins 40 (band 0) and 900 (band 2, row 218)
    for freq, band, row in ((low, 0, 40), (high, 2, 900 - 682)):
        spec = ThreeBandSpectrogram()(torch.from_numpy(0.5 * np.sin(2 * np.pi * freq * t)).float()[None])[0]
        frame = spec[:, :, spec.shape[-1] // 2]
        assert divmod(int(frame.argmax()), 341) == (band, row)


def test_stereo_runs_each_channel_through_the_shared_network_and_sums_before_the_head():
    torch.manual_seed(0)
    model = ESResNet(4, arch="resnet18", frontend=QUICK_INPUT.frontend()).eval()
    stereo = 0.1 * torch.randn(2, 2, QUICK_INPUT.samples)
    with torch.no_grad():
        left, right = model.features(stereo[:, 0]), model.features(stereo[:, 1])
        torch.testing.assert_close(model.features(stereo), left + right)
        torch.testing.assert_close(model(stereo), model.classifier(left + right))


def test_logits_for_mono_and_stereo_spectrograms(net):
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        assert net(x).shape == (2, 10)
        stereo = torch.stack([x, x.flip(-1)], dim=1)
        summed = net.features(x) + net.features(x.flip(-1))
        assert torch.allclose(net.features(stereo), summed, atol=1e-4)


def test_without_attention_it_is_torchvision_resnet50():
    torch.manual_seed(0)
    plain = ESResNet(num_classes=5, attention=False).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(plain.features(x), plain.resnet(x), atol=1e-5)


def test_gates_are_sigmoids_of_the_stage_input(net):
    gate = net.gates[0]
    with torch.no_grad():
        g = gate(torch.randn(1, 64, 16, 20), torch.Size([16, 20]))
    assert g.shape == (1, 256, 16, 20) and 0 < g.min() and g.max() < 1


@pytest.mark.parametrize("arch, widths", [("resnet50", (64, 256, 512, 1024, 2048, 2048)),
                                          ("resnet18", (64, 64, 128, 256, 512, 512))])
def test_gate_widths_follow_the_reference_for_any_resnet(arch, widths):
    model = ESResNet(3, arch=arch)
    assert tuple(g.depthwise.in_channels for g in model.gates) == widths[:5]
    assert tuple(g.pointwise.out_channels for g in model.gates) == widths[1:]
    assert [g.depthwise.kernel_size for g in model.gates] == [(3, 1), (1, 5), (3, 1), (1, 5), (3, 5)]
    assert model.width == widths[-1]


def test_gate_by_hand_max_pools_its_input_before_the_convolutions():
    from esclib.models.esresnet import AttentionGate

    gate = AttentionGate(1, 1, (3, 1), (1, 0)).eval()
    with torch.no_grad():
        gate.depthwise.weight.zero_()
        gate.depthwise.weight[0, 0, 1, 0] = 1.0  # the centre tap
        gate.depthwise.bias.zero_()
        gate.pointwise.weight.fill_(2.0)
        gate.pointwise.bias.fill_(-1.0)
        x = torch.tensor([[[[0.0, 4.0], [1.0, 2.0]]]])
        out = gate(x, torch.Size([1, 1]))
    bn = 1 / np.sqrt(1 + gate.bn.eps)  # batch-norm at its initial statistics
    assert float(out) == pytest.approx(1 / (1 + np.exp(-(2 * 4.0 - 1) * bn)), rel=1e-6)  # max 4, not the mean 1.75


@pytest.mark.parametrize("gate", range(5))
def test_every_gate_multiplies_its_stage_output(gate):
    torch.manual_seed(0)
    model = ESResNet(3, arch="resnet18").eval()
    x = torch.randn(1, 3, 40, 60)
    with torch.no_grad():
        before = model.features(x)
        model.gates[gate].bn.bias.fill_(-30.0)  # this gate closes: its stage's output becomes 0
        after = model.features(x)
    assert not torch.allclose(after, before, atol=1e-3)
    if gate == 4:
        assert after.abs().max() < 1e-6 < before.abs().max()


def test_normalized_head_gives_unit_vectors():
    torch.manual_seed(0)
    model = ESResNet(128, arch="resnet18", normalize=True).eval()
    with torch.no_grad():
        out = model(torch.randn(4, 3, 40, 60))
    torch.testing.assert_close(out.norm(dim=1), torch.ones(4))


def test_bad_input_and_settings_are_named(net):
    with pytest.raises(ValueError, match=r"\(B, 3, F, T\)"):
        net(torch.randn(2, 1, 64, 64))
    with pytest.raises(ValueError, match="arch"):
        ESResNet(3, arch="vgg16")


def test_imagenet_status_says_where_the_weights_go(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert str(tmp_path / "checkpoints" / "resnet50-") in imagenet_status("resnet50")


# ------------------------------------------------------------------------------------ ESResNet's transforms
def test_random_scale_interpolates_linearly_at_k_over_s():
    ramp = torch.arange(10.0)
    np.testing.assert_allclose(random_scale(ramp, scale=2.0), [k / 2 for k in range(19)] + [9.0])
    np.testing.assert_allclose(random_scale(ramp, scale=0.8), [k / 0.8 for k in range(8)])
    tone = torch.sin(torch.arange(1000.0) / 5)
    assert random_scale(tone, scale=1.0).equal(tone)


def test_random_scale_draws_log_uniform_factors_up_to_max_scale():
    from scipy.stats import kstest

    generator = torch.Generator().manual_seed(0)
    lengths = np.array([len(random_scale(torch.zeros(20000), 1.25, generator=generator)) for _ in range(2000)])
    assert lengths.min() >= 16000 and lengths.max() <= 25000
    exponents = np.log(lengths / 20000) / np.log(1.25)  # 1.25 ** U(-1, 1): the exponent is uniform, not the factor
    assert kstest(exponents, "uniform", args=(-1, 2)).pvalue > 0.05
    assert kstest(lengths / 20000, "uniform", args=(0.8, 0.45)).pvalue < 1e-3


def test_time_flip_reverses_with_probability_p():
    x = torch.arange(5.0)
    assert time_flip(x, 1.0).equal(x.flip(0)) and time_flip(x, 0.0).equal(x)
    generator = torch.Generator().manual_seed(1)
    flips = [time_flip(x, 0.5, generator=generator)[0].item() == 4 for _ in range(400)]
    assert np.mean(flips) == pytest.approx(0.5, abs=0.08)


def test_pad_fills_with_the_edge_samples_and_centres_at_test_time():
    x = torch.tensor([3.0, 1.0, 2.0, 5.0])
    np.testing.assert_allclose(pad_or_crop(x, 9, train=False), [3, 3, 3, 1, 2, 5, 5, 5, 5])  # left = round(2.5)
    generator = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(200):
        out = pad_or_crop(x, 9, generator=generator)
        start = int(torch.nonzero(out == 1.0)[0]) - 1
        assert out[start:start + 4].equal(x) and (out[:start] == 3).all() and (out[start + 4:] == 5).all()
        starts.add(start)
    assert starts == {0, 1, 2, 3, 4}  # the reference's randint(0, 9 - 4)


def test_crop_centres_and_avoids_quiet_excerpts_as_the_reference():
    k = torch.arange(10.0)
    loud = (10 + k) * (-1) ** k  # -> +-10 .. +-19: every excerpt loud
    np.testing.assert_allclose(pad_or_crop(loud, 4, train=False), [-13, 14, -15, 16])
    np.testing.assert_allclose(pad_or_crop(k, 4, train=False), [0, 1, 2, 3])  # centre std 1.29 < 3.03 / 2: the first
    burst = torch.cat([torch.ones(100) * torch.tensor([1.0, -1.0]).repeat(50), torch.zeros(900)])
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        out = pad_or_crop(burst, 300, generator=generator)
        assert out.std() >= burst.std() * 0.5  # a silent random excerpt gives way to the first one


def test_transform_brings_every_clip_to_the_training_length():
    generator = torch.Generator().manual_seed(0)
    train = ESResNetTransform(1000, train=True, generator=generator)
    for size in (700, 1000, 1300):
        assert all(len(train(torch.randn(size))) == 1000 for _ in range(20))
    stereo = ESResNetTransform(1000, train=False)(torch.randn(2, 1200))
    assert stereo.shape == (2, 1000)
    with pytest.raises(ValueError, match="length"):
        ESResNetTransform(0, train=True)


def test_transform_is_random_only_in_training():
    x = torch.randn(1000)
    assert ESResNetTransform(1000, train=False)(x).equal(x)
    generator = torch.Generator().manual_seed(0)
    outs = [ESResNetTransform(1000, train=True, generator=generator)(x) for _ in range(3)]
    assert not torch.equal(outs[0], outs[1]) and not F.pairwise_distance(outs[1][None], outs[2][None]).item() == 0


def test_band_gain_adds_one_gain_per_example_and_band_only_in_training():
    from esclib.augment.esresnet import RandomBandGain, band_gain

    spec = torch.randn(4, 2, 3, 5, 7)  # (B, channels, bands, bins, frames)
    out = band_gain(spec, 6.0, generator=torch.Generator().manual_seed(0))
    offset = out - spec
    shared = offset[:, :1, :, :1, :1].expand_as(offset)  # one gain for all channels, bins and frames of a band
    assert torch.allclose(offset, shared, atol=1e-6)
    assert offset.abs().max() <= 6.0 and offset[:, 0, :, 0, 0].std() > 1.0
    assert not torch.allclose(offset[:, 0, 0, 0, 0], offset[:, 0, 1, 0, 0])  # each band its own gain
    module = RandomBandGain(6.0).eval()
    assert module(spec).equal(spec)
    torch.manual_seed(0)
    model = ESResNet(3, arch="resnet18", spec_augment=RandomBandGain(20.0))
    x = torch.randn(2, 3, 32, 40)
    model.eval()
    with torch.no_grad():
        assert model.features(x).equal(model.features(x))  # no augmentation at evaluation
