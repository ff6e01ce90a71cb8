"""Transfer strategies of study 003 (esclib.models.transfer), the losses they train with (esclib.losses) and
chapter 01's experiment (esclib.experiments.pann_transfer): splits by selection, caches, runs."""

import copy
import functools
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from esclib.augment.mixup import do_mixup
from esclib.losses import clip_bce, soft_cross_entropy
from esclib.models.panns import build_pann, load_pann, save_pann_checkpoint
from esclib.models.transfer import STRATEGIES, TransferHead, TransferModel, frontend_logmel, transfer_model
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


# ------------------------------------------------------------------------------------------------- strategies
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


def test_a_frozen_model_has_no_dropout_or_spec_augment_in_training_mode():
    """Dropout and SpecAugment would make two passes of one batch differ; a frozen base gives one embedding,
    the eval-mode one."""
    model = TransferModel(_pretrained(), CLASSES, "freeze_l1").train()
    x, _ = _batch(4)
    first, second = model(x), model(x)
    assert torch.equal(first["embedding"], second["embedding"])
    assert torch.allclose(first["embedding"], model.base.embed(x))
    tuned = TransferModel(_pretrained(), CLASSES, "fine-tune").train()
    assert not torch.equal(tuned(x)["embedding"], tuned(x)["embedding"]), "control: training mode is random"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_learns_a_fixed_batch(strategy):
    torch.manual_seed(0)
    model = TransferModel(_pretrained(), CLASSES, strategy)
    model.base.spec_augment = False  # 0.4-s clips: the authors' 64-frame stripes would mask most of them
    x, y = _batch()
    assert model(x)["logits"].shape == (len(x), CLASSES)
    losses = _train(model, x, y, steps=10, lr=1e-2)
    assert np.mean(losses[-3:]) < 0.85 * np.mean(losses[:3]), losses


def test_freeze_l3_is_three_layers_with_relu_between_known_answer():
    """W1 = I, W2 = -I, W3 = I, no biases: x = (1, -2) -> ReLU(1, -2) = (1, 0) -> ReLU(-1, 0) = (0, 0) -> (0, 0).
    Without the first ReLU the answer is (0, 2), without the second (-1, 0), without both (-1, 2)."""
    head = TransferHead("freeze_l3", 2, 2, hidden=2)
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 3
    with torch.no_grad():
        for layer, sign in zip(linears, (1.0, -1.0, 1.0)):
            layer.weight.copy_(sign * torch.eye(2))
            layer.bias.zero_()
    assert torch.equal(head(torch.tensor([[1.0, -2.0]]))["logits"], torch.zeros(1, 2))
    assert torch.equal(head(torch.tensor([[-1.0, 2.0]]))["logits"], torch.zeros(1, 2))
    assert torch.equal(head(torch.tensor([[-3.0, -4.0]]))["logits"], torch.zeros(1, 2))
    head_l1 = TransferHead("freeze_l1", 2, 2)
    with torch.no_grad():
        head_l1.layers.weight.copy_(torch.eye(2))
        head_l1.layers.bias.zero_()
    assert torch.equal(head_l1(torch.tensor([[1.0, -2.0]]))["logits"], torch.tensor([[1.0, -2.0]]))


def test_heads_freeze_l3_has_three_linear_layers_the_others_one():
    counts = {s: sum(isinstance(m, nn.Linear) for m in TransferModel(_pretrained(), CLASSES, s).head.modules())
              for s in STRATEGIES}
    assert counts == {"scratch": 1, "fine-tune": 1, "freeze_l1": 1, "freeze_l3": 3}
    head = TransferModel(_pretrained(), CLASSES, "freeze_l3", hidden=32).head
    assert [m.out_features for m in head.modules() if isinstance(m, nn.Linear)] == [32, 32, CLASSES]
    assert sum(isinstance(m, nn.ReLU) for m in head.modules()) == 2


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


