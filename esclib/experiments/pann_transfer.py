"""Chapter 01's experiment (study 003, Kong et al. 2020): transferring a pretrained PANN to ESC-50.

Notebook: 01_pann_transfer. On the foundation of :mod:`esclib.experiments.base`:

1. :class:`TransferExperiment` loads the PANN checkpoint (a released file by name, a path, or ``"mini"``: the
   ``quick`` profile's model, pre-trained on the synthetic mini-AudioSet as the recorded run ``pann_pretrain`` of
   :mod:`esclib.experiments.pann_pretrain`) and computes, once per clip and cached on disk, the frontend's log-mel
   of every whole clip (:attr:`TransferExperiment.logmels`) and the frozen base's embedding of it
   (:attr:`TransferExperiment.embeddings`), each keyed by everything that changes it.
2. :meth:`TransferExperiment.train` trains one strategy (:data:`esclib.models.transfer.STRATEGIES`, the arms) on
   one official fold with the authors' recipe (book/protocols.md): Adam with amsgrad, ``epochs x steps_per_epoch``
   optimiser steps of class-balanced batches, mixup α = 1 on pairs (:func:`~esclib.train.pann_pretrain.
   mixup_step`), SpecAugment inside the network; random crops of ``clip_seconds`` in training, whole clips in test.
   Which clips it trains on and which model it keeps follow ``selection`` (:data:`esclib.data.splits.SELECTIONS`):

   - ``last`` (Table IX's protocol): train on the four folds other than the test fold, keep the last step;
   - ``validation-fold``: train on three folds, keep the epoch with the best accuracy on fold k+1;
   - ``budgeted``: train on the four folds less a class-balanced share of them, the validation set.

3. :class:`FewShotTransfer` repeats the runs on ``per_class`` labelled clips per class (the study's Fig. 5; experiment
   ``pann_transfer_fewshot``, setting ``per_class``), drawn from the three folds other than the test fold and the
   one after it -- under every selection, so that the selection table (:meth:`FewShotTransfer.selection_runs`)
   compares runs on the same labelled clips -- nested across counts. Every run takes the same number of steps.

The frozen strategies (``freeze_l1``, ``freeze_l3``) keep the base in eval mode: no SpecAugment, no dropout, fixed
batch-norm statistics, so a clip's embedding is one fixed vector; their layers train on the cached embeddings
(exactly what training through the frozen base computes), and their mixup mixes the embeddings, the layers' input.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from esclib.data.audio import fix_length, load_audio
from esclib.data.cache import cached_features
from esclib.data.clips import ClipSet
from esclib.data.identity import dataset_identity
from esclib.data.splits import SELECTIONS, assert_trainable, check_selection, fold_split, labelled_subset, selection_sets
from esclib.data.torchdata import WaveformDataset, collate
from esclib.digest import file_digest
from esclib.experiments.base import Experiment, Recipe, RunContext, Split, checkpoint_identity
from esclib.experiments.pann_pretrain import MINI, resolve_checkpoint
from esclib.losses import soft_cross_entropy
from esclib.metrics import classification_metrics
from esclib.models.panns import PannModel, load_pann
from esclib.models.panns.base import SPEC_AUGMENT_ARGS
from esclib.models.panns.wavegram import Wavegram_Logmel_Cnn14
from esclib.models.transfer import FROZEN, STRATEGIES, TransferModel, frontend_logmel
from esclib.results.studies import study_table
from esclib.results.summary import Results, mean_std
from esclib.train import EarlyStopping, fit, predict
from esclib.train.loop import History
from esclib.train.pann_pretrain import BalancedSampler, mixup_step

EXPERIMENT = "pann_transfer"
FEW_SHOT_EXPERIMENT = "pann_transfer_fewshot"
#: the comparisons the chapter reports as paired differences over folds (baseline, strategy): each strategy against
#: scratch, and Freeze_L3 against Freeze_L1
COMPARISONS: tuple[tuple[str, str], ...] = (("scratch", "fine-tune"), ("scratch", "freeze_l1"),
                                            ("scratch", "freeze_l3"), ("freeze_l1", "freeze_l3"))
#: the study's order of the strategies on ESC-50 (Table IX: fine-tune 0.947 > Freeze_L3 0.918 > Freeze_L1 0.908 >
#: scratch 0.833), as (lower, higher) pairs
EXPECTED_ORDER: tuple[tuple[str, str], ...] = (("scratch", "fine-tune"), ("scratch", "freeze_l1"),
                                               ("scratch", "freeze_l3"), ("freeze_l1", "freeze_l3"),
                                               ("freeze_l3", "fine-tune"))
#: the authors' transfer recipe (their ``panns_transfer_to_gtzan``; the study gives none for ESC-50)
AUTHORS_RECIPE = {"steps": 10_000, "batch_size": 32, "lr": 1e-4, "mixup": 1.0, "specaugment": True}
Fit = Callable[..., History]


@dataclass(frozen=True)
class TransferRecipe(Recipe):
    """How every strategy is trained (book/protocols.md: the authors' gtzan recipe).

    ``epochs`` x ``steps_per_epoch`` optimiser steps (the authors: 10,000 iterations, evaluated every 200), each on
    ``batch_size`` mixed clips (the loader draws twice as many with mixup, class-balanced, as the authors'); Adam
    ``lr`` with amsgrad; ``mixup`` α (0: none); ``specaugment`` inside the network (time 64 x 2, frequency 8 x 2; a
    frozen base never augments); ``clip_seconds`` of log-mel per training clip (a random crop; tests read whole
    clips); ``selection``: how the clips are split and the model is picked (module docstring). Freeze_L3's hidden
    layers are as wide as the embedding.
    """

    epochs: int
    steps_per_epoch: int
    batch_size: int
    lr: float
    mixup: float
    specaugment: bool
    clip_seconds: float
    selection: str

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.steps_per_epoch < 1 or self.batch_size < 2:
            raise ValueError(f"TransferRecipe: epochs and steps_per_epoch must be >= 1 and batch_size >= 2, got "
                             f"{self.epochs}, {self.steps_per_epoch}, {self.batch_size}")
        if self.lr <= 0 or self.clip_seconds <= 0 or self.mixup < 0:
            raise ValueError(f"TransferRecipe: lr and clip_seconds must be > 0 and mixup >= 0; got {self.lr}, "
                             f"{self.clip_seconds}, {self.mixup}")
        check_selection(self.selection, "TransferRecipe")

    @property
    def loader_batch(self) -> int:
        """Clips per step: twice the batch with mixup (mixed in pairs), the batch otherwise."""
        return 2 * self.batch_size if self.mixup else self.batch_size

    @property
    def steps(self) -> int:
        """Optimiser steps of a run."""
        return self.epochs * self.steps_per_epoch


def _source_digest(*modules: str) -> str:
    """Digest of the source files of ``modules`` (a changed model or frontend never reads a stale cache)."""
    import importlib

    h = hashlib.sha256()
    for name in modules:
        h.update(Path(importlib.import_module(name).__file__).read_bytes())
    return h.hexdigest()[:16]


def _tensors_digest(module: nn.Module) -> str:
    """Digest of the values of every tensor (parameters and buffers) of ``module``."""
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


#: the code whose change changes the cached log-mels and embeddings
_FRONTEND_CODE = ("esclib.models.panns.frontend", "esclib.models.transfer")
_MODEL_CODE = (*_FRONTEND_CODE, "esclib.models.panns.base", "esclib.models.panns.blocks", "esclib.models.panns.cnn")


class TransferExperiment(Experiment):
    """Study 003's transfer experiment on one dataset with one pretrained PANN (see the module docstring).

    ``checkpoint``: a registered name (``"Cnn14"``), a file, or :data:`~esclib.experiments.pann_pretrain.MINI`;
    ``arch`` for a file whose architecture cannot be inferred; ``sample_rate``, if given, must be the checkpoint's
    (its frontend fixes it).
    """

    name = EXPERIMENT
    arms = STRATEGIES
    #: 2: the quick CnnMini16k runs channels-last (the same method, other floating-point sums)
    version = 2

    def __init__(self, clips: ClipSet, checkpoint: str | Path, *, arch: str | None = None,
                 sample_rate: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if clips.multi_label:
            raise ValueError(f"TransferExperiment: {clips.name} is multi-label; the transfer chapter "
                             "classifies single-label clips")
        self.clips, self.arch = clips, arch
        given = Path(str(checkpoint)).expanduser()
        self.source = given.stem if given.is_file() else str(checkpoint)
        self.checkpoint = resolve_checkpoint(checkpoint, store=self.store, profile=self.profile, seed=self.seed,
                                             device=str(self.device), progress=self.progress)
        self.pretrained = load_pann(self.checkpoint, arch, progress=self.progress).eval()
        if isinstance(self.pretrained, Wavegram_Logmel_Cnn14):
            raise ValueError(f"checkpoint {checkpoint}: {type(self.pretrained).__name__} reads the waveform besides "
                             "the log-mel; the transfer chapter trains on cached log-mels (use a CNN or MobileNet "
                             "checkpoint such as Cnn14)")
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
    def clip_samples(self) -> int:
        """Samples of a whole clip at the PANN's rate (what the caches and the tests read)."""
        return round(self.clips.clip_seconds * self.sample_rate)

    def frames(self, seconds: float | None = None) -> int:
        """Log-mel frames of ``seconds`` of audio (default a whole clip): the frontend's centred STFT gives
        ``samples // hop + 1``."""
        samples = self.clip_samples if seconds is None else round(seconds * self.sample_rate)
        return samples // self.pretrained.frontend.hop_size + 1

    @cached_property
    def logmels(self) -> np.ndarray:
        """The frontend's log-mel (dB, before ``bn0``) of every whole clip, ``(clips, mel_bins, frames)`` float32: a
        read-only memmap computed once and cached on disk, keyed by the dataset's files, the rate, the length, the
        frontend's settings and filter values and the code that computes it."""
        frontend = copy.deepcopy(self.pretrained).cpu().eval()
        config = {"feature": "PANN frontend log-mel", "frontend": repr(frontend.frontend),
                  "filters": _tensors_digest(nn.ModuleList([frontend.spectrogram_extractor,
                                                            frontend.logmel_extractor])),
                  "code": _source_digest(*_FRONTEND_CODE)}
        return cached_features(self.clips, partial(frontend_logmel, frontend), sample_rate=self.sample_rate,
                               samples=self.clip_samples, shape=(frontend.frontend.mel_bins, self.frames()),
                               config=config, name="pann-logmels", progress=self.progress)

    @cached_property
    def embeddings(self) -> np.ndarray:
        """The pretrained base's embedding (eval mode: no dropout, no SpecAugment, batch-norm running statistics) of
        every whole clip, ``(clips, embedding_size)`` float32: a read-only memmap computed once and cached on disk,
        keyed by the dataset's files, the rate, the length, the checkpoint's bytes, the architecture and the model
        code."""
        return pann_embeddings(self.pretrained, self.checkpoint, self.clips, samples=self.clip_samples,
                               device=self.device, progress=self.progress)

    def waveform(self, row: int) -> np.ndarray:
        """Clip ``row`` of :attr:`clips`, mono at the PANN's rate, whole (for listening and the tagging demo)."""
        return fix_length(load_audio(self.clips.paths[row], self.sample_rate), self.clip_samples)

    def rows(self, part: ClipSet) -> np.ndarray:
        """Row of each clip of ``part`` in :attr:`clips` (and so in :attr:`logmels` / :attr:`embeddings`)."""
        rows = pd.Index(self.clips.paths).get_indexer(part.paths)
        if (rows < 0).any():
            raise KeyError(f"{int((rows < 0).sum())} clips of {part.name} are not in the experiment's clip set")
        return rows

    def split(self, fold: int, selection: str, per_class: int | None = None) -> Split:
        """The clips of a run on test fold ``fold`` under ``selection`` (module docstring): ``labelled`` (the
        labels the run may use), ``train``, ``val`` (absent under ``last``) and ``test``. With ``per_class``, the
        labelled clips are that many per class of the folds other than ``fold`` and ``fold + 1`` (class-balanced,
        nested across counts)."""
        check_selection(selection)
        official = fold_split(self.clips, fold)
        if per_class is not None:
            labelled = labelled_subset(official.train, per_class=per_class, seed=self.seed)[0]
        elif selection == "validation-fold":
            labelled = official.train
        else:
            labelled = fold_split(self.clips, fold, val_fold=0).train
        if selection == "validation-fold" and len(official.val) == 0:
            raise ValueError(f"selection='validation-fold' needs a validation fold; {self.clips.name} has none")
        train, val = selection_sets(selection, labelled, official.val, seed=self.seed)
        return Split({"labelled": labelled, "train": train, **({"val": val} if val is not None else {}),
                      "test": official.test}, "official", fold)

    def _features(self, arm: str) -> np.ndarray:
        return self.embeddings if arm in FROZEN else self.logmels

    def train_loader(self, arm: str, recipe: TransferRecipe, part: ClipSet, seed: int) -> DataLoader:
        """``recipe.steps_per_epoch`` class-balanced batches ``(input, target, index)`` of ``part`` per epoch:
        embeddings for a frozen base, random log-mel crops of ``clip_seconds`` otherwise."""
        assert_trainable(part)
        if recipe.clip_seconds > self.clips.clip_seconds:
            raise ValueError(f"clip_seconds={recipe.clip_seconds} is longer than the clips of {self.clips.name} "
                             f"({self.clips.clip_seconds} s); expected at most {self.clips.clip_seconds}")
        crop = None if arm in FROZEN else self.frames(recipe.clip_seconds)
        dataset = WaveformDataset(self._features(arm), part.targets, crop_samples=crop, train=True, seed=seed,
                                  rows=self.rows(part))
        batch = recipe.loader_batch
        sampler = BalancedSampler([[t] for t in part.targets], self.clips.num_classes, recipe.steps_per_epoch * batch,
                                  seed=seed)
        return DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=True, collate_fn=collate)

    def eval_loader(self, arm: str, part: ClipSet, batch_size: int = 64) -> DataLoader:
        """Batches ``(input, target, index)`` of ``part``'s whole clips (embeddings for a frozen base)."""
        dataset = WaveformDataset(self._features(arm), part.targets, rows=self.rows(part))
        return DataLoader(dataset, batch_size=batch_size, collate_fn=collate)

    # ------------------------------------------------------------------------------------------------ runs
    def model(self, arm: str) -> TransferModel:
        """A new transfer model of strategy ``arm`` on the checkpoint's weights (re-initialised for scratch),
        reading log-mels."""
        return TransferModel(load_pann(self.checkpoint, self.arch, progress=False), self.clips.num_classes,
                             self.check_arm(arm), inputs="logmel")

    def fit_strategy(self, arm: str, recipe: TransferRecipe, split: Split,
                     fit_fn: Fit = partial(fit, progress=False)) -> tuple[nn.Module, History]:
        """Train strategy ``arm`` on ``split.train`` (``fit_fn``: :func:`esclib.train.fit` or a run's ``ctx.fit``); the
        trained network (the head alone for a frozen base) with the weights ``recipe.selection`` keeps, and its
        history."""
        model = self.model(arm)
        net: nn.Module = model.head if arm in FROZEN else model
        model.base.spec_augment = recipe.specaugment and arm not in FROZEN
        val = split.parts.get("val")
        optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=recipe.lr,
                                     betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=True)
        history = fit_fn(net, self.train_loader(arm, recipe, split.train, self.run_seed(split)), epochs=recipe.epochs,
                      optimizer=optimizer, step_fn=mixup_step(soft_cross_entropy, alpha=recipe.mixup or None),
                      val_loader=None if val is None else self.eval_loader(arm, val),
                      early_stopping=None if val is None else EarlyStopping(recipe.epochs, "val_acc", "max"))
        return net, history

    def train(self, ctx: RunContext, arm: str, recipe: TransferRecipe, split: Split) -> dict[str, Any]:
        net, history = self.fit_strategy(arm, recipe, split, ctx.fit)
        scores, targets = predict(net, self.eval_loader(arm, split.test), self.device)
        kept = history.best("val_acc", "max") if "val" in split.parts else history.epochs[-1]
        return {**_test_metrics(targets, scores, self.clips.num_classes), "val_acc": kept.get("val_acc"),
                "best_epoch": int(kept["epoch"]), "n_labelled": len(split.labelled), "n_train": len(split.train),
                "n_val": len(split.parts.get("val", ())), "n_test": len(split.test)}

    def run_all(self, strategies: Sequence[str], folds: Sequence[int], recipe: TransferRecipe) -> Results:
        """Every (fold, strategy) run on all the labels (finished runs are reused)."""
        return self.grid([(s, recipe, self.split(f, recipe.selection)) for f in folds for s in strategies],
                         desc="transfer runs")


