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
from esclib.train.fixmatch import (PASS_STRUCTURES, CycledLoader, FixMatchStep, LabelledStep, PairedLoader, View,
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
class Counter(nn.Module):
    """A layer that records the batch size of every call and returns its input unchanged (``bn0`` here, which
    receives ``(B, F, T, 1)``)."""

    def __init__(self):
        super().__init__()
        self.sizes = []

    def forward(self, x):
        self.sizes.append(len(x))
        return x


class Toy(nn.Module):
    """A PANN-style classifier: its frontend reshapes a waveform to a log-mel (B, 1, T, 3), ``bn0`` records its
    batch sizes, and its logits are ``scale`` x the time mean of the log-mel (one row of logits per clip, no
    interaction between clips, so every gradient is exact and per clip)."""

    spec_augment = False

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.frontend_clips = 0
        self.bn0 = Counter()
        self.body_sizes = []

    def spectrogram_extractor(self, wave):
        self.frontend_clips += len(wave)
        return wave.view(len(wave), 1, -1, 3)

    def logmel_extractor(self, x):
        return x

    def forward_logmel(self, x):
        self.body_sizes.append(len(x))
        return self.scale * x.mean(dim=(1, 2))


class Capture:
    """A spectrogram policy: ``transform(x)``, keeping each output (with its gradient once backward has run)."""

    def __init__(self, transform=lambda x: x * 1.0):
        self.transform, self.outputs = transform, []

    def __call__(self, x):
        out = self.transform(x)
        if out.requires_grad:
            out.retain_grad()
        self.outputs.append(out)
        return out


def _waves(logits, requires_grad=False):
    """Waveforms whose toy log-mel has the given per-clip logits in every frame (2 frames)."""
    return torch.as_tensor(logits, dtype=torch.float32).repeat(1, 2).requires_grad_(requires_grad)


def _batch(index=None, requires_grad=False):
    return ((_waves(LABELLED, requires_grad), TARGETS, torch.arange(2)),
            (_waves(WEAK, requires_grad), torch.full((4,), -1), torch.arange(4) if index is None else index))


def _closed_form(lambda_u=1.0):
    """ℓ_s, ℓ_u by hand for LABELLED / TARGETS and the unlabelled clips WEAK seen weakly as WEAK and strongly as
    WEAK reversed, τ = 0.9: pseudo-labels (0, 1, 2, 0) with confidences (0.909, 0.965, 0.452, 0.576) -> mask
    (1, 1, 0, 0); the strong rows are [0, 0, 3] and [0, 4, 0]."""
    sup = (_ce([2, 0, 0], 0) + _ce([0, 1, 0], 1)) / 2
    unsup = (_ce([0, 0, 3], 0) + _ce([0, 4, 0], 1)) / 4
    return sup, unsup, sup + lambda_u * unsup


@pytest.mark.parametrize("passes", PASS_STRUCTURES)
def test_pseudo_labels_come_from_the_weak_view_and_the_loss_from_the_strong_one(passes):
    step = FixMatchStep(View(), View(spec=Capture(lambda x: x.flip(-1))), 3, threshold=0.9, lambda_u=1.0,
                        passes=passes, hidden_targets=np.array([0, 1, 0, 1]))
    loss, logs = step(Toy(), _batch(), torch.device("cpu"))
    sup, unsup, total = _closed_form()
    assert logs["loss_s"] == pytest.approx(sup, rel=1e-6) and logs["loss_u"] == pytest.approx(unsup, rel=1e-6)
    assert loss.item() == pytest.approx(total, rel=1e-6)
    # pseudo-labels (0, 1, 2, 0) of the weak view; hidden labels (0, 1, 0, 1): right on clips 0 and 1
    assert [logs[f"pseudo_share_{c}"] for c in range(3)] == [0.25, 0.25, 0.0]
    assert logs["mask_rate"] == 0.5 and logs["pseudo_acc"] == 0.5 and logs["masked_correct"] == 0.5


@pytest.mark.parametrize("lambda_u", [0.0, 0.5, 3.0])
def test_lambda_u_scales_the_unlabelled_term_of_the_step(lambda_u):
    step = FixMatchStep(View(), View(spec=Capture(lambda x: x.flip(-1))), 3, threshold=0.9, lambda_u=lambda_u)
    loss, logs = step(Toy(), _batch(), torch.device("cpu"))
    assert loss.item() == pytest.approx(_closed_form(lambda_u)[2], rel=1e-6)


@pytest.mark.parametrize("passes", PASS_STRUCTURES)
def test_gradient_flows_through_the_strong_view_and_the_labelled_term_only(passes):
    weak, strong = Capture(), Capture(lambda x: x.flip(-1))
    step = FixMatchStep(View(spec=weak), View(spec=strong), 3, threshold=0.9, passes=passes)
    model = Toy()
    loss, _ = step(model, _batch(requires_grad=True), torch.device("cpu"))
    loss.backward()
    labelled, weak_u = weak.outputs  # the weak view acts on the labelled batch, then on the unlabelled one
    (strong_u,) = strong.outputs
    assert labelled.grad.abs().sum(dim=(1, 2, 3)).gt(0).all()  # every labelled clip gets a gradient
    assert weak_u.grad is None or torch.count_nonzero(weak_u.grad) == 0  # the pseudo-labels' view: none
    per_clip = strong_u.grad.abs().sum(dim=(1, 2, 3))
    assert per_clip.gt(0).tolist() == [True, True, False, False]  # exactly the clips whose confidence reaches τ
    assert model.scale.grad is not None


def test_joint_passes_put_every_view_through_bn0_and_the_network_as_one_batch():
    model = Toy()
    FixMatchStep(View(), View(spec=Capture()), 3, passes="joint")(model, _batch(), torch.device("cpu"))
    assert model.bn0.sizes == [2 + 4 + 4] and model.body_sizes == [2 + 4 + 4]
    assert model.frontend_clips == 2 + 4  # the unlabelled log-mel is computed once for both spectrogram views


def test_separate_passes_put_the_weak_views_through_the_network_alone():
    model = Toy()
    FixMatchStep(View(), View(spec=Capture()), 3, passes="separate")(model, _batch(), torch.device("cpu"))
    assert model.bn0.sizes == [2, 4]  # bn0: labelled clips, then unlabelled clips
    assert model.body_sizes == [4, 2 + 4]  # the weak views alone (no gradient), then labelled + strong views


def test_joint_passes_normalise_with_the_statistics_of_the_whole_batch():
    torch.manual_seed(0)
    model = Toy()
    model.bn0 = nn.BatchNorm2d(3, affine=False)  # statistics of the batch it is given
    waves = torch.randn(2, 6), torch.randn(4, 6)
    batch = ((waves[0], TARGETS, torch.arange(2)), (waves[1], torch.full((4,), -1), torch.arange(4)))
    weak = Capture()
    FixMatchStep(View(spec=weak), View(), 3, passes="joint")(model, batch, torch.device("cpu"))
    raw = torch.cat([waves[0], waves[1], waves[1]]).view(10, 1, 2, 3)
    mean, var = raw.mean(dim=(0, 1, 2)), raw.var(dim=(0, 1, 2), unbiased=False)
    expected = (raw - mean) / torch.sqrt(var + 1e-5)
    assert torch.allclose(weak.outputs[1], expected[2:6], atol=1e-5)  # the unlabelled weak views, normalised jointly
    assert torch.allclose(weak.outputs[0], expected[:2], atol=1e-5)


def test_a_step_with_an_unknown_pass_structure_is_refused():
    with pytest.raises(ValueError, match="passes"):
        FixMatchStep(View(), View(), 3, passes="interleaved")


def test_waveform_policies_act_before_the_frontend_on_each_view():
    calls = []

    def wave_policy(tag):
        def apply(w):
            calls.append((tag, len(w)))
            return w
        return apply

    for passes, bn0_calls in (("joint", [10]), ("separate", [2, 4, 4])):
        calls.clear()
        step = FixMatchStep(View(wave=wave_policy("weak")), View(wave=wave_policy("strong")), 3, passes=passes)
        model = Toy()
        step(model, _batch(), torch.device("cpu"))
        assert calls == [("weak", 2), ("weak", 4), ("strong", 4)]
        assert model.frontend_clips == 2 + 4 + 4  # each waveform view needs its own log-mel
        assert model.bn0.sizes == bn0_calls


def test_labelled_step_with_mixup_mixes_pairs_and_their_targets():
    torch.manual_seed(0)
    step = LabelledStep(View(), 3, mixup_alpha=1.0)
    x, target = step.labelled_inputs(_waves(WEAK).view(4, 1, 2, 3), torch.tensor([0, 1, 2, 0]))
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
RATE, CLIP = 16000, 8000  # 0.5-s clips at the mini PANN's rate: 26 of its 20-ms frames


def _recipe(**changes):
    """The paper profile's recipe (from the chapter's spec, the one source of defaults) with ``changes``."""
    from esclib.experiments.fixmatch import FixMatchRecipe
    from esclib.runner.spec import resolve
    from esclib.runner.specs.ch02_fixmatch import SPEC

    return FixMatchRecipe.from_config(resolve(SPEC, "paper")).replace(**changes)


#: clip i is a tone at the centre frequency of mel bin FIRST_BIN + i of the mini PANN's frontend (64 bins,
#: 50-8000 Hz), so that its number can be read back from a waveform or a log-mel crop
FIRST_BIN = 20


@pytest.fixture
def experiment(tmp_path, monkeypatch):
    """A 4-fold, 3-class world of 36 clips, clip i a tone at the centre of mel bin FIRST_BIN + i; clip 20 (fold 3)
    shares its source recording with clip 0 (test fold 1)."""
    return _tone_world(tmp_path, monkeypatch)


def _tone_world(tmp_path, monkeypatch, sound: int = CLIP):
    """:func:`experiment`'s world, each clip's file ``sound`` samples of its tone (the cache zero-pads it to
    ``CLIP``)."""
    import librosa

    from esclib.experiments.fixmatch import FixMatchExperiment
    from esclib.models.panns import build_pann, save_pann_checkpoint
    from esclib.results import ResultsStore

    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    centres = librosa.mel_frequencies(64 + 2, fmin=50, fmax=8000)[1:-1]
    t = np.arange(CLIP) / RATE
    rows = []
    for i in range(36):
        path = tmp_path / "audio" / f"{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, (0.5 * np.sin(2 * np.pi * centres[FIRST_BIN + i] * t[:sound])).astype(np.float32), RATE,
                 subtype="FLOAT")
        rows.append(dict(clip_id=f"{i}.wav", path=str(path), fold=i // 9 + 1, target=i % 3, category="abc"[i % 3],
                         source=f"s{0 if i == 20 else i}"))
    clips = ClipSet("tiny", tmp_path, ("a", "b", "c"), 4, CLIP / RATE, pd.DataFrame(rows))
    torch.manual_seed(0)
    checkpoint = save_pann_checkpoint(build_pann("CnnMini16k", classes_num=5), tmp_path / "mini.pth", 1)
    return FixMatchExperiment(clips, checkpoint, store=ResultsStore(tmp_path / "results"), progress=False)


