"""Transfer strategies of study 003 (esclib.models.transfer) and the losses they train with (esclib.losses)."""

import copy
import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from esclib.losses import clip_bce, soft_cross_entropy
from esclib.models.panns import build_pann, load_pann, save_pann_checkpoint
from esclib.models.transfer import STRATEGIES, TransferModel, transfer_model
from esclib.train import fit
from esclib.train.pann_pretrain import mixup_step

CLASSES = 3
SAMPLES = 6400  # 0.4 s at the mini model's 16 kHz


def _pretrained() -> nn.Module:
    """A fresh copy of :func:`_stand_in`."""
    return copy.deepcopy(_stand_in())


@functools.cache
def _stand_in(seed: int = 0) -> nn.Module:
    """A CnnMini16k standing in for a pretrained PANN: random weights, and batch-norm statistics measured on
    tone clips (so that they differ from the initial ones and the embedding varies with the input)."""
    torch.manual_seed(seed)
    model = build_pann("CnnMini16k", classes_num=5, spec_augment=False)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # running statistics = the average over the batches below
    with torch.no_grad():
        model.train()(_batch(12, seed=seed + 100)[0])
    model.spec_augment = True
    return model.eval()


def _batch(n: int = 8, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips of class c: a 250 * 4^c Hz tone in noise (learnable from scratch in a few steps)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % CLASSES
    t = torch.arange(SAMPLES) / 16000
    tones = torch.sin(2 * torch.pi * 250 * 4.0 ** y[:, None] * t)
    return 0.3 * tones + 0.05 * torch.randn(n, SAMPLES, generator=g), y


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float = 3e-3, alpha=None) -> list:
    """``steps`` optimiser steps on the batch (x, y) with :func:`fit`; returns the training loss of each."""
    loader = DataLoader(TensorDataset(x, y, torch.arange(len(x))), batch_size=len(x))
    params = [p for p in model.parameters() if p.requires_grad]
    history = fit(model, loader, epochs=steps, optimizer=torch.optim.Adam(params, lr=lr, amsgrad=True),
                  step_fn=mixup_step(soft_cross_entropy, alpha=alpha), progress=False)
    return [record["loss"] for record in history.epochs]


@pytest.mark.parametrize("strategy", ["freeze_l1", "freeze_l3"])
def test_a_frozen_base_changes_neither_weights_nor_batch_norm_statistics(strategy):
    model = TransferModel(_pretrained(), CLASSES, strategy)
    base_before = copy.deepcopy(model.base.state_dict())
    head_before = copy.deepcopy(model.head.state_dict())
    model.train()
    assert model.training and model.head.training and not model.base.training
    assert not any(p.requires_grad for p in model.base.parameters())
    _train(model, *_batch(), steps=4)
    for name, tensor in model.base.state_dict().items():
        assert torch.equal(tensor, base_before[name]), f"frozen base changed {name}"
    assert any(not torch.equal(t, head_before[n]) for n, t in model.head.state_dict().items())


def test_fine_tuning_does_update_the_base_and_its_statistics():
    """The control of the test above: the same steps without freezing move weights and running statistics."""
    model = TransferModel(_pretrained(), CLASSES, "fine-tune")
    before = copy.deepcopy(model.base.state_dict())
    _train(model, *_batch(), steps=2)
    changed = {n for n, t in model.base.state_dict().items() if not torch.equal(t, before[n])}
    assert "conv_block1.conv1.weight" in changed and "bn0.running_mean" in changed
    assert "conv_block2.bn1.num_batches_tracked" in changed


def test_a_frozen_model_embeds_deterministically_in_training_mode():
    model = TransferModel(_pretrained(), CLASSES, "freeze_l1").train()
    x, _ = _batch(4)
    first, second = model(x), model(x)
    assert torch.equal(first["embedding"], second["embedding"])
    assert torch.allclose(first["embedding"], model.base.embed(x))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_learns_a_fixed_batch(strategy):
    torch.manual_seed(0)
    model = TransferModel(_pretrained(), CLASSES, strategy)
    model.base.spec_augment = False  # 0.4-s clips: the authors' 64-frame stripes would mask most of them
    x, y = _batch()
    assert model(x)["logits"].shape == (len(x), CLASSES)
    losses = _train(model, x, y, steps=10, lr=1e-2)
    assert np.mean(losses[-3:]) < 0.85 * np.mean(losses[:3]), losses