class FewShotTransfer(TransferExperiment):
    """The transfer runs on ``per_class`` labelled clips per class (the study's Fig. 5; see the module docstring)."""

    name = FEW_SHOT_EXPERIMENT

    @classmethod
    def of(cls, experiment: TransferExperiment) -> "FewShotTransfer":
        """The few-shot experiment on the same dataset, checkpoint and store, sharing its loaded model and cached
        log-mels and embeddings."""
        few_shot = cls.__new__(cls)
        few_shot.__dict__.update(experiment.__dict__)
        return few_shot

    def setting(self, arm: str, recipe: Recipe, split: Split) -> dict[str, Any]:
        per_class = int(np.bincount(split.labelled.targets).max())
        return {**super().setting(arm, recipe, split), "per_class": per_class}

    def few_shot(self, strategies: Sequence[str], folds: Sequence[int], per_class: Sequence[int],
                 recipe: TransferRecipe) -> Results:
        """Every (fold, samples per class, strategy) few-shot run (the study's Fig. 5)."""
        return self.grid([(s, recipe, self.split(f, recipe.selection, n)) for f in folds for n in per_class
                          for s in strategies], desc="few-shot runs")

    def selection_runs(self, strategies: Sequence[str], folds: Sequence[int], per_class: int,
                       recipe: TransferRecipe) -> Results:
        """The runs on ``per_class`` labels per class under every selection (the recipe's own runs are reused),
        labelled ``"<strategy>, <selection>"``."""
        cells = [(s, recipe.replace(selection=sel), self.split(f, sel, per_class)) for sel in SELECTIONS
                 for f in folds for s in strategies]
        return self.grid(cells, desc="selection runs", label=lambda arm, r: f"{arm}, {r.selection}")


