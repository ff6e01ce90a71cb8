"""Chapter 06's experiment (the overview): every method family of the book on the same folds, the same labelled clips
and the same model-selection rule, accuracy against labelled clips per class.

Notebook: 06_overview. The overview trains nothing of its own. For one dataset, test fold and label budget it draws
the labelled clips once (:func:`budget_clips`: class-balanced, ``per_class`` clips of every class from the training
folds of :func:`esclib.data.splits.fold_split` -- test fold k, validation fold k+1 left out -- nested across budgets by
:func:`esclib.data.splits.labelled_subset`; the rest of those folds is the unlabelled pool; the clips that pick the
model come out of the same budget under ``selection="budgeted"``, :func:`esclib.data.splits.selection_sets`). Each
method is a :class:`Method`, a small adapter naming the chapter whose experiment runs it, its arm, its recipe (the
chapter's spec for the profile, with the overview's selection and budget) and how that chapter's :class:`Split` is
made from the shared clips -- the role names differ per family:

- transfer (chapter 01): ``labelled`` = the budget, ``train`` / ``val`` after selection, ``test``;
- FixMatch (chapter 02): ``labelled`` = what it trains on, ``unlabelled`` = the rest of the training folds, ``val``;
- CAE (chapter 03) and ESResNet / NPID (chapter 04): ``train`` / ``val`` after selection, ``test``;
- self-supervised encoders (chapter 05): ``train`` = the whole budget (the probe holds out its own budgeted share,
  the kNN reads every labelled clip), ``val``, ``test``; the encoder pre-trains on the split's training folds with
  their labels removed (``pool="per-fold"``), the clips FixMatch reads as unlabelled.

Every run then goes through its chapter's ``Experiment.run(arm, recipe, split)``: a run the chapter already stored
with the same identity is reused, only the missing ones are trained. :class:`Overview` runs the grid and returns one
row per run with its cost: training seconds (from the stored timing), the pre-training run's seconds, device,
parameters, and whether the method needs unlabelled clips of the target's distribution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from esclib.data.clips import ClipSet
from esclib.data.splits import check_no_leak, check_selection, fold_split, labelled_subset, selection_sets
from esclib.experiments.base import Experiment, Recipe, Split
from esclib.results.store import ResultsStore
from esclib.results.summary import Results, mean_std

#: the x value of the "every label" budget in tables (the figure places it at its mean clips per class)
ALL = "all"


# ----------------------------------------------------------------------------------------------- the budgets
@dataclass(frozen=True)
class Budget:
    """The clips of one (dataset, test fold, label budget): ``labelled`` (``per_class`` clips of every class, or
    every clip of the training folds when ``per_class`` is None), ``unlabelled`` (the rest of the training folds,
    labels hidden), ``train`` / ``val`` (the labelled clips cut by ``selection``; ``val`` None when there is none),
    ``val_fold`` (the labelled validation fold, used only under ``validation-fold``) and ``test``."""

    dataset: str
    fold: int
    per_class: int | None
    selection: str
    labelled: ClipSet
    unlabelled: ClipSet
    train: ClipSet
    val: ClipSet | None
    test: ClipSet
    pool_size: int

    @property
    def name(self) -> str:
        """``"2"`` ... or ``"all"``: the budget as the tables show it."""
        return ALL if self.per_class is None else str(self.per_class)

    @property
    def fraction(self) -> float:
        """The labelled share of the training folds (what chapters 02 and 03 call ``labelled_fraction``)."""
        return len(self.labelled) / self.pool_size

    @property
    def clips_per_class(self) -> float:
        """Mean labelled clips per class (``per_class``, or the training folds' mean for every label)."""
        return len(self.labelled) / self.labelled.num_classes


def budget_clips(clips: ClipSet, fold: int, per_class: int | None, selection: str = "budgeted", *,
                 seed: int = 0) -> Budget:
    """The :class:`Budget` of test fold ``fold`` with ``per_class`` labelled clips per class (None: every label),
    drawn from the training folds (test fold k and validation fold k+1 left out) with ``seed``; raises
    :class:`~esclib.data.splits.LeakError` if a test clip, or one of a test clip's recordings, were in any training
    stream. Notebook: 06_overview."""
    check_selection(selection)
    official = fold_split(clips, fold)
    if per_class is None:
        labelled, unlabelled = official.train, official.train.subset(np.zeros(len(official.train), bool)).unlabelled()
    else:
        labelled, unlabelled = labelled_subset(official.train, per_class=per_class, seed=seed)
    train, val = selection_sets(selection, labelled, official.val, seed=seed)
    check_no_leak(official.test, labelled, unlabelled, *([val] if val is not None else []))
    return Budget(clips.name, int(fold), per_class, selection, labelled, unlabelled, train, val, official.test,
                  len(official.train))


def labelled_ids(split: Split) -> set[str]:
    """The clip ids whose labels a run of ``split`` reads in training and model selection (every role but ``test``
    and ``unlabelled``): what must be the same for every method at one budget."""
    return {str(c) for role, part in split.parts.items() if role not in ("test", "unlabelled")
            for c in part.table["clip_id"]}


def training_ids(split: Split) -> set[str]:
    """Every clip id a run of ``split`` trains or selects on, labelled or not (every role but ``test``)."""
    return {str(c) for role, part in split.parts.items() if role != "test" for c in part.table["clip_id"]}


# ----------------------------------------------------------------------------------------------- the methods
def _with_val(parts: dict[str, ClipSet], budget: Budget) -> dict[str, ClipSet]:
    return {**parts, **({"val": budget.val} if budget.val is not None else {}), "test": budget.test}


def transfer_split(budget: Budget) -> Split:
    """Chapter 01's split (:meth:`~esclib.experiments.pann_transfer.TransferExperiment.split`)."""
    return Split(_with_val({"labelled": budget.labelled, "train": budget.train}, budget), "official", budget.fold)


def fixmatch_split(budget: Budget) -> Split:
    """Chapter 02's split (:meth:`~esclib.experiments.fixmatch.FixMatchExperiment.split`)."""
    return Split(_with_val({"labelled": budget.train, "unlabelled": budget.unlabelled}, budget), "official",
                 budget.fold)


def cae_split(budget: Budget) -> Split:
    """Chapter 03's split (:meth:`~esclib.experiments.cae.CAEExperiment.split_of`)."""
    return Split(_with_val({"train": budget.train}, budget), "official", budget.fold)


def ssl_split(budget: Budget) -> Split:
    """Chapter 05's split (:meth:`~esclib.experiments.ssl.SSLExperiment.split`): ``train`` = the labelled clips
    (the probe and the kNN read them all; the probe holds out its own budgeted share), ``val`` = the clips that may
    pick the probe's epoch (the budget's held-out share, the validation fold, or -- under ``last``, where nothing is
    picked -- the labelled clips again, since the experiment always embeds a ``val`` part)."""
    val = budget.val if budget.val is not None else budget.labelled
    return Split({"train": budget.labelled, "val": val, "test": budget.test}, fold=budget.fold)


def npid_split(budget: Budget) -> Split:
    """Chapter 04's split (:meth:`~esclib.experiments.npid.NPIDExperiment.split_of`: no kind of its own, the
    official folds)."""
    return Split(_with_val({"train": budget.train}, budget), fold=budget.fold)


@dataclass(frozen=True)
class Method:
    """One method of the overview: ``name`` (its line in the figure), the family whose chapter experiment runs it
    (the key of :data:`FAMILIES`), its ``arm`` (for chapter 5's family: the overview's ``ssl_method``), whether it
    needs ``unlabelled`` clips of the target's distribution, and the ``metric`` of its run that is its accuracy
    (chapter 5's runs record the linear probe's ``accuracy`` and the kNN's ``knn_accuracy``)."""

    name: str
    family: str
    arm: str
    unlabelled: bool = False
    metric: str = "accuracy"


@dataclass(frozen=True)
class Family:
    """What a chapter contributes: its spec (``chapter``), how to build its experiment on a dataset
    (``experiment(overview, clips)``), its recipe for a budget (``recipe(params, budget)``, ``params`` the chapter's
    resolved parameters), its split (``split(budget)``), the pre-training run its arm starts from on a split
    (``pretraining(experiment, arm, recipe, split)``: a result or None) and its parameters (``parameters(experiment,
    arm, recipe)``: total, trained); ``skip(arm, recipe, budget)``: why an arm cannot run at a budget (None: it
    can)."""

    chapter: str
    experiment: Callable[["Overview", ClipSet], Experiment]
    recipe: Callable[[Mapping[str, Any], Budget], Recipe]
    split: Callable[[Budget], Split]
    pretraining: Callable[[Experiment, str, Recipe, Split], dict | None]
    parameters: Callable[[Experiment, str, Recipe], tuple[int, int]]
    pretraining_note: Callable[[Experiment, str], str] = field(default=lambda experiment, arm: "")
    skip: Callable[[str, Recipe, Budget], str | None] = field(default=lambda arm, recipe, budget: None)


def _count(module: Any) -> tuple[int, int]:
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


# --- chapter 01: PANN transfer
def _transfer_experiment(overview: "Overview", clips: ClipSet) -> Experiment:
    from esclib.experiments.pann_transfer import FewShotTransfer

    params = overview.chapter_params("01_pann_transfer")
    return FewShotTransfer(clips, params["checkpoint"], arch=params["arch"], **overview.run_args())


def _transfer_recipe(params: Mapping[str, Any], budget: Budget) -> Recipe:
    from esclib.experiments.pann_transfer import TransferRecipe

    return TransferRecipe.from_config(params, selection=budget.selection)


def _transfer_pretraining(experiment: Any, arm: str, recipe: Recipe, split: Split) -> dict | None:
    from esclib.experiments.pann_pretrain import MINI, mini_pann

    if arm == "scratch" or experiment.source != MINI:
        return None
    return mini_pann(experiment.store, profile=experiment.profile, seed=experiment.seed,
                     device=str(experiment.device), progress=False)[1]


def _transfer_note(experiment: Any, arm: str) -> str:
    from esclib.experiments.pann_pretrain import MINI

    if arm == "scratch":
        return "none"
    return "mini-AudioSet (ours)" if experiment.source == MINI else f"AudioSet ({experiment.source}, Kong et al.)"


# --- chapter 02: FixMatch
def _fixmatch_experiment(overview: "Overview", clips: ClipSet) -> Experiment:
    from esclib.experiments.fixmatch import FixMatchExperiment

    params = overview.chapter_params("02_fixmatch")
    return FixMatchExperiment(clips, params["checkpoint"], arch=params["arch"], **overview.run_args())


def _fixmatch_recipe(params: Mapping[str, Any], budget: Budget) -> Recipe:
    from esclib.experiments.fixmatch import FixMatchRecipe

    return FixMatchRecipe.from_config(params, labelled_fraction=budget.fraction, selection=budget.selection)


def _fixmatch_skip(arm: str, recipe: Any, budget: Budget) -> str | None:
    if not len(budget.unlabelled):
        return "no unlabelled clips: every training clip is labelled"
    batch = recipe.micro_batch * (2 if recipe.mixup else 1)
    if len(budget.train) < batch:
        return f"{len(budget.train)} labelled training clips, fewer than one labelled batch of {batch}"
    if len(budget.unlabelled) < recipe.mu * recipe.micro_batch:
        return f"{len(budget.unlabelled)} unlabelled clips, fewer than one batch of {recipe.mu * recipe.micro_batch}"
    return None


# --- chapter 03: CAE
def _cae_experiment(overview: "Overview", clips: ClipSet) -> Experiment:
    from esclib.data.sources import load_dataset
    from esclib.experiments import cae

    params = overview.chapter_params("03_cae")
    escus = load_dataset("escus", overview.profile, params["escus_root"], seed=overview.seed)
    pretraining = cae.CAEPretraining(cae.pretraining_pool(escus, params["pool_size"]), source=escus,
                                     **overview.run_args())
    return cae.CAEExperiment(clips, pretraining, **overview.run_args())


def _cae_recipe(params: Mapping[str, Any], budget: Budget) -> Recipe:
    from esclib.experiments.cae import FinetuneRecipe

    return FinetuneRecipe.from_config(params, batch_size=params["curve_batch_size"], filters=params["filters"][0],
                                      labelled_fraction=budget.fraction, selection=budget.selection)


def _cae_pretraining(experiment: Any, arm: str, recipe: Any, split: Split) -> dict | None:
    from esclib.experiments.cae import ARM_DECODER

    if ARM_DECODER[arm] is None:
        return None
    return experiment.pretraining.run(arm, recipe.pretraining, experiment.pretraining.split)


def _cae_parameters(experiment: Any, arm: str, recipe: Any) -> tuple[int, int]:
    return _count(experiment.classifier("supervised", recipe))  # the pre-trained arms: the same network


# --- chapter 04: NPID (ESResNet fine-tuned from NPID, from ImageNet or from scratch)
def _npid_experiment(overview: "Overview", clips: ClipSet) -> Experiment:
    from esclib.experiments.npid import NPIDExperiment, NPIDPretraining

    datasets = {clips.name: clips}
    return NPIDExperiment(datasets, NPIDPretraining(datasets, **overview.run_args()), **overview.run_args())


def _npid_recipe(params: Mapping[str, Any], budget: Budget) -> Recipe:
    from esclib.experiments.npid import FinetuneRecipe

    return FinetuneRecipe.from_config(params, selection=budget.selection)


def _npid_pretraining(experiment: Any, arm: str, recipe: Any, split: Split) -> dict | None:
    from esclib.experiments.npid import ARM_INIT

    if ARM_INIT[arm] != "npid":
        return None
    return experiment.pretraining.pretrained(arm, recipe.pretraining, experiment.pretraining_split(arm, split))[0]


def _npid_parameters(experiment: Any, arm: str, recipe: Any) -> tuple[int, int]:
    from esclib.train.npid import finetune_network

    clips = next(iter(experiment.datasets.values()))  # every arm fine-tunes the same network
    return _count(finetune_network(clips.num_classes, recipe.finetune(clips.clip_seconds), "scratch"))


def _npid_note(experiment: Any, arm: str) -> str:
    return {"npid": "NPID on the dataset's training folds (ours)", "imagenet": "ImageNet (torchvision)"}.get(arm,
                                                                                                           "none")


def _npid_skip(arm: str, recipe: Any, budget: Budget) -> str | None:
    from esclib.models.esresnet import imagenet_status

    if len(budget.train) < recipe.finetune_batch_size:
        return f"{len(budget.train)} labelled training clips, fewer than one batch of {recipe.finetune_batch_size}"
    missing = imagenet_status(recipe.arch) if arm == "imagenet" else None
    return None if missing is None else missing.split(":")[0]


# --- chapter 05: self-supervised pre-training, frozen (linear probe, kNN)
def _ssl_experiment(overview: "Overview", clips: ClipSet) -> Experiment:
    from esclib.experiments.ssl import SSLExperiment, SSLPretraining

    splits = [fold_split(clips, fold) for fold in range(1, clips.n_folds + 1)]
    return SSLExperiment(clips, SSLPretraining(clips, **overview.run_args()), splits, pool="per-fold",
                         **overview.run_args())


def _ssl_recipe(params: Mapping[str, Any], budget: Budget) -> Recipe:
    from esclib.experiments.ssl import EvalRecipe

    return EvalRecipe.from_config(params, selection=budget.selection, probe_budgets=())


def _ssl_pretraining(experiment: Any, arm: str, recipe: Any, split: Split) -> dict | None:
    from esclib.experiments.ssl import ARM_METHOD, pool_split

    if arm not in ARM_METHOD:
        return None
    return experiment.pretraining.run(arm, recipe.pretraining, pool_split(experiment.pool_of(split)))


def _ssl_parameters(experiment: Any, arm: str, recipe: Any) -> tuple[int, int]:
    from esclib.experiments.ssl import initial_backbone

    net, dim = initial_backbone(recipe, experiment.seed)
    total, _ = _count(net)
    head = (dim + 1) * experiment.clips.num_classes  # the probe (the kNN trains nothing)
    return total + head, head


#: the chapters' families by key
FAMILIES: dict[str, Family] = {
    "transfer": Family("01_pann_transfer", _transfer_experiment, _transfer_recipe, transfer_split,
                       _transfer_pretraining, lambda experiment, arm, recipe: _count(experiment.model(arm)),
                       _transfer_note),
    "fixmatch": Family("02_fixmatch", _fixmatch_experiment, _fixmatch_recipe, fixmatch_split,
                       _transfer_pretraining, lambda experiment, arm, recipe: _count(experiment.model(arm)),
                       _transfer_note, _fixmatch_skip),
    "cae": Family("03_cae", _cae_experiment, _cae_recipe, cae_split, _cae_pretraining, _cae_parameters,
                  lambda experiment, arm: "ESC-US, CAE (ours)" if arm != "supervised" else "none"),
    "npid": Family("04_npid", _npid_experiment, _npid_recipe, npid_split, _npid_pretraining, _npid_parameters,
                   _npid_note, _npid_skip),
    "ssl": Family("05_ssl", _ssl_experiment, _ssl_recipe, ssl_split, _ssl_pretraining, _ssl_parameters,
                  lambda experiment, arm: f"{arm} on the training folds' clips, labels removed (ours)"),
}


#: every method of the overview, in the figure's order
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("cnn-scratch", "cae", "supervised"),
    Method("cae", "cae", "cae-unpool", unlabelled=True),
    Method("pann-scratch", "transfer", "scratch"),
    Method("pann-freeze_l1", "transfer", "freeze_l1"),
    Method("pann-freeze_l3", "transfer", "freeze_l3"),
    Method("pann-fine-tune", "transfer", "fine-tune"),
    Method("pann-fixmatch", "fixmatch", "fixmatch-pann", unlabelled=True),
    Method("esresnet-scratch", "npid", "scratch"),
    Method("npid", "npid", "npid", unlabelled=True),
    Method("esresnet-imagenet", "npid", "imagenet"),
    Method("ssl-probe", "ssl", "simclr", unlabelled=True),
    Method("ssl-knn", "ssl", "simclr", unlabelled=True, metric="knn_accuracy"),
)}