def test_unknown_strategy_or_input_is_refused_by_name():
    with pytest.raises(ValueError, match="'freeze_l2'"):
        TransferModel(_pretrained(), CLASSES, "freeze_l2")
    with pytest.raises(ValueError, match="'spectrogram'"):
        TransferModel(_pretrained(), CLASSES, "fine-tune", inputs="spectrogram")


@pytest.mark.parametrize("strategy", ["fine-tune", "freeze_l3"])
def test_the_log_mel_input_computes_what_the_waveform_input_does(strategy):
    """Chapter 01 trains on cached frontend log-mels: the same network on them gives the same output."""
    x, _ = _batch(4)
    on_waves = TransferModel(_pretrained(), CLASSES, strategy).eval()
    on_logmels = TransferModel(copy.deepcopy(on_waves.base), CLASSES, strategy, inputs="logmel").eval()
    on_logmels.head.load_state_dict(on_waves.head.state_dict())
    logmels = frontend_logmel(on_waves.base, x)
    assert logmels.shape == (4, 64, SAMPLES // 320 + 1)  # the mini's 20-ms hop
    assert torch.allclose(on_logmels(logmels)["logits"], on_waves(x)["logits"], atol=1e-5)


# ------------------------------------------------------------------------------------------------------ mixup
def test_mixup_step_mixes_pairs_and_their_one_hot_targets(monkeypatch):
    """Known answer: with lambdas (0.3, 0.7, 1, 0) the model sees clips 0+1 and 2+3 mixed, and the loss is the soft
    cross-entropy against 0.3 y0 + 0.7 y1 and y2."""
    import esclib.augment.mixup as mixup

    lambdas = torch.tensor([0.3, 0.7, 1.0, 0.0])
    monkeypatch.setattr(mixup, "mixup_lambdas", lambda n, alpha, **kw: lambdas[:n])
    seen = {}

    def forward(model, x, lam):
        seen["lam"] = lam
        return {"logits": model(do_mixup(x, lam))}

    model = nn.Linear(2, 3, bias=False)
    x, y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [5.0, 5.0], [9.0, 9.0]]), torch.tensor([0, 2, 1, 1, 0])
    loss, _ = mixup_step(soft_cross_entropy, alpha=1.0, forward=forward)(model, (x, y, torch.arange(5)),
                                                                        torch.device("cpu"))
    assert torch.equal(seen["lam"], lambdas)
    inputs = torch.tensor([[0.3, 0.7], [2.0, 2.0]])
    targets = torch.tensor([[0.3, 0.0, 0.7], [0.0, 1.0, 0.0]])
    assert torch.allclose(loss, soft_cross_entropy(model(inputs), targets))


def test_a_frozen_heads_mixup_mixes_embeddings_in_pairs_in_training_only():
    head = TransferHead("freeze_l1", 4, CLASSES).train()
    e, lam = torch.randn(4, 4), torch.tensor([0.25, 0.75, 0.6, 0.4])
    out = head(e, lam)
    mixed = torch.stack([0.25 * e[0] + 0.75 * e[1], 0.6 * e[2] + 0.4 * e[3]])
    assert torch.allclose(out["embedding"], mixed) and torch.allclose(out["logits"], head.layers(mixed))
    assert head.eval()(e, lam)["logits"].shape == (4, CLASSES)


