"""Chapter 02's experiment (study 000, ROCLING 2021): a pretrained PANN, FixMatch and SpecAugment on UrbanSound8K
with 10 % of the labels (PROTOCOLS.md A0 and E).

What the chapter runs, every run resumable and recorded in the results store (experiment ``fixmatch``):

1. :class:`FixMatchExperiment` loads the PANN checkpoint (``Cnn14_16k`` in the paper profile; ``"mini"``, the
   quick profile's model pre-trained on the synthetic mini-AudioSet, :func:`esclib.experiments.pann_transfer.
   resolve_checkpoint`) and caches the dataset's waveforms at the PANN's sample rate.
2. :meth:`FixMatchExperiment.fold` cuts one official fold (test fold k, validation fold k+1, training the rest)
   and draws the class-balanced labelled fraction from the training folds; the rest of the training folds is the
   unlabelled set (labels hidden). The leak guard checks that no test clip, nor a clip of a test clip's source
   recording, is in either stream.
3. :meth:`FixMatchExperiment.run` trains one arm -- ``supervised-pann`` / ``supervised-scratch`` (the labelled
   part only, from the checkpoint / from random weights) or ``fixmatch-pann`` / ``fixmatch-scratch`` -- with one
   :class:`FixMatchRecipe`, keeps the epoch with the best validation accuracy and tests it (accuracy, macro AUC-ROC).
   The fully supervised upper bound is ``supervised-pann`` with ``labelled_fraction=1.0``.

Every arm of a recipe trains for the same number of optimiser steps: an epoch is one pass over the unlabelled
clips in batches of μB (or ``steps_per_epoch`` steps); the supervised arms cycle their labelled loader for as many
steps, so FixMatch differs from its baseline only by the unlabelled term. Both get the weak view (and mixup) on
the labelled batch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from esclib import paths
from esclib.data.cache import cached_waveforms
from esclib.data.clips import ClipSet
from esclib.data.splits import FoldSplit, check_no_leak, fold_split, labelled_subset
from esclib.data.torchdata import clip_loader
from esclib.metrics import classification_metrics
from esclib.models.transfer import TransferModel
from esclib.results.store import ResultsStore, Run
from esclib.train import EarlyStopping, History, fit, predict
from esclib.train.fixmatch import (CycledLoader, FixMatchStep, LabelledStep, PairedLoader, View,
                                   epoch_diagnostics)
from esclib.train.optim import OPTIMIZERS, cosine_schedule, make_optimizer

EXPERIMENT = "fixmatch"
#: the arms, named as in :mod:`esclib.results.studies`
ARMS: tuple[str, ...] = ("supervised-pann", "supervised-scratch", "fixmatch-pann", "fixmatch-scratch")
#: the view policies (weak / strong pairs of :func:`esclib.augment.policies.get_policy`)
POLICIES: tuple[str, ...] = ("rocling", "sslh")
#: the ablations of study 000 (Tables 2-4) and the values each compares
ABLATIONS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "threshold": ("threshold", (0.95, 0.75)),
    "mixup": ("mixup", (True, False)),
    "optimizer": ("optimizer", ("adam", "sgd", "ranger")),
    "accumulate": ("accumulate", (1, 2)),
}


@dataclass(frozen=True)
class FixMatchRecipe:
    """How an arm is trained (PROTOCOLS E for study 000).

    ``labelled_fraction`` of the training folds is labelled (class-balanced). ``epochs`` under cosine annealing of
    ``steps_per_epoch`` optimiser steps (None: one pass over the unlabelled clips) of ``batch_size`` labelled and
    ``mu`` x ``batch_size`` unlabelled clips; ``accumulate`` > 1 splits each step into that many micro-batches
    whose gradients are summed (study 000's gradient accumulation: same clips per step, smaller batches in the
    network). ``threshold`` τ and ``lambda_u`` λ_u of the FixMatch loss; ``optimizer`` (``adam``, ``adamw``,
    ``sgd``, ``ranger``) with ``lr``; ``mixup`` of the labelled batch with α = ``mixup_alpha``; ``policies``:
    ``rocling`` (study 000's SpecAugment, Table 1) or ``sslh`` (Cancès et al.'s waveform + cut-out views);
    ``crop_seconds`` of audio per clip: a random crop in training, the centre crop in evaluation (None: whole clips;
    the PANN pools over time, so training and evaluation see clips of one length).
    """

    labelled_fraction: float = 0.1
    epochs: int = 35
    steps_per_epoch: int | None = None
    batch_size: int = 32
    mu: int = 7
    threshold: float = 0.95
    lambda_u: float = 1.0
    optimizer: str = "adam"
    lr: float = 5e-4
    mixup: bool = True
    mixup_alpha: float = 1.0
    accumulate: int = 1
    policies: str = "rocling"
    crop_seconds: float | None = None

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.labelled_fraction <= 1:
            problems.append(f"labelled_fraction must be in (0, 1], got {self.labelled_fraction}")
        for name in ("epochs", "batch_size", "mu", "accumulate"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            problems.append(f"steps_per_epoch must be >= 1 or None, got {self.steps_per_epoch}")
        if self.batch_size % self.accumulate:
            problems.append(f"batch_size {self.batch_size} must be a multiple of accumulate {self.accumulate}")
        if not 0 <= self.threshold <= 1:
            problems.append(f"threshold must be in [0, 1], got {self.threshold}")
        if self.lambda_u < 0 or self.lr <= 0 or self.mixup_alpha <= 0:
            problems.append(f"lambda_u must be >= 0, lr and mixup_alpha > 0; got {self.lambda_u}, {self.lr}, "
                            f"{self.mixup_alpha}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.policies not in POLICIES:
            problems.append(f"policies must be one of {POLICIES}, got {self.policies!r}")
        if self.crop_seconds is not None and self.crop_seconds <= 0:
            problems.append(f"crop_seconds must be > 0 or None, got {self.crop_seconds}")
        if problems:
            raise ValueError("FixMatchRecipe: " + "; ".join(problems))

    @classmethod
    def from_config(cls, config: Any) -> "FixMatchRecipe":
        """The recipe from a chapter's resolved parameters (attributes named as the fields; missing or None ones
        keep the defaults)."""
        given = {f.name: getattr(config, f.name, None) for f in fields(cls)}
        return cls(**{name: value for name, value in given.items() if value is not None})

    @property
    def micro_batch(self) -> int:
        """Labelled clips per forward pass (``batch_size / accumulate``)."""
        return self.batch_size // self.accumulate

    def setting(self, arm: str) -> dict[str, Any]:
        """The setting keys of :mod:`esclib.results.studies` (plus ``mu`` and ``policies``) that tell this recipe's
        runs of ``arm`` apart; the supervised arms do not depend on τ, μ or the strong view."""
        setting = {"labelled_fraction": self.labelled_fraction, "batch_size": self.batch_size,
                   "optimizer": self.optimizer, "mixup": self.mixup, "grad_accum": self.accumulate > 1,
                   "policies": self.policies}
        if arm.startswith("fixmatch"):
            setting |= {"threshold": self.threshold, "mu": self.mu}
        return setting


def chapter_plan(recipe: FixMatchRecipe, *, arms: Sequence[str] = ARMS, upper_bound: bool = True,
                 ablations: Sequence[str] = (), ablation_fraction: float | None = None
                 ) -> list[tuple[str, FixMatchRecipe]]:
    """The (arm, recipe) pairs of the chapter: ``arms`` with ``recipe``; the upper bound (``supervised-pann`` on
    every label); and each ablation of :data:`ABLATIONS` on ``fixmatch-pann`` with the labelled fraction
    ``ablation_fraction`` (default: the recipe's; study 000's Tables 2-4 used, we infer, 1 %), beside
    ``supervised-pann`` at that fraction. Duplicates are dropped, order kept."""
    for arm in arms:
        check_arm(arm)
    unknown = [a for a in ablations if a not in ABLATIONS]
    if unknown:
        raise ValueError(f"unknown ablation(s) {unknown}; expected some of {list(ABLATIONS)}")
    plan = [(arm, recipe) for arm in arms]
    if upper_bound:
        plan.append(("supervised-pann", replace(recipe, labelled_fraction=1.0)))
    if ablations:
        base = replace(recipe, labelled_fraction=ablation_fraction or recipe.labelled_fraction)
        plan.append(("supervised-pann", base))
        for name in ablations:
            field_name, values = ABLATIONS[name]
            plan += [("fixmatch-pann", replace(base, **{field_name: value})) for value in values]
    return list(dict.fromkeys(plan))


def check_arm(arm: str) -> str:
    """``arm`` if it is one of :data:`ARMS`, else a ValueError listing them."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; expected one of {list(ARMS)}")
    return arm