def _test_metrics(targets: np.ndarray, scores: np.ndarray, n_classes: int) -> dict:
    metrics = classification_metrics(targets, scores, n_classes)
    return {key: metrics[key] for key in ("accuracy", "macro_f1", "auc", "confusion")}


# -------------------------------------------------------------------------------------------------------- tables
def per_fold(results: Results, metric: str = "accuracy") -> pd.DataFrame:
    """``metric`` of every run, one row per test fold and one column per strategy (the book's order), with the
    mean ± std over folds as the last row."""
    frame = results.frame()
    if frame.empty:
        return pd.DataFrame()
    table = frame.pivot_table(index="fold", columns="arm", values=metric)
    table = table[[s for s in STRATEGIES if s in table.columns]]
    shown = table.map(lambda v: f"{v:.3f}")
    shown.loc["mean ± std"] = [mean_std(table[c].mean(), table[c].std()) for c in table.columns]
    return shown.rename_axis(columns="strategy")


def comparisons(results: Results, pairs: Sequence[tuple[str, str]] = COMPARISONS,
                metric: str = "accuracy") -> pd.DataFrame:
    """One row per pair ``(a, b)`` both of whose arms ran: ``b − a`` over the folds both ran, its mean, its 95 %
    bootstrap interval over folds, on how many folds ``b`` is higher (``folds higher``) and whether the interval
    contains zero (:meth:`~esclib.results.summary.Results.paired`)."""
    ran = {r.get("label", r["arm"]) for r in results}
    rows = [{("folds higher" if key.startswith("folds ") and key.endswith(" higher") else key): value
             for key, value in results.paired(a, b, metric).row().items()} for a, b in pairs if a in ran and b in ran]
    return pd.DataFrame(rows)


