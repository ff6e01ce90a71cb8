"""FixMatch (study 000, chapter 02): the loss against a hand-computed case, the threshold's edge cases, the weak and
strong views as configured, the paired loader, the diagnostics, and that no test clip enters either stream."""

import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from torch import nn

from esclib.data.clips import ClipSet
from esclib.losses.fixmatch import fixmatch_loss, pseudo_labels
from esclib.train.fixmatch import (CycledLoader, FixMatchStep, LabelledStep, PairedLoader, View,
                                   epoch_diagnostics)


def _ce(logits, label):
    return math.log(sum(math.exp(z) for z in logits)) - logits[label]


# ---------------------------------------------------------------------------------------------------- the loss
LABELLED = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
TARGETS = torch.tensor([0, 1])
WEAK = torch.tensor([[3.0, 0.0, 0.0],    # confidence e^3/(e^3+2) = 0.909, label 0
                     [0.0, 4.0, 0.0],    # 0.965, label 1
                     [0.0, 0.0, 0.5],    # 0.452, label 2
                     [1.0, 0.0, 0.0]])   # 0.576, label 0
STRONG = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [5.0, -1.0, 2.0], [0.3, 0.1, -0.4]])


def test_fixmatch_loss_matches_the_hand_computed_case():
    sup = (_ce([2, 0, 0], 0) + _ce([0, 1, 0], 1)) / 2
    unsup = (_ce([1, 2, 0], 0) + _ce([0, 0, 0], 1) + 0 + 0) / 4  # mask (1, 1, 0, 0) at τ = 0.9; mean over all 4
    out = fixmatch_loss(LABELLED, TARGETS, WEAK, STRONG, threshold=0.9, lambda_u=2.0)
    assert out.supervised.item() == pytest.approx(sup, rel=1e-6)
    assert out.unsupervised.item() == pytest.approx(unsup, rel=1e-6)
    assert out.loss.item() == pytest.approx(sup + 2.0 * unsup, rel=1e-6)
    assert out.pseudo.mask.tolist() == [1.0, 1.0, 0.0, 0.0]
    assert out.pseudo.labels.tolist() == [0, 1, 2, 0]
    assert out.pseudo.confidence[0].item() == pytest.approx(math.exp(3) / (math.exp(3) + 2), rel=1e-6)


def test_confidence_exactly_tau_reaches_the_threshold():
    conf = torch.softmax(WEAK, dim=-1).max(dim=-1).values
    tau = float(conf[0])  # the float32 confidence itself
    assert pseudo_labels(WEAK, tau).mask.tolist() == [1.0, 1.0, 0.0, 0.0]
    assert pseudo_labels(WEAK, float(np.nextafter(np.float32(tau), np.float32(1)))).mask.tolist() == [0, 1, 0, 0]
    uniform = torch.zeros(3, 4)  # confidence exactly 0.25
    assert pseudo_labels(uniform, 0.25).mask.tolist() == [1.0, 1.0, 1.0]


def test_an_all_below_tau_batch_gives_zero_unlabelled_loss_and_no_gradient():
    strong = STRONG.clone().requires_grad_(True)
    weak = WEAK.clone().requires_grad_(True)
    out = fixmatch_loss(LABELLED, TARGETS, weak, strong, threshold=0.99, lambda_u=1.0)
    assert out.unsupervised.item() == 0.0 and out.pseudo.mask.sum().item() == 0
    assert out.loss.item() == pytest.approx(out.supervised.item())
    out.loss.backward()
    assert torch.count_nonzero(strong.grad) == 0
    assert weak.grad is None  # no gradient ever flows through the weak view


def test_soft_targets_give_the_hard_target_loss_for_one_hot_rows():
    hard = fixmatch_loss(LABELLED, TARGETS, WEAK, STRONG, threshold=0.5)
    soft = fixmatch_loss(LABELLED, nn.functional.one_hot(TARGETS, 3).float(), WEAK, STRONG, threshold=0.5)
    assert soft.loss.item() == pytest.approx(hard.loss.item(), rel=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="threshold"):
        pseudo_labels(WEAK, 1.5)
    with pytest.raises(ValueError, match="same shape"):
        fixmatch_loss(LABELLED, TARGETS, WEAK, STRONG[:3])
    with pytest.raises(ValueError, match="lambda_u"):
        fixmatch_loss(LABELLED, TARGETS, WEAK, STRONG, lambda_u=-1)