def policy_views(policies: str) -> tuple[View, View]:
    """The weak and the strong :class:`~esclib.train.fixmatch.View` of ``policies`` (``rocling`` / ``sslh``): each
    named policy's waveform part acts before the PANN's frontend, its spectrogram part on the log-mel after ``bn0``
    (where the PANN code applies SpecAugment). SSLH's cut-out fills with -80, a dB value in SSLH; after ``bn0`` it
    is far below the normalised range, i.e. a strong occlusion."""
    from esclib.augment.policies import get_policy

    if policies not in POLICIES:
        raise ValueError(f"unknown policies {policies!r}; expected one of {POLICIES}")
    views = []
    for strength in ("weak", "strong"):
        policy = get_policy(f"{policies}_{strength}")
        views.append(View(wave=policy.waveform if len(policy.waveform) else None,
                          spec=policy.spectrogram if len(policy.spectrogram) else None))
    return views[0], views[1]


@dataclass(frozen=True)
class FoldData:
    """One fold of the experiment: the split, and its training folds cut into labelled and unlabelled clips."""

    split: FoldSplit
    labelled: ClipSet
    unlabelled: ClipSet

    def describe(self) -> str:
        """One line: the split and the two streams' sizes."""
        return f"{self.split.describe()}; labelled {len(self.labelled)}, unlabelled {len(self.unlabelled)}"


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class FixMatchExperiment:
    """Study 000's experiment on one dataset with one pretrained PANN (see the module docstring).

    ``checkpoint``: a registered name (``"Cnn14_16k"``), a file, or ``"mini"``; ``arch`` for a file whose
    architecture cannot be inferred. ``progress``: a bar over the runs; ``train_progress``: also each run's batch
    bars and per-epoch log lines (long ``paper`` runs).
    """

    clips: ClipSet
    checkpoint: str | Path
    store: ResultsStore
    arch: str | None = None
    device: str | torch.device = "cpu"
    seed: int = 0
    eval_batch_size: int = 64
    progress: bool = True
    train_progress: bool = False

    def __post_init__(self) -> None:
        from esclib.experiments.pann_transfer import resolve_checkpoint
        from esclib.models.panns import load_pann

        if self.clips.multi_label:
            raise ValueError(f"FixMatchExperiment: {self.clips.name} is multi-label; FixMatch here classifies "
                             "single-label clips")
        self.device = torch.device(self.device)
        self.checkpoint = resolve_checkpoint(self.checkpoint, seed=self.seed, progress=self.progress)
        pretrained = load_pann(self.checkpoint, self.arch, progress=self.progress)
        self.arch = type(pretrained).__name__
        self.sample_rate = pretrained.frontend.sample_rate
        cached_waveforms(self.clips, self.sample_rate, progress=self.progress)
        self._folds: dict[tuple[int, float], FoldData] = {}
        self._finished: dict[tuple[str, int, FixMatchRecipe], dict] = {}

    # ------------------------------------------------------------------------------------------------ data
    def fold(self, fold: int, labelled_fraction: float) -> FoldData:
        """Test fold ``fold``, validation ``fold + 1``; ``labelled_fraction`` of the rest labelled (class-balanced,
        from the seed; 1.0: every training clip), the remainder unlabelled. Raises
        :class:`~esclib.data.splits.LeakError` if a test clip or a clip of a test source were in the validation set
        or either training stream."""
        key = (int(fold), float(labelled_fraction))
        if key not in self._folds:
            split = fold_split(self.clips, int(fold))
            if labelled_fraction < 1:
                labelled, unlabelled = labelled_subset(split.train, fraction=labelled_fraction, seed=self.seed)
            else:  # every label: the training folds as they are (a class-balanced draw of all clips cannot exist)
                labelled, unlabelled = split.train, split.train.subset(np.zeros(len(split.train), bool)).unlabelled()
            check_no_leak(split.test, split.val, labelled, unlabelled)
            self._folds[key] = FoldData(split, labelled, unlabelled)
        return self._folds[key]

    def _loader(self, part: ClipSet, *, train: bool, batch_size: int, crop_seconds: float | None = None,
                seed: int = 0) -> torch.utils.data.DataLoader:
        return clip_loader(part, self.sample_rate, train=train, batch_size=batch_size, crop_seconds=crop_seconds,
                           seed=seed, pool=self.clips, progress=False)

    def train_loader(self, arm: str, data: FoldData, recipe: FixMatchRecipe, seed: int = 0) -> Iterable:
        """What ``fit`` iterates for ``arm``: (labelled, unlabelled) pairs for FixMatch, labelled batches cycled
        for as many steps otherwise (see the module docstring)."""
        micro = recipe.micro_batch
        labelled = self._loader(data.labelled, train=True, batch_size=2 * micro if recipe.mixup else micro,
                                crop_seconds=recipe.crop_seconds, seed=seed)
        unlabelled = (self._loader(data.unlabelled, train=True, batch_size=recipe.mu * micro,
                                   crop_seconds=recipe.crop_seconds, seed=seed + 1)
                      if len(data.unlabelled) >= recipe.mu * micro else None)
        if arm.startswith("fixmatch"):
            if unlabelled is None:
                raise ValueError(f"{arm}: {len(data.unlabelled)} unlabelled clips, fewer than one batch of "
                                 f"mu x batch = {recipe.mu * micro}; lower mu or batch_size, or the labelled "
                                 "fraction")
            return _limited(PairedLoader(labelled, unlabelled), recipe)
        natural = len(unlabelled) if unlabelled is not None else len(labelled)
        return CycledLoader(labelled, (recipe.steps_per_epoch or natural // recipe.accumulate) * recipe.accumulate)

    # ------------------------------------------------------------------------------------------------ runs
    def model(self, arm: str) -> TransferModel:
        """The arm's classifier: the checkpoint's PANN with a new linear head, fine-tuned whole (``-pann``) or
        re-initialised (``-scratch``); the PANN's own SpecAugment off (the views are the augmentation)."""
        from esclib.models.panns import load_pann

        strategy = "scratch" if check_arm(arm).endswith("scratch") else "fine-tune"
        model = TransferModel(load_pann(self.checkpoint, self.arch, progress=False), self.clips.num_classes, strategy)
        model.base.spec_augment = False
        return model

    def step(self, arm: str, data: FoldData, recipe: FixMatchRecipe) -> LabelledStep:
        """``fit``'s step for ``arm`` (FixMatch with the hidden labels for its diagnostics, or the labelled half)."""
        weak, strong = policy_views(recipe.policies)
        alpha = recipe.mixup_alpha if recipe.mixup else None
        if arm.startswith("fixmatch"):
            return FixMatchStep(weak, strong, self.clips.num_classes, threshold=recipe.threshold,
                                lambda_u=recipe.lambda_u, mixup_alpha=alpha,
                                hidden_targets=data.unlabelled.table["hidden_target"].to_numpy())
        return LabelledStep(weak, self.clips.num_classes, mixup_alpha=alpha)

    @torch.no_grad()
    def views_of(self, wave: np.ndarray, policies: str, seed: int = 0) -> dict[str, np.ndarray]:
        """The pretrained PANN's log-mel (after ``bn0``, eval statistics) of one waveform: as it is, and through the
        weak and the strong view of ``policies``; each ``(frames, mel_bins)``."""
        from esclib.models.panns import load_pann

        base = load_pann(self.checkpoint, self.arch, progress=False).eval()
        weak, strong = policy_views(policies)
        torch.manual_seed(seed)
        x = torch.tensor(np.asarray(wave, dtype=np.float32))[None]
        shown = {"original": base.logmel(x), "weak": weak.of(base.logmel, x), "strong": strong.of(base.logmel, x)}
        return {name: value[0, 0].numpy() for name, value in shown.items()}

    def params(self, arm: str, recipe: FixMatchRecipe) -> dict:
        """Everything a run depends on besides its setting (stored with the result)."""
        return {**asdict(recipe), "arm": arm, "checkpoint": str(self.checkpoint), "arch": self.arch,
                "sample_rate": self.sample_rate, "clips": len(self.clips)}

    def run(self, arm: str, fold: int, recipe: FixMatchRecipe) -> dict:
        """Train (or resume, or reuse) ``arm`` with ``recipe`` on ``fold`` and test it; returns the arm, setting,
        metrics and per-epoch ``curves`` as one dict. A finished run whose stored parameters differ from these is
        trained again; a run this experiment already finished is returned as it is (also under ``esc run --force``,
        so that a plan listing a run twice trains it once)."""
        check_arm(arm)
        if (arm, int(fold), recipe) in self._finished:
            return self._finished[arm, int(fold), recipe]
        setting = {"dataset": self.clips.name, "fold": int(fold), "seed": self.seed, **recipe.setting(arm)}
        params = self.params(arm, recipe)
        run = self.store.run(EXPERIMENT, arm, setting, params)
        if run.done and run.result()["params"] != run.params:
            run = self.store.run(EXPERIMENT, arm, setting, params, force=True)
        if not run.done:
            with run:
                self._train(run, arm, int(fold), recipe)
        result = run.result()
        row = {"arm": arm, **setting, **result["metrics"], "curves": result["curves"]}
        self._finished[arm, int(fold), recipe] = row
        return row

    def _train(self, run: Run, arm: str, fold: int, recipe: FixMatchRecipe) -> None:
        data = self.fold(fold, recipe.labelled_fraction)
        identity = _digest(EXPERIMENT, arm, run.setting, run.params)
        torch.manual_seed(int(identity, 16) % 2**31)
        model = self.model(arm)
        optimizer = make_optimizer(recipe.optimizer, model.parameters(), recipe.lr)
        checkpoint = paths.cache_dir() / "checkpoints" / EXPERIMENT / f"{arm}-{identity}.pt"
        evaluation = {"train": False, "batch_size": self.eval_batch_size, "crop_seconds": recipe.crop_seconds}
        history = fit(model, self.train_loader(arm, data, recipe, seed=int(identity[:8], 16)), epochs=recipe.epochs,
                      optimizer=optimizer, step_fn=self.step(arm, data, recipe),
                      val_loader=self._loader(data.split.val, **evaluation),
                      scheduler=cosine_schedule(optimizer, recipe.epochs), device=self.device,
                      checkpoint=checkpoint, accumulate=recipe.accumulate,
                      early_stopping=EarlyStopping(recipe.epochs, "val_acc", "max"), progress=self.train_progress,
                      desc=f"{arm} fold {fold}")
        scores, targets = predict(model, self._loader(data.split.test, **evaluation), self.device)
        metrics = classification_metrics(targets, scores, self.clips.num_classes)
        _finish(run, history, {key: metrics[key] for key in ("accuracy", "auc", "macro_f1", "confusion")}
                | {"n_labelled": len(data.labelled), "n_unlabelled": len(data.unlabelled),
                   "n_test": len(data.split.test)})
        checkpoint.unlink(missing_ok=True)

    def run_plan(self, plan: Sequence[tuple[str, FixMatchRecipe]], folds: Sequence[int]) -> "PlanResults":
        """Every (fold, arm, recipe) run of ``plan`` (from :func:`chapter_plan`; its first recipe is the main one,
        the others are labelled by how they differ from it); finished runs are reused."""
        if not plan:
            raise ValueError("run_plan: the plan is empty (no arm, no upper bound, no ablation)")
        base = plan[0][1]
        grid = [(arm, fold, recipe) for fold in folds for arm, recipe in plan]
        rows, curves = [], []
        for arm, fold, recipe in tqdm(grid, desc="fixmatch runs", disable=not self.progress):
            row = {"variant": variant(arm, recipe, base), **self.run(arm, fold, recipe)}
            curves += [{"arm": arm, "variant": row["variant"], "fold": fold, **c} for c in row.pop("curves")]
            rows.append(row)
        return PlanResults(pd.DataFrame(rows), pd.DataFrame(curves))


@dataclass(frozen=True)
class PlanResults:
    """The runs of a plan: one row per run (``arm, variant``, setting, test metrics) and the per-epoch curves
    (``arm, variant, fold, epoch``, training logs, diagnostics, ``val_acc``)."""

    runs: pd.DataFrame
    curves: pd.DataFrame


def variant(arm: str, recipe: FixMatchRecipe, base: FixMatchRecipe) -> str:
    """How ``recipe`` differs from ``base`` for ``arm``, in words ("main" when it does not)."""
    ours, theirs = recipe.setting(arm), base.setting(arm)
    words = {"labelled_fraction": lambda v: f"{v:.0%} labels", "threshold": lambda v: f"τ = {v}",
             "mixup": lambda v: "mixup" if v else "no mixup", "grad_accum": lambda v: f"accumulate {recipe.accumulate}",
             "mu": lambda v: f"μ = {v}"}
    diffs = [words.get(key, lambda v, key=key: f"{key} {v}")(value)
             for key, value in ours.items() if theirs.get(key) != value]
    return ", ".join(diffs) or "main"


def summary_table(runs: pd.DataFrame, metrics: Sequence[str] = ("accuracy", "auc"), digits: int = 3) -> pd.DataFrame:
    """Mean ± std over folds of ``metrics`` per arm and variant, with the published number for the same arm and
    setting beside each (from :mod:`esclib.results.studies`: study 000's Tables 2-5, USB, Cancès et al.)."""
    from esclib.results.studies import study_value

    rows = []
    for (arm, name), group in runs.groupby(["arm", "variant"], sort=False):
        setting = {k: v for k, v in group.iloc[0].items() if k in SETTING_KEYS}
        row = {"arm": arm, "variant": name, "folds": len(group)}
        for metric in metrics:
            values = group[metric].astype(float)
            std = values.std(ddof=1) if len(values) > 1 else float("nan")
            row[metric] = f"{values.mean():.{digits}f}" + ("" if np.isnan(std) else f" ± {std:.{digits}f}")
            published = study_value(EXPERIMENT, arm, metric, setting)
            row[f"published {metric}"] = "" if published is None else f"{published.value:.{digits}f}"
            if published is not None:
                row["source"] = published.study.source
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


#: setting keys of a run (besides fold and seed), used to find the published numbers of its arm
SETTING_KEYS: tuple[str, ...] = ("dataset", "labelled_fraction", "threshold", "batch_size", "optimizer", "mixup",
                                 "grad_accum", "mu", "policies")


def _limited(loader: PairedLoader, recipe: FixMatchRecipe) -> Iterable:
    """``loader``, or ``steps_per_epoch`` x ``accumulate`` of its batches per epoch when the recipe fixes it."""
    if recipe.steps_per_epoch is None:
        return loader
    return CycledLoader(loader, recipe.steps_per_epoch * recipe.accumulate)


def _finish(run: Run, history: History, metrics: dict) -> None:
    """Log every epoch (with the derived pseudo-label diagnostics) and write the result with the best epoch's
    validation accuracy and the last epoch's diagnostics."""
    for record in history.epochs:
        extra = epoch_diagnostics(record) if "mask_rate" in record else {}
        run.log_epoch(**record, **extra)
    best = history.best("val_acc", "max")
    last = run.curves[-1]
    diagnostics = {key: last[key] for key in ("mask_rate", "pseudo_acc", "pseudo_acc_masked") if key in last}
    run.finish({**metrics, "val_acc": best["val_acc"], "best_epoch": int(best["epoch"]),
                "epochs": len(history.epochs), **{f"final_{k}": v for k, v in diagnostics.items()}})