def expected_order(results: Results, pairs: Sequence[tuple[str, str]] = EXPECTED_ORDER) -> pd.DataFrame:
    """Each relation of the study's order (``higher > lower``, Table IX) against this run: the paired difference
    over folds, its interval, and the verdict -- ``as in the study`` (interval above zero), ``inside the noise``
    or ``reversed`` (interval below zero)."""
    ran = {r["arm"] for r in results}
    rows = []
    for lower, higher in pairs:
        if lower in ran and higher in ran:
            paired = results.paired(lower, higher)
            verdict = ("inside the noise" if paired.inside_noise else
                       "as in the study" if paired.low > 0 else "reversed")
            rows.append({"study's order": f"{higher} > {lower}", "difference": round(paired.mean, 3),
                         "95% interval": f"[{paired.low:+.3f}, {paired.high:+.3f}]",
                         "folds": len(paired.per_fold), "this run": verdict})
    return pd.DataFrame(rows)


def selection_table(results: Results) -> pd.DataFrame:
    """The effect of ``selection`` (runs of :meth:`FewShotTransfer.selection_runs`): one row per selection with the
    labels it trains and selects on and each strategy's test accuracy (mean ± std over folds) and the epoch it kept."""
    frame = results.frame()
    if frame.empty:
        return pd.DataFrame()
    rows = []
    for selection in [s for s in SELECTIONS if s in set(frame["selection"])]:
        runs = frame[frame["selection"] == selection]
        row = {"selection": selection, "training labels": int(runs["n_train"].median()),
               "validation labels": int(runs["n_val"].median()), "folds": runs["fold"].nunique()}
        for arm in [s for s in STRATEGIES if s in set(runs["arm"])]:
            acc = runs.loc[runs["arm"] == arm, "accuracy"]
            row[f"{arm} accuracy"] = mean_std(acc.mean(), acc.std())
            row[f"{arm} epoch kept"] = ", ".join(str(int(e)) for e in runs.loc[runs["arm"] == arm, "best_epoch"])
        rows.append(row)
    return pd.DataFrame(rows)