def _clip_numbers(batch):
    """The clip numbers of a batch of log-mel crops ``(B, mel_bins, frames)``: the loudest mel bin of each."""
    assert batch.ndim == 3 and batch.shape[1] == 64, "expected log-mel crops (B, mel bins, frames)"
    return {int(x.mean(dim=-1).argmax()) - FIRST_BIN for x in batch}


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


def _time_widths(view):
    from esclib.augment.specaugment import SpecAugment

    return [op.time_drop_width for op in view.spec if isinstance(op, SpecAugment)]


def test_views_scaled_to_a_quarter_mask_a_crop_as_the_studys_mask_a_clip():
    from esclib.experiments.fixmatch import policy_views

    weak, strong = policy_views("rocling", 0.25)
    assert _time_widths(weak) == [8] and _time_widths(strong) == [16]
    assert [op.freq_drop_width for op in strong.spec] == [35]  # the mel bins are the study's: unscaled
    torch.manual_seed(0)
    crop, clip = torch.ones(300, 1, 100, 64), torch.ones(300, 1, 400, 64)
    study = policy_views("rocling")[1]
    share = {name: (view.on_logmel(x)[:, 0] == 0).all(dim=2).float().mean().item()
             for name, view, x in (("crop", strong, crop), ("clip", study, clip))}
    assert share["crop"] == pytest.approx(share["clip"], abs=0.03)  # the same share of time masked
    assert policy_views("rocling", 1.0)[0].spec[0].time_drop_width == 32