#: what each method is, in words (the table's first column)
DESCRIPTIONS: dict[str, str] = {
    "cnn-scratch": "chapter 3's small CNN from random weights",
    "cae": "chapter 3's CNN, encoder from a CAE pre-trained on unlabelled ESC-US clips",
    "pann-scratch": "chapter 1's PANN architecture from random weights",
    "pann-freeze_l1": "chapter 1's frozen pretrained PANN + a linear head",
    "pann-freeze_l3": "chapter 1's frozen pretrained PANN + three layers",
    "pann-fine-tune": "chapter 1's pretrained PANN, fine-tuned whole",
    "pann-fixmatch": "chapter 2's FixMatch on the pretrained PANN (unlabelled: the rest of the training folds)",
    "esresnet-scratch": "chapter 4's ESResNet from random weights",
    "npid": "chapter 4's ESResNet fine-tuned from NPID on the dataset's training folds (unlabelled)",
    "esresnet-imagenet": "chapter 4's ESResNet from ImageNet weights (where they are in the local cache)",
    "ssl-probe": "chapter 5's self-supervised ResNet (ssl_method), frozen, + a linear probe",
    "ssl-knn": "chapter 5's self-supervised ResNet (ssl_method), frozen, weighted kNN on the labelled clips",
}


# ----------------------------------------------------------------------------------------------- the grid
class Overview:
    """The overview's grid (see the module docstring): ``store``, ``profile``, ``seed``, ``device`` as every chapter's
    experiment takes them; ``selection`` the rule every method picks its model by; ``ssl_method`` the method of
    chapter 5 whose frozen encoder the ``ssl-*`` methods evaluate. Notebook: 06_overview."""

    def __init__(self, store: ResultsStore, *, profile: str = "quick", seed: int = 0, device: Any = "cpu",
                 selection: str = "budgeted", ssl_method: str = "simclr", progress: bool = True) -> None:
        check_selection(selection)
        self.store, self.profile, self.seed, self.device = store, profile, int(seed), device
        self.selection, self.ssl_method, self.progress = selection, ssl_method, progress
        self._experiments: dict[tuple[str, str], Experiment] = {}
        self._params: dict[str, dict[str, Any]] = {}
        #: the cells the last :meth:`run` left out, with the reason (``dataset, fold, budget, method, reason``)
        self.skipped = pd.DataFrame(columns=["dataset", "fold", "budget", "method", "reason"])

    def run_args(self) -> dict[str, Any]:
        """What every chapter's experiment is built with (the chapters' runs share this store)."""
        return {"store": self.store, "profile": self.profile, "seed": self.seed, "device": self.device,
                "progress": False}

    def chapter_params(self, chapter: str) -> dict[str, Any]:
        """Chapter ``chapter``'s parameters resolved for this profile and seed (its spec's defaults): the recipe the
        chapter itself runs, so that its stored runs match."""
        if chapter not in self._params:
            from esclib.runner.spec import resolve
            from esclib.runner.specs import get_spec

            self._params[chapter] = resolve(get_spec(chapter), self.profile, seed=self.seed)
        return self._params[chapter]

    def arm(self, method: Method) -> str:
        """The arm ``method`` runs: its own, or for chapter 5's family the overview's ``ssl_method``."""
        return self.ssl_method if method.family == "ssl" else method.arm

    def experiment(self, method: Method, clips: ClipSet) -> Experiment:
        """The chapter experiment that runs ``method`` on ``clips`` (built once per family and dataset)."""
        key = (method.family, clips.name)
        if key not in self._experiments:
            self._experiments[key] = FAMILIES[method.family].experiment(self, clips)
        return self._experiments[key]

    def cell(self, method: Method, budget: Budget, clips: ClipSet) -> tuple[Experiment, Recipe, Split]:
        """The chapter experiment, recipe and split of one run of ``method`` at ``budget``."""
        family = FAMILIES[method.family]
        return (self.experiment(method, clips), family.recipe(self.chapter_params(family.chapter), budget),
                family.split(budget))

    def budgets(self, clips: ClipSet, folds: Sequence[int], per_class: Sequence[int], every_label: bool = True
                ) -> list[Budget]:
        """The budgets of ``clips``: every fold at every ``per_class`` (ascending) and, with ``every_label``, all
        labels."""
        counts = [*sorted(set(per_class)), *([None] if every_label else [])]
        return [budget_clips(clips, fold, n, self.selection, seed=self.seed) for fold in folds for n in counts]

    def run(self, datasets: Mapping[str, ClipSet], methods: Sequence[str], folds: Mapping[str, Sequence[int]],
            per_class: Sequence[int], every_label: bool = True) -> Results:
        """Every (dataset, fold, budget, method) run, through the method's chapter experiment (stored runs with the
        same identity are reused); one progress bar, one line per run. Each result gets ``label`` (the method),
        ``budget`` (its :class:`Budget`'s name), ``clips_per_class``, ``dataset`` and ``reused``. A cell its
        family cannot run (:attr:`Family.skip`) is left out and listed in :attr:`skipped`."""
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; expected some of {list(METHODS)}")
        cells = [(METHODS[m], budget, clips) for name, clips in datasets.items()
                 for budget in self.budgets(clips, folds[name], per_class, every_label)
                 for m in methods]
        results, skipped = Results(), []
        bar = tqdm(cells, desc="overview runs", disable=not self.progress)
        for method, budget, clips in bar:
            experiment, recipe, split = self.cell(method, budget, clips)
            arm = self.arm(method)
            reason = FAMILIES[method.family].skip(arm, recipe, budget)
            if reason is not None:
                skipped.append({"dataset": clips.name, "fold": budget.fold, "budget": budget.name,
                                "method": method.name, "reason": reason})
                continue
            reused = experiment.open(arm, recipe, split).done
            result = dict(experiment.run(arm, recipe, split))
            result.update(label=method.name, budget=budget.name, clips_per_class=budget.clips_per_class,
                          dataset=clips.name, reused=reused,
                          metrics={**result["metrics"], "accuracy": result["metrics"][method.metric]})
            results.append(result)
            if self.progress:
                bar.write(f"{clips.name}, {budget.name} per class: " + experiment.describe(result, reused))
        self.skipped = pd.DataFrame(skipped, columns=self.skipped.columns)
        return results

    def costs(self, datasets: Mapping[str, ClipSet], methods: Sequence[str], folds: Mapping[str, Sequence[int]]
              ) -> pd.DataFrame:
        """Per method and dataset: its pre-training (what on; seconds and device of the recorded run, for the first
        of ``folds`` where it is per fold), its parameters (total and trained) and whether it needs unlabelled clips
        of the target's distribution."""
        rows = []
        for name, clips in datasets.items():
            budget = budget_clips(clips, folds[name][0], None, self.selection, seed=self.seed)
            for m in methods:
                method, family = METHODS[m], FAMILIES[METHODS[m].family]
                experiment, recipe, split = self.cell(method, budget, clips)
                pre = family.pretraining(experiment, self.arm(method), recipe, split)
                total, trained = family.parameters(experiment, self.arm(method), recipe)
                trained = 0 if method.metric == "knn_accuracy" else trained  # a kNN trains nothing
                rows.append({"dataset": name, "method": m, "pre-training": family.pretraining_note(experiment,
                                                                                                   self.arm(method)),
                             "pre-training s": None if pre is None else round(float(pre.get("seconds", 0)), 1),
                             "pre-training device": None if pre is None else pre["identity"]["device"],
                             "parameters": total, "trained parameters": trained,
                             "needs unlabelled target clips": method.unlabelled})
        return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------- what it shows