def few_shot_curve(few_shot: Results, full: Results, n_classes: int) -> pd.DataFrame:
    """Test accuracy against labelled clips per class (the study's Fig. 5): one row per run (``strategy, fold,
    per_class, accuracy, subset``), the few-shot runs (``subset="few-shot"``) and the runs on every label
    (``subset="all"``, at their mean clips per class)."""
    rows = [{"strategy": r["arm"], "fold": r["setting"]["fold"], "per_class": r["setting"]["per_class"],
             "accuracy": r["metrics"]["accuracy"], "subset": "few-shot"} for r in few_shot]
    rows += [{"strategy": r["arm"], "fold": r["setting"]["fold"], "per_class": r["metrics"]["n_labelled"] / n_classes,
              "accuracy": r["metrics"]["accuracy"], "subset": "all"} for r in full]
    return pd.DataFrame(rows, columns=["strategy", "fold", "per_class", "accuracy", "subset"])


def confusion(results: Results, strategy: str) -> np.ndarray:
    """The confusion matrices of ``strategy``'s runs (its test folds), summed (rows: true class, columns:
    predicted)."""
    matrices = [np.asarray(r["metrics"]["confusion"]) for r in results if r["arm"] == strategy]
    if not matrices:
        raise ValueError(f"no run of {strategy!r} among these results")
    return np.sum(matrices, axis=0)


