"""PANN pre-training on an AudioSet-style corpus (esclib.train.pann_pretrain): balanced sampling, the mixup step,
and a tiny run whose checkpoint loads like a released one and tags sounds with ``esc pann tag``."""

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch
from sklearn.metrics import average_precision_score

from esclib.cli import main as esc
from esclib.data.audioset import load as load_audioset
from esclib.losses import clip_bce
from esclib.models.panns import CnnMini16k, build_pann, load_pann
from esclib.train import fit, pann_pretrain
from esclib.train.pann_pretrain import (
    BalancedSampler,
    PretrainConfig,
    mini_checkpoint,
    mixup_step,
    pretrain,
    pretrain_report,
    tagging_metrics,
    tagging_scores,
    train_holdout_split,
)

RATE = 16000
LABELS = (("/m/t0", "Low tone"), ("/m/t1", "High tone"), ("/m/n0", "Noise"))


def _corpus(root, n_clips: int = 24, seconds: float = 1.0):
    """A tiny corpus in the PANN authors' AudioSet layout: tones at 300 / 2,000 Hz and noise, 1-2 per clip."""
    rng = np.random.default_rng(0)
    (root / "metadata").mkdir(parents=True)
    audio = root / "audios" / "balanced_train_segments"
    audio.mkdir(parents=True)
    (root / "metadata" / "class_labels_indices.csv").write_text(
        "index,mid,display_name\n" + "".join(f'{i},{mid},"{name}"\n' for i, (mid, name) in enumerate(LABELS)))
    t = np.arange(int(seconds * RATE)) / RATE
    rows = []
    for k in range(n_clips):
        present = [k % 3] + ([(k + 1) % 3] if k % 2 else [])
        wave = sum(0.3 * np.sin(2 * np.pi * (300, 2000)[c] * t) if c < 2 else 0.1 * rng.standard_normal(t.size)
                   for c in present)
        sf.write(audio / f"Yclip{k:03d}.wav", wave.astype(np.float32), RATE)
        rows.append(f'clip{k:03d}, 0.000, {seconds:.3f}, "{",".join(LABELS[c][0] for c in sorted(present))}"')
    (root / "metadata" / "balanced_train_segments.csv").write_text(
        "# Segments csv\n# num_ytids=0\n# YTID, start_seconds, end_seconds, positive_labels\n" + "\n".join(rows))
    return root


TINY = PretrainConfig(epochs=2, steps_per_epoch=2, batch_size=4, crop_seconds=0.5, holdout_fraction=0.25)


def test_balanced_sampler_draws_classes_equally_and_every_draw_its_own_crop():
    labels = [[0]] * 90 + [[1]] * 10 + [[]] * 5
    sampler = BalancedSampler(labels, 3, 1000, seed=0)
    draws = list(sampler)
    counts = Counter(0 if i < 90 else 1 if i < 100 else 2 for i, _ in draws)
    assert counts == {0: 500, 1: 500}
    assert len({key for _, key in draws}) == 1000
    assert Counter(i for i, _ in draws if i >= 90) == {i: 50 for i in range(90, 100)}
    assert [i for i, _ in sampler] != [i for i, _ in draws], "each pass draws anew"
    torch.manual_seed(3)
    first = list(sampler)
    torch.manual_seed(3)
    assert list(sampler) == first, "a pass is fixed by torch's generator (restored on resume)"
    with pytest.raises(ValueError, match="label 3"):
        BalancedSampler([[3]], 3, 10)


def test_mixup_step_mixes_multi_hot_targets_like_the_inputs():
    seen = {}

    def forward(model, x, lambdas):
        seen["x"], seen["lambdas"] = x, lambdas
        out = torch.full((len(x) // 2, 3), 0.5)
        return {"clipwise_output": out}

    step = mixup_step(clip_bce, output_key="clipwise_output", alpha=1.0, forward=forward)
    y = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 0, 0]])
    torch.manual_seed(0)
    loss, _ = step(None, (torch.randn(5, 10), y, torch.arange(5)), torch.device("cpu"))
    lam = seen["lambdas"]
    assert len(seen["x"]) == 4 and lam.shape == (4,)
    assert torch.allclose(lam[0::2] + lam[1::2], torch.ones(2))
    mixed = y[0:4:2] * lam[0::2, None] + y[1:4:2] * lam[1::2, None]
    assert torch.allclose(loss, clip_bce(torch.full((2, 3), 0.5), mixed))


def test_tagging_metrics_is_sklearns_average_precision_over_scored_classes():
    rng = np.random.default_rng(0)
    targets = (rng.random((40, 4)) < 0.3).astype(np.float32)
    targets[:, 3] = 0  # no positive: not scored
    scores = rng.random((40, 4))
    metrics = tagging_metrics(scores, targets)
    expected = np.mean([average_precision_score(targets[:, c], scores[:, c]) for c in range(3)])
    assert metrics["classes_scored"] == 3 and metrics["mAP"] == pytest.approx(expected)
    assert tagging_metrics(targets[:, :3] + 0.0, targets[:, :3])["mAP"] == pytest.approx(1.0)