def test_sslh_views_act_on_the_waveform_and_the_strong_one_hides_more():
    from esclib.experiments.fixmatch import policy_views

    weak, strong = policy_views("sslh")
    assert weak.wave is not None and strong.wave is not None and strong.spec is not None
    torch.manual_seed(0)
    wave = torch.ones(200, 8000)
    hidden = {name: (view.wave(wave) == 0).float().mean().item() for name, view in (("weak", weak),
                                                                                 ("strong", strong))}
    assert 0 < hidden["weak"] < hidden["strong"]


def test_the_study_widths_keep_their_seconds_on_any_frontends_hop():
    from types import SimpleNamespace

    from esclib.experiments.fixmatch import FixMatchExperiment
    from esclib.models.panns.frontend import FRONTEND_16K, FRONTEND_32K, FRONTEND_MINI

    for frontend, scale in ((FRONTEND_16K, 1.0), (FRONTEND_32K, 1.0), (FRONTEND_MINI, 0.5)):
        stub = SimpleNamespace(sample_rate=frontend.sample_rate, pretrained=SimpleNamespace(frontend=frontend))
        assert FixMatchExperiment.view_time_scale(stub, _recipe(crop_seconds=None)) == scale  # exactly: 1 is no scaling


def test_the_runs_views_shrink_with_the_crop_only_under_views_to_crop(experiment):
    rate = 0.5  # the mini PANN's 20-ms frames: the study's 10-ms widths in half as many frames
    half = experiment.frames(CLIP / RATE / 2) / experiment.frames()
    for recipe, scale in ((_recipe(crop_seconds=CLIP / RATE / 2, views_to_crop=True), rate * half),
                          (_recipe(crop_seconds=CLIP / RATE / 2, views_to_crop=False), rate),
                          (_recipe(crop_seconds=None, views_to_crop=True), rate)):
        assert experiment.view_time_scale(recipe) == pytest.approx(scale)
        split = experiment.split(1, recipe)
        step = experiment.step("fixmatch-pann", split, recipe)
        assert _time_widths(step.weak) == [max(2, round(32 * scale))]
        assert _time_widths(step.strong) == [max(2, round(64 * scale))]
    shown = experiment.views_of(np.ones(CLIP, np.float32), _recipe(crop_seconds=CLIP / RATE / 2), seed=0)
    assert shown["weak"].shape[0] == experiment.frames(CLIP / RATE / 2)  # the figure shows what training sees


@pytest.mark.parametrize("hop", ["mini", "released"])
def test_clips_that_sound_throughout_leave_no_crop_of_padding_alone(experiment, hop):
    from esclib.models.panns import FRONTEND_16K, build_pann

    if hop == "released":  # CNN14-16k's 10-ms hop, shorter than half its window
        experiment.pretrained = build_pann("CnnMini16k", classes_num=5, frontend=FRONTEND_16K)
    assert (experiment.sounding_frames == experiment.frames()).all()
    assert experiment.padding_only_share(0.2) == 0.0


