"""The one SSL training loop of chapter 5: the step counter drives the methods' schedules, teachers follow after each
optimiser step, checkpoints resume the count, the recipe's schedule, the spectrogram input and the baselines."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from esclib.augment.views import get_view_policy
from esclib.data.clips import ClipSet
from esclib.data.metadata import clip_table
from esclib.data.torchdata import array_loader
from esclib.models.ssl import ssl_method
from esclib.train.ssl import (SpectrogramClassifier, SpectrogramInput, SSLRecipe, TwoViewInput, embeddings,
                              input_statistics, pretrain, study_frontend, train_classifier)


def _pool(n=24, classes=3):
    table = clip_table(clip_id=[f"{i}.wav" for i in range(n)], path=[f"/toy/{i}.wav" for i in range(n)],
                       fold=[1 + i % 4 for i in range(n)], target=[i % classes for i in range(n)],
                       category=[str(i % classes) for i in range(n)], source=[str(i) for i in range(n)])
    return ClipSet("toy", "/toy", tuple(str(c) for c in range(classes)), 4, 1.0, table)


def _bank(pool, frames=16, bins=8, seed=0):
    rng = np.random.default_rng(seed)
    patterns = rng.normal(size=(pool.num_classes, frames, bins)) * 2
    return (patterns[pool.targets] + 0.3 * rng.normal(size=(len(pool), frames, bins))).astype(np.float32)


def _backbone():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten())


SMALL = {"byol": {"hidden_dim": 16, "proj_dim": 8}, "dino": {"hidden_dim": 16, "bottleneck_dim": 8, "out_dim": 16},
         "simclr": {"proj_dim": 8}, "moco": {"proj_dim": 8}}


def _setup(name="byol", **hparams):
    pool = _pool()
    bank = _bank(pool)
    loader = array_loader(pool, pool, bank, train=True, batch_size=8, views=2, seed=0)
    method = ssl_method(name, _backbone(), 8, **{**SMALL[name], **hparams})
    views = TwoViewInput(SpectrogramInput((16, 8), *input_statistics(bank)), get_view_policy("byola"), seed=0)
    return method, loader, views


def _spy(method):
    calls = []
    original = method.after_step

    def after_step(progress):
        calls.append(progress)
        original(progress)

    method.after_step = after_step
    return calls


def test_pretrain_runs_the_teacher_update_after_every_step_with_the_progress():
    method, loader, views = _setup()
    calls = _spy(method)
    teacher0 = [p.detach().clone() for p in method.teacher_backbone.parameters()]
    history = pretrain(method, loader, views, SSLRecipe(epochs=2, batch_size=8, warmup_epochs=0), progress=False)
    assert len(history.epochs) == 2 and all(math.isfinite(r["loss"]) for r in history.epochs)
    assert calls == pytest.approx([k / 6 for k in range(1, 7)])
    moved = [not torch.equal(a, b) for a, b in zip(teacher0, method.teacher_backbone.parameters())]
    differs = [not torch.allclose(a, b) for a, b in zip(method.backbone.parameters(),
                                                          method.teacher_backbone.parameters())]
    assert any(moved) and any(differs)


def test_the_loss_sees_the_progress_of_the_current_step():
    method, loader, views = _setup("dino")
    seen = []
    original = method.loss

    def loss(view0, view1, progress=0.0):
        seen.append(progress)
        return original(view0, view1, progress)

    method.loss = loss
    pretrain(method, loader, views, SSLRecipe(epochs=2, batch_size=8, warmup_epochs=0), progress=False)
    assert seen == pytest.approx([k / 6 for k in range(6)])


def test_a_resumed_pretraining_continues_the_step_count(tmp_path):
    recipe = SSLRecipe(epochs=2, batch_size=8, warmup_epochs=0)
    method, loader, views = _setup()
    full_calls = _spy(method)
    pretrain(method, loader, views, recipe, progress=False)
    method, loader, views = _setup()
    pretrain(method, loader, views, SSLRecipe(epochs=1, batch_size=8, warmup_epochs=0),
             checkpoint=tmp_path / "ck.pt", progress=False)
    method, loader, views = _setup()
    resumed_calls = _spy(method)
    history = pretrain(method, loader, views, recipe, checkpoint=tmp_path / "ck.pt", progress=False)
    assert [r["epoch"] for r in history.epochs] == [1, 2]
    assert resumed_calls == pytest.approx(full_calls[3:])


def test_pretraining_never_reads_labels():
    method, loader, views = _setup("simclr")
    loader.dataset.targets = np.full_like(loader.dataset.targets, -7)
    pretrain(method, loader, views, SSLRecipe(epochs=1, batch_size=8, warmup_epochs=0), progress=False)


def test_large_queues_are_flagged():
    method, loader, views = _setup("moco", queue_size=64)
    with pytest.warns(UserWarning, match="queue"):
        pretrain(method, loader, views, SSLRecipe(epochs=1, batch_size=8, warmup_epochs=0), progress=False)


def test_recipe_warms_up_then_decays_by_a_cosine():
    recipe = SSLRecipe(epochs=10, batch_size=8, lr=0.1, warmup_epochs=3)
    assert [recipe.lr_factor(e) for e in range(3)] == pytest.approx([0.25, 0.5, 0.75])
    assert recipe.lr_factor(3) == pytest.approx(1.0) and recipe.lr_factor(9) == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 6 / 7)))
    optimizer = recipe.optimizer([nn.Parameter(torch.zeros(1))])
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.param_groups[0]["weight_decay"] == 1e-4
    with pytest.raises(ValueError, match="warmup_epochs"):
        SSLRecipe(epochs=3, warmup_epochs=3)


def test_spectrogram_input_standardises_then_resizes_and_computes_the_frontend():
    spec = SpectrogramInput((8, 4), mean=2.0, std=4.0)
    x = torch.full((3, 16, 8), 6.0)
    torch.testing.assert_close(spec(x), torch.ones(3, 1, 8, 4))
    calls = []
    at_input = spec(x, lambda s: calls.append(s.shape) or s, at="input")
    assert calls == [torch.Size([3, 1, 8, 4])] and at_input.shape == (3, 1, 8, 4)
    spec(x, lambda s: calls.append(s.shape) or s)
    assert calls[-1] == torch.Size([3, 1, 16, 8])
    with pytest.raises(ValueError, match="frontend"):
        spec(torch.zeros(3, 100))
    frontend = study_frontend()
    assert (frontend.sample_rate, frontend.n_fft, frontend.hop_length, frontend.n_mels) == (48000, 2048, 512, 128)
    assert (frontend.fmin, frontend.fmax) == (20.0, 8000.0)
    wave_input = SpectrogramInput((32, 32), 0.0, 1.0, frontend=frontend)
    assert wave_input(torch.randn(2, 48000 * 4)).shape == (2, 1, 32, 32)
    assert frontend.num_frames(48000 * 4) == 376


def test_embeddings_follow_the_loader_in_eval_mode_and_restore_the_mode():
    pool = _pool()
    bank = _bank(pool)
    net = _backbone().train()
    loader = array_loader(pool, pool, bank, train=False, batch_size=5)
    x, y = embeddings(net, SpectrogramInput((16, 8), 0.0, 1.0), loader, progress=False)
    assert x.shape == (24, 8) and np.array_equal(y, pool.targets) and net.training
    direct = net.eval()(torch.from_numpy(bank)[:, None])
    np.testing.assert_allclose(x, direct.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_supervised_baseline_learns_and_a_frozen_backbone_stays_put():
    pool = _pool(n=48)
    bank = _bank(pool)
    spec = SpectrogramInput((16, 8), *input_statistics(bank))
    train = array_loader(pool, pool, bank, train=True, batch_size=8, seed=0)
    val = array_loader(pool, pool, bank, train=False, batch_size=16)
    model = SpectrogramClassifier(spec, _backbone(), 8, 3)
    history = train_classifier(model, train, val, SSLRecipe(epochs=8, batch_size=8, lr=1e-2, warmup_epochs=0),
                               progress=False)
    assert max(r["val_acc"] for r in history.epochs) > 0.9
    frozen = SpectrogramClassifier(spec, _backbone(), 8, 3, freeze_backbone=True)
    before = [t.detach().clone() for t in frozen.backbone.state_dict().values()]
    train_classifier(frozen, train, val, SSLRecipe(epochs=2, batch_size=8, warmup_epochs=0), progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, frozen.backbone.state_dict().values()))
    assert not torch.equal(frozen.classifier.weight, SpectrogramClassifier(spec, _backbone(), 8, 3).classifier.weight)
