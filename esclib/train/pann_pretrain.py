"""Pre-training a PANN on an AudioSet-style multi-label corpus, as Kong et al. 2020 (study 003, Sec. III) did.

The authors' recipe: balanced sampling (pick a class uniformly, then a clip of that class), SpecAugment and mixup
of pairs inside the model, ``clip_bce`` on the sigmoid ``clipwise_output``, Adam with amsgrad, and a checkpoint
``{"iteration", "model"}``. Here the recipe runs at any scale; :func:`mini_checkpoint` runs it small on the
synthetic ``audioset-mini`` corpus for the ``quick`` profile (a few minutes on 2 CPU cores, cached), so that
chapters 01 and 02 transfer from a genuinely pretrained model through exactly the code path of a released
checkpoint (:func:`esclib.models.panns.load_pann`).

:func:`mixup_step` is also the training step of the transfer strategies (chapter 01).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from esclib.data.cache import cached_waveforms
from esclib.data.clips import ClipSet
from esclib.data.torchdata import WaveformDataset, clip_targets
from esclib.results.store import write_json_atomic
from esclib.train.loop import StepFn, fit

Forward = Callable[[nn.Module, torch.Tensor, "torch.Tensor | None"], "dict[str, torch.Tensor]"]


def _call_model(model: nn.Module, x: torch.Tensor, mixup_lambda: torch.Tensor | None) -> dict[str, torch.Tensor]:
    return model(x, mixup_lambda)


def mixup_step(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *, output_key: str = "logits",
               alpha: float | None = 1.0, forward: Forward = _call_model) -> StepFn:
    """The authors' training step for :func:`esclib.train.fit`: batches ``(x, target, index)`` whose ``target`` is
    class indices (one-hot encoded here) or multi-hot rows.

    With ``alpha`` (mixup α; None or 0: no mixup) the batch is mixed in pairs -- λ ~ Beta(α, α) per pair, the
    model's outputs are for the B/2 mixed inputs (``forward(model, x, lambdas)`` mixes inside the model, after
    SpecAugment, as the authors do) and the targets are mixed alike. ``loss_fn(output[output_key], targets)``.
    """
    def step(model: nn.Module, batch, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        x, y = batch[0], batch[1]
        lambdas = None
        if alpha:
            from esclib.augment.mixup import mixup_lambdas

            if len(x) < 2:
                raise ValueError("mixup_step: mixup needs batches of at least 2 clips (set drop_last on the loader)")
            even = len(x) - len(x) % 2
            x, y = x[:even], y[:even]
            lambdas = mixup_lambdas(even, alpha).to(device)
        output = forward(model, x, lambdas)[output_key]
        targets = y.float() if y.ndim == 2 else F.one_hot(y.long(), output.shape[-1]).float()
        if lambdas is not None:
            from esclib.augment.mixup import do_mixup

            targets = do_mixup(targets, lambdas)
        loss = loss_fn(output, targets)
        return loss, {"loss": float(loss.detach())}

    return step


class BalancedSampler(Sampler):
    """Kong et al.'s balanced sampling (study 003, Sec. III-C): each draw takes the next class of a shuffled cycle
    over the classes, then the next clip of that class from its own shuffled queue. A mini-batch then holds the
    classes almost equally often ("almost": clips have several labels).

    Yields ``(index, key)`` with a ``key`` unique to the draw, so that :class:`~esclib.data.torchdata.
    WaveformDataset` gives every draw of a clip its own random crop. ``num_samples`` draws per pass; each pass is
    seeded by ``seed`` and a number drawn from torch's global generator, which :func:`esclib.train.fit` checkpoints:
    a resumed run draws the same clips as an uninterrupted one.
    """

    def __init__(self, labels: Sequence[Sequence[int]], num_classes: int, num_samples: int, *, seed: int = 0) -> None:
        self.members = [[] for _ in range(num_classes)]
        for index, clip_labels in enumerate(labels):
            for label in clip_labels:
                if not 0 <= label < num_classes:
                    raise ValueError(f"BalancedSampler: clip {index} has label {label}, outside 0..{num_classes - 1}")
                self.members[label].append(index)
        self.classes = [c for c, members in enumerate(self.members) if members]
        if not self.classes:
            raise ValueError("BalancedSampler: no clip has a label")
        if num_samples < 1:
            raise ValueError(f"BalancedSampler: num_samples must be >= 1, got {num_samples}")
        self.num_samples, self.seed = num_samples, seed

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[tuple[int, int]]:
        draw = int(torch.randint(2**31, ()))
        rng = np.random.default_rng([self.seed, draw])
        queues = {c: [] for c in self.classes}
        cycle: list[int] = []
        draws = []
        for _ in range(self.num_samples):
            if not cycle:
                cycle = list(rng.permutation(self.classes))
            c = cycle.pop()
            if not queues[c]:
                queues[c] = list(rng.permutation(self.members[c]))
            draws.append(int(queues[c].pop()))
        base = draw * self.num_samples
        return iter([(index, base + k) for k, index in enumerate(draws)])


@dataclass(frozen=True)
class PretrainConfig:
    """A pre-training run: architecture, schedule (``epochs`` x ``steps_per_epoch`` optimiser steps of
    ``batch_size`` mixed clips), Adam learning rate (amsgrad; ``cosine``: annealed from ``lr`` towards 0 over the
    epochs, else constant), mixup α (0: none), SpecAugment on or off, training crop length, the share of the corpus
    held out for the mAP when it has no evaluation fold, and the seed. The defaults are the authors' recipe (lr 1e-3
    constant, batch 32, mixup α = 1, SpecAugment, 10-s clips) with a short schedule; :data:`MINI_CONFIG` is the
    quick profile's."""

    arch: str = "CnnMini16k"
    epochs: int = 10
    steps_per_epoch: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    cosine: bool = False
    mixup_alpha: float = 1.0
    spec_augment: bool = True
    crop_seconds: float = 10.0
    holdout_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "steps_per_epoch", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"PretrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.crop_seconds <= 0 or not 0 < self.holdout_fraction < 1:
            raise ValueError(f"PretrainConfig: lr and crop_seconds must be > 0 and holdout_fraction in (0, 1); "
                             f"got {self.lr}, {self.crop_seconds}, {self.holdout_fraction}")