def test_validation_and_test_read_whole_clips_whatever_the_training_crop(experiment, monkeypatch):
    from esclib.experiments import fixmatch as fm

    frames = {"val": set(), "test": set(), "train": set()}

    def spy(role, real):
        def wrapped(model, loader, *args, **kwargs):
            frames[role] |= {batch[0].shape[-1] for batch in loader}
            return real(model, loader, *args, **kwargs)
        return wrapped

    monkeypatch.setattr(fm, "evaluate", spy("val", fm.evaluate))
    monkeypatch.setattr(fm, "predict", spy("test", fm.predict))
    crop = 0.8 * CLIP / RATE  # 21 of a clip's 26 frames (the mini PANN needs at least 16)
    recipe = _recipe(labelled_fraction=0.5, epochs=1, steps_per_epoch=1, batch_size=2, mu=2, crop_seconds=crop)
    split = experiment.split(1, recipe)
    assert "val" in split.parts  # the paper recipe selects on the validation fold
    frames["train"] = {batch[0].shape[-1] for batch in experiment.train_loader("supervised-pann", split, recipe)}
    experiment.run("supervised-pann", recipe, split)
    assert frames["train"] == {experiment.frames(crop)} != {experiment.frames()}
    assert frames["val"] == frames["test"] == {experiment.frames()}  # whole clips, not the training crop