def test_fine_tunings_mixup_mixes_the_normalised_log_mels_after_spec_augment(monkeypatch):
    """Inside the base: bn0, then (training) SpecAugment, then the pairs mixed, then the body -- the authors'
    order. With batch norm in eval mode and the same dropout draws the output is that of the body on the mixed
    log-mels; the mix must come after SpecAugment (each clip masked on its own)."""
    model = TransferModel(_pretrained(), CLASSES, "fine-tune", inputs="logmel").train()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()
    calls = []
    monkeypatch.setattr(type(model.base), "mix", lambda self, x, lam: calls.append(("mix", len(x))) or
                        (x if lam is None else do_mixup(x, lam)))
    monkeypatch.setattr("esclib.models.panns.base._spec_augmenter", lambda: lambda x: calls.append(("mask", len(x)))
                        or x)
    x, lam = frontend_logmel(model.base, _batch(4)[0]), torch.tensor([0.2, 0.8, 0.5, 0.5])
    torch.manual_seed(0)
    got = model(x, lam)["logits"]
    assert calls == [("mask", 4), ("mix", 4)]
    normalised = model.base.normalise(x.transpose(1, 2).unsqueeze(1))
    torch.manual_seed(0)
    expected = model.head(model.base.head(model.base.body(do_mixup(normalised, lam)))["embedding"])["logits"]
    assert got.shape == (2, CLASSES) and torch.allclose(got, expected, atol=1e-6)


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


# ------------------------------------------------------------------------------------------------- experiment
def _transfer_recipe(**changes):
    """The paper profile's transfer recipe (from the chapter's spec) with ``changes``."""
    from esclib.experiments.pann_transfer import TransferRecipe
    from esclib.runner.spec import resolve
    from esclib.runner.specs.ch01_pann_transfer import SPEC

    return TransferRecipe.from_config(resolve(SPEC, "paper")).replace(**changes)


QUICK = dict(epochs=2, steps_per_epoch=2, batch_size=4, clip_seconds=1.0, lr=1e-3)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The tiny synthetic ESC-50 (2 classes x 5 folds x 1 clip), a stand-in PANN checkpoint and a cache folder."""
    from esclib.data.registry import load
    from esclib.data.synth import generate

    tmp = tmp_path_factory.mktemp("transfer")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ESCLIB_CACHE", str(tmp / "cache"))
        clips = load("esc50", generate("esc50", tmp / "ESC-50", size="tiny", workers=1, progress=False))
        checkpoint = save_pann_checkpoint(_pretrained(), tmp / "stand-in.pth", 10)
        yield SimpleNamespace(tmp=tmp, clips=clips, checkpoint=checkpoint)


def _experiment(world, clips=None, checkpoint=None, cls=None, **kwargs):
    from esclib.experiments.pann_transfer import TransferExperiment
    from esclib.results import ResultsStore

    cls = cls or TransferExperiment
    return cls(clips or world.clips, checkpoint or world.checkpoint, store=ResultsStore(world.tmp / "results"),
               seed=0, progress=False, **kwargs)


def test_the_pretrained_weights_are_loaded_into_every_pretrained_strategy(world):
    """Fine-tune starts from the checkpoint's weights, and the frozen strategies' cached embeddings are the
    checkpoint's embeddings -- not those of a freshly initialised network."""
    experiment = _experiment(world)
    saved = torch.load(world.checkpoint, weights_only=False)["model"]
    tuned = experiment.model("fine-tune").base.state_dict()
    assert all(torch.equal(tuned[k], saved[k]) for k in saved if not k.startswith("fc_audioset"))
    waves = torch.from_numpy(np.stack([experiment.waveform(i) for i in range(len(world.clips))]))
    expected = load_pann(world.checkpoint).embed(waves).numpy()
    assert np.allclose(experiment.embeddings, expected, atol=1e-5)
    torch.manual_seed(1)
    fresh = build_pann("CnnMini16k", classes_num=5).eval().embed(waves).numpy()
    assert not np.allclose(experiment.embeddings, fresh, atol=1e-3)


def test_the_frozen_shortcut_is_exact(world):
    """Cached embeddings (whole clip, eval mode) are what a frozen model in training mode computes."""
    experiment = _experiment(world)
    model = TransferModel(load_pann(experiment.checkpoint), world.clips.num_classes, "freeze_l3").train()
    waves = torch.from_numpy(np.stack([experiment.waveform(i) for i in range(len(world.clips))]))
    through_model = model(waves)
    precomputed = torch.from_numpy(np.array(experiment.embeddings))
    assert torch.allclose(through_model["embedding"], precomputed, atol=1e-5)
    assert torch.allclose(through_model["logits"], model.head(precomputed)["logits"], atol=1e-5)
    assert np.allclose(experiment.logmels, frontend_logmel(model.base, waves).numpy(), atol=1e-4)