#: the quick profile's mini model: CnnMini16k, 1,200 steps of 32 whole 2-s clips of the quick mini-AudioSet (some 14
#: passes over its 2,700 training clips), the learning rate annealed from 2e-3 (cosine, per epoch), 300 clips held out.
#: The authors' Adam and balanced sampling; their mixup and SpecAugment are off: in so short a run from scratch both
#: slow the learning (compare ``benchmarks/bench_pann_pretrain.py --mixup 1``); they guard long runs against
#: overfitting, which this one never reaches. Held-out mAP (seed 0, two threads) on the mini's 20-ms hop: 0.625 after
#: these 12 epochs (0.586 after 9 of them); on Cnn14_16k's 10-ms hop, in twice the time, 0.644.
MINI_CONFIG = PretrainConfig(epochs=12, steps_per_epoch=100, batch_size=32, lr=2e-3, cosine=True, mixup_alpha=0.0,
                             spec_augment=False, crop_seconds=2.0, holdout_fraction=0.1)


def train_holdout_split(clips: ClipSet, holdout_fraction: float, seed: int) -> tuple[ClipSet, ClipSet]:
    """Training clips and held-out clips of a tagging corpus: its evaluation fold (fold 2, AudioSet's
    ``eval_segments``) when it has one, else a seeded random ``holdout_fraction`` of the clips."""
    if clips.n_folds >= 2:
        return clips.subset(clips.folds != 2), clips.subset(clips.folds == 2)
    held = np.zeros(len(clips), dtype=bool)
    held[np.random.default_rng(seed).permutation(len(clips))[:max(1, round(holdout_fraction * len(clips)))]] = True
    return clips.subset(~held), clips.subset(held)


def segment_seconds(clips: ClipSet) -> float:
    """The longest segment of a tagging corpus (its ``end - start`` columns, as AudioSet's segment lists give
    them), else its nominal ``clip_seconds``: the length clips are cached at, so shorter clips are not padded."""
    if {"start", "end"} <= set(clips.table.columns) and len(clips):
        return float((clips.table["end"] - clips.table["start"]).max())
    return clips.clip_seconds


