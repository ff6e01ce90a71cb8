"""Chapter 02's experiment (study 000, ROCLING 2021): a pretrained PANN, FixMatch and SpecAugment on UrbanSound8K
with 10 % of the labels (PROTOCOLS.md A0 and E).

Notebook: 02_fixmatch. What the chapter runs, on the foundation of :mod:`esclib.experiments.base` (experiment
``fixmatch``; every run's identity holds its recipe, the dataset's and checkpoint's digests and its split):

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

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from esclib.data.cache import cached_waveforms
from esclib.data.clips import ClipSet
from esclib.data.identity import dataset_identity
from esclib.data.splits import FoldSplit, check_no_leak, fold_split, labelled_subset
from esclib.data.torchdata import clip_loader
from esclib.experiments.base import Experiment, Recipe, RunContext, Split, checkpoint_identity
from esclib.metrics import classification_metrics
from esclib.models.transfer import TransferModel
from esclib.results.summary import Results
from esclib.train import EarlyStopping, predict
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


#: mixup α of the labelled batch (the PANN recipe; study 000 keeps mixup inside FixMatch)
MIXUP_ALPHA = 1.0


@dataclass(frozen=True)
class FixMatchRecipe(Recipe):
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

    labelled_fraction: float
    epochs: int
    steps_per_epoch: int | None
    batch_size: int
    mu: int
    threshold: float
    lambda_u: float
    optimizer: str
    lr: float
    mixup: bool
    accumulate: int
    policies: str
    crop_seconds: float | None

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
        if self.lambda_u < 0 or self.lr <= 0:
            problems.append(f"lambda_u must be >= 0 and lr > 0; got {self.lambda_u}, {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.policies not in POLICIES:
            problems.append(f"policies must be one of {POLICIES}, got {self.policies!r}")
        if self.crop_seconds is not None and self.crop_seconds <= 0:
            problems.append(f"crop_seconds must be > 0 or None, got {self.crop_seconds}")
        if problems:
            raise ValueError("FixMatchRecipe: " + "; ".join(problems))

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


class FixMatchExperiment(Experiment):
    """Study 000's experiment on one dataset with one pretrained PANN (see the module docstring).

    ``checkpoint``: a registered name (``"Cnn14_16k"``), a file, or ``"mini"``; ``arch`` for a file whose
    architecture cannot be inferred.
    """

    name = EXPERIMENT
    arms = ARMS

    def __init__(self, clips: ClipSet, checkpoint: str | Path, *, arch: str | None = None, eval_batch_size: int = 64,
                 **kwargs: Any) -> None:
        from esclib.experiments.pann_transfer import resolve_checkpoint
        from esclib.models.panns import load_pann

        super().__init__(**kwargs)
        if clips.multi_label:
            raise ValueError(f"FixMatchExperiment: {clips.name} is multi-label; FixMatch here classifies "
                             "single-label clips")
        self.clips, self.eval_batch_size = clips, eval_batch_size
        given = Path(str(checkpoint)).expanduser()
        self.source = given.stem if given.is_file() else str(checkpoint)
        self.checkpoint = resolve_checkpoint(checkpoint, seed=self.seed, progress=self.progress)
        pretrained = load_pann(self.checkpoint, arch, progress=self.progress)
        self.arch = type(pretrained).__name__
        self.sample_rate = pretrained.frontend.sample_rate
        cached_waveforms(self.clips, self.sample_rate, progress=self.progress)
        self._folds: dict[tuple[int, float], FoldData] = {}

    def inputs(self) -> dict[str, Any]:
        return {"dataset": dataset_identity(self.clips, progress=self.progress),
                "checkpoint": {**checkpoint_identity(self.checkpoint, self.source), "arch": self.arch}}

    def setting(self, arm: str, recipe: FixMatchRecipe, split: Split) -> dict[str, Any]:
        return {"dataset": self.clips.name, "fold": split.fold, **recipe.setting(arm)}

    # ------------------------------------------------------------------------------------------------ data
    def fold(self, fold: int, labelled_fraction: float) -> FoldData:
        """Test fold ``fold``, validation ``fold + 1``; ``labelled_fraction`` of the rest labelled (class-balanced,
        from the seed; 1.0: every training clip), the remainder unlabelled. Raises
        :class:`~esclib.data.splits.LeakError` if a test clip or a clip of a test clip's source recording were in the
        validation set or either training stream."""
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

    def split(self, fold: int, recipe: FixMatchRecipe) -> Split:
        """The run's clips: validation and test folds, the labelled and the unlabelled training clips."""
        data = self.fold(fold, recipe.labelled_fraction)
        return Split({"labelled": data.labelled, "unlabelled": data.unlabelled, "val": data.split.val,
                      "test": data.split.test}, "official", int(fold))

    def _loader(self, part: ClipSet, *, train: bool, batch_size: int, crop_seconds: float | None = None,
                seed: int = 0) -> torch.utils.data.DataLoader:
        return clip_loader(part, self.sample_rate, train=train, batch_size=batch_size, crop_seconds=crop_seconds,
                           seed=seed, pool=self.clips, progress=False)

    def train_loader(self, arm: str, split: Split, recipe: FixMatchRecipe, seed: int = 0) -> Iterable:
        """What ``fit`` iterates for ``arm``: (labelled, unlabelled) pairs for FixMatch, labelled batches cycled
        for as many steps otherwise (see the module docstring)."""
        micro = recipe.micro_batch
        labelled = self._loader(split.labelled, train=True, batch_size=2 * micro if recipe.mixup else micro,
                                crop_seconds=recipe.crop_seconds, seed=seed)
        unlabelled = (self._loader(split.unlabelled, train=True, batch_size=recipe.mu * micro,
                                   crop_seconds=recipe.crop_seconds, seed=seed + 1)
                      if len(split.unlabelled) >= recipe.mu * micro else None)
        if arm.startswith("fixmatch"):
            if unlabelled is None:
                raise ValueError(f"{arm}: {len(split.unlabelled)} unlabelled clips, fewer than one batch of "
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

        strategy = "scratch" if self.check_arm(arm).endswith("scratch") else "fine-tune"
        model = TransferModel(load_pann(self.checkpoint, self.arch, progress=False), self.clips.num_classes, strategy)
        model.base.spec_augment = False
        return model

    def step(self, arm: str, split: Split, recipe: FixMatchRecipe) -> LabelledStep:
        """``fit``'s step for ``arm`` (FixMatch with the hidden labels for its diagnostics, or the labelled half)."""
        weak, strong = policy_views(recipe.policies)
        alpha = MIXUP_ALPHA if recipe.mixup else None
        if arm.startswith("fixmatch"):
            return FixMatchStep(weak, strong, self.clips.num_classes, threshold=recipe.threshold,
                                lambda_u=recipe.lambda_u, mixup_alpha=alpha,
                                hidden_targets=split.unlabelled.table["hidden_target"].to_numpy())
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

    def train(self, ctx: RunContext, arm: str, recipe: FixMatchRecipe, split: Split) -> dict[str, Any]:
        model = self.model(arm)
        optimizer = make_optimizer(recipe.optimizer, model.parameters(), recipe.lr)
        evaluation = {"train": False, "batch_size": self.eval_batch_size, "crop_seconds": recipe.crop_seconds}
        history = ctx.fit(model, self.train_loader(arm, split, recipe, seed=ctx.seed), epochs=recipe.epochs,
                          optimizer=optimizer, step_fn=self.step(arm, split, recipe),
                          val_loader=self._loader(split.val, **evaluation),
                          scheduler=cosine_schedule(optimizer, recipe.epochs), accumulate=recipe.accumulate,
                          early_stopping=EarlyStopping(recipe.epochs, "val_acc", "max"))
        for record in ctx.histories[-1].epochs:
            if "mask_rate" in record:
                record.update(epoch_diagnostics(record))
        scores, targets = predict(model, self._loader(split.test, **evaluation), self.device)
        metrics = classification_metrics(targets, scores, self.clips.num_classes)
        best = history.best("val_acc", "max")
        last = ctx.histories[-1].epochs[-1]
        diagnostics = {f"final_{k}": last[k] for k in ("mask_rate", "pseudo_acc", "pseudo_acc_masked") if k in last}
        return {**{key: metrics[key] for key in ("accuracy", "auc", "macro_f1", "confusion")},
                "val_acc": best["val_acc"], "best_epoch": int(best["epoch"]), **diagnostics,
                "n_labelled": len(split.labelled), "n_unlabelled": len(split.unlabelled), "n_test": len(split.test)}

    def run_plan(self, plan: Sequence[tuple[str, FixMatchRecipe]], folds: Sequence[int]) -> Results:
        """Every (fold, arm, recipe) run of ``plan`` (from :func:`chapter_plan`; its first recipe is the main one,
        the others are labelled by how they differ from it, in ``result["label"]``); finished runs are reused."""
        if not plan:
            raise ValueError("run_plan: the plan is empty (no arm, no upper bound, no ablation)")
        base = plan[0][1]
        cells = [(arm, recipe, self.split(fold, recipe)) for fold in folds for arm, recipe in plan]
        return self.grid(cells, desc="fixmatch runs",
                         label=lambda arm, recipe: f"{arm} ({variant(arm, recipe, base)})")


def variant(arm: str, recipe: FixMatchRecipe, base: FixMatchRecipe) -> str:
    """How ``recipe`` differs from ``base`` for ``arm``, in words ("main" when it does not)."""
    ours, theirs = recipe.setting(arm), base.setting(arm)
    words = {"labelled_fraction": lambda v: f"{v:.0%} labels", "threshold": lambda v: f"τ = {v}",
             "mixup": lambda v: "mixup" if v else "no mixup", "grad_accum": lambda v: f"accumulate {recipe.accumulate}",
             "mu": lambda v: f"μ = {v}"}
    diffs = [words.get(key, lambda v, key=key: f"{key} {v}")(value)
             for key, value in ours.items() if theirs.get(key) != value]
    return ", ".join(diffs) or "main"


def _limited(loader: PairedLoader, recipe: FixMatchRecipe) -> Iterable:
    """``loader``, or ``steps_per_epoch`` x ``accumulate`` of its batches per epoch when the recipe fixes it."""
    if recipe.steps_per_epoch is None:
        return loader
    return CycledLoader(loader, recipe.steps_per_epoch * recipe.accumulate)