def test_selections_split_the_folds_as_documented(world):
    from esclib.data.splits import check_no_leak

    experiment = _experiment(world)
    folds = {s: experiment.split(1, s) for s in ("validation-fold", "budgeted", "last")}
    on = {s: {role: set(part.folds) for role, part in split.parts.items()} for s, split in folds.items()}
    assert on["validation-fold"] == {"labelled": {3, 4, 5}, "train": {3, 4, 5}, "val": {2}, "test": {1}}
    assert on["last"] == {"labelled": {2, 3, 4, 5}, "train": {2, 3, 4, 5}, "test": {1}}
    budgeted = folds["budgeted"]
    ids = {role: set(part.table["clip_id"]) for role, part in budgeted.parts.items()}
    assert ids["train"] | ids["val"] == ids["labelled"] and not ids["train"] & ids["val"]
    assert np.bincount(budgeted.val.targets).tolist() == [1, 1], "one validation clip per class"
    for split in folds.values():
        check_no_leak(split.test, *[p for role, p in split.parts.items() if role != "test"])
    with pytest.raises(ValueError, match="selection"):
        experiment.split(1, "best")


def test_few_shot_clips_avoid_validation_and_test_folds_and_their_sources_and_are_nested(world):
    from esclib.experiments.pann_transfer import FewShotTransfer

    experiment = FewShotTransfer.of(_experiment(world))
    for fold in (1, 5):
        previous = set()
        for per_class in (1, 2, 3):
            for selection in ("validation-fold", "budgeted", "last"):
                split = experiment.split(fold, selection, per_class)
                labelled = split.labelled.table
                held = {fold, fold % 5 + 1}
                assert not set(labelled["fold"]) & held
                others = world.clips.table[world.clips.table["fold"].isin(held)]
                assert not set(labelled["source"]) & set(others["source"])
                assert np.bincount(split.labelled.targets).tolist() == [per_class, per_class]
                if selection == "last":
                    ids = set(labelled["clip_id"])
                    assert previous <= ids, "a smaller subset is inside every larger one"
                    current = ids
                assert set(split.train.table["clip_id"]) <= set(labelled["clip_id"])
            previous = current


def test_few_shot_subsets_of_a_larger_world_are_nested_and_class_balanced():
    """3 classes x 5 folds x 8 clips (two takes per source): every count's clips contain the smaller counts' clips,
    for every test fold and selection."""
    import pandas as pd

    from esclib.data.clips import ClipSet
    from esclib.experiments.pann_transfer import FewShotTransfer

    rows = [{"clip_id": f"{f}-{c}-{i}", "path": f"/nowhere/{f}-{c}-{i}.wav", "fold": f, "target": c,
             "category": f"class {c}", "source": f"{f}-{c}-{i // 2}"} for f in range(1, 6) for c in range(3)
            for i in range(8)]
    clips = ClipSet("esc50", Path("/nowhere"), ("class 0", "class 1", "class 2"), 5, 5.0, pd.DataFrame(rows))
    experiment = FewShotTransfer.__new__(FewShotTransfer)
    experiment.clips, experiment.seed = clips, 0
    for fold in (1, 3):
        for selection in ("validation-fold", "budgeted", "last"):
            subsets = [set(experiment.split(fold, selection, n).labelled.table["clip_id"]) for n in (1, 2, 4, 8, 16)]
            assert all(a < b for a, b in zip(subsets, subsets[1:])), (fold, selection)
            assert [len(s) for s in subsets] == [3, 6, 12, 24, 48]
            assert not {c.split("-")[0] for c in subsets[-1]} & {str(fold), str(fold % 5 + 1)}