def run_frame(results: Results) -> pd.DataFrame:
    """One row per run: ``dataset, method, budget, clips_per_class, fold, accuracy, train_s, device, reused``;
    ``train_s``: the seconds of the run's training loops, or of the whole run where it trains outside them (chapter
    5's probe and kNN)."""
    return pd.DataFrame([{"dataset": r["dataset"], "method": r["label"], "budget": r["budget"],
                          "clips_per_class": r["clips_per_class"], "fold": r["setting"]["fold"],
                          "accuracy": r["metrics"]["accuracy"],
                          "train_s": (r.get("timing") or {}).get("train_seconds") or r.get("seconds"),
                          "device": (r.get("timing") or {}).get("device"), "reused": r["reused"]} for r in results],
                        columns=["dataset", "method", "budget", "clips_per_class", "fold", "accuracy", "train_s",
                                 "device", "reused"])


def _budget_order(budgets: Sequence[str]) -> list[str]:
    return sorted({b for b in budgets if b != ALL}, key=int) + ([ALL] if ALL in set(budgets) else [])


def accuracy_table(results: Results, costs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and method (described in words): test accuracy per budget (mean ± std over folds), mean training
    seconds per run and its device, then the method's cost columns (:meth:`Overview.costs`)."""
    frame = run_frame(results)
    if frame.empty:
        return pd.DataFrame()
    rows = []
    for (dataset, method), runs in frame.groupby(["dataset", "method"], sort=False):
        cost = costs[(costs["dataset"] == dataset) & (costs["method"] == method)]
        extra = cost.drop(columns=["dataset", "method"]).iloc[0].to_dict() if len(cost) else {}
        row = {"dataset": dataset, "method": method, "what it is": DESCRIPTIONS.get(method, "")}
        for budget in _budget_order(runs["budget"]):
            acc = runs.loc[runs["budget"] == budget, "accuracy"]
            row[f"{budget} per class"] = mean_std(acc.mean(), acc.std())
        row["training s per run"] = round(float(runs["train_s"].mean()), 1)
        row["device"] = runs["device"].iloc[0]
        rows.append({**row, **extra})
    return pd.DataFrame(rows)


def ranking(results: Results) -> pd.DataFrame:
    """Per dataset and budget, the best method by mean accuracy and every other method's paired difference from it
    over the folds (:meth:`~esclib.results.summary.Results.paired`): its 95 % interval and whether it is inside the
    fold noise (the interval contains 0, or a single fold, which has no spread: the folds cannot tell the two
    apart)."""
    frame = run_frame(results)
    rows = []
    for (dataset, budget), runs in frame.groupby(["dataset", "budget"], sort=False):
        means = runs.groupby("method")["accuracy"].mean().sort_values(ascending=False)
        best = str(means.index[0])
        chosen = Results(r for r in results if r["dataset"] == dataset and r["budget"] == budget)
        for other in means.index[1:]:
            paired = chosen.paired(best, str(other))
            rows.append({"dataset": dataset, "budget": budget, "best": best, "best accuracy": round(means[best], 3),
                         "other": other, "difference": round(paired.mean, 3),
                         "95% interval": f"[{paired.low:+.3f}, {paired.high:+.3f}]", "folds": len(paired.per_fold),
                         "inside the noise": paired.inside_noise or len(paired.per_fold) < 2})
    table = pd.DataFrame(rows, columns=["dataset", "budget", "best", "best accuracy", "other", "difference",
                                        "95% interval", "folds", "inside the noise"])
    order = {b: i for i, b in enumerate(_budget_order(table["budget"]))}
    return table.sort_values(["dataset", "budget"], key=lambda s: s.map(order) if s.name == "budget" else s,
                             kind="stable").reset_index(drop=True)


def advice(results: Results, costs: pd.DataFrame) -> str:
    """The practitioner's paragraph, from this run: per dataset and budget the best method, the methods the folds
    cannot tell from it, and the cheapest of those (fewest training seconds, no unlabelled clips needed first)."""
    table, frame = ranking(results), run_frame(results)
    if frame.empty:
        return "No method ran: nothing to recommend."
    sentences = []
    for dataset, runs in frame.groupby("dataset", sort=False):
        seconds = runs.groupby("method")["train_s"].mean()
        needs = costs[costs["dataset"] == dataset].set_index("method")["needs unlabelled target clips"]
        parts = []
        for budget in _budget_order(runs["budget"]):
            rows = table[(table["dataset"] == dataset) & (table["budget"] == budget)]
            best = rows["best"].iloc[0] if len(rows) else runs.loc[runs["budget"] == budget, "method"].iloc[0]
            ties = rows.loc[rows["inside the noise"], "other"].tolist()
            tied = [best, *ties]
            cheapest = min(tied, key=lambda m: (bool(needs.get(m, False)), float(seconds.get(m, np.inf))))
            label = "every label" if budget == ALL else f"{budget} labelled clips per class"
            mean = runs.loc[(runs["budget"] == budget) & (runs["method"] == best), "accuracy"].mean()
            text = f"with {label}, {best} is best ({mean:.3f})"
            if ties:
                text += (f", but the folds cannot tell it from {', '.join(ties)}; the cheapest of these is "
                         f"{cheapest}")
            parts.append(text)
        sentences.append(f"On {dataset}: " + "; ".join(parts) + ".")
    return " ".join(sentences)


def same_clips(overview: Overview, clips: ClipSet, methods: Sequence[str], folds: Sequence[int],
               per_class: Sequence[int], every_label: bool = True) -> pd.DataFrame:
    """Per test fold and budget: the labelled clips and the digest of their ids as each method's chapter split
    holds them (:func:`labelled_ids`), and whether every method reads the very same labelled clips."""
    from esclib.digest import digest

    rows = []
    for budget in overview.budgets(clips, folds, per_class, every_label):
        ids = {m: labelled_ids(FAMILIES[METHODS[m].family].split(budget)) for m in methods}
        digests = {m: digest(sorted(v), 8) for m, v in ids.items()}
        rows.append({"dataset": clips.name, "fold": budget.fold, "budget": budget.name,
                     "labelled clips": len(budget.labelled), "of which validation": len(budget.val or ()),
                     "unlabelled clips": len(budget.unlabelled), **digests,
                     "same labelled clips for every method": len(set(digests.values())) == 1})
    return pd.DataFrame(rows)


def is_synthetic(clips: ClipSet) -> bool:
    """Whether ``clips`` is one of esclib's synthetic worlds (the ``quick`` profile's data), not the real dataset."""
    from pathlib import Path

    return Path(clips.root).parent.name.startswith("synth-")


def published_points(datasets: Sequence[str]) -> pd.DataFrame:
    """The studies' and anchors' few-label numbers that can sit on the figure's axes (a number of labelled clips per
    class on a dataset of this run): USB's FixMatch and supervised baselines (``labels_per_class``), and study 000's
    10 % of UrbanSound8K's training folds (about 70 clips per class on the real dataset); each with its source and
    protocol, labelled theirs."""
    from esclib.results.studies import STUDY_VALUES

    rows = []
    for v in STUDY_VALUES:
        dataset, per_class = v.setting.get("dataset"), v.setting.get("labels_per_class")
        if v.experiment == "fixmatch" and v.study.id == "000" and v.setting.get("labelled_fraction") == 0.1 \
                and len(v.setting) == 2 and v.metric == "accuracy":
            per_class = 70  # 10 % of the ~6,985 clips of 8 training folds, 10 classes
        if dataset not in datasets or per_class is None or v.metric != "accuracy":
            continue
        rows.append({"dataset": dataset, "clips_per_class": per_class, "accuracy": v.value,
                     "who": f"{v.study.id}: {v.arm} (theirs)", "source": v.study.source,
                     "protocol": v.study.protocol, "note": v.note})
    return pd.DataFrame(rows, columns=["dataset", "clips_per_class", "accuracy", "who", "source", "protocol", "note"])


def plot_overview(results: Results, published: pd.DataFrame | None = None, *, synthetic: bool = False,
                  chance: Mapping[str, float] | None = None) -> Any:
    """Accuracy (mean ± std over folds) against labelled clips per class, one line per method, one panel per
    dataset (seaborn), every label at the training folds' mean clips per class; ``published``: the studies' points
    as black markers, labelled theirs (left out when ``synthetic``: the run's worlds are not their datasets);
    ``chance``: per dataset, the accuracy of guessing (a dotted line)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    frame = run_frame(results)
    datasets = list(dict.fromkeys(frame["dataset"])) or ["(no run)"]
    fig, axes = plt.subplots(1, len(datasets), figsize=(8.5 * len(datasets), 4.2), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        runs = frame[frame["dataset"] == dataset]
        if len(runs):
            sns.lineplot(data=runs, x="clips_per_class", y="accuracy", hue="method", style="method", markers=True,
                         errorbar="sd", err_style="bars", ax=ax,
                         hue_order=[m for m in METHODS if m in set(runs["method"])])
        if published is not None and not synthetic:
            points = published[published["dataset"] == dataset]
            for (who, group), marker in zip(points.groupby("who"), "osD^v<>"):
                ax.scatter(group["clips_per_class"], group["accuracy"], color="black", marker=marker, label=who)
        if chance and dataset in chance:
            ax.axhline(chance[dataset], color="grey", linestyle=":", label="chance")
        ticks = runs.groupby("budget")["clips_per_class"].mean() if len(runs) else pd.Series(dtype=float)
        ax.set_xscale("log")
        ax.set_xticks(list(ticks), [f"{x:g}" if b != ALL else f"all ({x:.0f})" for b, x in ticks.items()])
        ax.minorticks_off()
        ax.set(title=f"{dataset}: test accuracy, mean ± std over folds", xlabel="labelled clips per class (log)",
               ylabel="test accuracy", ylim=(0, 1))
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    return fig


#: our method closest to each published arm (for :func:`published_beside`)
PUBLISHED_ARMS = {"fixmatch-pann": "pann-fixmatch", "supervised-pann": "pann-fine-tune"}


def published_beside(results: Results, published: pd.DataFrame, *, synthetic: bool) -> pd.DataFrame:
    """Each published few-label point (:func:`published_points`) beside this run's closest method at the same
    labelled clips per class, where it ran; ``synthetic``: the run's data is a synthetic world, so the two numbers
    answer different questions (said in the last column)."""
    frame = run_frame(results)
    rows = []
    for _, point in published.iterrows():
        who = point["who"].split(": ", 1)[1].removesuffix(" (theirs)")
        ours = PUBLISHED_ARMS.get(who)
        runs = frame[(frame["dataset"] == point["dataset"]) & (frame["method"] == ours)
                     & (frame["budget"] == str(point["clips_per_class"]))]
        rows.append({"dataset": point["dataset"], "labelled clips per class": point["clips_per_class"],
                     "published (theirs)": point["accuracy"], "who": point["who"], "their protocol":
                     f"{point['source']}: {point['protocol']}" + (f"; {point['note']}" if point["note"] else ""),
                     "this run": (mean_std(runs["accuracy"].mean(), runs["accuracy"].std()) + f" ({ours})"
                                  if len(runs) else f"{ours} not run at this budget"),
                     "comparable": "no: a synthetic world, not their dataset" if synthetic else
                     "same dataset and budget; model, split and selection differ"})
    return pd.DataFrame(rows)