def protocol_differences(recipe: TransferRecipe, experiment: TransferExperiment, folds: Sequence[int],
                         strategy: str) -> list[str]:
    """How our runs of ``strategy`` differ from the protocol behind Table IX (ESC-50's 5 folds, training on the 4
    others, the AudioSet CNN14 at 32 kHz on whole 5-s clips, the authors' fixed-iteration recipe -- which the study
    does not state; their gtzan code: 10,000 iterations of 32 mixed clips, Adam 1e-4 with amsgrad, mixup α = 1,
    SpecAugment)."""
    clips, model = experiment.clips, experiment.pretrained
    out = []
    if clips.num_classes != 50 or len(clips) != 2000:
        kind = "the synthetic world" if Path(clips.root).parent.name.startswith("synth-") else clips.name
        out.append(f"data: {kind} with {clips.num_classes} classes and {len(clips)} clips (ESC-50: 50 classes, "
                   "2,000 clips)")
    hop_ms = 1000 * model.frontend.hop_size / experiment.sample_rate
    if type(model).__name__ != "Cnn14" or experiment.sample_rate != 32000 or hop_ms != 10:
        out.append(f"model: {type(model).__name__} ({experiment.source}) at {experiment.sample_rate // 1000} kHz, "
                   f"{hop_ms:g}-ms hop (theirs: CNN14 pre-trained on AudioSet, 32 kHz, 10-ms hop)")
    if len(folds) != clips.n_folds:
        out.append(f"test folds: {', '.join(map(str, folds))} of {clips.n_folds}")
    if recipe.selection == "validation-fold":
        out.append("trains on 3 folds and keeps the epoch with the best accuracy on fold k+1")
    elif recipe.selection == "budgeted":
        out.append("keeps the epoch with the best accuracy on a validation share of the 4 training folds")
    recipe_gaps = [f"{name} {getattr(recipe, name)} (theirs {theirs})" for name, theirs in AUTHORS_RECIPE.items()
                   if name != "steps" and getattr(recipe, name) != theirs]
    if recipe.steps != AUTHORS_RECIPE["steps"]:
        recipe_gaps.insert(0, f"{recipe.steps} steps (theirs 10,000)")
    if recipe.clip_seconds < clips.clip_seconds:
        recipe_gaps.append(f"random {recipe.clip_seconds:g}-s crops in training (theirs whole clips)")
    if recipe_gaps:
        out.append("recipe: " + ", ".join(recipe_gaps))
    if strategy in FROZEN:
        out.append("frozen base in eval mode: no SpecAugment, no dropout, fixed batch-norm statistics; mixup on "
                   "the embeddings (the authors' gtzan code leaves a frozen base in training mode)")
    if strategy == "freeze_l3":
        out.append("hidden widths not stated by the study; ours as wide as the embedding, ReLU between")
    return out


def protocol_table(results: Results, recipe: TransferRecipe, experiment: TransferExperiment,
                   folds: Sequence[int]) -> pd.DataFrame:
    """Table IX beside this run: per strategy the published accuracy with its protocol, ours (mean ± std over the
    test folds) and every way ours differs from that protocol (:func:`protocol_differences`)."""
    theirs = study_table(EXPERIMENT).query("metric == 'accuracy'").set_index("arm")
    frame = results.frame()
    rows = []
    for arm in STRATEGIES:
        ours = frame.loc[frame["arm"] == arm, "accuracy"] if len(frame) else pd.Series(dtype=float)
        rows.append({"strategy": arm, "published": f"{theirs.loc[arm, 'value']:.3f}",
                     "published: source and protocol": f"{theirs.loc[arm, 'source']} ({theirs.loc[arm, 'protocol']})"
                     + (f"; {theirs.loc[arm, 'note']}" if theirs.loc[arm, "note"] else ""),
                     "this run": mean_std(ours.mean(), ours.std()) if len(ours) else "not run",
                     "how this run differs": "; ".join(protocol_differences(recipe, experiment, folds, arm))})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ the pretrained model
def checkpoint_summary(experiment: TransferExperiment) -> pd.DataFrame:
    """What the experiment transfers from: architecture, size, frontend, pre-training classes and the tagging mAP
    of the checkpoint (the registry's AudioSet number for a released file, the held-out mAP of our recorded
    pre-training run for the mini model)."""
    from esclib.models.panns.registry import find_checkpoint
    from esclib.train.pann_pretrain import pretrain_report

    model = experiment.pretrained
    rows = {"checkpoint": experiment.source, "architecture": type(model).__name__,
            "parameters": f"{sum(p.numel() for p in model.parameters()):,}", "frontend": str(model.frontend),
            "embedding size": model.embedding_size, "pre-training classes": model.classes_num}
    released = find_checkpoint(Path(experiment.checkpoint).name)
    if released is not None:
        rows["tagging mAP"] = f"{released.audioset_map:.3f} (AudioSet evaluation set, Kong et al. 2020)"
    elif Path(f"{experiment.checkpoint}.json").is_file():
        report = pretrain_report(experiment.checkpoint)
        config = report["config"]
        rows["pre-training corpus"] = f"{report['corpus']['name']} ({report['corpus']['train']} training clips)"
        rows["pre-training"] = (f"{config['epochs'] * config['steps_per_epoch']} steps of {config['batch_size']} "
                                f"mixed clips, Adam {config['lr']:g}")
        rows["tagging mAP"] = (f"{report['held_out_metrics']['mAP']:.3f} (held-out {report['corpus']['held_out']} "
                               "clips of the pre-training corpus, our run `pann_pretrain`)")
    return pd.DataFrame({"value": [str(v) for v in rows.values()]}, index=list(rows))


def pretraining_map(experiment: TransferExperiment) -> float | None:
    """The held-out mAP of the mini model's recorded pre-training run (None for a released checkpoint)."""
    from esclib.train.pann_pretrain import pretrain_report

    if experiment.source != MINI:
        return None
    return float(pretrain_report(experiment.checkpoint)["held_out_metrics"]["mAP"])


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
def top_tags(model: PannModel, wave: np.ndarray, top: int = 5) -> pd.DataFrame:
    """The pretrained model's ``top`` labels for one clip (``label, probability``: sigmoid ``clipwise_output``), as
    ``esc pann tag`` prints them."""
    model.eval()
    device = next(model.parameters()).device
    scores = model(torch.tensor(np.asarray(wave, dtype=np.float32))[None].to(device))["clipwise_output"][0]
    order = torch.argsort(scores.float().cpu(), descending=True)[:top].tolist()
    labels = model.labels or [f"class {i}" for i in range(model.classes_num)]
    return pd.DataFrame({"label": [labels[i] for i in order], "probability": [float(scores[i]) for i in order]})