@pytest.mark.parametrize("policies", ["rocling", "sslh"])
def test_training_crops_of_short_clips_lie_within_their_sound(tmp_path, monkeypatch, policies):
    half = _tone_world(tmp_path, monkeypatch, sound=CLIP // 2)  # 0.25 s of tone, then 0.25 s of zero padding
    recipe = _recipe(labelled_fraction=0.5, batch_size=2, mu=2, mixup=False, epochs=1, policies=policies,
                     crop_seconds=0.2)  # 11 of a clip's 26 frames
    split = half.split(1, recipe)
    silence = float(half.logmel(torch.zeros(1, CLIP))[0, 0, 0])
    crops = []
    for _ in range(4):
        crops += [wave for (wave_l, _, _), (wave_u, _, _) in half.train_loader("fixmatch-pann", split, recipe)
                  for wave in (wave_l, wave_u)]
        crops += [wave for wave, _, _ in half.train_loader("supervised-pann", split, recipe)]
    if policies == "sslh":  # waveform crops: the crop's last samples are still tone
        assert all(crop[..., -100:].abs().amax(-1).min() > 0 for crop in crops)
    else:  # log-mel crops: no frame of a crop is the log-mel of silence
        assert all((crop.amax(dim=1) > silence + 1).all() for crop in crops)
    ends = half.sounding_frames  # the tone's 13 frames, and the frame whose window reaches into it
    assert (ends == ends[0]).all() and half.frames(0.25) <= ends[0] <= half.frames(0.25) + 1 < half.frames()
    starts = half.frames() - half.frames(0.2) + 1  # 16 crops of 11 frames in a 26-frame clip
    assert half.padding_only_share(0.2) == pytest.approx((starts - ends[0]) / starts)  # those starting after the tone


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


@pytest.mark.parametrize("mu, mixup", [(1, False), (3, False), (2, True)])
def test_mu_sets_the_unlabelled_batch_and_every_arm_takes_as_many_steps(experiment, mu, mixup):
    recipe = _recipe(labelled_fraction=0.5, batch_size=2, mu=mu, mixup=mixup, steps_per_epoch=3)
    split = experiment.split(1, recipe)
    fixmatch = list(experiment.train_loader("fixmatch-pann", split, recipe))
    assert [(len(l[0]), len(u[0])) for l, u in fixmatch] == [(4 if mixup else 2, 2 * mu)] * 3
    supervised = list(experiment.train_loader("supervised-pann", split, recipe))
    assert [len(b[0]) for b in supervised] == [4 if mixup else 2] * 3  # as many steps, labelled clips only


def test_the_step_of_each_arm_carries_the_recipe(experiment):
    recipe = _recipe(labelled_fraction=0.5, threshold=0.6, lambda_u=2.5, passes="separate", mixup=True)
    split = experiment.split(1, recipe)
    step = experiment.step("fixmatch-pann", split, recipe)
    assert isinstance(step, FixMatchStep)
    assert (step.threshold, step.lambda_u, step.passes, step.mixup_alpha) == (0.6, 2.5, "separate", 1.0)
    supervised = experiment.step("supervised-pann", split, recipe)
    assert not isinstance(supervised, FixMatchStep) and supervised.mixup_alpha == 1.0
    assert experiment.step("fixmatch-pann", split, recipe.replace(mixup=False)).mixup_alpha is None


def _ids(clips):
    return set(clips.table["clip_id"])


def test_selection_rules_decide_which_clips_pick_the_model(experiment):
    data = experiment.fold(1, 0.5)
    budget, val_fold = _ids(data.labelled), _ids(data.split.val)
    fold_rule = experiment.split(1, _recipe(labelled_fraction=0.5, selection="validation-fold"))
    assert _ids(fold_rule.labelled) == budget and _ids(fold_rule.val) == val_fold
    assert {int(c.split(".")[0]) // 9 + 1 for c in val_fold} == {2}
    budgeted = experiment.split(1, _recipe(labelled_fraction=0.5, selection="budgeted"))
    assert _ids(budgeted.labelled) | _ids(budgeted.val) == budget  # the validation labels come out of the budget
    assert not _ids(budgeted.labelled) & _ids(budgeted.val) and len(budgeted.val) == 3  # one clip of each class
    assert sorted(budgeted.val.targets) == [0, 1, 2]
    last = experiment.split(1, _recipe(labelled_fraction=0.5, selection="last"))
    assert "val" not in last.parts and _ids(last.labelled) == budget
    assert _ids(budgeted.unlabelled) == _ids(fold_rule.unlabelled) == _ids(data.unlabelled)


def test_runs_record_the_selected_and_the_final_epoch(experiment):
    recipe = _recipe(labelled_fraction=0.5, epochs=3, steps_per_epoch=2, batch_size=2, mu=2, mixup=False)
    for rule, n_val in (("validation-fold", 9), ("budgeted", 3), ("last", 0)):
        chosen = recipe.replace(selection=rule)
        result = experiment.run("supervised-pann", chosen, experiment.split(1, chosen))
        metrics, curves = result["metrics"], result["curves"]
        assert metrics["n_val"] == n_val and result["setting"]["selection"] == rule
        assert {"accuracy", "last_accuracy", "auc", "last_auc"} <= set(metrics)
        if rule == "last":
            assert "val_acc" not in curves[0] and metrics["best_epoch"] == 3
            assert metrics["accuracy"] == metrics["last_accuracy"]
        else:
            accuracies = [c["val_acc"] for c in curves]
            assert metrics["best_epoch"] == 1 + accuracies.index(max(accuracies))  # the first best epoch
            assert metrics["val_acc"] == max(accuracies)


def test_the_chapter_plan_adds_the_pass_structure_and_the_selection_rules():
    from esclib.experiments import fixmatch as fm

    base = _recipe()
    plan = fm.chapter_plan(base, arms=("supervised-pann", "fixmatch-pann"), compare_passes=True,
                           selections=("budgeted", "validation-fold"))
    assert [(arm, fm.variant(arm, recipe, base)) for arm, recipe in plan] == [
        ("supervised-pann", "main"), ("fixmatch-pann", "main"), ("supervised-pann", "100% labels"),
        ("fixmatch-pann", "separate passes"), ("supervised-pann", "selection budgeted"),
        ("fixmatch-pann", "selection budgeted")]
    with pytest.raises(ValueError, match="selection rule"):
        fm.chapter_plan(base, selections=("best-test",))
    with pytest.raises(ValueError, match="passes"):
        _recipe(passes="interleaved")
    with pytest.raises(ValueError, match="selection"):
        _recipe(selection="test-fold")


def test_the_reported_auc_is_the_macro_one_vs_rest_auc():
    from esclib.metrics import classification_metrics

    y = np.array([0, 0, 0, 1, 1, 2])  # supports 3, 2, 1: macro and support-weighted averages differ
    scores = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.3, 0.4, 0.3],
                       [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.5, 0.4]])
    # per class, the share of (positive, negative) pairs ranked right: 8/9, 6/8 and 5/5
    per_class = [8 / 9, 6 / 8, 1.0]
    auc = classification_metrics(y, scores, 3)["auc"]
    assert auc == pytest.approx(np.mean(per_class))
    assert auc != pytest.approx(np.average(per_class, weights=[3, 2, 1]))


def test_the_selected_epoch_and_the_final_epoch_are_the_ones_tested(experiment, monkeypatch):
    """Validation accuracy that falls epoch after epoch makes epoch 1 the selected one; each test call reports a
    fingerprint of the weights it was given, which must be epoch 1's for ``accuracy`` and epoch 3's for
    ``last_accuracy``."""
    from esclib.experiments import fixmatch as fm
    from esclib.experiments.fixmatch import FixMatchExperiment

    def fingerprint(model):
        return float(sum(p.detach().double().sum() for p in model.parameters()))

    seen = []

    def falling(model, loader, device, amp=None):
        seen.append(fingerprint(model))
        return {"val_acc": 1.0 / len(seen), "val_loss": float(len(seen))}

    monkeypatch.setattr(fm, "evaluate", falling)
    monkeypatch.setattr(FixMatchExperiment, "test_metrics",
                        lambda self, model, loader: {"accuracy": fingerprint(model), "auc": 0.5})
    recipe = _recipe(labelled_fraction=0.5, epochs=3, steps_per_epoch=2, batch_size=2, mu=2, mixup=False)
    metrics = experiment.run("fixmatch-pann", recipe, experiment.split(1, recipe))["metrics"]
    assert len(seen) == 3 and len(set(seen)) == 3 and metrics["best_epoch"] == 1
    assert metrics["accuracy"] == pytest.approx(seen[0], rel=1e-12)
    assert metrics["last_accuracy"] == pytest.approx(seen[2], rel=1e-12)