# ---------------------------------------------------------------------------------------------------- the step
class Toy(nn.Module):
    """A 'PANN' whose log-mel is the waveform reshaped to (B, 1, T, 3) and whose logits are scale x its time mean."""

    spec_augment = False

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.logmel_clips = 0

    def logmel(self, wave):
        self.logmel_clips += len(wave)
        return wave.view(len(wave), 1, -1, 3)

    def forward_logmel(self, x):
        return self.scale * x.mean(dim=(1, 2))


class Recorder:
    """A spectrogram policy that adds ``offset`` and records the batch sizes it saw."""

    def __init__(self, offset):
        self.offset, self.sizes = offset, []

    def __call__(self, x):
        self.sizes.append(len(x))
        return x + self.offset


def _waves(logits):
    """Waveforms whose toy log-mel has the given per-clip logits in every frame (2 frames)."""
    return torch.as_tensor(logits, dtype=torch.float32).repeat(1, 2)


def test_step_views_go_where_configured_and_the_log_mel_is_computed_once():
    weak, strong = Recorder(0.0), Recorder(0.0)
    step = FixMatchStep(View(spec=weak), View(spec=strong), 3, threshold=0.9)
    model = Toy()
    labelled = (_waves(LABELLED), TARGETS, torch.arange(2))
    unlabelled = (_waves(WEAK), torch.full((4,), -1), torch.arange(4))
    loss, logs = step(model, (labelled, unlabelled), torch.device("cpu"))
    assert weak.sizes == [2, 4] and strong.sizes == [4]  # weak: labelled + unlabelled; strong: unlabelled only
    assert model.logmel_clips == 2 + 4  # one log-mel per clip: both spectrogram views share it
    loss.backward()
    assert model.scale.grad is not None


def test_step_loss_and_diagnostics_match_the_closed_form():
    hidden = np.array([9, 9, 0, 1, 2, 2, 9])  # hidden labels of the unlabelled dataset, looked up by index
    step = FixMatchStep(View(), View(spec=Recorder(0.0)), 3, threshold=0.9, lambda_u=1.0, hidden_targets=hidden)
    index = torch.tensor([2, 3, 4, 5])  # hidden labels 0, 1, 2, 2; pseudo-labels 0, 1, 2, 0
    batch = ((_waves(LABELLED), TARGETS, torch.arange(2)), (_waves(WEAK), torch.full((4,), -1), index))
    loss, logs = step(Toy(), batch, torch.device("cpu"))
    expected = fixmatch_loss(LABELLED, TARGETS, WEAK, WEAK, threshold=0.9)  # identity views: strong = weak logits
    assert loss.item() == pytest.approx(expected.loss.item(), rel=1e-6)
    assert logs["mask_rate"] == 0.5 and logs["pseudo_acc"] == 0.75 and logs["masked_correct"] == 0.5
    assert [logs[f"pseudo_share_{c}"] for c in range(3)] == [0.25, 0.25, 0.0]
    derived = epoch_diagnostics(logs)
    assert derived["pseudo_acc_masked"] == 1.0
    assert [derived[f"pseudo_dist_{c}"] for c in range(3)] == [0.5, 0.5, 0.0]


def test_waveform_policies_act_before_the_frontend_on_each_view():
    calls = []

    def wave_policy(tag):
        def apply(w):
            calls.append((tag, len(w)))
            return w
        return apply

    step = FixMatchStep(View(wave=wave_policy("weak")), View(wave=wave_policy("strong")), 3)
    model = Toy()
    batch = ((_waves(LABELLED), TARGETS, torch.arange(2)), (_waves(WEAK), torch.full((4,), -1), torch.arange(4)))
    step(model, batch, torch.device("cpu"))
    assert calls == [("weak", 2), ("weak", 4), ("strong", 4)]
    assert model.logmel_clips == 2 + 4 + 4  # each waveform view needs its own log-mel


def test_labelled_step_with_mixup_mixes_pairs_and_their_targets():
    torch.manual_seed(0)
    step = LabelledStep(View(), 3, mixup_alpha=1.0)
    x, target = step.labelled_inputs(Toy(), _waves(WEAK), torch.tensor([0, 1, 2, 0]))
    assert x.shape == (2, 1, 2, 3) and target.shape == (2, 3)
    assert torch.allclose(target.sum(1), torch.ones(2))
    lam = target[0, 0]  # pair (clip 0: class 0, clip 1: class 1) mixed with λ
    assert torch.allclose(x[0], lam * _waves(WEAK)[0].view(1, 2, 3) + (1 - lam) * _waves(WEAK)[1].view(1, 2, 3))