def pann_embeddings(pretrained: PannModel, checkpoint: str | Path, clips: ClipSet, *, samples: int,
                    device: str | torch.device = "cpu", progress: bool = True) -> np.ndarray:
    """The embedding of ``pretrained`` (loaded from ``checkpoint``; eval mode: no dropout, no SpecAugment, batch-norm
    running statistics) of every whole clip of ``clips`` (``samples`` long at the PANN's rate), ``(clips,
    embedding_size)`` float32: a read-only memmap computed once and cached on disk, keyed by the dataset's files,
    the rate, the length, the checkpoint's bytes, the architecture and the model code.

    Notebooks: 01_pann_transfer (the frozen strategies), 02_fixmatch (the frozen probe).
    """
    base = copy.deepcopy(pretrained).to(device).eval()
    config = {"feature": "PANN embedding, eval mode, whole clip", "checkpoint": file_digest(checkpoint),
              "arch": type(base).__name__, "code": _source_digest(*_MODEL_CODE)}
    return cached_features(clips, lambda wave: base.embed(wave.to(device)).float().cpu(),
                           sample_rate=base.frontend.sample_rate, samples=samples, shape=(base.embedding_size,),
                           config=config, name="pann-embeddings", progress=progress)


# ------------------------------------------------------------------------------------------ what the run shows
def specaugment_coverage(experiment: TransferExperiment, seconds: float) -> float:
    """The largest share of a ``seconds`` crop's frames the authors' SpecAugment time stripes can mask together (two
    of up to 64 frames: 13 % of a 10-s clip at 32 kHz, 51 % of the quick profile's 5-s clips on the mini's 20-ms
    hop)."""
    width, stripes = SPEC_AUGMENT_ARGS[:2]
    return min(1.0, width * stripes / experiment.frames(seconds))


def recipe_table(recipe: TransferRecipe) -> pd.DataFrame:
    """The run's recipe, field by field, beside the authors' transfer recipe where they have one."""
    theirs = {**AUTHORS_RECIPE, "selection": "last", "clip_seconds": 5.0}
    rows = {name: {"this run": str(value), "authors' recipe": str(theirs.get(name, ""))}
            for name, value in {**recipe.identity(), "steps": recipe.steps}.items()}
    return pd.DataFrame(rows).T.rename_axis("field")