def test_the_experiment_refuses_a_split_whose_streams_hold_a_test_source(experiment, monkeypatch):
    """The experiment checks its own streams, not only the split it is given: a split whose training folds hold a
    clip of a test clip's recording (as a faulty split function could produce) is refused."""
    import dataclasses

    from esclib.data.splits import LeakError, fold_split
    from esclib.experiments import fixmatch as fm

    def leaky(clips, fold):
        split = fold_split(clips, fold)
        rows = np.isin(clips.table["clip_id"], [*split.train.table["clip_id"], "20.wav"])
        return dataclasses.replace(split, train=clips.subset(rows))  # clip 20 shares clip 0's (test) recording

    monkeypatch.setattr(fm, "fold_split", leaky)
    with pytest.raises(LeakError, match="20.wav"):
        experiment.fold(1, 0.5)


# ---------------------------------------------------------------------------------------------------- the chapter
def _fake(what, arm, fold, accuracy, *, last=None, mask=None, selection="validation-fold", passes="joint",
          fraction=0.1):
    """A stored result as the experiment writes it (the keys the chapter's tables read), with two epochs of
    curves; FixMatch runs (``mask`` given) carry the diagnostics."""
    from esclib.experiments.fixmatch import label_of

    fixmatch = arm.startswith("fixmatch")
    setting = {"dataset": "us8k", "fold": fold, "labelled_fraction": fraction, "selection": selection,
               **({"threshold": 0.75, "mu": 1, "passes": passes} if fixmatch else {})}
    metrics = {"accuracy": accuracy, "auc": 0.9, "last_accuracy": accuracy if last is None else last,
               "n_labelled": 45 if selection != "budgeted" else 35, "n_val": 57 if selection != "budgeted" else 10,
               "n_unlabelled": 400, "n_test": 58, "best_epoch": 2}
    diagnostics = {"mask_rate": mask, "pseudo_acc_masked": 0.8, "pseudo_acc": 0.6, "loss_s": 0.5, "loss_u": 0.1,
                   **{f"pseudo_share_{c}": mask / 3 for c in range(3)}} if fixmatch else {}
    if fixmatch:
        metrics |= {"final_mask_rate": mask, "final_pseudo_acc_masked": 0.8, "final_pseudo_acc": 0.6}
    return {"experiment": "fixmatch", "arm": arm, "label": label_of(arm, what), "setting": setting,
            "identity": {"seed": 0, "split": f"s{fold}{selection}", "recipe": {"labelled_fraction": fraction}},
            "metrics": metrics, "id": f"{arm}-{what}-{fold}", "seconds": 2.0,
            "curves": [{"epoch": e, "loss": 1.0 / e, "val_acc": 0.4 + 0.1 * e, **diagnostics} for e in (1, 2)]}


@pytest.fixture
def chapter_runs():
    from esclib.results.summary import Results

    runs = []
    for fold, (sup, fix, full) in enumerate([(0.50, 0.60, 0.90), (0.40, 0.46, 0.80), (0.60, 0.57, 0.85)], start=1):
        runs += [_fake("main", "supervised-pann", fold, sup, last=sup - 0.1),
                 _fake("main", "fixmatch-pann", fold, fix, last=fix - 0.05, mask=0.5),
                 _fake("100% labels", "supervised-pann", fold, full, fraction=1.0),
                 _fake("separate passes", "fixmatch-pann", fold, fix - 0.02, mask=0.3, passes="separate"),
                 _fake("selection budgeted", "supervised-pann", fold, sup - 0.05, selection="budgeted"),
                 _fake("selection budgeted", "fixmatch-pann", fold, fix - 0.04, mask=0.4, selection="budgeted")]
    return Results(runs)


def test_the_chapter_numbers_are_the_paired_differences_of_its_runs(chapter_runs):
    from esclib.experiments import fixmatch as fm
    from esclib.results.summary import Results

    numbers = fm.chapter_numbers(chapter_runs, _recipe(labelled_fraction=0.1, epochs=2, steps_per_epoch=10,
                                                       batch_size=8, mu=1))
    assert numbers["acc_sup"] == pytest.approx(0.5) and numbers["acc_full"] == pytest.approx(0.85)
    assert numbers["gain"] == pytest.approx((0.10 + 0.06 - 0.03) / 3) and numbers["gain_higher"] == 2
    assert numbers["gain_verdict"] == "inside the fold noise"
    assert numbers["room"] == pytest.approx((0.40 + 0.40 + 0.25) / 3)
    assert numbers["room_verdict"] == "above zero on every resample of the folds"
    assert numbers["passes"] == pytest.approx(-0.02) and numbers["passes_verdict"].startswith("below zero")
    assert numbers["gain_last"] == pytest.approx((0.15 + 0.11 + 0.02) / 3)
    assert numbers["gain_budgeted"] == pytest.approx(numbers["gain"] + 0.01)
    assert f"{numbers['gain_budgeted']:+.3f}" in numbers["budgeted_sentence"]
    assert f"{numbers['acc_sup_budgeted']:.3f}" in numbers["budgeted_sentence"]
    without = fm.chapter_numbers(Results(r for r in chapter_runs if "budgeted" not in r.get("label", "")),
                                 _recipe(labelled_fraction=0.1))
    assert "did not run" in without["budgeted_sentence"] and "nan" not in without["budgeted_sentence"]
    assert "separate − joint is -0.020" in numbers["passes_sentence"] and "0.30 of the unlabelled" in numbers[
        "passes_sentence"] and "(joint: 0.50)" in numbers["passes_sentence"]
    joint = fm.chapter_numbers(Results(r for r in chapter_runs if "separate" not in r.get("label", "")),
                               _recipe(labelled_fraction=0.1))
    assert "separate passes did not run" in joint["passes_sentence"] and "nan" not in joint["passes_sentence"]
    assert numbers["mask_rate_fm"] == 0.5 and numbers["mask_rate_fm_other"] == 0.3
    assert numbers["strong_views"] == pytest.approx(2 * 10 * 8 / 400)
    assert numbers["n_val"] == 57 and numbers["n_labelled"] == 45 and numbers["runs"] == 18
    assert numbers["train_seconds"] == pytest.approx(36.0)