def test_mixup_training_outputs_one_row_per_pair():
    torch.manual_seed(0)
    model = TransferModel(_pretrained(), CLASSES, "fine-tune").train()
    x, y = _batch(6)
    step = mixup_step(soft_cross_entropy, alpha=1.0)
    loss, logs = step(model, (x, y, torch.arange(6)), torch.device("cpu"))
    assert loss.ndim == 0 and np.isfinite(logs["loss"])
    lambdas = torch.tensor([0.3, 0.7, 0.5, 0.5, 1.0, 0.0])
    assert model(x, lambdas)["logits"].shape == (3, CLASSES)
    _train(model, x, y, steps=2, alpha=1.0)


def test_heads_freeze_l3_has_three_linear_layers_the_others_one():
    counts = {s: sum(isinstance(m, nn.Linear) for m in TransferModel(_pretrained(), CLASSES, s).head.modules())
              for s in STRATEGIES}
    assert counts == {"scratch": 1, "fine-tune": 1, "freeze_l1": 1, "freeze_l3": 3}
    head = TransferModel(_pretrained(), CLASSES, "freeze_l3", hidden=32).head
    assert [m.out_features for m in head.modules() if isinstance(m, nn.Linear)] == [32, 32, CLASSES]


def test_scratch_reinitialises_the_base_fine_tune_keeps_the_checkpoint(tmp_path):
    path = save_pann_checkpoint(_pretrained(), tmp_path / "pretrained.pth", 10)
    saved = load_pann(path).state_dict()
    scratch = transfer_model(str(path), "scratch", CLASSES).base.state_dict()
    tuned = transfer_model(str(path), "fine-tune", CLASSES).base.state_dict()
    assert all(torch.equal(tuned[k], saved[k]) for k in saved)
    assert not torch.equal(scratch["conv_block1.conv1.weight"], saved["conv_block1.conv1.weight"])
    assert not torch.equal(scratch["fc1.weight"], saved["fc1.weight"])
    assert torch.equal(scratch["bn0.running_mean"], torch.zeros(64))
    assert torch.equal(scratch["bn0.running_var"], torch.ones(64))
    assert torch.equal(scratch["logmel_extractor.melW"], saved["logmel_extractor.melW"])


def test_unknown_strategy_is_refused_by_name():
    with pytest.raises(ValueError, match="'freeze_l2'"):
        TransferModel(_pretrained(), CLASSES, "freeze_l2")


def test_soft_cross_entropy_is_cross_entropy_for_hard_and_soft_targets():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 4, generator=g)
    y = torch.tensor([0, 3, 1, 1, 2])
    assert torch.allclose(soft_cross_entropy(logits, F.one_hot(y, 4).float()), F.cross_entropy(logits, y))
    probs = torch.softmax(torch.randn(5, 4, generator=g), dim=1)
    expected = -(probs * torch.log_softmax(logits, dim=1)).sum(1).mean()
    assert torch.allclose(soft_cross_entropy(logits, probs), expected)
    assert torch.allclose(soft_cross_entropy(logits, probs), F.cross_entropy(logits, probs))
    with pytest.raises(ValueError, match="shape"):
        soft_cross_entropy(logits, y)


def test_clip_bce_matches_the_closed_form():
    p = torch.tensor([[0.9, 0.2], [0.4, 0.7]])
    t = torch.tensor([[1.0, 0.0], [0.5, 1.0]])
    expected = -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()
    assert torch.allclose(clip_bce(p, t), expected)
    with pytest.raises(ValueError, match="shape"):
        clip_bce(p, t[:1])