@pytest.mark.parametrize("arm", ["fine-tune", "freeze_l1"])
def test_fit_strategy_trains_what_the_strategy_trains(world, arm):
    """Through the experiment: fine-tune moves the base, a frozen strategy trains its head on the cached
    embeddings and leaves the base untouched."""
    experiment = _experiment(world)
    recipe = _transfer_recipe(**QUICK)
    captured = {}

    def fit_fn(net, loader, **kwargs):
        captured["net"], captured["inputs"] = net, next(iter(loader))[0]
        captured["before"] = copy.deepcopy(net.state_dict())
        return fit(net, loader, progress=False, **kwargs)

    net, _ = experiment.fit_strategy(arm, recipe, experiment.split(1, "last"), fit_fn)
    changed = {k for k, v in net.state_dict().items() if not torch.equal(v, captured["before"][k])}
    if arm == "fine-tune":
        assert isinstance(net, TransferModel) and "base.conv_block1.conv1.weight" in changed
        assert captured["inputs"].shape == (2 * recipe.batch_size, 64, experiment.frames(1.0))
        assert net.base.spec_augment and not net.base_frozen
    else:
        assert isinstance(net, TransferHead) and changed == {"layers.weight", "layers.bias"}
        rows = experiment.embeddings
        assert captured["inputs"].shape == (2 * recipe.batch_size, rows.shape[1])
        assert all(any(np.allclose(x, r) for r in rows) for x in captured["inputs"].numpy())


@pytest.mark.parametrize("selection", ["validation-fold", "budgeted", "last"])
def test_fit_strategy_trains_on_the_training_clips_and_selects_on_the_validation_clips(world, selection):
    experiment = _experiment(world)
    split = experiment.split(1, selection)
    seen = {}

    def fit_fn(net, loader, **kwargs):
        seen.update(kwargs, train_rows=set(loader.dataset.rows))
        return fit(net, loader, progress=False, **kwargs)

    experiment.fit_strategy("freeze_l1", _transfer_recipe(**QUICK, selection=selection), split, fit_fn)
    assert seen["train_rows"] == set(experiment.rows(split.train))
    if selection == "last":
        assert seen["val_loader"] is None and seen["early_stopping"] is None
    else:
        assert set(seen["val_loader"].dataset.rows) == set(experiment.rows(split.val))
        assert seen["early_stopping"].monitor == "val_acc" and seen["early_stopping"].mode == "max"


def test_runs_select_the_epoch_their_selection_says_and_are_recorded_and_reused(world):
    from esclib.experiments.pann_transfer import FewShotTransfer, few_shot_curve

    experiment = _experiment(world)
    recipe = _transfer_recipe(**{**QUICK, "epochs": 3})
    last = experiment.run("freeze_l1", recipe, experiment.split(1, "last"))
    assert last["metrics"]["best_epoch"] == 3 and last["metrics"]["val_acc"] is None
    assert last["metrics"]["n_train"] == 8 and last["metrics"]["n_test"] == 2
    validated = experiment.run("freeze_l1", recipe.replace(selection="validation-fold"),
                               experiment.split(1, "validation-fold"))
    val_acc = [c["val_acc"] for c in validated["curves"]]
    assert validated["metrics"]["best_epoch"] == int(np.argmax(val_acc)) + 1
    result = next((experiment.store.root / "pann_transfer" / "freeze_l1").glob("*/result.json"))
    stamp = result.stat().st_mtime_ns
    assert experiment.run("freeze_l1", recipe, experiment.split(1, "last")) == last
    assert result.stat().st_mtime_ns == stamp
    assert last["identity"]["inputs"]["checkpoint"]["name"] == "stand-in"
    few_shot = FewShotTransfer.of(experiment)
    few = few_shot.few_shot(["fine-tune"], [1], [2], recipe)
    assert few[0]["metrics"]["n_train"] == 4 and few[0]["setting"]["per_class"] == 2
    curve = few_shot_curve(few, [last], world.clips.num_classes)
    assert set(zip(curve["strategy"], curve["subset"])) == {("freeze_l1", "all"), ("fine-tune", "few-shot")}