def test_the_chapter_shows_what_it_has_when_arms_are_left_out(chapter_runs):
    import matplotlib

    matplotlib.use("Agg")
    from esclib.experiments import fixmatch as fm
    from esclib.results.summary import Results

    recipe = _recipe(labelled_fraction=0.1, selection="validation-fold", passes="joint")
    supervised_only = Results(r for r in chapter_runs if r["arm"] == "supervised-pann")
    for runs in (chapter_runs, supervised_only, Results()):
        numbers = fm.chapter_numbers(runs, recipe)
        assert set(numbers) == set(fm.chapter_numbers(chapter_runs, recipe))  # every glued name is always defined
        curves = fm.pass_structure_curves(runs, recipe)
        figures = [fm.plot_accuracy(runs), fm.plot_paired(runs, [(fm.label_of("supervised-pann"),
                                                                 fm.label_of("fixmatch-pann"))]),
                   fm.plot_pass_structures(curves, 0.75), fm.plot_pseudo_label_shares(curves, "abc"),
                   fm.plot_learning_curves(fm.curve_frame(runs), [fm.label_of("supervised-pann")])]
        tables = [fm.run_table(runs), fm.selection_table(runs), fm.diagnosis_table(runs, recipe),
                  fm.paired_table(runs, [(fm.label_of("supervised-pann"), fm.label_of("fixmatch-pann"))])]
        if runs is chapter_runs:
            assert all(f is not None for f in figures) and set(curves["passes"]) == {"joint", "separate"}
            assert all(len(t) for t in tables)
        if runs is supervised_only:
            assert numbers["gain_verdict"] == "not run" and math.isnan(numbers["mask_rate_fm"])
            assert figures[2] is None and figures[0] is not None
    table = fm.selection_table(chapter_runs)
    assert table["selection rule of the runs"].tolist() == ["validation-fold"] * 4 + ["budgeted"] * 4
    assert table["test accuracy"].iloc[0] == "0.500 ± 0.100" and table["test accuracy"].iloc[1] == "0.400 ± 0.100"


