"""NPID (study 004, chapter 04): memory bank, NCE loss and Z against hand-computed values, the training step, the
kNN evaluation against a brute-force reference, that NPID learns, and the fine-tuning builders."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from esclib.losses.npid import NPIDMemory
from esclib.metrics import knn_accuracy, knn_predict
from esclib.models.esresnet import ESResNet
from esclib.train import fit
from esclib.train.npid import (FineTuneRecipe, KNNMonitor, NPIDModel, NPIDRecipe, ThreeBandInput, finetune,
                               finetune_network, load_npid_weights, npid_model, npid_step, pretrain_npid,
                               warmup_exponential_lr)

TINY_INPUT = ThreeBandInput(sample_rate=8000, n_fft=64, hop_length=128, win_length=64, clip_seconds=0.5)


def _nce_by_hand(memory, features, candidates, temperature, n, k, log_z):
    total = 0.0
    for b in range(features.shape[0]):
        x = np.exp(memory[candidates[b]] @ features[b] / temperature - log_z)
        pn = k / n
        total += -math.log(x[0] / (x[0] + pn)) - sum(math.log(pn / (xi + pn)) for xi in x[1:])
    return total / features.shape[0]


def test_nce_loss_matches_the_formula():
    bank = NPIDMemory(20, 4, nce_k=5, temperature=0.5, generator=torch.Generator().manual_seed(3))
    feats = F.normalize(torch.randn(3, 4, generator=torch.Generator().manual_seed(1)), dim=1)
    index = torch.tensor([2, 7, 11])
    memory = bank.memory.clone().numpy()
    state = bank.generator.get_state()
    loss = bank.loss(feats, index)
    bank.generator.set_state(state)
    noise = torch.randint(0, 20, (3, 5), generator=bank.generator)
    candidates = torch.cat([index[:, None], noise], 1).numpy()  # the positive in slot 0
    logits = np.einsum("bkd,bd->bk", memory[candidates], feats.numpy()) / 0.5
    log_z = np.log(np.exp(logits).mean() * 20)  # Z estimated once, on the first batch
    assert float(bank.log_z) == pytest.approx(log_z, rel=1e-5)
    expected = _nce_by_hand(memory, feats.numpy(), candidates, 0.5, 20, 5, log_z)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_nce_by_hand_on_a_two_dimensional_bank():
    # N = 4 instances, K = 1 noise clip, T = 1: bank e1, e2, -e1, -e2; feature e1 of instance 0
    bank = NPIDMemory(4, 2, nce_k=1, temperature=1.0, generator=torch.Generator().manual_seed(0))
    bank.memory = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    state = bank.generator.get_state()
    noise = int(torch.randint(0, 4, (1, 1), generator=bank.generator))
    bank.generator.set_state(state)
    loss = bank.loss(torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    sims = {0: 1.0, 1: 0.0, 2: -1.0, 3: 0.0}
    z = (math.exp(1.0) + math.exp(sims[noise])) / 2 * 4  # mean of exp over the (K+1) candidates, times N
    p_pos, p_noise, pn = math.exp(1.0) / z, math.exp(sims[noise]) / z, 1 / 4
    expected = -math.log(p_pos / (p_pos + pn)) - math.log(pn / (p_noise + pn))
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_z_is_estimated_once_and_then_kept():
    bank = NPIDMemory(30, 8, nce_k=4, temperature=0.4)
    bank.loss(F.normalize(torch.randn(5, 8), dim=1), torch.arange(5))
    first = float(bank.log_z)
    bank.loss(F.normalize(torch.randn(5, 8), dim=1) * 0 + F.normalize(torch.ones(5, 8), dim=1), torch.arange(5))
    assert float(bank.log_z) == first
    assert "log_z" in bank.state_dict()  # a resumed run keeps its Z


def test_zero_noise_gives_the_full_softmax():
    bank = NPIDMemory(10, 4, nce_k=0, temperature=0.1)
    feats = F.normalize(torch.randn(4, 4), dim=1)
    index = torch.tensor([0, 3, 5, 9])
    expected = F.cross_entropy(feats @ bank.memory.t() / 0.1, index)
    assert torch.allclose(bank.loss(feats, index), expected)


@pytest.mark.parametrize("momentum", [0.5, 0.8])
def test_memory_update_is_a_normalised_moving_average(momentum):
    bank = NPIDMemory(6, 3, nce_k=2, momentum=momentum)
    before = bank.memory.clone()
    feats = F.normalize(torch.randn(2, 3), dim=1)
    bank.update(feats, torch.tensor([1, 4]))
    mixed = momentum * before[[1, 4]] + (1 - momentum) * feats  # m on the old entry, 1 - m on the new feature
    expected = mixed / mixed.norm(dim=1, keepdim=True)
    assert torch.allclose(bank.memory[[1, 4]], expected)
    assert torch.equal(bank.memory[[0, 2, 3, 5]], before[[0, 2, 3, 5]])


def test_the_study_settings_are_the_defaults():
    bank = NPIDMemory(100)
    assert (bank.memory.shape[1], bank.nce_k, bank.temperature, bank.momentum) == (128, 64, 0.4, 0.5)
    recipe = NPIDRecipe()
    assert (recipe.low_dim, recipe.nce_k, recipe.temperature, recipe.memory_momentum) == (128, 64, 0.4, 0.5)
    assert (recipe.batch_size, recipe.epochs, recipe.knn_ks, recipe.knn_t) == (64, 200, (5, 200), 0.4)
    assert (recipe.optimizer, recipe.lr, recipe.momentum, recipe.weight_decay) == ("sgd", 0.03, 0.9, 1e-4)
    assert (recipe.flip_p, recipe.max_scale, recipe.crop_seconds, recipe.band_gain_db) == (0.5, 1.25, None, 0.0)
    finetune_recipe = FineTuneRecipe()
    assert (finetune_recipe.lr, finetune_recipe.weight_decay, finetune_recipe.batch_size, finetune_recipe.gamma,
            finetune_recipe.cold_epochs, finetune_recipe.warm_epochs) == (2.5e-4, 5e-4, 16, 0.985, 5, 10)


class _Unit(nn.Module):
    """A tiny network ending in an L2-normalised embedding."""

    def __init__(self, d_in: int = 16, d_out: int = 16):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d_in, 32), nn.ReLU(), nn.Linear(32, d_out))

    def forward(self, x):
        return F.normalize(self.body(x), dim=1)


def test_step_scores_against_the_old_bank_then_updates_the_batch_instances():
    torch.manual_seed(0)
    model = NPIDModel(_Unit(), NPIDMemory(12, 16, nce_k=0, temperature=0.4))
    x, index = torch.randn(3, 16), torch.tensor([7, 2, 9])
    old = model.memory.memory.clone()
    loss, logs = npid_step(model, (x, torch.zeros(3), index), torch.device("cpu"))
    embedding = model.network(x).detach()
    assert float(loss.detach()) == pytest.approx(float(F.cross_entropy(embedding @ old.t() / 0.4, index)), rel=1e-6)
    assert logs["loss"] == pytest.approx(float(loss.detach()))
    assert torch.allclose(model.memory.memory[index], F.normalize(0.5 * old[index] + 0.5 * embedding, dim=1))
    assert torch.equal(model.memory.memory[[0, 1, 3]], old[[0, 1, 3]])
    loss.backward()  # the update did not overwrite what the backward pass needs
    assert model.network.body[0].weight.grad is not None


def _brute_force_votes(train, train_y, test, k, temperature, n_classes):
    votes = np.zeros((len(test), n_classes))
    for i, t in enumerate(test):
        sims = [float(np.dot(t, v) / np.linalg.norm(t) / np.linalg.norm(v)) for v in train]
        for j in sorted(range(len(train)), key=lambda j: -sims[j])[:k]:
            votes[i, train_y[j]] += math.exp(sims[j] / temperature)
    return votes


@pytest.mark.parametrize("k, temperature", [(5, 0.4), (20, 0.07), (1, 1.0)])
def test_weighted_knn_matches_a_brute_force_reference(k, temperature):
    rng = np.random.default_rng(k)
    train, test = rng.normal(size=(60, 6)), rng.normal(size=(25, 6))
    train_y, test_y = rng.integers(0, 3, 60), rng.integers(0, 3, 25)
    predictions, votes = knn_predict(train, train_y, test, k=k, temperature=temperature, n_classes=3)
    expected = _brute_force_votes(train, train_y, test, k, temperature, 3)
    np.testing.assert_allclose(votes, expected, rtol=1e-9)
    np.testing.assert_array_equal(predictions, expected.argmax(1))
    assert knn_accuracy(train, train_y, test, test_y, k=k, temperature=temperature) == np.mean(
        expected.argmax(1) == test_y)


class _Views(Dataset):
    """Instances of 4 classes: a class direction with a small per-instance offset in 4 dimensions, and 12
    dimensions of loud nuisance drawn afresh at every read (the augmentation NPID learns to ignore)."""

    def __init__(self, n: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.y = torch.arange(n) % 4
        self.core = F.one_hot(self.y, 4).float() + 0.3 * torch.randn(n, 4, generator=generator)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return torch.cat([self.core[i], 2.0 * torch.randn(12)]), int(self.y[i]), i


def test_a_few_npid_epochs_raise_the_knn_accuracy_of_the_embedding():
    torch.manual_seed(0)
    train, test = _Views(64, 1), _Views(32, 2)
    model = NPIDModel(_Unit(), NPIDMemory(64, 16, nce_k=16, temperature=0.4))
    monitor = KNNMonitor(DataLoader(train, batch_size=64), ks=(5,), temperature=0.4)
    test_loader = DataLoader(test, batch_size=32)
    before = monitor(model, test_loader, torch.device("cpu"))["knn_k5"]
    history = fit(model, DataLoader(train, batch_size=16, shuffle=True), epochs=30,
                  optimizer=torch.optim.Adam(model.parameters(), lr=0.01), step_fn=npid_step,
                  val_loader=test_loader, val_fn=monitor, progress=False)
    after = history.frame()["knn_k5"].iloc[-3:].mean()
    assert before < 0.45 and after > before + 0.25


def _tiny_esresnet(num_outputs: int, **kwargs) -> ESResNet:
    return ESResNet(num_outputs, arch="resnet18", frontend=TINY_INPUT.frontend(), **kwargs)


def test_projection_head_is_128_d_and_unit_norm():
    torch.manual_seed(0)
    model = npid_model(NPIDRecipe(arch="resnet18", input=TINY_INPUT, nce_k=4), n_items=10).eval()
    with torch.no_grad():
        out = model(torch.randn(3, TINY_INPUT.samples))
    assert out.shape == (3, 128)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))
    assert model.network.classifier.in_features == 512 and model.memory.memory.shape == (10, 128)
    with pytest.raises(ValueError, match="L2-normalised"):
        NPIDModel(_tiny_esresnet(128), NPIDMemory(10, nce_k=4))


def _weights(module: nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {k: v for k, v in module.state_dict().items() if not k.startswith("classifier.") and k.startswith(prefix)}


def test_the_npid_arm_starts_from_every_npid_weight_but_the_head(tmp_path):
    torch.manual_seed(1)
    recipe = FineTuneRecipe(arch="resnet18", input=TINY_INPUT)
    npid = npid_model(NPIDRecipe(arch="resnet18", input=TINY_INPUT, nce_k=4), n_items=10)
    with torch.no_grad():  # make the NPID weights unlike any fresh initialisation
        for p in npid.network.parameters():
            p.add_(torch.randn_like(p))
    model = finetune_network(5, recipe, "npid", npid=npid, seed=0)
    expected = _weights(npid.network)
    got = _weights(model)
    assert set(got) == set(expected)
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert model.classifier.out_features == 5 and not model.normalize
    scratch = finetune_network(5, recipe, "scratch", seed=0)
    assert not torch.equal(scratch.resnet.conv1.weight, npid.network.resnet.conv1.weight)
    torch.save({"model": npid.state_dict()}, tmp_path / "npid.pt")  # a fit checkpoint
    from_file = load_npid_weights(_tiny_esresnet(5), tmp_path / "npid.pt")
    assert torch.equal(from_file.gates[0].depthwise.weight, npid.network.gates[0].depthwise.weight)


def test_the_npid_weights_must_fit_the_network():
    npid = npid_model(NPIDRecipe(arch="resnet18", input=TINY_INPUT, attention=False, nce_k=4), n_items=10)
    with pytest.raises(ValueError, match="missing"):
        load_npid_weights(_tiny_esresnet(5), npid)
    with pytest.raises(ValueError, match="exactly when"):
        finetune_network(5, FineTuneRecipe(arch="resnet18", input=TINY_INPUT), "npid")


def test_the_imagenet_arm_says_where_the_weights_go(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "hub" / "checkpoints")):
        finetune_network(5, FineTuneRecipe(arch="resnet18", input=TINY_INPUT), "imagenet")


def test_esresnet_warm_up_exponential_schedule():
    optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = warmup_exponential_lr(optimizer, gamma=0.985, cold_epochs=5, warm_epochs=10)
    lrs = []
    for _ in range(18):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = [0.1] * 5 + [0.1 + 0.09 * (e + 1) for e in range(10)] + [1.0, 0.985, 0.985 ** 2]
    np.testing.assert_allclose(lrs, expected)


@pytest.fixture
def tone_clips(tmp_path, monkeypatch):
    """Two classes of 0.5-s tones (300 / 1,500 Hz, slightly detuned per clip) at 8 kHz on 4 folds of 4 clips."""
    import pandas as pd
    import soundfile as sf

    from esclib.data.clips import ClipSet

    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    t = np.arange(4000) / 8000
    rows = []
    for i in range(16):
        path = tmp_path / f"{i}.wav"
        freq = (300 if i % 2 else 1500) * (1 + 0.02 * i)
        sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype("float32"), 8000)
        rows.append(dict(clip_id=path.name, path=str(path), fold=i // 4 + 1, target=i % 2, category="ab"[i % 2],
                         source=path.stem))
    return ClipSet("tones", tmp_path, ("a", "b"), 4, 0.5, pd.DataFrame(rows))


def test_recipe_loaders_crop_for_training_and_keep_whole_clips_for_evaluation(tone_clips):
    recipe = NPIDRecipe(input=TINY_INPUT, crop_seconds=0.25, batch_size=4)
    wave, _, index = next(iter(recipe.loader(tone_clips, train=True, progress=False)))
    assert wave.shape == (4, 2000) and index.dtype == torch.int64
    wave, target, index = next(iter(recipe.loader(tone_clips, train=False, progress=False)))
    assert wave.shape == (4, 4000) and index.tolist() == [0, 1, 2, 3] and target.tolist() == [0, 1, 0, 1]
    assert NPIDRecipe(band_gain_db=6.0, arch="resnet18").network(8).spec_augment is not None
    assert FineTuneRecipe(arch="resnet18").network(8).spec_augment is None  # ESResNet's own recipe has none


def test_pretraining_then_fine_tuning_run_end_to_end(tone_clips):
    train, test = tone_clips.subset(tone_clips.folds != 1), tone_clips.subset(tone_clips.folds == 1)
    recipe = NPIDRecipe(arch="resnet18", input=TINY_INPUT, nce_k=4, epochs=2, batch_size=4, knn_ks=(1, 3))
    result = pretrain_npid(train, recipe, test=test, progress=False)
    history = result.history
    assert history["epoch"].tolist() == [0, 1, 2] and np.isnan(history["loss"].iloc[0])  # epoch 0: random weights
    assert history[["knn_k1", "knn_k3"]].notna().all().all()
    assert result.model.memory.memory.shape == (12, 128)
    ft_recipe = FineTuneRecipe(arch="resnet18", input=TINY_INPUT, epochs=2, batch_size=4, cold_epochs=0,
                               warm_epochs=1)
    model = finetune_network(2, ft_recipe, "npid", npid=result.model)
    curve = finetune(model, train, test, ft_recipe, progress=False)
    assert curve["epoch"].tolist() == [1, 2] and curve["test_acc"].between(0, 1).all()
    with pytest.raises(ValueError, match="nce_k=64"):
        pretrain_npid(train, NPIDRecipe(input=TINY_INPUT), progress=False)