def few_shot_table(curve: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy (mean ± std over folds) per labelled clips per class (rows; ``all`` for every label) and
    strategy (columns)."""
    if curve.empty:
        return pd.DataFrame()
    labelled = curve.assign(per_class=[f"{p:g}" if s == "few-shot" else "all" for p, s in
                                       zip(curve["per_class"], curve["subset"])])
    table = labelled.groupby(["per_class", "strategy"], sort=False)["accuracy"].agg(["mean", "std"])
    shown = table.apply(lambda r: mean_std(r["mean"], r["std"]), axis=1).unstack("strategy")
    order = sorted((p for p in shown.index if p != "all"), key=float) + (["all"] if "all" in shown.index else [])
    return shown.loc[order, [s for s in STRATEGIES if s in shown.columns]].rename_axis(
        index="labelled clips per class", columns="strategy")


def _best(frame: pd.DataFrame) -> tuple[str, float]:
    means = frame.groupby("strategy")["accuracy"].mean()
    return str(means.idxmax()), float(means.max())


def few_shot_summary(curve: pd.DataFrame) -> str:
    """One paragraph on the few-shot curve: the best strategy at the fewest and at the most labels per class and
    how far the fewest labels fall below all of them."""
    few = curve[curve["subset"] == "few-shot"] if len(curve) else curve
    if few.empty:
        return "No few-shot run was made (parameter `few_shot_per_class` is empty)."
    fewest = few["per_class"].min()
    low_name, low = _best(few[few["per_class"] == fewest])
    text = (f"With {fewest:g} labelled clips per class the best strategy is {low_name} at {low:.3f} mean test "
            f"accuracy")
    full = curve[curve["subset"] == "all"]
    if len(full):
        high_name, high = _best(full)
        text += (f"; with every label it is {high_name} at {high:.3f}, so the fewest labels cost "
                 f"{high - low:.3f} of accuracy")
    return text + "."


def order_summary(order: pd.DataFrame) -> str:
    """One paragraph on :func:`expected_order`'s table: which relations of the study's order this run shows beyond
    the fold noise, which are inside it and which are reversed."""
    if order.empty:
        return "Too few strategies ran to test the study's order."
    groups = {verdict: order.loc[order["this run"] == verdict, "study's order"].tolist()
              for verdict in ("as in the study", "inside the noise", "reversed")}
    words = {"as in the study": "as in the study, beyond the fold noise", "inside the noise": "inside the fold noise",
             "reversed": "reversed, beyond the fold noise"}
    parts = [f"{', '.join(shown)}: {words[verdict]}" for verdict, shown in groups.items() if shown]
    return (f"Of the {len(order)} relations of the study's order, tested on {order['folds'].min()} folds -- "
            + "; ".join(parts) + ".")


def reversal_evidence(results: Results, order: pd.DataFrame, recipe: TransferRecipe) -> str:
    """Why a relation of the study's order is reversed (:func:`expected_order`): the two strategies' training loss at
    the last epoch (mean over folds) after ``recipe``'s optimiser steps. A strategy that tests lower while its loss is
    still above the other's has not fitted its training clips (under-trained, a budget effect); one that fitted them
    as well and still tests lower is not explained by the budget.

    Notebook: 01_pann_transfer.
    """
    reversed_ = [] if order.empty else order.loc[order["this run"] == "reversed", "study's order"].tolist()
    if not reversed_:
        return "No relation of the study's order is reversed beyond the fold noise here."
    final: dict[str, list[float]] = {}
    for run in results:
        if run.get("curves"):
            final.setdefault(run["arm"], []).append(run["curves"][-1]["loss"])
    parts = []
    for relation in reversed_:
        higher, lower = relation.split(" > ")
        ours, theirs = float(np.mean(final[higher])), float(np.mean(final[lower]))
        parts.append(f"{higher}'s training loss ended at {ours:.2f} against {lower}'s {theirs:.2f}: " + (
            f"{higher} had not fitted its training clips as well as {lower} -- under-trained in this budget, not worse "
            "at transfer (a longer schedule, parameter `epochs`, is the test)" if ours > theirs else
            f"{higher} fitted its training clips as well as {lower} and still tested lower, so the short schedule "
            "does not explain the reversal"))
    return (f"Why reversed: after {recipe.steps} optimiser steps of {recipe.batch_size} clips (the study: "
            f"{AUTHORS_RECIPE['steps']:,} of {AUTHORS_RECIPE['batch_size']}), " + "; ".join(parts) + ".")


def _selection_pairs(results: Results) -> list:
    """(strategy, selection, paired difference of ``selection`` against ``last``) for every strategy of
    :meth:`FewShotTransfer.selection_runs` that ran under both."""
    ran = {r.get("label", r["arm"]) for r in results}
    return [(strategy, selection, results.paired(f"{strategy}, last", f"{strategy}, {selection}"))
            for strategy in STRATEGIES for selection in ("validation-fold", "budgeted")
            if {f"{strategy}, last", f"{strategy}, {selection}"} <= ran]


def selection_comparisons(results: Results) -> pd.DataFrame:
    """For each strategy of :meth:`FewShotTransfer.selection_runs`, the paired difference in test accuracy of each
    selection against ``last`` (no selection) over the folds, one row each."""
    return pd.DataFrame([{"strategy": strategy, "selection": selection, "difference from last": round(p.mean, 3),
                          "95% interval": f"[{p.low:+.3f}, {p.high:+.3f}]", "folds": len(p.per_fold),
                          "inside the noise": p.inside_noise} for strategy, selection, p in _selection_pairs(results)])


def selection_summary(results: Results) -> str:
    """One paragraph on the effect of ``selection``: how many labels each selection trains and selects on, and per
    strategy the paired difference of each selection against the last step, inside the fold noise or not."""
    pairs = _selection_pairs(results)
    if not pairs:
        return "The selection table has no pair of selections to compare."
    frame = results.frame()
    sizes = frame.groupby("selection")[["n_train", "n_val"]].median()
    intro = " ".join(f"Under `{sel}` the runs train on {int(sizes.loc[sel, 'n_train'])} labelled clips and select "
                     f"on {int(sizes.loc[sel, 'n_val'])}." for sel in ("validation-fold", "budgeted")
                     if sel in sizes.index)
    effects = "; ".join(f"{strategy} under `{selection}` {p.mean:+.3f} "
                        f"({'inside' if p.inside_noise else 'beyond'} the fold noise)"
                        for strategy, selection, p in pairs)
    return f"{intro} Against keeping the last step, in test accuracy (mean over folds): {effects}."


def lessons(runs: Results, curve: pd.DataFrame, selection: Results) -> dict[str, str]:
    """The chapter's closing lessons from this run's numbers (``learned_order``, ``learned_few_shot``,
    ``learned_selection``), sentences to glue into the prose."""
    order = expected_order(runs)
    held = order.loc[order["this run"] == "as in the study", "study's order"].tolist() if len(order) else []
    learned_order = (f"With every label, {len(held)} of the {len(order)} relations of the study's order hold beyond "
                     f"the fold noise in this run ({', '.join(held) or 'none'}): the paired differences over folds, "
                     "not the means alone, decide that." if len(order)
                     else "Too few strategies ran to test the study's order.")
    return {"learned_order": learned_order, "learned_few_shot": few_shot_summary(curve),
            "learned_selection": selection_summary(selection)}
