"""Chapter 01's experiment (study 003, Kong et al. 2020): transferring a pretrained PANN to ESC-50.

Notebook: 01_pann_transfer. On the foundation of :mod:`esclib.experiments.base`:

1. :class:`TransferExperiment` loads the PANN checkpoint (a released file by name, a path, or ``"mini"``: the
   ``quick`` profile's model pre-trained on the synthetic mini-AudioSet, :func:`esclib.train.pann_pretrain.
   mini_checkpoint`) and the dataset's waveforms at the PANN's sample rate; the checkpoint's bytes and the dataset's
   contents are part of every run's identity.
2. :meth:`TransferExperiment.train` trains one strategy (:data:`esclib.models.transfer.STRATEGIES`, the arms) on
   one official fold (test fold k, validation fold k+1, training the rest; PROTOCOLS E) with the authors' recipe
   (Adam with amsgrad, batch 32, mixup α = 1 on pairs, SpecAugment inside the model,
   :func:`~esclib.train.pann_pretrain.mixup_step`) and keeps the epoch with the best validation accuracy;
   experiment ``pann_transfer``.
3. :class:`FewShotTransfer` repeats the runs on ``per_class`` labelled clips per class (the study's Fig. 5);
   experiment ``pann_transfer_fewshot``, setting ``per_class``. Every run, few-shot or not, takes the same number of
   optimiser steps: an epoch draws as many clips as the fold's full training set, class-balanced with replacement
   from the clips it may use.

The frozen strategies (``freeze_l1``, ``freeze_l3``) keep the base in eval mode, so a clip's embedding is one fixed
vector: it is computed once per clip (the centre crop the other strategies are evaluated on, no augmentation) and
the head is trained on those vectors (:attr:`TransferExperiment.embeddings`) -- exactly what training through the
frozen base would compute, minus the repeated forward passes. Their mixup mixes the embeddings, the head's input.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from esclib.data.cache import cached_waveforms
from esclib.data.clips import ClipSet
from esclib.data.identity import dataset_identity
from esclib.data.splits import assert_trainable, fold_split, labelled_subset
from esclib.data.torchdata import WaveformDataset
from esclib.experiments.base import Experiment, Recipe, RunContext, Split, checkpoint_identity
from esclib.losses import soft_cross_entropy
from esclib.metrics import classification_metrics
from esclib.models.panns import PannModel, load_pann
from esclib.models.transfer import FROZEN, STRATEGIES, TransferModel
from esclib.results.summary import Results
from esclib.train import EarlyStopping, predict
from esclib.train.pann_pretrain import BalancedSampler, mini_checkpoint, mixup_step

EXPERIMENT = "pann_transfer"
FEW_SHOT_EXPERIMENT = "pann_transfer_fewshot"
#: the ``checkpoint`` value naming the quick profile's mini model pre-trained on the synthetic mini-AudioSet
MINI = "mini"


@dataclass(frozen=True)
class TransferRecipe(Recipe):
    """How every strategy is trained (PROTOCOLS B2 and E: the authors' gtzan recipe).

    ``epochs`` of as many clips as the fold's training set; ``batch_size`` mixed clips per step (the loader gives
    twice as many with mixup, as the authors'); Adam ``lr`` with amsgrad; ``mixup`` α (0: none); ``specaugment``
    inside the model (time 64 x 2, frequency 8 x 2); ``clip_seconds`` of audio per clip (a random crop in training,
    the centre crop in evaluation); ``patience``: stop after that many epochs without a better validation accuracy
    (None: train every epoch; the best epoch is kept either way). Freeze_L3's hidden layers are as wide as the
    embedding.
    """

    epochs: int
    batch_size: int
    lr: float
    mixup: float
    specaugment: bool
    clip_seconds: float
    patience: int | None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError(f"TransferRecipe: epochs must be >= 1 and batch_size >= 2, got {self.epochs}, "
                             f"{self.batch_size}")
        if self.lr <= 0 or self.clip_seconds <= 0 or self.mixup < 0:
            raise ValueError(f"TransferRecipe: lr and clip_seconds must be > 0 and mixup >= 0; got {self.lr}, "
                             f"{self.clip_seconds}, {self.mixup}")

    @property
    def loader_batch(self) -> int:
        """Clips per step: twice the batch with mixup (mixed in pairs), the batch otherwise."""
        return 2 * self.batch_size if self.mixup else self.batch_size


def resolve_checkpoint(checkpoint: str | Path, *, seed: int = 0, progress: bool = True) -> str:
    """The checkpoint to load: :data:`MINI` becomes the cached mini model of ``seed`` (pre-trained on first use);
    a registered name or a file path is returned as it is -- except in a smoke run (:mod:`esclib.smoke`), where a
    registered name becomes a random-weight file in the released format."""
    from esclib import smoke
    from esclib.models.panns.registry import find_checkpoint

    if str(checkpoint) == MINI:
        return str(mini_checkpoint(seed, progress=progress))
    if smoke.active() and not Path(checkpoint).is_file() and find_checkpoint(str(checkpoint)) is not None:
        return str(smoke.smoke_checkpoint(str(checkpoint)))
    return str(checkpoint)


@torch.no_grad()
def extract_embeddings(base: PannModel, waves: np.ndarray, *, crop_samples: int | None = None, batch_size: int = 32,
                       device: str | torch.device = "cpu", progress: bool = True) -> np.ndarray:
    """The base's embedding (eval mode: no dropout, no SpecAugment) of the centre crop of every row of ``waves``,
    ``(N, embedding_size)`` float32. Draws nothing from torch's global generator (a cache computed lazily inside a
    run must not shift the run's random numbers)."""
    dataset = WaveformDataset(waves, np.zeros(len(waves), dtype=np.int64), crop_samples=crop_samples, train=False)
    base.to(device)
    out = [base.embed(wave.to(device)).float().cpu().numpy()
           for wave, _, _ in tqdm(DataLoader(dataset, batch_size=batch_size, generator=torch.Generator()),
                                  desc="embeddings", leave=False,
                                  disable=not progress)]
    return np.concatenate(out) if out else np.zeros((0, base.embedding_size), dtype=np.float32)


class TransferExperiment(Experiment):
    """Study 003's transfer experiment on one dataset with one pretrained PANN (see the module docstring).

    ``checkpoint``: a registered name (``"Cnn14"``), a file, or :data:`MINI`; ``arch`` for a file whose
    architecture cannot be inferred; ``sample_rate``, if given, must be the checkpoint's (its frontend fixes it);
    ``crop_seconds`` the length the frozen strategies' embeddings are computed on (the recipe's ``clip_seconds``).
    """

    name = EXPERIMENT
    arms = STRATEGIES

    def __init__(self, clips: ClipSet, checkpoint: str | Path, *, arch: str | None = None,
                 sample_rate: int | None = None, crop_seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if clips.multi_label:
            raise ValueError(f"TransferExperiment: {clips.name} is multi-label; the transfer chapter "
                             "classifies single-label clips")
        self.clips, self.arch, self.crop_seconds = clips, arch, crop_seconds
        given = Path(str(checkpoint)).expanduser()
        self.source = given.stem if given.is_file() else str(checkpoint)
        self.checkpoint = resolve_checkpoint(checkpoint, seed=self.seed, progress=self.progress)
        self.pretrained = load_pann(self.checkpoint, arch, progress=self.progress)
        rate = self.pretrained.frontend.sample_rate
        if sample_rate is not None and sample_rate != rate:
            raise ValueError(f"parameter sample_rate={sample_rate} does not match the checkpoint "
                             f"{self.checkpoint}: its {type(self.pretrained).__name__} frontend runs at {rate} Hz "
                             f"(set sample_rate={rate})")
        self.sample_rate = rate

    def inputs(self) -> dict[str, Any]:
        return {"dataset": dataset_identity(self.clips, progress=self.progress),
                "checkpoint": {**checkpoint_identity(self.checkpoint, self.source),
                               "arch": type(self.pretrained).__name__}}

    def setting(self, arm: str, recipe: Recipe, split: Split) -> dict[str, Any]:
        return {"dataset": self.clips.name, "checkpoint": self.source, "fold": split.fold}

    # ------------------------------------------------------------------------------------------------ data
    @property
    def crop_samples(self) -> int:
        """Samples per clip fed to the model (``crop_seconds`` at the PANN's rate)."""
        return round(self.crop_seconds * self.sample_rate)

    @cached_property
    def waves(self) -> np.ndarray:
        """Every clip of the dataset at the PANN's rate, whole (a read-only memmap, cached on disk)."""
        return cached_waveforms(self.clips, self.sample_rate, progress=self.progress)

    @cached_property
    def embeddings(self) -> np.ndarray:
        """The pretrained base's embedding of every clip (centre crop of ``crop_seconds``, eval mode)."""
        return extract_embeddings(self.pretrained, self.waves, crop_samples=self.crop_samples, device=self.device,
                                  progress=self.progress)

    def split(self, fold: int) -> Split:
        """Test fold ``fold``, validation fold ``fold + 1`` (mod n), training the rest."""
        split = fold_split(self.clips, fold)
        return Split({"train": split.train, "val": split.val, "test": split.test}, "official", fold)

    def rows(self, part: ClipSet) -> np.ndarray:
        """Row of each clip of ``part`` in :attr:`clips` (and so in :attr:`waves` / :attr:`embeddings`)."""
        rows = pd.Index(self.clips.paths).get_indexer(part.paths)
        if (rows < 0).any():
            raise KeyError(f"{int((rows < 0).sum())} clips of {part.name} are not in the experiment's clip set")
        return rows

    def _loader(self, recipe: TransferRecipe, frozen: bool, part: ClipSet, *, train: bool, epoch_size: int = 0,
                seed: int = 0) -> DataLoader:
        """Batches ``(input, target, index)`` of ``part``: embeddings for a frozen base, waveform crops otherwise.
        Training batches are drawn class-balanced, ``epoch_size`` clips per epoch (whole batches, at least one)."""
        if recipe.clip_seconds != self.crop_seconds:
            raise ValueError(f"the recipe's clip_seconds ({recipe.clip_seconds}) differs from the experiment's "
                             f"crop_seconds ({self.crop_seconds}) its embeddings were computed on")
        array, crop = (self.embeddings, None) if frozen else (self.waves, self.crop_samples)
        dataset = WaveformDataset(array, part.targets, crop_samples=crop, train=train, seed=seed,
                                  rows=self.rows(part))
        if not train:
            return DataLoader(dataset, batch_size=2 * recipe.batch_size)
        assert_trainable(part)
        batch = recipe.loader_batch
        sampler = BalancedSampler([[t] for t in part.targets], self.clips.num_classes,
                                  max(batch, epoch_size // batch * batch), seed=seed)
        return DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=True)

    # ------------------------------------------------------------------------------------------------ runs
    def train(self, ctx: RunContext, arm: str, recipe: TransferRecipe, split: Split) -> dict[str, Any]:
        model = TransferModel(load_pann(self.checkpoint, self.arch, progress=False), self.clips.num_classes, arm)
        model.base.spec_augment = recipe.specaugment
        frozen = arm in FROZEN
        net: nn.Module = model.head if frozen else model
        epoch_size = len(split.parts.get("all_train", split.train))
        loaders = {"train": self._loader(recipe, frozen, split.train, train=True, epoch_size=epoch_size,
                                         seed=ctx.seed),
                   "val": self._loader(recipe, frozen, split.val, train=False),
                   "test": self._loader(recipe, frozen, split.test, train=False)}
        optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=recipe.lr,
                                     betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=True)
        history = ctx.fit(net, loaders["train"], epochs=recipe.epochs, optimizer=optimizer,
                          step_fn=mixup_step(soft_cross_entropy, alpha=recipe.mixup or None),
                          val_loader=loaders["val"],
                          early_stopping=EarlyStopping(recipe.patience or recipe.epochs, "val_acc", "max"))
        scores, targets = predict(net, loaders["test"], self.device)
        best = history.best("val_acc", "max")
        return {**_test_metrics(targets, scores, self.clips.num_classes), "val_acc": best["val_acc"],
                "best_epoch": int(best["epoch"]), "n_train": len(split.train), "n_test": len(split.test)}

    def run_all(self, strategies: Sequence[str], folds: Sequence[int], recipe: TransferRecipe) -> Results:
        """Every (fold, strategy) run (finished runs are reused)."""
        return self.grid([(s, recipe, self.split(f)) for f in folds for s in strategies], desc="transfer runs")


class FewShotTransfer(TransferExperiment):
    """The transfer runs on ``per_class`` labelled clips per class of the training folds (the study's Fig. 5):
    class-balanced, nested across counts, drawn from the training folds only; as many optimiser steps as a run on
    every training clip."""

    name = FEW_SHOT_EXPERIMENT

    @classmethod
    def of(cls, experiment: TransferExperiment) -> "FewShotTransfer":
        """The few-shot experiment on the same dataset, checkpoint and store, sharing its loaded model, waveforms and
        embeddings."""
        few_shot = cls.__new__(cls)
        few_shot.__dict__.update(experiment.__dict__)
        return few_shot

    def few_shot_split(self, fold: int, per_class: int) -> Split:
        """The fold's split with ``per_class`` labelled clips per class as the training clips (``all_train``: the
        fold's whole training set, which fixes the epoch size)."""
        split = self.split(fold)
        labelled = labelled_subset(split.train, per_class=per_class, seed=self.seed)[0]
        return Split({**split.parts, "train": labelled, "all_train": split.train}, "official", fold)

    def setting(self, arm: str, recipe: Recipe, split: Split) -> dict[str, Any]:
        per_class = int(np.bincount(split.train.targets).max())
        return {**super().setting(arm, recipe, split), "per_class": per_class}

    def few_shot(self, strategies: Sequence[str], folds: Sequence[int], per_class: Sequence[int],
                 recipe: TransferRecipe) -> Results:
        """Every (fold, samples per class, strategy) few-shot run (the study's Fig. 5)."""
        return self.grid([(s, recipe, self.few_shot_split(f, n)) for f in folds for n in per_class
                          for s in strategies], desc="few-shot runs")


def few_shot_curve(few_shot: Results, full: Results, n_classes: int) -> pd.DataFrame:
    """Test accuracy against labelled clips per class (the study's Fig. 5): one row per run (``strategy, fold,
    per_class, accuracy, subset``), the few-shot runs (``subset="few-shot"``) and the runs on the full training
    folds (``subset="all"``, at their mean clips per class)."""
    rows = [{"strategy": r["arm"], "fold": r["setting"]["fold"], "per_class": r["setting"]["per_class"],
             "accuracy": r["metrics"]["accuracy"], "subset": "few-shot"} for r in few_shot]
    rows += [{"strategy": r["arm"], "fold": r["setting"]["fold"], "per_class": r["metrics"]["n_train"] / n_classes,
              "accuracy": r["metrics"]["accuracy"], "subset": "all"} for r in full]
    return pd.DataFrame(rows, columns=["strategy", "fold", "per_class", "accuracy", "subset"])


def confusion(results: Results, strategy: str) -> np.ndarray:
    """The confusion matrices of ``strategy``'s runs (its test folds), summed (rows: true class, columns:
    predicted)."""
    matrices = [np.asarray(r["metrics"]["confusion"]) for r in results if r["arm"] == strategy]
    if not matrices:
        raise ValueError(f"no run of {strategy!r} among these results")
    return np.sum(matrices, axis=0)


def _test_metrics(targets: np.ndarray, scores: np.ndarray, n_classes: int) -> dict:
    metrics = classification_metrics(targets, scores, n_classes)
    return {key: metrics[key] for key in ("accuracy", "macro_f1", "auc", "confusion")}


# ------------------------------------------------------------------------------------------ tables and figures
def checkpoint_summary(experiment: TransferExperiment) -> pd.DataFrame:
    """What the experiment transfers from: architecture, size, frontend, pre-training classes and the tagging mAP
    of the checkpoint (the registry's AudioSet number for a released file, the held-out mAP of our own
    pre-training for the mini model)."""
    from esclib.models.panns.registry import find_checkpoint
    from esclib.train.pann_pretrain import pretrain_report

    model = experiment.pretrained
    rows = {"checkpoint": str(experiment.checkpoint), "architecture": type(model).__name__,
            "parameters": sum(p.numel() for p in model.parameters()), "frontend": str(model.frontend),
            "embedding size": model.embedding_size, "pre-training classes": model.classes_num}
    released = find_checkpoint(Path(experiment.checkpoint).name)
    if released is not None:
        rows["tagging mAP"] = f"{released.audioset_map:.3f} (AudioSet evaluation set, Kong et al. 2020)"
    elif Path(f"{experiment.checkpoint}.json").is_file():
        report = pretrain_report(experiment.checkpoint)
        rows["pre-training corpus"] = f"{report['corpus']['name']} ({report['corpus']['train']} training clips)"
        rows["tagging mAP"] = (f"{report['held_out_metrics']['mAP']:.3f} (held-out {report['corpus']['held_out']} "
                               "clips of the pre-training corpus, our run)")
    return pd.DataFrame({"value": [str(v) for v in rows.values()]}, index=list(rows))


def embedding_map(embeddings: np.ndarray, categories: Sequence[str], *, method: str = "tsne",
                  seed: int = 0) -> pd.DataFrame:
    """A 2-D map of embeddings (``x, y, category``): scikit-learn's t-SNE (after PCA to at most 50 dimensions) or
    PCA alone (``method="pca"``)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if method not in ("tsne", "pca"):
        raise ValueError(f"embedding_map: method must be 'tsne' or 'pca', got {method!r}")
    if len(embeddings) != len(categories):
        raise ValueError(f"embedding_map: {len(embeddings)} embeddings but {len(categories)} categories")
    x = np.asarray(embeddings, dtype=np.float64)
    reduced = PCA(n_components=min(50 if method == "tsne" else 2, *x.shape), random_state=seed).fit_transform(x)
    if method == "tsne":
        perplexity = min(30.0, (len(x) - 1) / 3)
        reduced = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
    return pd.DataFrame({"x": reduced[:, 0], "y": reduced[:, 1], "category": list(categories)})


@torch.no_grad()
def frontend_logmel(model: PannModel, wave: np.ndarray) -> np.ndarray:
    """The PANN frontend's log-mel of one clip, ``(frames, mel bins)`` in dB (before ``bn0``): what the network
    sees."""
    x = torch.tensor(np.asarray(wave, dtype=np.float32))[None].to(next(model.parameters()).device)
    return model.logmel_extractor(model.spectrogram_extractor(x))[0, 0].cpu().numpy()


@torch.no_grad()
def top_tags(model: PannModel, wave: np.ndarray, top: int = 5) -> pd.DataFrame:
    """The pretrained model's ``top`` labels for one clip (``label, probability``: sigmoid ``clipwise_output``), as
    ``esc pann tag`` prints them."""
    model.eval()
    device = next(model.parameters()).device
    scores = model(torch.tensor(np.asarray(wave, dtype=np.float32))[None].to(device))["clipwise_output"][0]
    order = torch.argsort(scores.float().cpu(), descending=True)[:top].tolist()
    labels = model.labels or [f"class {i}" for i in range(model.classes_num)]
    return pd.DataFrame({"label": [labels[i] for i in order], "probability": [float(scores[i]) for i in order]})