# ---------------------------------------------------------------------------------------------------- cached log-mels
def test_cached_log_mels_are_the_frontends_and_a_changed_frontend_is_computed_anew(experiment):
    import copy

    base = experiment.pretrained
    waves = torch.tensor(np.stack([sf.read(p, dtype="float32")[0] for p in experiment.clips.paths[:3]]))
    with torch.no_grad():
        expected = base.logmel_extractor(base.spectrogram_extractor(waves))[:, 0].transpose(1, 2)
    assert experiment.logmels.shape == (36, 64, CLIP // 320 + 1)  # the mini's 20-ms hop
    assert np.allclose(experiment.logmels[:3], expected.numpy(), atol=1e-4)
    louder = copy.copy(experiment)  # the same clips, a frontend whose mel filters are doubled: +3.01 dB everywhere
    louder.pretrained = copy.deepcopy(base)
    louder.pretrained.logmel_extractor.melW.mul_(2.0)
    louder.__dict__.pop("logmels", None)
    above_floor = np.asarray(experiment.logmels) > -90  # 10 log10(amin) = -100 dB clips the quietest bins
    difference = (louder.logmels - experiment.logmels)[above_floor]
    assert np.allclose(difference, 10 * np.log10(2.0), atol=1e-3)  # not the first frontend's cache, read stale


def test_the_classifier_reads_waveforms_and_cached_log_mels_alike(experiment):
    from esclib.train.fixmatch import Classifier

    model = experiment.model("fixmatch-pann").eval()
    waves = torch.tensor(np.stack([sf.read(p, dtype="float32")[0] for p in experiment.clips.paths[:4]]))
    with torch.no_grad():
        direct = model(waves)["logits"]
        from_waves = Classifier(model, "waveform")(waves)
        from_logmels = Classifier(model, "logmel")(torch.tensor(np.array(experiment.logmels[:4])))
    assert torch.allclose(from_waves, direct, atol=1e-5) and torch.allclose(from_logmels, direct, atol=1e-4)


def test_cached_log_mels_serve_only_spectrogram_views():
    from esclib.experiments.fixmatch import input_kind

    assert input_kind("rocling") == "logmel" and input_kind("sslh") == "waveform"
    with pytest.raises(ValueError, match="waveform policy"):
        FixMatchStep(View(), View(wave=lambda w: w), 3, inputs="logmel")
    with pytest.raises(ValueError, match="inputs"):
        LabelledStep(View(), 3, inputs="spectrogram")


# ---------------------------------------------------------------------------------------------------- the frozen probe
def test_the_embeddings_are_the_pretrained_panns_own_of_whole_clips(experiment):
    waves = torch.tensor(np.stack([sf.read(p, dtype="float32")[0] for p in experiment.clips.paths[:5]]))
    base = experiment.pretrained
    generator = torch.Generator().manual_seed(0)  # batch-norm statistics of a trained model, not the identity
    for norm in (m for m in base.modules() if isinstance(m, nn.BatchNorm2d)):
        norm.running_mean.normal_(0, 0.5, generator=generator)
        norm.running_var.uniform_(0.5, 2.0, generator=generator)
    base.train()  # embed() computes in eval semantics whatever the mode
    expected = base.embed(waves).numpy()
    assert experiment.embeddings.shape == (36, base.embedding_size)
    assert np.allclose(experiment.embeddings[:5], expected, atol=1e-4)


def test_the_frozen_probe_trains_on_every_training_clip_and_selects_on_the_validation_fold(experiment, monkeypatch):
    import esclib.train.probe as probe_module
    from esclib.experiments.fixmatch import PROBE_LABEL
    from esclib.train.probe import ProbeResult

    embeddings = np.arange(36, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32)  # row i: clip i
    experiment.__dict__["embeddings"] = embeddings
    seen = []

    def fake_probe(train_x, train_y, test_x, test_y, *, val, n_classes, seed, device):
        seen.append((train_x[:, 0].astype(int), val[0][:, 0].astype(int), test_x[:, 0].astype(int), n_classes))
        return ProbeResult({"accuracy": 0.5 + len(seen) / 10, "auc": 0.9, "macro_f1": 0.4}, 7)

    monkeypatch.setattr(probe_module, "linear_probe", fake_probe)
    results = experiment.frozen_probe([1, 3])
    folds = {k: set(range(9 * (k - 1), 9 * k)) for k in range(1, 5)}
    (train1, val1, test1, n1), (train3, val3, test3, _) = seen
    assert set(test1) == folds[1] and set(val1) == folds[2] and n1 == 3
    assert set(train1) == (folds[3] | folds[4]) - {20}  # every clip of the training folds but the test source's
    assert set(test3) == folds[3] and set(val3) == folds[4] and set(train3) == (folds[1] | folds[2]) - {0}
    assert [r["label"] for r in results] == [PROBE_LABEL] * 2 and [r["setting"]["fold"] for r in results] == [1, 3]
    assert [r["metrics"]["accuracy"] for r in results] == [0.6, 0.7] and results[0]["metrics"]["best_epoch"] == 7


def _probe(accuracies):
    from esclib.experiments.fixmatch import PROBE_LABEL
    from esclib.results.summary import Results

    return Results({"arm": "probe-pann", "label": PROBE_LABEL, "setting": {"fold": fold},
                    "metrics": {"accuracy": accuracy}} for fold, accuracy in enumerate(accuracies, start=1))


@pytest.mark.parametrize("accuracies, verdict, reading", [
    ((0.88, 0.79, 0.86), "inside the fold noise", "stands where the pre-training left it"),
    ((0.70, 0.60, 0.75), "above zero on every resample of the folds", "adds to what the frozen embedding"),
    ((0.95, 0.90, 0.95), "below zero on every resample of the folds", "held back by its training"),
])
def test_the_all_label_arm_is_paired_with_the_frozen_probe(chapter_runs, accuracies, verdict, reading):
    from esclib.experiments import fixmatch as fm

    numbers = fm.probe_numbers(chapter_runs, _probe(accuracies))
    full = (0.90, 0.80, 0.85)  # the all-label runs of chapter_runs
    assert numbers["acc_probe"] == pytest.approx(np.mean(accuracies))
    assert numbers["ceiling"] == pytest.approx(np.mean(np.subtract(full, accuracies)))
    assert numbers["ceiling_folds"] == 3 and numbers["ceiling_verdict"] == verdict
    assert numbers["ceiling_higher"] == sum(f > a for f, a in zip(full, accuracies))
    sentence = numbers["probe_sentence"]
    assert reading in sentence and f"{numbers['ceiling']:+.3f}" in sentence and "reaches 0.850" in sentence
    assert f"reaches {numbers['acc_probe']:.3f}" in sentence


def test_without_the_all_label_arm_the_probe_has_nothing_to_pair_with(chapter_runs):
    from esclib.experiments import fixmatch as fm
    from esclib.results.summary import Results

    without = Results(r for r in chapter_runs if "100%" not in r["label"])
    numbers = fm.probe_numbers(without, _probe((0.8, 0.8, 0.8)))
    assert numbers["ceiling_verdict"] == "not run" and "nothing to compare" in numbers["probe_sentence"]
    assert set(numbers) == set(fm.probe_numbers(chapter_runs, _probe((0.8, 0.8, 0.8))))