def test_a_model_with_its_own_specaugment_on_is_refused():
    model = Toy()
    model.spec_augment = True
    with pytest.raises(ValueError, match="spec_augment"):
        LabelledStep(View(), 3)(model, (_waves(LABELLED), TARGETS, torch.arange(2)), torch.device("cpu"))


def test_paired_loader_cycles_the_labelled_loader_over_one_unlabelled_pass():
    pairs = list(PairedLoader([["a"], ["b"]], [[1], [2], [3], [4], [5]]))
    assert [(lab[0], unl[0]) for lab, unl in pairs] == [("a", 1), ("b", 2), ("a", 3), ("b", 4), ("a", 5)]
    assert len(PairedLoader([1], [1, 2, 3])) == 3
    assert list(CycledLoader([1, 2], 5)) == [1, 2, 1, 2, 1] and len(CycledLoader([1, 2], 5)) == 5
    with pytest.raises(ValueError, match="no batch"):
        list(PairedLoader([], [1]))


# ---------------------------------------------------------------------------------------------------- the experiment
RATE, CLIP = 16000, 4000  # 0.25-s clips at the mini PANN's rate


def _recipe(**changes):
    """The paper profile's recipe (from the chapter's spec, the one source of defaults) with ``changes``."""
    from esclib.experiments.fixmatch import FixMatchRecipe
    from esclib.runner.spec import resolve
    from esclib.runner.specs.ch02_fixmatch import SPEC

    return FixMatchRecipe.from_config(resolve(SPEC, "paper")).replace(**changes)


@pytest.fixture
def experiment(tmp_path, monkeypatch):
    """A 4-fold, 3-class world of 36 clips whose waveform is the constant (clip number + 1) / 100; clip 20 (fold 3)
    shares its source recording with clip 0 (test fold 1)."""
    from esclib.experiments.fixmatch import FixMatchExperiment
    from esclib.models.panns import build_pann, save_pann_checkpoint
    from esclib.results import ResultsStore

    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    rows = []
    for i in range(36):
        path = tmp_path / "audio" / f"{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, np.full(CLIP, (i + 1) / 100, dtype=np.float32), RATE, subtype="FLOAT")
        rows.append(dict(clip_id=f"{i}.wav", path=str(path), fold=i // 9 + 1, target=i % 3, category="abc"[i % 3],
                         source=f"s{0 if i == 20 else i}"))
    clips = ClipSet("tiny", tmp_path, ("a", "b", "c"), 4, CLIP / RATE, pd.DataFrame(rows))
    torch.manual_seed(0)
    checkpoint = save_pann_checkpoint(build_pann("CnnMini16k", classes_num=5), tmp_path / "mini.pth", 1)
    return FixMatchExperiment(clips, checkpoint, store=ResultsStore(tmp_path / "results"), progress=False)


def _clip_numbers(waves):
    return {int(round(float(w[0]) * 100)) - 1 for w in waves}