def _transfer_recipe(**changes):
    """The paper profile's transfer recipe (from the chapter's spec) with ``changes``."""
    from esclib.experiments.pann_transfer import TransferRecipe
    from esclib.runner.spec import resolve
    from esclib.runner.specs.ch01_pann_transfer import SPEC

    return TransferRecipe.from_config(resolve(SPEC, "paper")).replace(**changes)


@pytest.fixture(scope="module")
def tiny_experiment(tmp_path_factory):
    """A TransferExperiment on the tiny synthetic ESC-50 (3 classes x 10 clips) with a saved stand-in PANN."""
    from esclib.data.registry import load
    from esclib.data.synth import generate
    from esclib.experiments.pann_transfer import TransferExperiment
    from esclib.results import ResultsStore

    tmp = tmp_path_factory.mktemp("transfer")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ESCLIB_CACHE", str(tmp / "cache"))
        clips = load("esc50", generate("esc50", tmp / "ESC-50", size="tiny", workers=1, progress=False))
        checkpoint = save_pann_checkpoint(_pretrained(), tmp / "stand-in.pth", 10)
        experiment = TransferExperiment(clips, checkpoint, crop_seconds=1.0, store=ResultsStore(tmp / "results"),
                                        seed=0, progress=False)
        yield experiment, patch


def test_the_frozen_shortcut_is_exact(tiny_experiment):
    """Precomputed embeddings (centre crop, eval mode) are what a frozen model computes from the waveform."""
    experiment, _ = tiny_experiment
    test = experiment.split(1).test
    rows = experiment.rows(test)
    model = TransferModel(load_pann(experiment.checkpoint), experiment.clips.num_classes, "freeze_l3").train()
    start = (experiment.waves.shape[1] - experiment.crop_samples) // 2
    waves = torch.tensor(np.array(experiment.waves[rows, start:start + experiment.crop_samples]))
    through_model = model(waves)
    precomputed = torch.from_numpy(experiment.embeddings[rows])
    assert torch.allclose(through_model["embedding"], precomputed, atol=1e-5)
    assert torch.allclose(through_model["logits"], model.head(precomputed)["logits"], atol=1e-5)


def test_runs_are_recorded_reused_and_few_shot_runs_use_per_class_clips(tiny_experiment):
    from esclib.experiments.pann_transfer import FewShotTransfer, few_shot_curve

    experiment, _ = tiny_experiment
    recipe = _transfer_recipe(epochs=2, batch_size=4, clip_seconds=1.0)
    first = experiment.run("freeze_l1", recipe, experiment.split(1))
    metrics = first["metrics"]
    assert 0 <= metrics["accuracy"] <= 1 and metrics["epochs"] == 2
    assert metrics["n_train"] == len(experiment.split(1).train) and metrics["n_test"] == len(experiment.split(1).test)
    result = next((experiment.store.root / "pann_transfer" / "freeze_l1").glob("*/result.json"))
    stamp = result.stat().st_mtime_ns
    assert experiment.run("freeze_l1", recipe, experiment.split(1)) == first and result.stat().st_mtime_ns == stamp
    assert first["identity"]["inputs"]["checkpoint"]["name"] == "stand-in"
    few_shot = FewShotTransfer.of(experiment)
    few = few_shot.few_shot(["fine-tune"], [1], [2], recipe)
    assert few[0]["metrics"]["n_train"] == 2 * experiment.clips.num_classes and few[0]["setting"]["per_class"] == 2
    curve = few_shot_curve(few, [first], experiment.clips.num_classes)
    assert set(zip(curve["strategy"], curve["subset"])) == {("freeze_l1", "all"), ("fine-tune", "few-shot")}


def test_a_sample_rate_other_than_the_checkpoints_is_refused(tiny_experiment):
    from esclib.experiments.pann_transfer import TransferExperiment

    experiment, _ = tiny_experiment
    with pytest.raises(ValueError, match="sample_rate=32000"):
        TransferExperiment(experiment.clips, experiment.checkpoint, sample_rate=32000, crop_seconds=1.0,
                           store=experiment.store)