def test_the_log_mel_cache_is_reused_and_never_read_stale(world, tmp_path):
    """Keyed by the files: the same clips map the same file without computing; a changed clip is computed anew
    (and its row is the new audio's log-mel)."""
    import shutil

    from esclib.data.registry import load

    root = tmp_path / "ESC-50"
    shutil.copytree(world.clips.root, root)
    clips = load("esc50", root)
    first = _experiment(world, clips).logmels
    again = _experiment(world, clips).logmels
    assert again.filename == first.filename and os.path.getmtime(first.filename) == os.path.getmtime(again.filename)
    wave, rate = sf.read(clips.paths[0])
    sf.write(clips.paths[0], 0.5 * wave[::-1], rate)
    changed = _experiment(world, load("esc50", root))
    assert changed.logmels.filename != first.filename
    base = load_pann(world.checkpoint)
    expected = frontend_logmel(base, torch.from_numpy(changed.waveform(0))[None])[0].numpy()
    assert np.allclose(changed.logmels[0], expected, atol=1e-4)
    assert not np.allclose(changed.logmels[0], first[0], atol=1e-2)
    assert np.allclose(changed.logmels[1:], first[1:])


def test_the_embedding_cache_is_keyed_by_the_checkpoint(world, tmp_path):
    first = _experiment(world)
    other = _pretrained()
    with torch.no_grad():
        other.fc1.weight.mul_(2.0)
    path = save_pann_checkpoint(other, tmp_path / "other.pth", 10)
    second = _experiment(world, checkpoint=path)
    assert second.embeddings.filename != first.embeddings.filename
    assert second.logmels.filename == first.logmels.filename, "same frontend, same log-mels"
    assert not np.allclose(second.embeddings, first.embeddings)
    assert _experiment(world).embeddings.filename == first.embeddings.filename


def test_tables_compare_arms_fold_by_fold_and_state_the_studys_order():
    from esclib.experiments.pann_transfer import comparisons, expected_order, per_fold
    from esclib.results.summary import Results

    def run(arm, fold, acc):
        return {"experiment": "pann_transfer", "arm": arm, "setting": {"dataset": "esc50", "fold": fold},
                "identity": {"arm": arm, "seed": 0, "setting": {"fold": fold}}, "metrics": {"accuracy": acc}}

    accs = {"scratch": [0.5, 0.6, 0.55], "fine-tune": [0.9, 0.85, 0.95], "freeze_l1": [0.8, 0.7, 0.75],
            "freeze_l3": [0.5, 0.55, 0.5]}
    results = Results(run(arm, f + 1, a) for arm, values in accs.items() for f, a in enumerate(values))
    table = comparisons(results)
    assert list(table["comparison"]) == ["fine-tune − scratch", "freeze_l1 − scratch", "freeze_l3 − scratch",
                                         "freeze_l3 − freeze_l1"]
    assert table["mean difference"].round(3).tolist() == [0.35, 0.2, -0.033, -0.233]
    assert table["folds higher"].tolist() == ["3/3", "3/3", "0/3", "0/3"]
    verdicts = dict(zip(expected_order(results)["study's order"], expected_order(results)["this run"]))
    assert verdicts["fine-tune > scratch"] == "as in the study"
    assert verdicts["freeze_l3 > freeze_l1"] == "reversed"
    assert per_fold(results).loc["mean ± std", "fine-tune"] == "0.900 ± 0.050"
    assert comparisons(results.select(arm="fine-tune")).empty


