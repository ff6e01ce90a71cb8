"""Two-view policies of chapter 5: BYOL-A's mixup with past inputs and random resize crop by hand, the study's
augmentations as view policies (views differ as the policy says), and views that never leave their fold."""

import numpy as np
import pytest
import torch

from esclib.augment.views import (VIEW_POLICIES, MixupMemory, RandomResizeCrop, ViewPolicy, get_view_policy,
                                  random_resize_crop)
from esclib.data.clips import ClipSet
from esclib.data.metadata import clip_table
from esclib.data.splits import LeakError, fold_split
from esclib.data.torchdata import TwoViewDataset, array_loader, spectrogram_bank
from esclib.train.ssl import SpectrogramInput, TwoViewInput


def _spec(n=4, frames=30, bins=12, seed=0):
    return torch.randn(n, 1, frames, bins, generator=torch.Generator().manual_seed(seed))


def test_mixup_memory_mixes_with_past_inputs_only_by_the_byol_a_formula():
    mix = MixupMemory(ratio=0.4, size=3, generator=torch.Generator().manual_seed(0))
    first = _spec(2, seed=1)
    torch.testing.assert_close(mix(first), first)
    x = _spec(2, seed=2)
    out = mix(x)
    memory = [first[0], first[1]]
    for example in range(2):
        # exp(out) = (1 - a) exp(x) + a exp(z) for a in [0, 0.4] and z one of the past inputs
        fits = []
        for z in memory:
            a = ((out[example].exp() - x[example].exp()) / (z.exp() - x[example].exp())).flatten()
            fits.append(float(a.std()) < 1e-3 and 0 <= float(a.mean()) <= 0.4)
        assert any(fits)
    assert mix.stored == 3 and torch.equal(mix.memory[0], x[1])
    mix.eval()
    torch.testing.assert_close(mix(_spec(2, seed=3)), _spec(2, seed=3))
    assert mix.stored == 3


def test_linear_mixup_memory_is_a_convex_combination():
    mix = MixupMemory(ratio=0.4, size=8, log_mixup_exp=False, generator=torch.Generator().manual_seed(0))
    past = torch.full((1, 1, 4, 4), 10.0)
    mix(past)
    x = torch.zeros(5, 1, 4, 4)
    out = mix(x)
    alpha = out.flatten(1)[:, 0] / 10.0
    assert torch.allclose(out, alpha[:, None, None, None] * 10.0)
    assert (alpha >= 0).all() and (alpha <= 0.4).all() and alpha.std() > 0


def test_random_resize_crop_is_the_identity_for_the_full_box_and_pads_the_time_axis():
    x = _spec(3)
    same = random_resize_crop(x, (1.0, 1.0), (1.0, 1.0), (1.0, 1.0))
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
    ones = torch.ones(2, 1, 30, 12)
    canvas = random_resize_crop(ones, (1.5, 1.0), (1.5, 1.5), (1.0, 1.0), mode="bilinear")
    assert canvas[:, :, 0].abs().max() < 1e-6 and canvas[:, :, -1].abs().max() < 1e-6
    assert torch.allclose(canvas[:, :, 15], torch.ones(2, 1, 12))
    assert torch.allclose(canvas[:, :, 10:20].mean(dim=-2), canvas[:, :, 10:20, :1].mean(dim=-2))


def test_random_resize_crop_draws_boxes_of_the_given_scales_per_example():
    ramp = torch.arange(40.0)[None, None, :, None].expand(64, 1, 40, 8).contiguous()
    out = RandomResizeCrop((1.0, 1.0), (0.5, 0.5), (1.0, 1.0), mode="bilinear",
                           generator=torch.Generator().manual_seed(0))(ramp)
    spans = out[:, 0, -1, 0] - out[:, 0, 0, 0]
    torch.testing.assert_close(spans, torch.full((64,), 19.0))
    starts = out[:, 0, 0, 0]
    assert starts.min() > -1e-4 and starts.max() < 20 + 1e-4 and len(set(starts.tolist())) > 5