def test_no_test_fold_clip_enters_either_stream(experiment):
    recipe = _recipe(labelled_fraction=0.5, batch_size=2, mu=2, mixup=False, epochs=1)
    data = experiment.fold(1, 0.5)
    split = experiment.split(1, recipe)
    labelled = {int(c.split(".")[0]) for c in data.labelled.table["clip_id"]}
    unlabelled = {int(c.split(".")[0]) for c in data.unlabelled.table["clip_id"]}
    assert not labelled & unlabelled and len(labelled | unlabelled) == 17  # folds 3-4 without clip 20
    seen_l, seen_u = set(), set()
    loader = experiment.train_loader("fixmatch-pann", split, recipe)
    for _ in range(6):  # a few epochs: every clip of both streams gets drawn
        for (wave_l, _, _), (wave_u, target_u, _) in loader:
            seen_l |= _clip_numbers(wave_l)
            seen_u |= _clip_numbers(wave_u)
            assert (target_u == -1).all()  # the unlabelled stream carries no label
    for (wave, _, _) in experiment.train_loader("supervised-pann", split, recipe):
        assert _clip_numbers(wave) <= labelled
    assert seen_l == labelled and seen_u == unlabelled
    folds = {n // 9 + 1 for n in seen_l | seen_u}
    assert folds == {3, 4} and 20 not in seen_l | seen_u  # no test (1) or validation (2) clip, no test source
    every = experiment.fold(1, 1.0)  # the upper bound: every training clip labelled, none left unlabelled
    assert len(every.labelled) == 17 and len(every.unlabelled) == 0


def _stripes(zeroed):
    """Number of runs of True along the last axis, per row."""
    z = zeroed.int()
    return (z[:, 1:] > z[:, :-1]).sum(1) + z[:, 0]


def test_rocling_views_drop_the_stripes_of_table_1():
    from esclib.experiments.fixmatch import policy_views

    weak, strong = policy_views("rocling")
    assert weak.wave is None and strong.wave is None  # spectrogram-only: one log-mel serves both views
    torch.manual_seed(0)
    x = torch.ones(300, 1, 400, 64)
    widths = {}
    for name, view, (t_width, t_num, f_width, f_num) in (("weak", weak, (32, 1, 8, 1)),
                                                          ("strong", strong, (64, 2, 35, 2))):
        zero = view.on_logmel(x)[:, 0] == 0
        frames, bins = zero.all(dim=2), zero.all(dim=1)  # whole frames / whole mel bins set to zero
        assert (_stripes(frames) <= t_num).all() and (_stripes(bins) <= f_num).all()
        assert frames.sum(1).max() <= t_num * (t_width - 1) and bins.sum(1).max() <= f_num * (f_width - 1)
        widths[name] = (frames.sum(1).max().item(), bins.sum(1).max().item(), zero.float().mean().item())
    assert widths["weak"][0] >= 25 and widths["weak"][1] >= 6  # widths reach their configured maxima
    assert widths["strong"][0] >= 90 and widths["strong"][1] >= 45
    assert widths["strong"][2] > 2 * widths["weak"][2]  # the strong view hides far more of the spectrogram


def test_sslh_views_act_on_the_waveform_and_the_strong_one_hides_more():
    from esclib.experiments.fixmatch import policy_views

    weak, strong = policy_views("sslh")
    assert weak.wave is not None and strong.wave is not None and strong.spec is not None
    torch.manual_seed(0)
    wave = torch.ones(200, 8000)
    hidden = {name: (view.wave(wave) == 0).float().mean().item() for name, view in (("weak", weak),
                                                                                 ("strong", strong))}
    assert 0 < hidden["weak"] < hidden["strong"]


def test_a_run_trains_records_its_diagnostics_and_is_reused(experiment, monkeypatch):
    from esclib.experiments import fixmatch as fm

    import esclib.experiments.base as base

    recipe = _recipe(labelled_fraction=0.5, epochs=2, steps_per_epoch=2, batch_size=2, mu=2)
    first = experiment.run("fixmatch-pann", recipe, experiment.split(1, recipe))
    metrics = first["metrics"]
    assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["auc"] <= 1 and metrics["n_unlabelled"] == 9
    assert [c["epoch"] for c in first["curves"]] == [1, 2]
    assert {"mask_rate", "pseudo_acc", "pseudo_acc_masked", "loss_u", "val_acc", "lr"} <= set(first["curves"][0])
    assert first["setting"]["threshold"] == 0.95 and first["setting"]["fold"] == 1
    assert first["setting"]["labelled_fraction"] == 0.5

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(base, "fit", no_training)
    assert experiment.run("fixmatch-pann", recipe, experiment.split(1, recipe))["metrics"] == metrics
    with pytest.raises(AssertionError, match="trained again"):  # other parameters, same setting: trained again
        changed = recipe.replace(epochs=3)
        experiment.run("fixmatch-pann", changed, experiment.split(1, changed))


def test_the_chapter_plan_and_its_labels():
    from esclib.experiments import fixmatch as fm

    base = _recipe()
    plan = fm.chapter_plan(base, ablations=("threshold", "optimizer"), ablation_fraction=0.01)
    arms = [(arm, fm.variant(arm, recipe, base)) for arm, recipe in plan]
    assert arms[:5] == [("supervised-pann", "main"), ("supervised-scratch", "main"), ("fixmatch-pann", "main"),
                        ("fixmatch-scratch", "main"), ("supervised-pann", "100% labels")]
    assert ("fixmatch-pann", "1% labels, τ = 0.75") in arms and ("fixmatch-pann", "1% labels, optimizer sgd") in arms
    assert arms.count(("fixmatch-pann", "1% labels")) == 1  # τ = 0.95 and adam are the same run: listed once
    with pytest.raises(ValueError, match="unknown ablation"):
        fm.chapter_plan(base, ablations=("dropout",))
    with pytest.raises(ValueError, match="accumulate"):
        _recipe(batch_size=5, accumulate=2)
