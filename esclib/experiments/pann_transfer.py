"""Chapter 01's experiment (study 003, Kong et al. 2020): transferring a pretrained PANN to ESC-50.

What the chapter runs, every run resumable and recorded in the results store:

1. :class:`TransferExperiment` loads the PANN checkpoint (a released file by name, a path, or ``"mini"``: the
   ``quick`` profile's model pre-trained on the synthetic mini-AudioSet, :func:`esclib.train.pann_pretrain.
   mini_checkpoint`) and the dataset's waveforms at the PANN's sample rate.
2. :meth:`TransferExperiment.run` trains one strategy (:data:`esclib.models.transfer.STRATEGIES`) on one official
   fold (test fold k, validation fold k+1, training the rest; PROTOCOLS E) with the authors' recipe (Adam with
   amsgrad, batch 32, mixup α = 1 on pairs, SpecAugment inside the model, :func:`~esclib.train.pann_pretrain.
   mixup_step`) and keeps the epoch with the best validation accuracy; experiment ``pann_transfer``, arm = the
   strategy, setting ``dataset``, ``checkpoint`` (its name: ``mini``, ``Cnn14``, a file's stem), ``fold``.
3. :meth:`TransferExperiment.few_shot` repeats the runs on ``per_class`` labelled clips per class (the study's
   Fig. 5); experiment ``pann_transfer_fewshot``, setting ``dataset``, ``checkpoint``, ``fold``, ``per_class``. Every run, few-shot
   or not, takes the same number of optimiser steps: an epoch draws as many clips as the fold's full training set,
   class-balanced with replacement from the clips it may use.

The frozen strategies (``freeze_l1``, ``freeze_l3``) keep the base in eval mode, so a clip's embedding is one fixed
vector: it is computed once per clip (the centre crop the other strategies are evaluated on, no augmentation) and
the head is trained on those vectors (:attr:`TransferExperiment.embeddings`) -- exactly what training through the
frozen base would compute, minus the repeated forward passes. Their mixup mixes the embeddings, the head's input.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from esclib import paths
from esclib.data.cache import cached_waveforms
from esclib.data.clips import ClipSet
from esclib.data.splits import FoldSplit, assert_trainable, fold_split, labelled_subset
from esclib.data.torchdata import WaveformDataset
from esclib.losses import soft_cross_entropy
from esclib.metrics import classification_metrics
from esclib.models.panns import PannModel, load_pann
from esclib.models.transfer import FROZEN, TransferModel, check_strategy
from esclib.results.store import ResultsStore, Run
from esclib.train import EarlyStopping, History, fit, predict
from esclib.train.pann_pretrain import BalancedSampler, mini_checkpoint, mixup_step

EXPERIMENT = "pann_transfer"
FEW_SHOT_EXPERIMENT = "pann_transfer_fewshot"
#: the ``checkpoint`` value naming the quick profile's mini model pre-trained on the synthetic mini-AudioSet
MINI = "mini"


@dataclass(frozen=True)
class TransferRecipe:
    """How every strategy is trained (PROTOCOLS B2 and E: the authors' gtzan recipe).

    ``epochs`` of as many clips as the fold's training set; ``batch_size`` mixed clips per step (the loader gives
    twice as many with mixup, as the authors'); Adam ``lr`` with amsgrad; ``mixup`` α (0: none); ``specaugment``
    inside the model (time 64 x 2, frequency 8 x 2); ``clip_seconds`` of audio per clip (a random crop in training,
    the centre crop in evaluation); ``patience``: stop after that many epochs without a better validation accuracy
    (None: train every epoch; the best epoch is kept either way); ``hidden``: Freeze_L3's width (None: the
    embedding's).
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-4
    mixup: float = 1.0
    specaugment: bool = True
    clip_seconds: float = 5.0
    patience: int | None = None
    hidden: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError(f"TransferRecipe: epochs must be >= 1 and batch_size >= 2, got {self.epochs}, "
                             f"{self.batch_size}")
        if self.lr <= 0 or self.clip_seconds <= 0 or self.mixup < 0:
            raise ValueError(f"TransferRecipe: lr and clip_seconds must be > 0 and mixup >= 0; got {self.lr}, "
                             f"{self.clip_seconds}, {self.mixup}")

    @classmethod
    def from_config(cls, config: Any) -> "TransferRecipe":
        """The recipe from a chapter's resolved parameters (``cfg``: attributes named as the fields; missing or
        None ones keep the defaults)."""
        given = {f.name: getattr(config, f.name, None) for f in fields(cls)}
        return cls(**{name: value for name, value in given.items() if value is not None})

    @property
    def loader_batch(self) -> int:
        """Clips per step: twice the batch with mixup (mixed in pairs), the batch otherwise."""
        return 2 * self.batch_size if self.mixup else self.batch_size


def resolve_checkpoint(checkpoint: str | Path, *, seed: int = 0, progress: bool = True) -> str:
    """The checkpoint to load: :data:`MINI` becomes the cached mini model of ``seed`` (pre-trained on first use);
    a registered name or a file path is returned as it is."""
    if str(checkpoint) == MINI:
        return str(mini_checkpoint(seed, progress=progress))
    return str(checkpoint)


@torch.no_grad()
def extract_embeddings(base: PannModel, waves: np.ndarray, *, crop_samples: int | None = None, batch_size: int = 32,
                       device: str | torch.device = "cpu", progress: bool = True) -> np.ndarray:
    """The base's embedding (eval mode: no dropout, no SpecAugment) of the centre crop of every row of ``waves``,
    ``(N, embedding_size)`` float32."""
    dataset = WaveformDataset(waves, np.zeros(len(waves), dtype=np.int64), crop_samples=crop_samples, train=False)
    base.to(device)
    out = [base.embed(wave.to(device)).float().cpu().numpy()
           for wave, _, _ in tqdm(DataLoader(dataset, batch_size=batch_size), desc="embeddings", leave=False,
                                  disable=not progress)]
    return np.concatenate(out) if out else np.zeros((0, base.embedding_size), dtype=np.float32)


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class TransferExperiment:
    """Study 003's transfer experiment on one dataset with one pretrained PANN (see the module docstring).

    ``checkpoint``: a registered name (``"Cnn14"``), a file, or :data:`MINI`; ``arch`` for a file whose
    architecture cannot be inferred; ``sample_rate``, if given, must be the checkpoint's (its frontend fixes it).
    ``device`` runs training and embedding extraction (mixed precision on a GPU: :func:`esclib.train.fit`'s amp).
    """

    clips: ClipSet
    checkpoint: str | Path
    recipe: TransferRecipe
    store: ResultsStore
    arch: str | None = None
    sample_rate: int | None = None
    device: str | torch.device = "cpu"
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.clips.multi_label:
            raise ValueError(f"TransferExperiment: {self.clips.name} is multi-label; the transfer chapter "
                             "classifies single-label clips")
        self.device = torch.device(self.device)
        given = Path(str(self.checkpoint)).expanduser()
        self.source = given.stem if given.is_file() else str(self.checkpoint)
        self.checkpoint = resolve_checkpoint(self.checkpoint, seed=self.seed, progress=self.progress)
        self.pretrained = load_pann(self.checkpoint, self.arch, progress=self.progress)
        rate = self.pretrained.frontend.sample_rate
        if self.sample_rate is not None and self.sample_rate != rate:
            raise ValueError(f"parameter sample_rate={self.sample_rate} does not match the checkpoint "
                             f"{self.checkpoint}: its {type(self.pretrained).__name__} frontend runs at {rate} Hz "
                             f"(set sample_rate={rate})")
        self.sample_rate = rate
        self._splits: dict[int, FoldSplit] = {}

    # ------------------------------------------------------------------------------------------------ data
    @property
    def crop_samples(self) -> int:
        """Samples per clip fed to the model (``recipe.clip_seconds`` at the PANN's rate)."""
        return round(self.recipe.clip_seconds * self.sample_rate)

    @cached_property
    def waves(self) -> np.ndarray:
        """Every clip of the dataset at the PANN's rate, whole (a read-only memmap, cached on disk)."""
        return cached_waveforms(self.clips, self.sample_rate, progress=self.progress)

    @cached_property
    def embeddings(self) -> np.ndarray:
        """The pretrained base's embedding of every clip (centre crop of ``clip_seconds``, eval mode)."""
        return extract_embeddings(self.pretrained, self.waves, crop_samples=self.crop_samples, device=self.device,
                                  progress=self.progress)

    def split(self, fold: int) -> FoldSplit:
        """Test fold ``fold``, validation fold ``fold + 1`` (mod n), training the rest."""
        if fold not in self._splits:
            self._splits[fold] = fold_split(self.clips, fold)
        return self._splits[fold]

    def rows(self, part: ClipSet) -> np.ndarray:
        """Row of each clip of ``part`` in :attr:`clips` (and so in :attr:`waves` / :attr:`embeddings`)."""
        rows = pd.Index(self.clips.paths).get_indexer(part.paths)
        if (rows < 0).any():
            raise KeyError(f"{int((rows < 0).sum())} clips of {part.name} are not in the experiment's clip set")
        return rows

    def _loader(self, frozen: bool, part: ClipSet, *, train: bool, epoch_size: int = 0, seed: int = 0) -> DataLoader:
        """Batches ``(input, target, index)`` of ``part``: embeddings for a frozen base, waveform crops otherwise.
        Training batches are drawn class-balanced, ``epoch_size`` clips per epoch (whole batches, at least one)."""
        array, crop = (self.embeddings, None) if frozen else (self.waves, self.crop_samples)
        dataset = WaveformDataset(array, part.targets, crop_samples=crop, train=train, seed=seed,
                                  rows=self.rows(part))
        if not train:
            return DataLoader(dataset, batch_size=2 * self.recipe.batch_size)
        assert_trainable(part)
        batch = self.recipe.loader_batch
        sampler = BalancedSampler([[t] for t in part.targets], self.clips.num_classes,
                                  max(batch, epoch_size // batch * batch), seed=seed)
        return DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=True)

    # ------------------------------------------------------------------------------------------------ runs
    def params(self, strategy: str) -> dict:
        """Everything a run of ``strategy`` depends on besides its setting (stored with the result)."""
        return {**asdict(self.recipe), "strategy": strategy, "checkpoint": str(self.checkpoint),
                "arch": type(self.pretrained).__name__, "sample_rate": self.sample_rate, "seed": self.seed,
                "clips": len(self.clips)}

    def run(self, strategy: str, fold: int, per_class: int | None = None) -> dict:
        """Train (or resume, or reuse) ``strategy`` on ``fold`` -- on ``per_class`` labelled clips per class when
        given -- and test it; returns the run's arm, setting and metrics as a flat dict."""
        check_strategy(strategy)
        setting = {"dataset": self.clips.name, "checkpoint": self.source, "fold": int(fold),
                   **({"per_class": int(per_class)} if per_class else {})}
        experiment = FEW_SHOT_EXPERIMENT if per_class else EXPERIMENT
        run = self.store.run(experiment, strategy, setting, self.params(strategy))
        if not run.done:
            with run:
                self._train(run, strategy, int(fold), per_class)
        return {"arm": strategy, **setting, **run.metrics}

    def _train(self, run: Run, strategy: str, fold: int, per_class: int | None) -> None:
        split = self.split(fold)
        train = labelled_subset(split.train, per_class=per_class, seed=self.seed)[0] if per_class else split.train
        identity = _digest(run.experiment, strategy, run.setting, run.params)
        torch.manual_seed(int(identity, 16) % 2**31)
        model = TransferModel(load_pann(self.checkpoint, self.arch, progress=False), self.clips.num_classes,
                              strategy, hidden=self.recipe.hidden)
        model.base.spec_augment = self.recipe.specaugment
        frozen = strategy in FROZEN
        net: nn.Module = model.head if frozen else model
        seed = int(identity[:8], 16)
        loaders = {"train": self._loader(frozen, train, train=True, epoch_size=len(split.train), seed=seed),
                   "val": self._loader(frozen, split.val, train=False),
                   "test": self._loader(frozen, split.test, train=False)}
        checkpoint = paths.cache_dir() / "checkpoints" / run.experiment / f"{strategy}-{identity}.pt"
        optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=self.recipe.lr,
                                     betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=True)
        history = fit(net, loaders["train"], epochs=self.recipe.epochs, optimizer=optimizer,
                      step_fn=mixup_step(soft_cross_entropy, alpha=self.recipe.mixup or None),
                      val_loader=loaders["val"], device=self.device, checkpoint=checkpoint,
                      early_stopping=EarlyStopping(self.recipe.patience or self.recipe.epochs, "val_acc", "max"),
                      progress=self.progress, desc=f"{strategy} fold {fold}" + (f" {per_class}/class" if per_class
                                                                                 else ""))
        scores, targets = predict(net, loaders["test"], self.device)
        _finish(run, history, {**_test_metrics(targets, scores, self.clips.num_classes),
                               "n_train": len(train), "n_test": len(split.test)})
        checkpoint.unlink(missing_ok=True)

    def run_all(self, strategies: Sequence[str], folds: Sequence[int]) -> pd.DataFrame:
        """Every (fold, strategy) run, one row each (finished runs are reused)."""
        grid = [(s, f) for f in folds for s in strategies]
        return pd.DataFrame([self.run(s, f) for s, f in tqdm(grid, desc="transfer runs", disable=not self.progress)])

    def few_shot(self, strategies: Sequence[str], folds: Sequence[int], per_class: Sequence[int]) -> pd.DataFrame:
        """Every (fold, samples per class, strategy) few-shot run, one row each (the study's Fig. 5)."""
        grid = [(s, f, n) for f in folds for n in per_class for s in strategies]
        return pd.DataFrame([self.run(s, f, n)
                             for s, f, n in tqdm(grid, desc="few-shot runs", disable=not self.progress)])

    # -------------------------------------------------------------------------------------- finished runs
    def results(self, experiment: str = EXPERIMENT) -> list[dict]:
        """The finished runs of ``experiment`` on this dataset with this checkpoint, as saved in the store."""
        return [r for r in self.store.results(experiment)
                if r["setting"].get("dataset") == self.clips.name and r["setting"].get("checkpoint") == self.source]

    def few_shot_curve(self, folds: Sequence[int] | None = None) -> pd.DataFrame:
        """Test accuracy against labelled clips per class (the study's Fig. 5): one row per run (``strategy,
        fold, per_class, accuracy, subset``), the few-shot runs (``subset="few-shot"``) and the full training folds
        (``subset="all"``, at their mean clips per class); only the test ``folds`` given (None: all)."""
        rows = [{"strategy": r["arm"], "fold": r["setting"]["fold"], "per_class": r["setting"]["per_class"],
                 "accuracy": r["metrics"]["accuracy"], "subset": "few-shot"}
                for r in self.results(FEW_SHOT_EXPERIMENT)]
        rows += [{"strategy": r["arm"], "fold": r["setting"]["fold"],
                  "per_class": r["metrics"]["n_train"] / self.clips.num_classes,
                  "accuracy": r["metrics"]["accuracy"], "subset": "all"} for r in self.results()]
        curve = pd.DataFrame(rows, columns=["strategy", "fold", "per_class", "accuracy", "subset"])
        return curve if folds is None else curve[curve["fold"].isin(list(folds))].reset_index(drop=True)

    def learning_curves(self) -> pd.DataFrame:
        """Per-epoch training loss and validation accuracy of every finished run on the full training folds, long
        format (``strategy, fold, epoch, metric, value``) for ``seaborn.relplot``."""
        rows = [{"strategy": r["arm"], "fold": r["setting"]["fold"], "epoch": c["epoch"], "metric": metric,
                 "value": c[metric]}
                for r in self.results() for c in r["curves"] for metric in ("loss", "val_acc") if metric in c]
        return pd.DataFrame(rows, columns=["strategy", "fold", "epoch", "metric", "value"])

    def confusion(self, strategy: str) -> np.ndarray:
        """The confusion matrices of ``strategy``'s test folds, summed (rows: true class, columns: predicted)."""
        matrices = [np.asarray(r["metrics"]["confusion"]) for r in self.results() if r["arm"] == strategy]
        if not matrices:
            raise ValueError(f"no finished {EXPERIMENT} run of {strategy!r} on {self.clips.name} with checkpoint "
                             f"{self.source!r} in {self.store}")
        return np.sum(matrices, axis=0)


def _test_metrics(targets: np.ndarray, scores: np.ndarray, n_classes: int) -> dict:
    metrics = classification_metrics(targets, scores, n_classes)
    return {key: metrics[key] for key in ("accuracy", "macro_f1", "auc", "confusion")}


def _finish(run: Run, history: History, metrics: dict) -> None:
    for record in history.epochs:
        run.log_epoch(**record)
    best = history.best("val_acc", "max")
    run.finish({**metrics, "val_acc": best["val_acc"], "best_epoch": int(best["epoch"]),
                "epochs": len(history.epochs)})


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
