"""Chapter 02's experiment (study 000, ROCLING 2021): a pretrained PANN, FixMatch and SpecAugment on UrbanSound8K
with 10 % of the labels (book/protocols.md).

Notebook: 02_fixmatch. What the chapter runs, on the foundation of :mod:`esclib.experiments.base` (experiment
``fixmatch``; every run's identity holds its recipe, the dataset's and checkpoint's digests and its split):

1. :class:`FixMatchExperiment` loads the PANN checkpoint (``Cnn14_16k`` in the paper profile; ``"mini"``, the
   quick profile's model pre-trained on the synthetic mini-AudioSet, :func:`esclib.experiments.pann_transfer.
   resolve_checkpoint`) and caches the dataset's waveforms at the PANN's sample rate -- and, for views that act on
   the spectrogram only (study 000's SpecAugment), the frontend's log-mel of every clip, computed once
   (:attr:`FixMatchExperiment.logmels`): training and evaluation then read crops of those.
2. :meth:`FixMatchExperiment.fold` cuts one official fold (test fold k, validation fold k+1, training the rest)
   and draws the class-balanced labelled fraction from the training folds; the rest of the training folds is the
   unlabelled set (labels hidden). The leak guard checks that no test clip, nor a clip of a test clip's source
   recording, is in either stream.
3. :meth:`FixMatchExperiment.run` trains one arm -- ``supervised-pann`` / ``supervised-scratch`` (the labelled
   part only, from the checkpoint / from random weights) or ``fixmatch-pann`` / ``fixmatch-scratch`` -- with one
   :class:`FixMatchRecipe`, picks its model by the recipe's ``selection`` rule and tests it (accuracy, macro
   one-vs-rest AUC-ROC), and tests the final epoch's weights too (``last_accuracy``, ``last_auc``). The fully
   supervised upper bound is ``supervised-pann`` with ``labelled_fraction=1.0``.
4. :meth:`FixMatchExperiment.frozen_probe` puts that upper bound beside what the pretrained embedding separates
   without fine-tuning (a linear probe of the frozen PANN on every label; :func:`probe_numbers`).

Model selection (issue "methods as published"; Oliver et al. 2018): ``validation-fold`` picks the epoch with the
best accuracy on the labelled validation fold k+1 -- the study's 1:1:8, which at 10 % labels holds more labels than
the training budget; ``budgeted`` holds a class-balanced fifth of the labelled clips out of training for selection
(:func:`esclib.data.splits.selection_sets`); ``last`` keeps the final epoch of the fixed schedule.
:func:`selection_table` shows what the rule changes.

Every arm of a recipe trains for the same number of optimiser steps: an epoch is one pass over the unlabelled
clips in batches of μB (or ``steps_per_epoch`` steps); the supervised arms cycle their labelled loader for as many
steps, so FixMatch differs from its baseline only by the unlabelled term. Both get the weak view (and mixup) on
the labelled batch. FixMatch's pass structure is the recipe's ``passes`` (:data:`esclib.train.fixmatch.
PASS_STRUCTURES`): ``joint`` (Sohn et al.'s reference, the default) or ``separate``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from esclib.data.audio import fix_length
from esclib.data.cache import cached_features, cached_waveforms
from esclib.data.clips import ClipSet
from esclib.data.identity import dataset_identity
from esclib.data.splits import (SELECTIONS, FoldSplit, assert_trainable, check_no_leak, fold_split, labelled_subset,
                                selection_sets)
from esclib.data.torchdata import (EpochSampler, WaveformDataset, clip_loader, clip_targets, collate,
                                   sounding_ends)
from esclib.digest import digest
from esclib.experiments.base import Experiment, Recipe, RunContext, Split, checkpoint_identity
from esclib.metrics import classification_metrics
from esclib.models.transfer import TransferModel
from esclib.results.summary import Results
from esclib.train import EarlyStopping, evaluate, load_checkpoint, predict
from esclib.train.fixmatch import (PASS_STRUCTURES, Classifier, CycledLoader, FixMatchStep, LabelledStep,
                                   PairedLoader, View, epoch_diagnostics)
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


#: the label of the all-label reference that fine-tunes nothing (:meth:`FixMatchExperiment.frozen_probe`)
PROBE_LABEL = "linear probe on the frozen PANN (100% labels)"
#: mixup α of the labelled batch (the PANN recipe; study 000 keeps mixup inside FixMatch)
MIXUP_ALPHA = 1.0
#: seconds per frame of the views' time widths in study 000's Table 1: Cnn14_16k's hop, 160 samples at 16 kHz
STUDY_FRAME_SECONDS = 0.01


@dataclass(frozen=True)
class FixMatchRecipe(Recipe):
    """How an arm is trained (book/protocols.md).

    ``labelled_fraction`` of the training folds is labelled (class-balanced). ``epochs`` under cosine annealing of
    ``steps_per_epoch`` optimiser steps (None: one pass over the unlabelled clips) of ``batch_size`` labelled and
    ``mu`` x ``batch_size`` unlabelled clips; ``accumulate`` > 1 splits each step into that many micro-batches
    whose gradients are summed (study 000's gradient accumulation: same clips per step, smaller batches in the
    network). ``threshold`` τ and ``lambda_u`` λ_u of the FixMatch loss; ``optimizer`` (``adam``, ``adamw``,
    ``sgd``, ``ranger``) with ``lr``; ``mixup`` of the labelled batch with α = ``mixup_alpha``; ``policies``:
    ``rocling`` (study 000's SpecAugment, Table 1) or ``sslh`` (Cancès et al.'s waveform + cut-out views);
    ``crop_seconds`` of audio per clip in training, a random crop within the clip's sound, never in the zero padding
    that brings a short clip to the dataset's length (None: whole clips); validation and test read whole
    clips (the PANN pools over time, so a model trained on crops classifies a clip of any length; an event outside a
    centre crop would otherwise be unseen, as in chapter 01's tests); with ``views_to_crop`` the
    SpecAugment stripes' time widths shrink with the crop (crop / clip length), so that they mask the share of a crop
    that the study's stripes mask of a whole clip. ``passes``: FixMatch's pass
    structure (``joint``: Sohn et al.'s reference; ``separate``); ``selection``: how the tested model is picked
    (:data:`esclib.data.splits.SELECTIONS`).
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
    views_to_crop: bool
    passes: str
    selection: str

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
        if self.passes not in PASS_STRUCTURES:
            problems.append(f"passes must be one of {PASS_STRUCTURES}, got {self.passes!r}")
        if self.selection not in SELECTIONS:
            problems.append(f"selection must be one of {list(SELECTIONS)}, got {self.selection!r}")
        if problems:
            raise ValueError("FixMatchRecipe: " + "; ".join(problems))

    @property
    def micro_batch(self) -> int:
        """Labelled clips per forward pass (``batch_size / accumulate``)."""
        return self.batch_size // self.accumulate

    def setting(self, arm: str) -> dict[str, Any]:
        """The setting keys of :mod:`esclib.results.studies` (plus ``mu``, ``policies``, ``passes`` and
        ``selection``) that tell this recipe's runs of ``arm`` apart; the supervised arms do not depend on τ, μ, the
        strong view or the pass structure."""
        setting = {"labelled_fraction": self.labelled_fraction, "batch_size": self.batch_size,
                   "optimizer": self.optimizer, "mixup": self.mixup, "grad_accum": self.accumulate > 1,
                   "policies": self.policies, "selection": self.selection}
        if arm.startswith("fixmatch"):
            setting |= {"threshold": self.threshold, "mu": self.mu, "passes": self.passes}
        return setting


def chapter_plan(recipe: FixMatchRecipe, *, arms: Sequence[str] = ARMS, upper_bound: bool = True,
                 compare_passes: bool = False, selections: Sequence[str] = (), ablations: Sequence[str] = (),
                 ablation_fraction: float | None = None) -> list[tuple[str, FixMatchRecipe]]:
    """The (arm, recipe) pairs of the chapter: ``arms`` with ``recipe``; the upper bound (``supervised-pann`` on
    every label); with ``compare_passes``, ``fixmatch-pann`` with the other pass structure; for each rule of
    ``selections``, ``supervised-pann`` and ``fixmatch-pann`` selected by that rule (the selection table); and each
    ablation of :data:`ABLATIONS` on ``fixmatch-pann`` with the labelled fraction ``ablation_fraction`` (default:
    the recipe's; study 000's Tables 2-4 used, we infer, 1 %), beside ``supervised-pann`` at that fraction.
    Duplicates are dropped, order kept."""
    for arm in arms:
        check_arm(arm)
    unknown = [a for a in ablations if a not in ABLATIONS]
    if unknown:
        raise ValueError(f"unknown ablation(s) {unknown}; expected some of {list(ABLATIONS)}")
    unknown = [s for s in selections if s not in SELECTIONS]
    if unknown:
        raise ValueError(f"unknown selection rule(s) {unknown}; expected some of {list(SELECTIONS)}")
    plan = [(arm, recipe) for arm in arms]
    if upper_bound:
        plan.append(("supervised-pann", replace(recipe, labelled_fraction=1.0)))
    if compare_passes:
        plan.append(("fixmatch-pann", replace(recipe, passes=other_passes(recipe.passes))))
    plan += [(arm, replace(recipe, selection=rule)) for rule in selections
             for arm in ("supervised-pann", "fixmatch-pann")]
    if ablations:
        base = replace(recipe, labelled_fraction=ablation_fraction or recipe.labelled_fraction)
        plan.append(("supervised-pann", base))
        for name in ablations:
            field_name, values = ABLATIONS[name]
            plan += [("fixmatch-pann", replace(base, **{field_name: value})) for value in values]
    return list(dict.fromkeys(plan))


def other_passes(passes: str) -> str:
    """The pass structure that is not ``passes`` (``joint`` <-> ``separate``)."""
    if passes not in PASS_STRUCTURES:
        raise ValueError(f"unknown pass structure {passes!r}; expected one of {PASS_STRUCTURES}")
    return next(p for p in PASS_STRUCTURES if p != passes)


def check_arm(arm: str) -> str:
    """``arm`` if it is one of :data:`ARMS`, else a ValueError listing them."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; expected one of {list(ARMS)}")
    return arm


def policy_views(policies: str, time_scale: float = 1.0) -> tuple[View, View]:
    """The weak and the strong :class:`~esclib.train.fixmatch.View` of ``policies`` (``rocling`` / ``sslh``): each
    named policy's waveform part acts before the PANN's frontend, its spectrogram part on the log-mel after ``bn0``
    (where the PANN code applies SpecAugment), its SpecAugment time widths times ``time_scale``
    (:func:`esclib.augment.policies.scale_time`). SSLH's cut-out fills with -80, a dB value in SSLH; after ``bn0`` it
    is far below the normalised range, i.e. a strong occlusion."""
    from esclib.augment.policies import get_policy, scale_time

    if policies not in POLICIES:
        raise ValueError(f"unknown policies {policies!r}; expected one of {POLICIES}")
    views = []
    for strength in ("weak", "strong"):
        policy = scale_time(get_policy(f"{policies}_{strength}"), time_scale)
        views.append(View(wave=policy.waveform if len(policy.waveform) else None,
                          spec=policy.spectrogram if len(policy.spectrogram) else None))
    return views[0], views[1]


def input_kind(policies: str) -> str:
    """What the runs of ``policies`` read (:data:`esclib.train.fixmatch.INPUTS`): the cached log-mels when neither
    view touches the waveform (``rocling``), else waveforms (``sslh``)."""
    weak, strong = policy_views(policies)
    return "logmel" if weak.wave is None and strong.wave is None else "waveform"


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
    #: 2: the quick CnnMini16k runs channels-last (the same method, other floating-point sums); 3: validation and test
    #: read whole clips (were the training crop's length, centred); 4: training crops lie within a clip's sound (were
    #: drawn from the whole zero-padded clip: a short clip's crop often held padding only)
    version = 4

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
        self.pretrained = load_pann(self.checkpoint, arch, progress=self.progress)
        self.arch = type(self.pretrained).__name__
        self.sample_rate = self.pretrained.frontend.sample_rate
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
        """The run's clips: the labelled training clips, the unlabelled ones, the clips its model is selected on
        (``val``: the validation fold, or a class-balanced fifth of the labelled clips under ``budgeted``; absent
        under ``last``) and the test fold."""
        data = self.fold(fold, recipe.labelled_fraction)
        labelled, val = selection_sets(recipe.selection, data.labelled, data.split.val, seed=self.seed)
        parts = {"labelled": labelled, "unlabelled": data.unlabelled, **({"val": val} if val is not None else {}),
                 "test": data.split.test}
        return Split(parts, "official", int(fold))

    @property
    def clip_samples(self) -> int:
        """Samples of a whole clip at the PANN's rate (what the caches read)."""
        return round(self.clips.clip_seconds * self.sample_rate)

    def frames(self, seconds: float | None = None) -> int:
        """Log-mel frames of ``seconds`` of audio (default: a whole clip): the frontend's centred STFT gives
        ``samples // hop + 1``."""
        samples = round((self.clips.clip_seconds if seconds is None else seconds) * self.sample_rate)
        return samples // self.pretrained.frontend.hop_size + 1

    @torch.no_grad()
    def logmel(self, wave: torch.Tensor) -> torch.Tensor:
        """The pretrained PANN's log-mel (dB, before ``bn0``) of waveforms ``(batch, samples)``: ``(batch,
        mel_bins, frames)`` on the CPU, time last (the STFT and mel filters have no train mode)."""
        pann = self.pretrained
        wave = wave.to(pann.logmel_extractor.melW.device)
        return pann.logmel_extractor(pann.spectrogram_extractor(wave))[:, 0].transpose(1, 2).cpu()

    @cached_property
    def logmels(self) -> np.ndarray:
        """:meth:`logmel` of every whole clip, ``(clips, mel_bins, frames)`` float32 (time last, so that crops are
        cut like waveform crops): a read-only memmap computed once and cached on disk, keyed by the dataset's files,
        the rate, the clip length and the frontend's settings and filters."""
        frontend = self.pretrained
        filters = {name: digest(value.cpu().numpy().round(7)) for name, value in frontend.state_dict().items()
                   if name.startswith(("spectrogram_extractor", "logmel_extractor"))}
        config = {"feature": "PANN frontend log-mel, dB before bn0", "frontend": repr(frontend.frontend),
                  "filters": filters}
        return cached_features(self.clips, self.logmel, sample_rate=self.sample_rate,
                               samples=self.clip_samples,
                               shape=(frontend.frontend.mel_bins, self.frames()), config=config,
                               name="pann-logmels", progress=self.progress)

    @cached_property
    def sounding_frames(self) -> np.ndarray:
        """Per clip, one past its last log-mel frame that is not the frontend's log-mel of digital silence: where
        training crops end at the latest (a short clip's zero padding is no sound to learn from)."""
        silence = float(self.logmel(torch.zeros(1, self.pretrained.frontend.window_size))[0, 0, 0])
        return sounding_ends(self.logmels, silence)

    def padding_only_share(self, crop_seconds: float) -> float:
        """The share of crops of ``crop_seconds`` drawn uniformly anywhere in the zero-padded clips (over all clips)
        that would hold no sound: a crop starting at or after a clip's :attr:`sounding_frames`. Training draws its
        crops within the sound instead; this is what that avoids."""
        starts = max(1, self.frames() - self.frames(crop_seconds) + 1)
        return float(np.mean(np.clip(starts - self.sounding_frames, 0, None) / starts))

    def rows(self, part: ClipSet) -> np.ndarray:
        """Row of each clip of ``part`` in :attr:`clips` (and so in :attr:`logmels`)."""
        rows = pd.Index(self.clips.paths).get_indexer(part.paths)
        if (rows < 0).any():
            raise KeyError(f"{int((rows < 0).sum())} clips of {part.name} are not in the experiment's clip set")
        return rows

    def _loader(self, part: ClipSet, *, inputs: str, train: bool, batch_size: int,
                crop_seconds: float | None = None, seed: int = 0) -> torch.utils.data.DataLoader:
        """Batches ``(input, target, index)`` of ``part``: waveform crops (:func:`esclib.data.torchdata.clip_loader`)
        or crops of the cached log-mels; random crops, reshuffled each epoch, whole batches only when ``train``."""
        if inputs == "waveform":
            return clip_loader(part, self.sample_rate, train=train, batch_size=batch_size,
                               crop_seconds=crop_seconds, seed=seed, pool=self.clips, within_sound=True,
                               progress=False)
        if train:
            assert_trainable(part)
        rows = self.rows(part)
        dataset = WaveformDataset(self.logmels, clip_targets(part), crop_samples=self.frames(crop_seconds),
                                  train=train, seed=seed, rows=rows,
                                  ends=self.sounding_frames[rows] if train and crop_seconds else None)
        return torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate, drop_last=train,
                                           sampler=EpochSampler(len(dataset), shuffle=train, seed=seed))

    def train_loader(self, arm: str, split: Split, recipe: FixMatchRecipe, seed: int = 0) -> Iterable:
        """What ``fit`` iterates for ``arm``: (labelled, unlabelled) pairs for FixMatch, labelled batches cycled
        for as many steps otherwise (see the module docstring)."""
        micro, inputs = recipe.micro_batch, input_kind(recipe.policies)
        labelled = self._loader(split.labelled, inputs=inputs, train=True,
                                batch_size=2 * micro if recipe.mixup else micro, crop_seconds=recipe.crop_seconds,
                                seed=seed)
        unlabelled = (self._loader(split.unlabelled, inputs=inputs, train=True, batch_size=recipe.mu * micro,
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

    def eval_loader(self, part: ClipSet, recipe: FixMatchRecipe) -> torch.utils.data.DataLoader:
        """Batches of ``part``'s whole clips in order, for validation and test, whatever ``recipe.crop_seconds``
        training reads."""
        return self._loader(part, inputs=input_kind(recipe.policies), train=False, batch_size=self.eval_batch_size)

    # ------------------------------------------------------------------------------------------------ runs
    def model(self, arm: str) -> TransferModel:
        """The arm's classifier: the checkpoint's PANN with a new linear head, fine-tuned whole (``-pann``) or
        re-initialised (``-scratch``); the PANN's own SpecAugment off (the views are the augmentation)."""
        from esclib.models.panns import load_pann

        strategy = "scratch" if self.check_arm(arm).endswith("scratch") else "fine-tune"
        model = TransferModel(load_pann(self.checkpoint, self.arch, progress=False), self.clips.num_classes, strategy)
        model.base.spec_augment = False
        return model

    def view_time_scale(self, recipe: FixMatchRecipe) -> float:
        """The factor on the views' SpecAugment time widths. Study 000 gives them in frames of ``Cnn14_16k``'s
        10-ms hop (:data:`STUDY_FRAME_SECONDS`): a frontend with another hop gets the same widths in seconds (the
        quick mini's 20-ms hop: half the frames). Under ``views_to_crop`` with crops, times a crop's frames over
        a whole clip's."""
        scale = STUDY_FRAME_SECONDS * self.sample_rate / self.pretrained.frontend.hop_size
        if recipe.views_to_crop and recipe.crop_seconds:
            scale *= min(1.0, self.frames(recipe.crop_seconds) / self.frames())
        return scale

    def step(self, arm: str, split: Split, recipe: FixMatchRecipe) -> LabelledStep:
        """``fit``'s step for ``arm`` (FixMatch with the hidden labels for its diagnostics, or the labelled half)."""
        weak, strong = policy_views(recipe.policies, self.view_time_scale(recipe))
        alpha, inputs = MIXUP_ALPHA if recipe.mixup else None, input_kind(recipe.policies)
        if arm.startswith("fixmatch"):
            return FixMatchStep(weak, strong, self.clips.num_classes, threshold=recipe.threshold,
                                lambda_u=recipe.lambda_u, mixup_alpha=alpha, passes=recipe.passes, inputs=inputs,
                                hidden_targets=split.unlabelled.table["hidden_target"].to_numpy())
        return LabelledStep(weak, self.clips.num_classes, mixup_alpha=alpha, inputs=inputs)

    @torch.no_grad()
    def views_of(self, wave: np.ndarray, recipe: FixMatchRecipe, seed: int = 0) -> dict[str, np.ndarray]:
        """The pretrained PANN's log-mel (after ``bn0``, eval statistics) of what training sees of one waveform
        (its centre crop of ``recipe.crop_seconds``): as it is, and through the weak and the strong view of
        ``recipe`` (:meth:`view_time_scale` included); each ``(frames, mel_bins)``."""
        from esclib.models.panns import load_pann

        base = load_pann(self.checkpoint, self.arch, progress=False).eval()
        weak, strong = policy_views(recipe.policies, self.view_time_scale(recipe))
        torch.manual_seed(seed)
        wave = np.asarray(wave, dtype=np.float32)
        if recipe.crop_seconds:
            wave = fix_length(wave, round(recipe.crop_seconds * self.sample_rate))
        x = torch.tensor(wave)[None]
        shown = {"original": base.logmel(x), "weak": weak.of(base.logmel, x), "strong": strong.of(base.logmel, x)}
        return {name: value[0, 0].numpy() for name, value in shown.items()}

    def train(self, ctx: RunContext, arm: str, recipe: FixMatchRecipe, split: Split) -> dict[str, Any]:
        model = self.model(arm)
        optimizer = make_optimizer(recipe.optimizer, model.parameters(), recipe.lr)
        inputs = input_kind(recipe.policies)
        val = split.parts.get("val")
        val_loader = None if val is None else self.eval_loader(val, recipe)
        history = ctx.fit(model, self.train_loader(arm, split, recipe, seed=ctx.seed), epochs=recipe.epochs,
                          optimizer=optimizer, step_fn=self.step(arm, split, recipe), val_loader=val_loader,
                          val_fn=lambda net, loader, device: evaluate(Classifier(net, inputs), loader, device),
                          scheduler=cosine_schedule(optimizer, recipe.epochs), accumulate=recipe.accumulate,
                          early_stopping=None if val is None else EarlyStopping(recipe.epochs, "val_acc", "max"))
        for record in ctx.histories[-1].epochs:
            if "mask_rate" in record:
                record.update(epoch_diagnostics(record))
        test_loader = self.eval_loader(split.test, recipe)
        selected = self.test_metrics(Classifier(model, inputs), test_loader)
        if val is None:
            chosen, last = {"best_epoch": recipe.epochs}, selected
        else:
            best = history.best("val_acc", "max")
            chosen = {"val_acc": best["val_acc"], "best_epoch": int(best["epoch"])}
            model.load_state_dict(load_checkpoint(ctx.checkpoint)["model"])  # the final epoch's weights
            last = self.test_metrics(Classifier(model, inputs), test_loader)
        final = ctx.histories[-1].epochs[-1]
        diagnostics = {f"final_{k}": final[k] for k in ("mask_rate", "pseudo_acc", "pseudo_acc_masked") if k in final}
        return {**selected, **chosen, "last_accuracy": last["accuracy"], "last_auc": last["auc"], **diagnostics,
                "n_labelled": len(split.labelled), "n_val": 0 if val is None else len(val),
                "n_unlabelled": len(split.unlabelled), "n_test": len(split.test)}

    def test_metrics(self, model: torch.nn.Module, loader: Iterable) -> dict[str, Any]:
        """Accuracy, macro one-vs-rest AUC-ROC, macro-F1 and the confusion matrix of ``model`` on ``loader``."""
        scores, targets = predict(model, loader, self.device)
        metrics = classification_metrics(targets, scores, self.clips.num_classes)
        return {key: metrics[key] for key in ("accuracy", "auc", "macro_f1", "confusion")}

    # ------------------------------------------------------------------------------------------------ reference
    @cached_property
    def embeddings(self) -> np.ndarray:
        """The pretrained PANN's embedding of every whole clip, ``(clips, embedding_size)``, in eval mode, cached on
        disk as chapter 01's (:func:`esclib.experiments.pann_transfer.pann_embeddings`)."""
        from esclib.experiments.pann_transfer import pann_embeddings

        return pann_embeddings(self.pretrained, self.checkpoint, self.clips, samples=self.clip_samples,
                               device=self.device, progress=self.progress)

    def frozen_probe(self, folds: Sequence[int]) -> Results:
        """Per test fold, what the pretrained embedding separates without any fine-tuning: a linear probe
        (:func:`esclib.train.probe.linear_probe`) of :attr:`embeddings`, trained on every clip of the training folds
        (the all-label arm's clips), its epoch picked on the validation fold, tested on the test fold. Result-like
        dicts labelled :data:`PROBE_LABEL`, to pair with the runs (:meth:`Results.paired`); seconds to compute on
        the cached embeddings, so they are not stored.

        Notebook: 02_fixmatch.
        """
        from esclib.train.probe import linear_probe

        rows = []
        for fold in folds:
            split = self.fold(fold, 1.0).split
            x = {name: self.embeddings[self.rows(part)] for name, part in
                 (("train", split.train), ("val", split.val), ("test", split.test))}
            probe = linear_probe(x["train"], clip_targets(split.train), x["test"], clip_targets(split.test),
                                 val=(x["val"], clip_targets(split.val)), n_classes=self.clips.num_classes,
                                 seed=self.seed, device=self.device)
            rows.append({"arm": "probe-pann", "label": PROBE_LABEL,
                         "setting": {"dataset": self.clips.name, "fold": int(fold), "labelled_fraction": 1.0},
                         "metrics": {key: probe.metrics[key] for key in ("accuracy", "auc", "macro_f1")}
                         | {"best_epoch": probe.best_epoch, "n_labelled": len(split.train), "n_test": len(split.test)}})
        return Results(rows)

    def run_plan(self, plan: Sequence[tuple[str, FixMatchRecipe]], folds: Sequence[int]) -> Results:
        """Every (fold, arm, recipe) run of ``plan`` (from :func:`chapter_plan`; its first recipe is the main one,
        the others are labelled by how they differ from it, in ``result["label"]``); finished runs are reused."""
        if not plan:
            raise ValueError("run_plan: the plan is empty (no arm, no upper bound, no ablation)")
        base = plan[0][1]
        cells = [(arm, recipe, self.split(fold, recipe)) for fold in folds for arm, recipe in plan]
        return self.grid(cells, desc="fixmatch runs",
                         label=lambda arm, recipe: label_of(arm, variant(arm, recipe, base)))


def variant(arm: str, recipe: FixMatchRecipe, base: FixMatchRecipe) -> str:
    """How ``recipe`` differs from ``base`` for ``arm``, in words ("main" when it does not)."""
    ours, theirs = recipe.setting(arm), base.setting(arm)
    words = {"labelled_fraction": lambda v: f"{v:.0%} labels", "threshold": lambda v: f"τ = {v}",
             "mixup": lambda v: "mixup" if v else "no mixup", "grad_accum": lambda v: f"accumulate {recipe.accumulate}",
             "mu": lambda v: f"μ = {v}", "passes": lambda v: f"{v} passes", "selection": lambda v: f"selection {v}"}
    diffs = [words.get(key, lambda v, key=key: f"{key} {v}")(value)
             for key, value in ours.items() if theirs.get(key) != value]
    return ", ".join(diffs) or "main"


def _limited(loader: PairedLoader, recipe: FixMatchRecipe) -> Iterable:
    """``loader``, or ``steps_per_epoch`` x ``accumulate`` of its batches per epoch when the recipe fixes it."""
    if recipe.steps_per_epoch is None:
        return loader
    return CycledLoader(loader, recipe.steps_per_epoch * recipe.accumulate)


# ------------------------------------------------------------------------------------------ tables and figures
def label_of(arm: str, what: str = "main") -> str:
    """The run label :meth:`FixMatchExperiment.run_plan` gives ``arm`` in variant ``what`` (``"main"``,
    ``"100% labels"``, ``"separate passes"``, ``"selection budgeted"`` ...).

    Notebook: 02_fixmatch.
    """
    return f"{arm} ({what})"


def run_table(results: Results) -> pd.DataFrame:
    """One row per run: label, test fold, labels used for training and for selection, test accuracy and AUC of the
    selected and of the final epoch, the selected epoch, and FixMatch's final mask rate and pseudo-label accuracy.

    Notebook: 02_fixmatch.
    """
    frame = results.frame()
    columns = ["label", "fold", "n_labelled", "n_val", "accuracy", "auc", "last_accuracy", "best_epoch",
               "final_mask_rate", "final_pseudo_acc_masked"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    return frame.reindex(columns=columns).rename(columns={
        "n_labelled": "training labels", "n_val": "selection labels", "last_accuracy": "final-epoch accuracy",
        "best_epoch": "selected epoch", "final_mask_rate": "final mask rate",
        "final_pseudo_acc_masked": "final confident pseudo-label accuracy"})


def paired_table(results: Results, pairs: Sequence[tuple[str, str]], metric: str = "accuracy") -> pd.DataFrame:
    """One row per comparison ``(a, b)`` of run labels present in ``results``: ``b - a`` per fold, its mean and
    bootstrap interval (:meth:`esclib.results.summary.Results.paired`); pairs with a label absent are skipped.

    Notebook: 02_fixmatch.
    """
    present = {r.get("label", r["arm"]) for r in results}
    rows = [{("folds the second arm is higher" if key.startswith("folds ") and key.endswith(" higher") else key): value
             for key, value in results.paired(a, b, metric).row().items()}
            for a, b in pairs if a in present and b in present]
    return pd.DataFrame(rows)


def curve_frame(results: Results) -> pd.DataFrame:
    """Per-epoch values of every run with its label, fold, pass structure, selection rule and labelled fraction
    (for the learning-curve and diagnostics figures).

    Notebook: 02_fixmatch.
    """
    rows = [{"label": r.get("label", r["arm"]), "arm": r["arm"], "fold": r["setting"].get("fold"),
             "passes": r["setting"].get("passes", "—"), "selection": r["setting"].get("selection"),
             "labelled_fraction": r["setting"].get("labelled_fraction"), **c}
            for r in results for c in r.get("curves", [])]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["label", "arm", "fold", "passes", "epoch"])


def pass_structure_curves(results: Results, recipe: FixMatchRecipe) -> pd.DataFrame:
    """The curves of the ``fixmatch-pann`` runs of ``recipe`` under either pass structure (rows of
    :func:`curve_frame`; empty when there are none).

    Notebook: 02_fixmatch.
    """
    curves = curve_frame(results)
    if curves.empty:
        return curves
    keep = ((curves["arm"] == "fixmatch-pann") & (curves["selection"] == recipe.selection)
            & (curves["labelled_fraction"] == recipe.labelled_fraction)
            & curves["label"].isin([label_of("fixmatch-pann"),
                                    label_of("fixmatch-pann", f"{other_passes(recipe.passes)} passes")]))
    return curves[keep].reset_index(drop=True)


def plot_accuracy(results: Results, labels: Sequence[str] | None = None) -> Any:
    """Test accuracy per run label: bars for the mean over folds, one dot per fold joined across labels by fold
    (the pairing the paired differences use). Returns the figure (None when there is no run).

    Notebook: 02_fixmatch.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    frame = results.frame()
    if frame.empty:
        return None
    order = [label for label in (labels or dict.fromkeys(frame["label"])) if label in set(frame["label"])]
    frame = frame[frame["label"].isin(order)]
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(order) + 1.2), layout="constrained")
    sns.barplot(data=frame, y="label", x="accuracy", order=order, errorbar=None, color="#c6dbef", ax=ax)
    sns.lineplot(data=frame, y="label", x="accuracy", units="fold", estimator=None, hue="fold", sort=False,
                 orient="y", palette="dark:k", marker="o", linewidth=0.6, ax=ax)
    ax.set(xlabel="test accuracy", ylabel="", xlim=(0, 1), title="Test accuracy per arm (bar: mean over folds)")
    ax.legend(title="test fold", loc="lower right", fontsize="small")
    return fig


def plot_paired(results: Results, pairs: Sequence[tuple[str, str]], metric: str = "accuracy") -> Any:
    """The per-fold differences ``b - a`` of each comparison (dots), their mean (bar) and 95 % bootstrap interval
    (line), against zero. Returns the figure (None when no comparison has runs).

    Notebook: 02_fixmatch.
    """
    import matplotlib.pyplot as plt

    present = {r.get("label", r["arm"]) for r in results}
    diffs = [results.paired(a, b, metric) for a, b in pairs if a in present and b in present]
    if not diffs:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 0.7 * len(diffs) + 1.2), layout="constrained")
    for row, diff in enumerate(diffs):
        ax.plot([diff.low, diff.high], [row, row], color="C0", linewidth=3, alpha=0.6)
        ax.plot(diff.mean, row, "|", color="C0", markersize=18, markeredgewidth=2)
        ax.plot(diff.per_fold["difference"], [row] * len(diff.per_fold), "o", color="k", markersize=4)
    ax.axvline(0, color="grey", linewidth=1)
    ax.set_yticks(range(len(diffs)), [f"{d.b}\n− {d.a}" for d in diffs], fontsize="small")
    ax.invert_yaxis()
    ax.set(xlabel=f"difference in test {metric} (dots: folds; bar: mean; line: 95 % bootstrap interval)",
           title="Paired differences, fold by fold")
    return fig


def _line_panels(curves: pd.DataFrame, panels: Sequence[tuple[str, str]], hue: str, hue_order: Sequence[str],
                 legend_title: str, *, ylim: tuple[float, float] | None = None) -> Any:
    """One panel per ``(column, title)`` of ``panels``: the column per epoch, one line per ``hue`` value (mean ± sd
    over folds), with one legend under the panels."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 3.4), layout="constrained", squeeze=False)
    for ax, (key, title) in zip(axes[0], panels):
        sns.lineplot(data=curves, x="epoch", y=key, hue=hue, hue_order=hue_order, errorbar="sd", marker="o", ax=ax)
        ax.set(title=title, ylabel="", **({"ylim": ylim} if ylim else {}))
        handles, labels = ax.get_legend_handles_labels()
        ax.get_legend().remove()
    fig.legend(handles, labels, title=legend_title, loc="outside lower center", ncols=len(labels), fontsize="small")
    return fig


def plot_pass_structures(curves: pd.DataFrame, threshold: float) -> Any:
    """Mask rate, accuracy of the confident pseudo-labels and selection accuracy per epoch of ``fixmatch-pann``
    under each pass structure (:func:`pass_structure_curves`; mean ± sd over folds). Returns the figure (None when
    ``curves`` is empty).

    Notebook: 02_fixmatch.
    """
    if curves.empty:
        return None
    panels = [(key, title) for key, title in (("mask_rate", f"mask rate (confidence ≥ τ = {threshold})"),
                                              ("pseudo_acc_masked", "accuracy of the confident pseudo-labels"),
                                              ("val_acc", "selection accuracy")) if key in curves]
    fig = _line_panels(curves, panels, "passes", [p for p in PASS_STRUCTURES if p in set(curves["passes"])],
                       "pass structure", ylim=(0, 1.02))
    fig.suptitle("fixmatch-pann under each pass structure run (mean ± sd over folds)")
    return fig


def plot_learning_curves(curves: pd.DataFrame, labels: Sequence[str]) -> Any:
    """Selection accuracy and the loss terms per epoch of the runs labelled ``labels`` (mean ± sd over folds).
    Returns the figure (None when none of them has curves).

    Notebook: 02_fixmatch.
    """
    shown = curves[curves["label"].isin(labels)] if not curves.empty else curves
    if shown.empty:
        return None
    shown = shown.assign(loss_s=shown["loss_s"].fillna(shown["loss"]) if "loss_s" in shown else shown["loss"])
    panels = [(k, t) for k, t in (("val_acc", "selection accuracy"), ("loss_s", "supervised loss ℓ_s"),
                                  ("loss_u", "unlabelled loss ℓ_u")) if k in shown and shown[k].notna().any()]
    return _line_panels(shown, panels, "label", [l for l in labels if l in set(shown["label"])], "run")


def plot_pseudo_label_shares(curves: pd.DataFrame, classes: Sequence[str]) -> Any:
    """Share of the unlabelled clips confidently pseudo-labelled as each class (mean over epochs and folds), per
    pass structure. Returns the figure (None when ``curves`` is empty).

    Notebook: 02_fixmatch.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    if curves.empty:
        return None
    shares = curves.melt(id_vars=["passes", "fold", "epoch"], var_name="class", value_name="share",
                         value_vars=[f"pseudo_share_{c}" for c in range(len(classes))])
    shares["class"] = shares["class"].str.removeprefix("pseudo_share_").astype(int).map(dict(enumerate(classes)))
    fig, ax = plt.subplots(figsize=(7.5, 0.3 * len(classes) + 1.5), layout="constrained")
    sns.barplot(data=shares, y="class", x="share", hue="passes", hue_order=list(PASS_STRUCTURES), errorbar=None,
                ax=ax)
    ax.set(title="Confident pseudo-labels per class (mean over epochs and folds)", ylabel="",
           xlabel="share of the unlabelled clips")
    ax.legend(title="pass structure", fontsize="small")
    return fig


def plot_views(shown: dict[str, np.ndarray], policies: str) -> Any:
    """The log-mel after ``bn0`` of one clip as it is and through the weak and the strong view
    (:meth:`FixMatchExperiment.views_of`), on one colour scale; zeroed cells show the stripes.

    Notebook: 02_fixmatch.
    """
    import matplotlib.pyplot as plt

    values = np.concatenate([v.ravel() for v in shown.values()])
    low, high = np.percentile(values, [1, 99])
    fig, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 3), sharey=True, layout="constrained")
    for ax, (name, logmel) in zip(np.atleast_1d(axes), shown.items()):
        image = ax.imshow(logmel.T, origin="lower", aspect="auto", cmap="magma", vmin=low, vmax=high)
        ax.set(title=f"{name} view", xlabel="frame (10 ms)")
    np.atleast_1d(axes)[0].set_ylabel("mel bin")
    fig.colorbar(image, ax=axes, label="normalised log-mel (after bn0)")
    fig.suptitle(f"One clip through the {policies!r} views")
    return fig


def selection_table(results: Results, arms: Sequence[str] = ("supervised-pann", "fixmatch-pann")) -> pd.DataFrame:
    """What the selection rule changes (Oliver et al. 2018): for each arm of ``arms``, its main runs and its runs
    under another selection rule (labels ``"<arm> (main)"``, ``"<arm> (selection <rule>)"``), the labels spent on
    training and on selection, and the test accuracy (mean ± sd over folds) of the selected epoch and of the final
    epoch of the same runs (the ``last`` rule applied to them).

    Notebook: 02_fixmatch.
    """
    from esclib.results.summary import mean_std

    frame = results.frame()
    if frame.empty:
        return pd.DataFrame()
    wanted = {label_of(arm, what): arm for arm in arms
              for what in ["main", *(f"selection {rule}" for rule in SELECTIONS)]}
    frame = frame[frame["label"].isin(wanted)]
    rows = []
    for (label, rule), group in frame.groupby(["label", "selection"], sort=False):
        for epoch, column in (("selected", "accuracy"), ("final", "last_accuracy")):
            if rule == "last" and epoch == "final":
                continue
            tested = ("final (no selection)" if rule == "last" or epoch == "final" else
                      "best on the validation fold" if rule == "validation-fold" else "best on the held-out labels")
            rows.append({"arm": wanted[label], "selection rule of the runs": rule, "epoch tested": tested,
                         "training labels": round(group["n_labelled"].mean()),
                         "selection labels": round(group["n_val"].mean()) if epoch == "selected" else 0,
                         "test accuracy": mean_std(group[column].mean(), group[column].std()),
                         "folds": len(group)})
    return pd.DataFrame(rows)


def protocol_table(recipe: FixMatchRecipe, experiment: FixMatchExperiment, folds: Sequence[int]) -> pd.DataFrame:
    """Study 000's protocol (book/protocols.md: as stated, or inferred where its text is lost) beside this run's, one
    row per aspect, so that every published number is read with the differences in view.

    Notebook: 02_fixmatch.
    """
    profile, clips = experiment.profile, experiment.clips
    steps = (f"{recipe.steps_per_epoch} steps" if recipe.steps_per_epoch else "one pass over the unlabelled clips")
    frontend = experiment.pretrained.frontend
    rows = {
        "data": ("UrbanSound8K, 10 classes, clips of at most 4 s",
                 f"{clips.name}, {clips.num_classes} classes, {len(clips)} clips"
                 f"{' (the synthetic stand-in of the quick profile)' if profile == 'quick' else ''}"),
        "folds": ("10-fold CV on the official folds; test : validation : training = 1 : 1 : 8 (inferred)",
                  f"official folds, test folds {', '.join(map(str, folds))} of {clips.n_folds}; validation fold "
                  "k+1; training the rest"),
        "labels": ("10 % of the training folds (about 870 clips; inferred); 1 % in Tables 2-4 (inferred); 100 %",
                   f"{recipe.labelled_fraction * 100:g} % of the training folds, class-balanced; 100 % (upper "
                   "bound)"),
        "model": ("CNN14-16k pretrained on AudioSet, fine-tuned whole with a new head",
                  f"{experiment.arch} ({experiment.source}), fine-tuned whole with a new head"),
        "input": ("16 kHz, 64-bin log-mel on a 10-ms hop, whole clips",
                  f"{experiment.sample_rate / 1000:g} kHz, {frontend.mel_bins}-bin log-mel on a "
                  f"{1000 * frontend.hop_size / experiment.sample_rate:g}-ms hop, {recipe.crop_seconds or 'whole'}"
                  f"{' s random crops in training, whole clips in evaluation' if recipe.crop_seconds else ' clips'}"),
        "views": ("SpecAugment, Table 1: weak 1 x 8 bins + 1 x 32 frames; strong 2 x 35 bins + 2 x 64 frames",
                  f"policies {recipe.policies!r}{_view_widths(experiment, recipe)}"),
        "FixMatch": ("μ = 7, τ = 0.95 (0.75 better, Table 3), λ_u not stated ('0.5' near eqs. 4-5)",
                     f"μ = {recipe.mu}, τ = {recipe.threshold}, λ_u = {recipe.lambda_u}, {recipe.passes} passes"),
        "optimisation": ("Adam, lr 5e-4, batch 32 (16 + gradient accumulation for FixMatch), cosine over 35 epochs",
                         f"{recipe.optimizer}, lr {recipe.lr:g}, batch {recipe.batch_size}, cosine over "
                         f"{recipe.epochs} epochs of {steps}"),
        "mixup": ("on, inside FixMatch (a 'w/o mixup' ablation)", "on the labelled batch" if recipe.mixup else "off"),
        "model selection": ("not stated (a validation fold in the 1:1:8 split)", recipe.selection),
        "metrics": ("accuracy, AUC-ROC", "accuracy, macro one-vs-rest AUC-ROC"),
    }
    return pd.DataFrame(rows, index=["study 000 (ROCLING 2021)", "this run"]).T


def _view_widths(experiment: FixMatchExperiment, recipe: FixMatchRecipe) -> str:
    """The widths of the views' SpecAugment stripes as run, e.g. ``"; weak 1 x 8 bins + 1 x 8 frames; ..."``."""
    from esclib.augment.specaugment import SpecAugment

    parts, scale = [], experiment.view_time_scale(recipe)
    for strength, view in zip(("weak", "strong"), policy_views(recipe.policies, scale)):
        for op in view.spec or ():
            if isinstance(op, SpecAugment):
                parts.append(f"{strength} {op.freq_stripes_num} x {op.freq_drop_width} bins + "
                             f"{op.time_stripes_num} x {op.time_drop_width} frames")
    scaled = " (time widths scaled to the frame rate and the crop)" if scale != 1 else ""
    return f"; {'; '.join(parts)}{scaled}" if parts else ""


def _metric(results: Results, label: str, metric: str = "accuracy") -> pd.Series:
    """``metric`` of the runs labelled ``label``, indexed by test fold (empty when there is none)."""
    runs = [r for r in results if r.get("label", r["arm"]) == label and metric in r["metrics"]]
    return pd.Series({r["setting"]["fold"]: r["metrics"][metric] for r in runs}, dtype=float)


def diagnosis_table(results: Results, recipe: FixMatchRecipe) -> pd.DataFrame:
    """Per test fold (and their mean), what decides whether FixMatch can help: the supervised accuracy with the
    labelled fraction and with every label (the room the unlabelled clips could fill), FixMatch's gain, how much of
    the unlabelled pool passed the threshold at the end (mask rate), how often those confident pseudo-labels were
    right, how often the pseudo-labels of all clips were right, and how many strong views of each unlabelled clip
    the run trained on.

    Notebook: 02_fixmatch.
    """
    main, fixmatch = label_of("supervised-pann"), label_of("fixmatch-pann")
    columns = {
        "supervised, labelled fraction": _metric(results, main),
        "supervised, every label": _metric(results, label_of("supervised-pann", "100% labels")),
        "FixMatch": _metric(results, fixmatch),
        "final mask rate": _metric(results, fixmatch, "final_mask_rate"),
        "confident pseudo-labels right": _metric(results, fixmatch, "final_pseudo_acc_masked"),
        "all pseudo-labels right": _metric(results, fixmatch, "final_pseudo_acc"),
    }
    table = pd.DataFrame(columns)
    if table.empty:
        return table
    table.insert(2, "room (every label − fraction)", table["supervised, every label"] - table[
        "supervised, labelled fraction"])
    table.insert(4, "FixMatch gain", table["FixMatch"] - table["supervised, labelled fraction"])
    views = {r["setting"]["fold"]: _strong_views(r, recipe) for r in results if r.get("label") == fixmatch}
    table["strong views per unlabelled clip"] = pd.Series(views, dtype=float)
    table.index.name = "test fold"
    table.loc["mean"] = table.mean()
    return table


def _strong_views(result: dict, recipe: FixMatchRecipe) -> float:
    """Strong views of each unlabelled clip a FixMatch run trained on: steps x μB / unlabelled clips."""
    n_unlabelled = result["metrics"]["n_unlabelled"]
    micro = recipe.micro_batch
    steps = recipe.epochs * (recipe.steps_per_epoch * recipe.accumulate if recipe.steps_per_epoch
                             else n_unlabelled // (recipe.mu * micro))
    return steps * recipe.mu * micro / n_unlabelled if n_unlabelled else float("nan")


def _paired_numbers(results: Results, name: str, a: str, b: str, metric: str = "accuracy") -> dict[str, Any]:
    """``name`` (``b - a`` of ``metric``, paired by fold) and ``name_low`` / ``_high`` (its interval), ``_higher``
    (folds where ``b`` is higher), ``_folds`` and ``_verdict`` (in words); NaN, 0 and "not run" when either label
    is absent."""
    present = {r.get("label", r["arm"]) for r in results}
    if a not in present or b not in present:
        return {name: float("nan"), f"{name}_low": float("nan"), f"{name}_high": float("nan"), f"{name}_higher": 0,
                f"{name}_folds": 0, f"{name}_verdict": "not run"}
    diff = results.paired(a, b, metric)
    return {name: diff.mean, f"{name}_low": diff.low, f"{name}_high": diff.high, f"{name}_higher": diff.favour_b,
            f"{name}_folds": len(diff.per_fold),
            f"{name}_verdict": ("inside the fold noise" if diff.inside_noise else
                                "above zero on every resample of the folds" if diff.low > 0 else
                                "below zero on every resample of the folds")}


def probe_numbers(results: Results, probe: Results) -> dict[str, Any]:
    """What chapter 02 says about the all-label arm beside :meth:`FixMatchExperiment.frozen_probe`: ``acc_probe``
    (mean over folds), ``ceiling`` (all-label fine-tuning − probe, paired by fold, with the keys of
    :func:`_paired_numbers`) and ``probe_sentence``, the comparison and its reading in words.

    Notebook: 02_fixmatch.
    """
    full = label_of("supervised-pann", "100% labels")
    accuracies = [r["metrics"]["accuracy"] for r in probe]
    numbers = {"acc_probe": float(np.mean(accuracies)) if accuracies else float("nan"),
               **_paired_numbers(Results([*results, *probe]), "ceiling", PROBE_LABEL, full)}
    if not numbers["ceiling_folds"]:
        return numbers | {"probe_sentence": "The all-label arm or the probe did not run here (parameter "
                                            "`upper_bound`), so there is nothing to compare."}
    tuned = float(np.mean([r["metrics"]["accuracy"] for r in results if r.get("label") == full]))
    reading = (" Fine-tuning adds nothing the folds can tell apart from what the pretrained embedding already "
               "separates: the all-label arm stands where the pre-training left it." if
               numbers["ceiling_verdict"] == "inside the fold noise" else
               " Fine-tuning adds to what the frozen embedding separates." if numbers["ceiling_low"] > 0 else
               " Fine-tuning ends below its own frozen embedding: the all-label arm is held back by its training "
               "(its budget or recipe), not by the pre-training.")
    return numbers | {"probe_sentence": (
        f"With every label, fine-tuning the whole PANN reaches {tuned:.3f}; a linear classifier on its frozen "
        f"embedding, trained on the same clips and selected on the same validation fold, reaches "
        f"{numbers['acc_probe']:.3f}. Fine-tuning − probe, paired by fold: {numbers['ceiling']:+.3f} (95 % "
        f"interval {numbers['ceiling_low']:+.3f} to {numbers['ceiling_high']:+.3f}; fine-tuning higher on "
        f"{numbers['ceiling_higher']} of {numbers['ceiling_folds']} folds), {numbers['ceiling_verdict']}." + reading)}


def chapter_numbers(results: Results, recipe: FixMatchRecipe) -> dict[str, Any]:
    """The numbers chapter 02's prose quotes (glued with myst-nb), from its runs; NaN (or "not run") for what the
    chosen arms did not run. Keys: ``acc_<arm>`` / ``auc_<arm>`` (mean over folds) for ``sup`` (supervised-pann
    with the labelled fraction), ``fm`` (fixmatch-pann), ``full`` (supervised-pann, every label), ``fm_other``
    (FixMatch with the other pass structure; ``passes_sentence`` says what it gave or that it did not run),
    ``sup_budgeted`` / ``fm_budgeted`` (and ``budgeted_sentence``, likewise); ``gain_*`` paired differences
    with ``*_low`` / ``*_high`` / ``*_verdict`` / ``*_higher`` (folds); mask rates and pseudo-label accuracies;
    label counts; training seconds.

    Notebook: 02_fixmatch.
    """
    labels = {"sup": label_of("supervised-pann"), "fm": label_of("fixmatch-pann"),
              "full": label_of("supervised-pann", "100% labels"),
              "fm_other": label_of("fixmatch-pann", f"{other_passes(recipe.passes)} passes"),
              "sup_budgeted": label_of("supervised-pann", "selection budgeted"),
              "fm_budgeted": label_of("fixmatch-pann", "selection budgeted")}
    numbers: dict[str, Any] = {}
    for key, label in labels.items():
        for metric in ("accuracy", "auc", "last_accuracy"):
            values = _metric(results, label, metric)
            short = {"accuracy": "acc", "auc": "auc", "last_accuracy": "last_acc"}[metric]
            numbers[f"{short}_{key}"] = float(values.mean()) if len(values) else float("nan")
            numbers[f"{short}_{key}_sd"] = float(values.std()) if len(values) > 1 else float("nan")
    comparisons = {"gain": ("sup", "fm", "accuracy"), "room": ("sup", "full", "accuracy"),
                   "passes": ("fm", "fm_other", "accuracy"), "gain_budgeted": ("sup_budgeted", "fm_budgeted",
                                                                             "accuracy"),
                   "gain_last": ("sup", "fm", "last_accuracy")}
    for name, (a, b, metric) in comparisons.items():
        numbers |= _paired_numbers(results, name, labels[a], labels[b], metric)
    numbers["budgeted_sentence"] = (
        f"When the selection labels come out of the budget, supervised reaches {numbers['acc_sup_budgeted']:.3f} and "
        f"FixMatch {numbers['acc_fm_budgeted']:.3f}; paired, FixMatch − supervised is "
        f"{numbers['gain_budgeted']:+.3f} ({numbers['gain_budgeted_verdict']})." if numbers["gain_budgeted_folds"] else
        "The budgeted rule did not run here (parameter `selections`; the `paper` profile runs it).")
    for key, label in (("fm", labels["fm"]), ("fm_other", labels["fm_other"])):
        for metric in ("final_mask_rate", "final_pseudo_acc_masked", "final_pseudo_acc"):
            values = _metric(results, label, metric)
            numbers[f"{metric.removeprefix('final_')}_{key}"] = float(values.mean()) if len(values) else float("nan")
    other = other_passes(recipe.passes)
    numbers["passes_sentence"] = (
        f"Under {other} passes {numbers['mask_rate_fm_other']:.2f} of the unlabelled clips passed τ in the final epoch "
        f"({recipe.passes}: {numbers['mask_rate_fm']:.2f}) and {numbers['pseudo_acc_masked_fm_other']:.2f} of those "
        f"pseudo-labels were right ({numbers['pseudo_acc_masked_fm']:.2f}); the test accuracy of {other} − "
        f"{recipe.passes} is {numbers['passes']:+.3f} (interval {numbers['passes_low']:+.3f} to "
        f"{numbers['passes_high']:+.3f}): {numbers['passes_verdict']}." if numbers["passes_folds"] else
        f"FixMatch with {other} passes did not run here (parameter `compare_passes`; the `paper` profile runs it).")
    runs = [r for r in results if r.get("label") == labels["fm"]]
    numbers["n_labelled"] = round(np.mean([r["metrics"]["n_labelled"] for r in runs])) if runs else 0
    numbers["n_unlabelled"] = round(np.mean([r["metrics"]["n_unlabelled"] for r in runs])) if runs else 0
    numbers["n_val"] = round(np.mean([r["metrics"]["n_val"] for r in runs])) if runs else 0
    numbers["strong_views"] = float(np.mean([_strong_views(r, recipe) for r in runs])) if runs else float("nan")
    numbers["train_seconds"] = float(sum(r.get("seconds", 0.0) for r in results))
    numbers["runs"] = len(results)
    return numbers