@torch.no_grad()
def loader_scores(model: nn.Module, loader: DataLoader, device: str | torch.device = "cpu",
                  progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``clipwise_output`` of a tagging PANN (eval mode) on every batch ``(wave, multi-hot target, ...)`` of
    ``loader``, and the targets; the model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval().to(device)
    scores, targets = [], []
    for wave, target, *_ in tqdm(loader, desc="tagging", leave=False, disable=not progress):
        scores.append(model(wave.to(device))["clipwise_output"].float().cpu().numpy())
        targets.append(np.asarray(target))
    model.train(was_training)
    return np.concatenate(scores), np.concatenate(targets)


def _held_out_loader(model: nn.Module, clips: ClipSet, batch_size: int, progress: bool) -> DataLoader:
    waves = cached_waveforms(clips, model.frontend.sample_rate, segment_seconds(clips), progress=progress)
    return DataLoader(WaveformDataset(waves, clip_targets(clips)), batch_size=batch_size)


def tagging_scores(model: nn.Module, clips: ClipSet, *, device: str | torch.device = "cpu", batch_size: int = 16,
                   progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``clipwise_output`` of a tagging PANN on whole clips (eval mode) and the multi-hot targets (Notebook:
    01_pann_transfer)."""
    return loader_scores(model, _held_out_loader(model, clips, batch_size, progress), device, progress)


def held_out_map(model: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
    """:func:`esclib.train.fit`'s validation step of a pre-training: the held-out ``val_mAP`` and ``val_auc``."""
    metrics = tagging_metrics(*loader_scores(model, loader, device))
    return {"val_mAP": metrics["mAP"], "val_auc": metrics["auc"]}


def scored_classes(targets: np.ndarray) -> list[int]:
    """The classes of a multi-hot target matrix with at least one positive and one negative clip (the ones an
    average precision is defined for)."""
    return [c for c in range(targets.shape[1]) if 0 < targets[:, c].sum() < len(targets)]


def tagging_metrics(scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """AudioSet's metrics (study 003, Sec. IV): mAP and mean AUC over the classes with a positive and a negative
    held-out clip (scikit-learn ``average_precision_score`` / ``roc_auc_score``), and how many classes that is."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    scored = scored_classes(targets)
    if not scored:
        raise ValueError("tagging_metrics: no class has both positive and negative clips in the held-out set")
    return {
        "mAP": float(np.mean([average_precision_score(targets[:, c], scores[:, c]) for c in scored])),
        "auc": float(np.mean([roc_auc_score(targets[:, c], scores[:, c]) for c in scored])),
        "classes_scored": len(scored),
    }


def pretrain(clips: ClipSet, config: PretrainConfig, path: str | Path, *, device: str | torch.device = "cpu",
             progress: bool = True) -> dict:
    """Pre-train ``config.arch`` on the multi-label ``clips`` and write a released-format checkpoint to ``path``
    (``{"iteration", "model", "labels"}``, loadable by :func:`esclib.models.panns.load_pann`), with a JSON report
    beside it (``<path>.json``: config, corpus, held-out mAP / AUC). Returns the report.

    Training resumes from ``<path>.partial`` (the per-epoch state of :func:`esclib.train.fit`) after an interrupt.
    """
    from esclib.losses import clip_bce
    from esclib.models.panns import build_pann, save_pann_checkpoint

    if not clips.multi_label:
        raise ValueError(f"pretrain: {clips.name} is single-label; pre-training needs a multi-label tagging corpus")
    path = Path(path)
    train, held_out = train_holdout_split(clips, config.holdout_fraction, config.seed)
    torch.manual_seed(config.seed)
    model = build_pann(config.arch, classes_num=clips.num_classes, spec_augment=config.spec_augment)
    rate = model.frontend.sample_rate
    dataset = WaveformDataset(cached_waveforms(train, rate, segment_seconds(train), progress=progress),
                              clip_targets(train),
                              crop_samples=round(config.crop_seconds * rate), train=True, seed=config.seed)
    loader_batch = 2 * config.batch_size if config.mixup_alpha else config.batch_size
    sampler = BalancedSampler(train.table["labels"], clips.num_classes, config.steps_per_epoch * loader_batch,
                              seed=config.seed)
    loader = DataLoader(dataset, batch_size=loader_batch, sampler=sampler, drop_last=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                 amsgrad=True)
    held_out_loader = _held_out_loader(model, held_out, 2 * config.batch_size, progress)
    if not scored_classes(np.asarray(held_out_loader.dataset.targets)):
        raise ValueError(f"pretrain: no class of {clips.name} has both positive and negative held-out clips; the "
                         f"held-out mAP is undefined (more clips, or a larger holdout_fraction)")
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs) if config.cosine else None
    history = fit(model, loader, epochs=config.epochs, optimizer=optimizer, scheduler=scheduler,
                  step_fn=mixup_step(clip_bce, output_key="clipwise_output", alpha=config.mixup_alpha),
                  val_loader=held_out_loader, val_fn=held_out_map, device=device,
                  checkpoint=path.with_name(path.name + ".partial"), progress=progress, desc=f"pretrain {config.arch}")
    final = history.epochs[-1]
    metrics = {"mAP": final["val_mAP"], "auc": final["val_auc"],
               "classes_scored": len(scored_classes(np.asarray(held_out_loader.dataset.targets)))}
    save_pann_checkpoint(model.cpu(), path, config.epochs * config.steps_per_epoch, labels=list(clips.classes))
    report = {"config": asdict(config), "corpus": {"name": clips.name, "root": str(clips.root), "clips": len(clips),
                                                   "train": len(train), "held_out": len(held_out),
                                                   "classes": clips.num_classes},
              "held_out_metrics": metrics, "history": history.epochs}
    write_json_atomic(_report_path(path), report)
    path.with_name(path.name + ".partial").unlink(missing_ok=True)
    return report


def _report_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def pretrain_report(path: str | Path) -> dict:
    """The JSON report :func:`pretrain` wrote beside the checkpoint ``path`` (config, corpus, held-out mAP)."""
    report = _report_path(Path(path))
    if not report.is_file():
        raise FileNotFoundError(f"no pre-training report {report}: {path} was not written by esclib's pretrain")
    return json.loads(report.read_text())


def corpus_fingerprint(clips: ClipSet) -> str:
    """A hash of a corpus's content: class names, and each clip's id, labels and file size."""
    sizes = [Path(p).stat().st_size for p in clips.paths]
    payload = json.dumps({"classes": list(clips.classes), "clips": clips.table["clip_id"].tolist(),
                          "labels": [list(map(int, labels)) for labels in clips.table["labels"]], "sizes": sizes})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def mini_checkpoint(seed: int = 0, *, data_root: str | Path | None = None, progress: bool = True,
                    config: PretrainConfig | None = None) -> Path:
    """The ``quick`` profile's pretrained PANN: ``config`` (default :data:`MINI_CONFIG`, ``CnnMini16k``) trained
    on the synthetic ``audioset-mini`` corpus of ``seed`` (or the corpus at ``data_root``).

    Cached under ``esclib.paths.cache_dir()/panns/``, keyed by the config, the architecture's frontend (its hop is in
    no checkpoint) and the corpus's content: the first call
    trains (a few minutes on 2 CPU cores), later calls return the file. Load it with ``load_pann(path)``; its
    held-out mAP is in :func:`pretrain_report`.
    """
    from esclib.data.registry import load
    from esclib.data.sources import dataset_root
    from esclib.models.panns import panns_cache_dir
    from esclib.models.panns.registry import ARCHITECTURES

    config = config or replace(MINI_CONFIG, seed=seed)
    clips = load("audioset-mini", dataset_root("audioset-mini", "quick", data_root, seed=seed))
    key = hashlib.sha256(json.dumps({"config": asdict(config), "corpus": corpus_fingerprint(clips),
                                     "frontend": asdict(ARCHITECTURES[config.arch].default_frontend)},
                                    sort_keys=True).encode()).hexdigest()[:16]
    path = panns_cache_dir() / f"{config.arch}_audioset-mini_seed{seed}_{key}.pth"
    if not (path.is_file() and _report_path(path).is_file()):
        pretrain(clips, config, path, progress=progress)
    return path