def test_every_named_view_policy_builds_and_unknown_ones_are_named():
    for name in VIEW_POLICIES:
        policy = get_view_policy(name, sample_rate=8000)
        assert isinstance(policy, ViewPolicy) and policy.name == name
    assert get_view_policy("byola").resolution == "input"
    assert get_view_policy("quaclrs_spec_augment").resolution == "native"
    assert get_view_policy("quaclrs_time_stretch").needs_waveforms
    assert not get_view_policy("byola").needs_waveforms
    with pytest.raises(ValueError, match="unknown view policy 'simclr_colour'"):
        get_view_policy("simclr_colour")
    with pytest.raises(ValueError, match="sample_rate"):
        get_view_policy("quaclrs_pitch_shift")


def _two_views(policy, x, step=0):
    views = TwoViewInput(SpectrogramInput(tuple(x.shape[-2:]), 0.0, 1.0), get_view_policy(policy), seed=3)
    return views(x, x, step)


def test_spec_augment_views_differ_only_by_time_and_frequency_stripes():
    x = torch.randn(6, 40, 30) + 5.0
    v0, v1 = _two_views("quaclrs_spec_augment", x)
    assert not torch.equal(v0, v1)
    for view in (v0, v1):
        changed = view[:, 0] != x
        zeroed = view[:, 0] == 0
        assert torch.equal(changed, zeroed)
        rows, cols = zeroed.all(dim=2), zeroed.all(dim=1)
        assert torch.equal(zeroed, rows[:, :, None] | cols[:, None, :])
        assert rows.sum(1).max() <= 2 * 19 and cols.sum(1).max() <= 2 * 19


def test_patch_augment_views_differ_by_at_most_five_10x10_patches():
    x = torch.randn(6, 40, 30) + 5.0
    v0, v1 = _two_views("quaclrs_patch_augment", x)
    assert not torch.equal(v0, v1)
    for view in (v0, v1):
        zeroed = (view[:, 0] == 0).sum(dim=(1, 2))
        assert (zeroed >= 100).all() and (zeroed <= 500).all()


def test_original_policy_gives_equal_views_and_byola_views_differ_and_repeat_by_step():
    x = torch.randn(4, 40, 30)
    v0, v1 = _two_views("quaclrs_original", x)
    assert torch.equal(v0, v1)
    b0, b1 = _two_views("byola", x, step=7)
    assert not torch.allclose(b0, b1)
    again = _two_views("byola", x, step=7)
    assert torch.equal(again[0], b0) and not torch.equal(_two_views("byola", x, step=8)[0], b0)


def test_each_view_is_made_from_its_own_input_with_its_own_operations():
    policy = ViewPolicy("asymmetric", (None, None), (torch.nn.Identity(), _Negate()))
    views = TwoViewInput(SpectrogramInput((6, 4), 1.0, 2.0), policy)
    x0, x1 = torch.full((2, 6, 4), 3.0), torch.full((2, 6, 4), 5.0)
    v0, v1 = views(x0, x1)
    torch.testing.assert_close(v0, torch.full((2, 1, 6, 4), 1.0))
    torch.testing.assert_close(v1, torch.full((2, 1, 6, 4), -2.0))


class _Negate(torch.nn.Module):
    def forward(self, x):
        return -x


def test_waveform_views_are_made_per_clip_with_the_policys_noise():
    policy = get_view_policy("quaclrs_noise")
    waves = np.sin(np.arange(4 * 800, dtype=np.float32) / 7).reshape(4, 800)
    dataset = TwoViewDataset(waves, np.zeros(4, dtype=np.int64), transform=policy.waveform[0],
                             transform1=policy.waveform[1], seed=0)
    v0, v1, _, index = dataset[(2, 0)]
    assert index == 2 and not torch.equal(v0, v1)
    for view in (v0, v1):
        noise = view.numpy() - waves[2]
        snr = 10 * np.log10((waves[2] ** 2).sum() / (noise ** 2).sum())
        assert min(abs(snr - 5), abs(snr - 15)) < 1e-3