def test_holdout_is_the_eval_fold_or_a_disjoint_random_share(tmp_path):
    clips = load_audioset(_corpus(tmp_path / "corpus"))
    train, held = train_holdout_split(clips, 0.25, seed=0)
    assert (len(train), len(held)) == (18, 6)
    assert not set(train.table["clip_id"]) & set(held.table["clip_id"])


def test_tiny_pretraining_writes_a_released_format_checkpoint_that_loads_and_tags(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    root = _corpus(tmp_path / "corpus")
    path = mini_checkpoint(data_root=root, config=TINY, progress=False)
    assert path.parent == tmp_path / "cache" / "panns"
    content = torch.load(path, weights_only=True)
    assert set(content) == {"iteration", "model", "labels"} and content["iteration"] == 4
    assert content["labels"] == [name for _, name in LABELS]
    model = load_pann(path)
    assert isinstance(model, CnnMini16k) and model.labels == content["labels"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in content["model"].items())
    report = pretrain_report(path)
    assert 0 <= report["held_out_metrics"]["mAP"] <= 1 and report["corpus"]["held_out"] == 6
    assert len(report["history"]) == TINY.epochs

    mtime = path.stat().st_mtime_ns
    assert mini_checkpoint(data_root=root, config=TINY, progress=False) == path
    assert path.stat().st_mtime_ns == mtime, "a cached mini checkpoint must not be trained again"

    assert esc(["pann", "tag", str(root / "audios/balanced_train_segments/Yclip000.wav"), "--checkpoint", str(path),
                "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for _, name in LABELS)


def test_a_cached_mini_checkpoint_of_another_frontend_is_never_reused(tmp_path, monkeypatch):
    """A checkpoint file holds no hop: the cache key does, so a model on another hop is trained anew."""
    from esclib.models.panns.frontend import FRONTEND_MINI

    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    root = _corpus(tmp_path / "corpus")
    first = mini_checkpoint(data_root=root, config=TINY, progress=False)
    monkeypatch.setattr(CnnMini16k, "default_frontend", replace(FRONTEND_MINI, hop_size=160))
    second = mini_checkpoint(data_root=root, config=TINY, progress=False)
    assert second != first and first.is_file() and second.is_file()


def test_an_interrupted_pretraining_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    clips = load_audioset(_corpus(tmp_path / "corpus"))
    pretrain(clips, TINY, tmp_path / "straight.pth", progress=False)

    def one_epoch_then_crash(*args, **kwargs):
        fit(*args, **{**kwargs, "epochs": 1})
        raise KeyboardInterrupt

    monkeypatch.setattr(pann_pretrain, "fit", one_epoch_then_crash)
    with pytest.raises(KeyboardInterrupt):
        pretrain(clips, TINY, tmp_path / "resumed.pth", progress=False)
    assert (tmp_path / "resumed.pth.partial").is_file() and not (tmp_path / "resumed.pth").exists()
    monkeypatch.setattr(pann_pretrain, "fit", fit)
    report = pretrain(clips, TINY, tmp_path / "resumed.pth", progress=False)
    assert not (tmp_path / "resumed.pth.partial").exists() and len(report["history"]) == TINY.epochs
    straight, resumed = (torch.load(tmp_path / f"{n}.pth", weights_only=True)["model"] for n in ("straight", "resumed"))
    assert all(torch.allclose(straight[k].float(), resumed[k].float(), atol=1e-6) for k in straight)


def test_pretraining_raises_the_held_out_map_of_a_small_corpus(tmp_path):
    clips = load_audioset(_corpus(tmp_path / "corpus", n_clips=72, seconds=1.0))
    # without SpecAugment the annealed run ends at mAP 1.0 for seeds 0-2 under 1 and 2 torch threads; with it, the
    # last epoch wanders between 0.89 and 0.91 with the thread count (CI failed on that)
    config = replace(TINY, epochs=8, steps_per_epoch=10, batch_size=8, lr=2e-3, cosine=True, mixup_alpha=0.0,
                     holdout_fraction=1 / 3, spec_augment=False)
    train, held = train_holdout_split(clips, config.holdout_fraction, config.seed)
    torch.manual_seed(config.seed)
    untrained = build_pann(config.arch, classes_num=clips.num_classes, spec_augment=config.spec_augment)
    before = tagging_metrics(*tagging_scores(untrained, held, progress=False))["mAP"]
    report = pretrain(clips, config, tmp_path / "m.pth", progress=False)
    curve = [epoch["val_mAP"] for epoch in report["history"]]
    assert len(curve) == config.epochs and report["held_out_metrics"]["mAP"] == curve[-1]
    assert curve[-1] >= 0.97 and curve[-1] > before + 0.1, (before, curve)
    again = tagging_metrics(*tagging_scores(load_pann(tmp_path / "m.pth"), held, progress=False))["mAP"]
    assert again == pytest.approx(curve[-1], abs=1e-6), "the report's mAP is the saved model's"


def test_pretraining_refuses_a_single_label_corpus(tmp_path):
    clips = load_audioset(_corpus(tmp_path / "corpus"))
    with pytest.raises(ValueError, match="single-label"):
        pretrain(replace(clips, multi_label=False), TINY, tmp_path / "x.pth", progress=False)