def test_a_reversed_relation_is_explained_by_the_strategies_final_training_loss():
    from esclib.experiments.pann_transfer import expected_order, reversal_evidence
    from esclib.results.summary import Results

    def run(arm, fold, acc, losses):
        return {"experiment": "pann_transfer", "arm": arm, "setting": {"dataset": "esc50", "fold": fold},
                "identity": {"arm": arm, "seed": 0, "setting": {"fold": fold}}, "metrics": {"accuracy": acc},
                "curves": [{"epoch": e + 1, "loss": loss} for e, loss in enumerate(losses)]}

    def results(fine_tune_end):
        return Results([run("fine-tune", f, 0.70 + 0.01 * f, [2.0, fine_tune_end + 0.1 * f]) for f in (1, 2, 3)]
                       + [run("freeze_l3", f, 0.85 + 0.01 * f, [1.5, 0.4 + 0.1 * f]) for f in (1, 2, 3)])

    recipe = _transfer_recipe(epochs=6, steps_per_epoch=10, batch_size=16)
    under = results(1.0)  # fine-tune ends at 1.1 / 1.2 / 1.3 (mean 1.20), freeze_l3 at 0.5 / 0.6 / 0.7 (mean 0.60)
    text = reversal_evidence(under, expected_order(under), recipe)
    assert text.startswith("Why reversed: after 60 optimiser steps of 16 clips (the study: 10,000 of 32)")
    assert "fine-tune's training loss ended at 1.20 against freeze_l3's 0.60" in text and "under-trained" in text
    fitted = results(0.3)  # mean 0.50: fitted as well as freeze_l3 and still lower
    text = reversal_evidence(fitted, expected_order(fitted), recipe)
    assert "ended at 0.50 against freeze_l3's 0.60" in text and "does not explain" in text
    assert "under-trained" not in text
    agreeing = Results([run("fine-tune", f, 0.9, [1.0, 0.5]) for f in (1, 2, 3)]
                       + [run("freeze_l3", f, 0.8 + 0.01 * f, [1.0, 0.5]) for f in (1, 2, 3)])
    assert reversal_evidence(agreeing, expected_order(agreeing), recipe).startswith("No relation")


def test_the_paper_profile_is_table_ixs_protocol():
    """Paper: every fold, training on the other four, the last step kept, the authors' fixed-iteration recipe --
    so that the only differences left beside Table IX are what the study leaves unsaid."""
    from esclib.experiments.pann_transfer import AUTHORS_RECIPE, protocol_differences
    from esclib.runner.spec import resolve
    from esclib.runner.specs.ch01_pann_transfer import SPEC

    paper = resolve(SPEC, "paper")
    recipe = _transfer_recipe()
    assert paper["folds"] == "all" and recipe.selection == "last" and recipe.clip_seconds == 5.0
    assert recipe.steps == AUTHORS_RECIPE["steps"] and recipe.batch_size == 32 and recipe.lr == 1e-4
    class Clips:  # the real ESC-50's shape
        num_classes, n_folds, clip_seconds, name, root = 50, 5, 5.0, "esc50", Path("/data/ESC-50")

        def __len__(self):
            return 2000

    experiment = SimpleNamespace(clips=Clips(), pretrained=build_pann("Cnn14", classes_num=527), sample_rate=32000,
                                 source="Cnn14")
    assert protocol_differences(recipe, experiment, range(1, 6), "fine-tune") == []
    frozen = protocol_differences(recipe, experiment, range(1, 6), "freeze_l1")
    assert len(frozen) == 1 and "no SpecAugment, no dropout" in frozen[0]
    quick = protocol_differences(recipe.replace(selection="validation-fold", lr=1e-3), experiment, [1, 2, 3],
                                 "scratch")
    assert any("3 folds" in d for d in quick) and any("lr 0.001" in d for d in quick)
    assert any("test folds: 1, 2, 3 of 5" in d for d in quick)


def test_a_sample_rate_other_than_the_checkpoints_is_refused(world):
    with pytest.raises(ValueError, match="sample_rate=32000"):
        _experiment(world, sample_rate=32000)


def test_a_training_crop_longer_than_the_clips_is_refused(world):
    experiment = _experiment(world)
    with pytest.raises(ValueError, match="clip_seconds=6"):
        experiment.train_loader("fine-tune", _transfer_recipe(clip_seconds=6.0), experiment.split(1, "last").train, 0)