def test_each_view_goes_through_its_own_transform():
    waves = np.arange(3 * 50, dtype=np.float32).reshape(3, 50)
    dataset = TwoViewDataset(waves, np.zeros(3, dtype=np.int64), transform=lambda w: -w, transform1=lambda w: 2 * w)
    v0, v1, _, _ = dataset[(1, 0)]
    np.testing.assert_array_equal(v0.numpy(), -waves[1])
    np.testing.assert_array_equal(v1.numpy(), 2 * waves[1])
    same = TwoViewDataset(waves, np.zeros(3, dtype=np.int64), transform=lambda w: -w)
    np.testing.assert_array_equal(same[(1, 0)][1].numpy(), -waves[1])


def _clips(tmp_path, n=30) -> ClipSet:
    table = clip_table(clip_id=[f"{i}.wav" for i in range(n)], path=[str(tmp_path / f"{i}.wav") for i in range(n)],
                       fold=[1 + i % 5 for i in range(n)], target=[i % 3 for i in range(n)],
                       category=[["a", "b", "c"][i % 3] for i in range(n)], source=[str(i) for i in range(n)])
    return ClipSet("toy", tmp_path, ("a", "b", "c"), 5, 1.0, table)


def test_two_view_batches_of_a_training_split_hold_only_its_own_clips(tmp_path):
    pool = _clips(tmp_path)
    bank = np.stack([np.full((6, 4), float(i), dtype=np.float32) for i in range(len(pool))])
    split = fold_split(pool, test_fold=2)
    loader = array_loader(split.train, pool, bank, train=True, batch_size=4, views=2, seed=0)
    train_rows = {pool.paths.index(p) for p in split.train.paths}
    seen = set()
    for v0, v1, y, index in loader:
        assert torch.equal(v0, v1)
        rows = [pool.paths.index(split.train.paths[i]) for i in index]
        np.testing.assert_array_equal(v0[:, 0, 0].numpy(), rows)
        np.testing.assert_array_equal(y.numpy(), pool.targets[rows])
        seen |= set(rows)
    assert seen <= train_rows and len(seen) >= len(train_rows) - 3
    with pytest.raises(LeakError):
        array_loader(split.test, pool, bank, train=True, batch_size=4, views=2)
    with pytest.raises(ValueError, match="rows"):
        array_loader(split.train, pool, bank[:-1], train=True, batch_size=4)


def test_mixup_memory_only_ever_holds_training_inputs(tmp_path):
    pool = _clips(tmp_path)
    bank = np.stack([np.full((8, 6), float(i), dtype=np.float32) for i in range(len(pool))])
    split = fold_split(pool, test_fold=4)
    loader = array_loader(split.train, pool, bank, train=True, batch_size=5, views=2, seed=1)
    policy = get_view_policy("byola")
    views = TwoViewInput(SpectrogramInput((8, 6), 0.0, 1.0), policy, seed=0)
    for step, (x0, x1, _, _) in enumerate(loader):
        views(x0, x1, step)
    memory = policy.spectrogram[0][0]
    stored = set(memory.memory[:memory.stored].mean(dim=(1, 2, 3)).round().tolist())
    train_rows = {float(pool.paths.index(p)) for p in split.train.paths}
    assert stored and stored <= train_rows


def test_spectrogram_bank_rows_follow_the_pool(tmp_path):
    import soundfile as sf

    pool = _clips(tmp_path, n=5)
    for i, path in enumerate(pool.paths):
        sf.write(path, np.full(800, 0.01 * (i + 1), dtype=np.float32), 800)
    bank = spectrogram_bank(pool, lambda w: w.reshape(len(w), 8, 100).mean(-1, keepdim=True), 800,
                            cache_dir=str(tmp_path / "cache"), progress=False)
    assert bank.shape == (5, 8, 1)
    np.testing.assert_allclose(bank[:, 0, 0], 0.01 * np.arange(1, 6), atol=1e-4)
