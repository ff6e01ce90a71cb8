"""Chapter 03's experiment (study 002, Jensen & Pethick, DTU): CAE pre-training on ESC-US, fine-tuning on ESC-50.

Notebook: 03_cae. Two experiments on the foundation of :mod:`esclib.experiments.base`:

1. :class:`CAEPretraining` (results-store experiment ``cae_pretrain``, arms ``cae-unpool`` / ``cae-upsample``) --
   the autoencoder (:class:`esclib.models.cae.ConvAutoencoder`, unpooling or upsampling decoder) trained on the
   ESC-US pool with the mean squared reconstruction error, Adam, early stopping on the validation loss (patience 5,
   at most 50 epochs; Sec. 4.2). Its weights are kept with the run (an artifact the classifiers load).
2. :class:`CAEExperiment` (experiment ``cae``, arms ``supervised`` / ``cae-unpool`` / ``cae-upsample``) -- the
   classifier (:class:`esclib.models.cae.CAEClassifier`) from the pre-trained encoder or at random, tested on the
   study's random split or an official ESC-50 fold, on all or a class-balanced fraction of the training clips, its
   model picked under ``selection`` (:data:`esclib.data.splits.SELECTIONS`): early stopping on the validation
   accuracy (patience 5, at most 150 epochs) on the split's validation clips (``validation-fold``, the study) or on
   clips held out of the label budget (``budgeted``), or a fixed schedule (``last``). A pre-trained arm's identity
   includes the identity of the pre-training run it starts from.

The study's splits are made as its ``DataHandler`` made them (:func:`study_file_order`, :func:`evaluation_split`,
:func:`pretraining_pool`). The inputs -- the study's 1x28x36 log-mel (:class:`esclib.features.CAEInput`) of every
clip -- are computed once per clip set and feature configuration and cached
(:func:`esclib.data.cache.cached_features`). Figures: :mod:`esclib.experiments.cae_figures`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from esclib.data.cache import cached_features
from esclib.data.clips import ClipSet
from esclib.data.identity import dataset_identity
from esclib.data.loaders import feature_loader
from esclib.data.splits import (SELECTIONS, FoldSplit, assert_trainable, check_selection, fold_split, labelled_subset,
                                random_split, selection_sets)
from esclib.experiments.base import Experiment, Recipe, RunContext, Split
from esclib.features import CAEInput
from esclib.metrics import classification_metrics
from esclib.models.cae import CAEClassifier, CAEEncoder, ConvAutoencoder
from esclib.results.studies import study_value
from esclib.results.summary import Results, bootstrap_interval
from esclib.train import EarlyStopping, predict
from esclib.train.steps import reconstruction_loss, reconstruction_step

EXPERIMENT = "cae"
PRETRAIN_EXPERIMENT = "cae_pretrain"
#: arms of the results store (``esclib.results.studies``) and the decoder each pre-trains with (None: no pre-training)
ARM_DECODER: dict[str, str | None] = {"supervised": None, "cae-unpool": "unpool", "cae-upsample": "upsample"}
ARMS: tuple[str, ...] = tuple(ARM_DECODER)
#: the seed of the study's ``DataHandler`` (``np.random.seed(1337)`` before it shuffles its file list)
STUDY_SPLIT_SEED = 1337
#: the study's ESC-US test clips (its Fig. 1); its validation clips are a fifth of the pool
POOL_TEST_CLIPS = 16
#: the study's architecture: encoder kernels (f)5c-2p-(f)3c-2p-(f)3c-2p, Dense(128), no dropout in its final runs
KERNEL_SIZES = (5, 3, 3)
HIDDEN = 128
DROPOUT = 0.0


# --------------------------------------------------------------------------------------------------- data
def study_split_sizes(n_clips: int) -> tuple[int, int, int]:
    """(train, val, test) sizes of the study's random split of ``n_clips`` labelled clips, by its notebook's
    arithmetic: test ``n // 5``, validation ``(n - test) // 5``, training the rest (1,280 / 320 / 400 of 2,000)."""
    n_test = n_clips // 5
    n_val = (n_clips - n_test) // 5
    return n_clips - n_test - n_val, n_val, n_test


def study_file_order(clips: ClipSet) -> np.ndarray:
    """The rows of ``clips`` in the order of the study's file list before its shuffle.

    Its ``DataHandler`` globbed one folder after the other: for ESC-50 the class folders of the dataset's first
    layout in its list's order (``101 - Dog`` ... ``510 - Hand saw``, which is ESC-50's target order 0..49), for
    ESC-US the folders ``01`` ... ``05``. Within a folder ``glob`` returns the files in the order the file system
    lists them, which the study did not record: we take them sorted by name (the clip id; within one ESC-50 class,
    today's names ``{fold}-{source}-{take}-{target}.wav`` sort as the first layout's ``{fold}-{source}-{take}.ogg``).
    Labelled clips are ordered by (target, clip id), unlabelled ones (ESC-US, clip id ``01/...``) by clip id.
    """
    ids = clips.table["clip_id"].astype(str).to_numpy()
    return np.lexsort((ids, clips.targets))


def evaluation_split(clips: ClipSet, split: str, fold: int | None = None) -> FoldSplit:
    """The study's random split (``split="random"``: :func:`study_file_order`, ``np.random.seed(1337)``, a shuffle,
    then test / validation / training of :func:`study_split_sizes`) or the official folds (``split="folds"``: test
    ``fold``, validation the next fold, training the rest)."""
    if split == "random":
        return random_split(clips, study_split_sizes(len(clips)), seed=STUDY_SPLIT_SEED,
                            order=study_file_order(clips))
    if split == "folds":
        if fold is None:
            raise ValueError("evaluation_split: split='folds' needs the test fold (fold=1..n_folds)")
        return fold_split(clips, test_fold=fold)
    raise ValueError(f"evaluation_split: split must be 'random' or 'folds', got {split!r}")


def pretraining_pool(escus: ClipSet, pool_size: int | None) -> FoldSplit:
    """The study's ESC-US pool: the first ``pool_size`` clips of :func:`study_file_order` (all when None; with the
    real layout and 50,000 clips, its folders 01-05), shuffled as its ``DataHandler`` did (seed 1337): the first 16
    to test, the next fifth of the pool to validation, the rest to training (39,984 + 10,000 + 16)."""
    if pool_size is not None and not 0 < pool_size <= len(escus):
        raise ValueError(f"pool_size={pool_size}, but {escus.name} at {escus.root} has {len(escus)} clips; expected "
                         f"1..{len(escus)} (or None for all)")
    pool = escus.subset(study_file_order(escus)[:pool_size])
    n_val = len(pool) // 5
    n_test = min(POOL_TEST_CLIPS, (len(pool) - n_val) // 4)
    return random_split(pool, (None, n_val, n_test), seed=STUDY_SPLIT_SEED)


def cae_inputs(clips: ClipSet, feature: CAEInput, *, progress: bool = True) -> np.ndarray:
    """The CAE input (``feature``) of every clip, ``(len(clips), 1, n_mels, frames)`` float32, computed once per
    clip set and feature configuration and cached on disk (:func:`esclib.data.cache.cached_features`)."""
    return cached_features(clips, feature, sample_rate=feature.logmel.sample_rate, samples=feature.samples,
                           shape=feature.shape, config={"feature": "CAEInput", "samples": feature.samples,
                                                        "logmel": repr(feature.logmel)},
                           name="cae-inputs", progress=progress)


def rows_of(part: ClipSet, whole: ClipSet) -> np.ndarray:
    """Row of each clip of ``part`` in ``whole`` (by ``clip_id``), to index features computed for ``whole``."""
    index = pd.Index(whole.table["clip_id"])
    rows = index.get_indexer(part.table["clip_id"])
    if (rows < 0).any():
        missing = part.table["clip_id"][rows < 0].tolist()[:5]
        raise KeyError(f"clips of {part.name} absent from {whole.name}: {missing}")
    return rows


# ----------------------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class InputRecipe(Recipe):
    """The study's input (Sec. 3; its code): a mel spectrogram of ``n_mels`` bands from an ``n_fft``-sample window
    every ``hop_length`` samples of the 5-s clip at 44.1 kHz (28, 12288, 6144: 1 x 28 x 36)."""

    n_mels: int
    n_fft: int
    hop_length: int

    @property
    def feature(self) -> CAEInput:
        """The :class:`~esclib.features.CAEInput` of this recipe."""
        return CAEInput(n_mels=self.n_mels, n_fft=self.n_fft, hop_length=self.hop_length)


@dataclass(frozen=True)
class PretrainRecipe(InputRecipe):
    """CAE pre-training (Sec. 4.2; its code): Adam ``lr``, ``batch_size``, ``filters`` per convolution, at most
    ``pretrain_epochs`` epochs with early stopping on the validation MSE after ``patience`` epochs without gain."""

    lr: float
    batch_size: int
    filters: int
    pretrain_epochs: int
    patience: int


@dataclass(frozen=True)
class FinetuneRecipe(PretrainRecipe):
    """Classifier training (Sec. 4.3; its code): the pre-training fields (the encoder it starts from), then at most
    ``finetune_epochs`` epochs on ``labelled_fraction`` of the training clips (class-balanced), with
    ``hidden_activation`` after Dense(128) (``linear`` as its code). ``selection`` says which clips pick the model
    (:func:`esclib.data.splits.selection_sets`); with a validation set, training stops after ``patience`` epochs
    without a gain in validation accuracy and keeps the best epoch's weights (``restore_best``) or, as the study's
    code (Keras 2.1's ``EarlyStopping``), the weights of the epoch it stopped at."""

    finetune_epochs: int
    labelled_fraction: float
    hidden_activation: str
    selection: str
    restore_best: bool

    def __post_init__(self) -> None:
        check_selection(self.selection, "FinetuneRecipe")

    @property
    def pretraining(self) -> PretrainRecipe:
        """The recipe of the autoencoder this classifier's encoder comes from."""
        return self.part(PretrainRecipe)


class CAEPretraining(Experiment):
    """Study 002's autoencoder pre-training on one ESC-US pool (see the module docstring)."""

    name = PRETRAIN_EXPERIMENT
    arms = ("cae-unpool", "cae-upsample")
    artifacts = ("autoencoder.pt",)
    version = 2

    def __init__(self, pool: FoldSplit, store, *, source: ClipSet | None = None, **kwargs: Any) -> None:
        """``pool``: :func:`pretraining_pool`; ``source``: the clip set it was drawn from, whose inputs are computed
        (once, cached) and indexed -- so that pools of several sizes share one feature cache (default: the pool)."""
        super().__init__(store, **kwargs)
        self.pool = pool
        self.pool_clips = ClipSet(pool.train.name, pool.train.root, (), 0, pool.train.clip_seconds,
                                  pd.concat([pool.train.table, pool.val.table, pool.test.table], ignore_index=True))
        self.source = source if source is not None else self.pool_clips
        self.split = Split({"train": pool.train, "val": pool.val, "test": pool.test}, kind="pool")
        self._inputs_cache: dict[tuple, np.ndarray] = {}

    def inputs(self) -> dict[str, Any]:
        return {"escus": dataset_identity(self.pool_clips, progress=self.progress)}

    def setting(self, arm: str, recipe: Recipe, split: Split) -> dict[str, Any]:
        return {"dataset": "escus", "pool_size": len(self.pool_clips), "batch_size": recipe.batch_size,
                "filters": recipe.filters}

    def pool_inputs(self, recipe: InputRecipe, side: str) -> np.ndarray:
        """CAE inputs of the pool's ``train``, ``val`` or ``test`` clips."""
        key = (recipe.n_mels, recipe.n_fft, recipe.hop_length)
        if key not in self._inputs_cache:
            self._inputs_cache[key] = cae_inputs(self.source, recipe.feature, progress=self.progress)
        return np.asarray(self._inputs_cache[key][rows_of(getattr(self.pool, side), self.source)])

    def train(self, ctx: RunContext, arm: str, recipe: PretrainRecipe, split: Split) -> dict[str, Any]:
        model = ConvAutoencoder(recipe.feature.shape[0], recipe.filters, KERNEL_SIZES, ARM_DECODER[arm])
        x_train, x_val = self.pool_inputs(recipe, "train"), self.pool_inputs(recipe, "val")
        history = ctx.fit(model, feature_loader(x_train, batch_size=recipe.batch_size, shuffle=True),
                          epochs=recipe.pretrain_epochs, optimizer=torch.optim.Adam(model.parameters(), lr=recipe.lr),
                          step_fn=reconstruction_step,
                          val_loader=feature_loader(x_val, batch_size=256), val_fn=reconstruction_loss,
                          early_stopping=EarlyStopping(recipe.patience, "val_loss", "min"))
        ctx.save_artifact("autoencoder.pt", model.state_dict())
        test = reconstruction_loss(model, feature_loader(self.pool_inputs(recipe, "test"), batch_size=256),
                                   self.device)
        return {"val_mse": history.best("val_loss")["val_loss"], "test_mse": test["val_loss"],
                "val_mse_mean_image": mean_image_mse(x_train, x_val), "stopped_early": history.stopped_early}

    def pretrained(self, arm: str, recipe: PretrainRecipe) -> tuple[ConvAutoencoder, dict]:
        """The autoencoder of ``arm`` (trained, or reloaded from its run) in eval mode, and its run's result."""
        result = self.run(arm, recipe, self.split)
        model = ConvAutoencoder(recipe.feature.shape[0], recipe.filters, KERNEL_SIZES, ARM_DECODER[arm])
        model.load_state_dict(torch.load(self.artifact(result, "autoencoder.pt"), map_location="cpu",
                                         weights_only=True))
        return model.eval(), result


def mean_image_mse(reference: np.ndarray, x: np.ndarray) -> float:
    """The reconstruction error of the laziest 'autoencoder', which outputs the mean input of ``reference`` whatever
    it is given: the MSE (over every bin) of that mean image on ``x`` -- the bar an autoencoder must clear."""
    return float(((np.asarray(x, dtype=np.float64) - np.asarray(reference, dtype=np.float64).mean(0)) ** 2).mean())


class CAEExperiment(Experiment):
    """Study 002's classifiers on one ESC-50 clip set, their encoders from :class:`CAEPretraining`."""

    name = EXPERIMENT
    arms = ARMS
    version = 2

    def __init__(self, esc50: ClipSet, pretraining: CAEPretraining, store, **kwargs: Any) -> None:
        super().__init__(store, **kwargs)
        self.esc50, self.pretraining = esc50, pretraining
        self._inputs_cache: dict[tuple, np.ndarray] = {}

    def inputs(self) -> dict[str, Any]:
        return {"esc50": dataset_identity(self.esc50, progress=self.progress)}

    def run_inputs(self, arm: str, recipe: FinetuneRecipe, split: Split) -> dict[str, Any]:
        if ARM_DECODER[arm] is None:
            return {}
        return {"encoder": self.pretraining.run(arm, recipe.pretraining, self.pretraining.split)["id"]}

    def setting(self, arm: str, recipe: FinetuneRecipe, split: Split) -> dict[str, Any]:
        return {"dataset": self.esc50.name, "split": "random" if split.kind == "random" else "folds",
                **({"fold": split.fold} if split.fold is not None else {}), "batch_size": recipe.batch_size,
                "filters": recipe.filters, "labelled_fraction": recipe.labelled_fraction,
                "selection": recipe.selection}

    def inputs_of(self, recipe: InputRecipe, part: ClipSet) -> np.ndarray:
        """CAE inputs of the clips of ``part`` (computed once for the whole ESC-50 clip set)."""
        key = (recipe.n_mels, recipe.n_fft, recipe.hop_length)
        if key not in self._inputs_cache:
            self._inputs_cache[key] = cae_inputs(self.esc50, recipe.feature, progress=self.progress)
        return np.asarray(self._inputs_cache[key][rows_of(part, self.esc50)])

    def split_of(self, kind: str, fold: int | None, labelled_fraction: float,
                 selection: str = "validation-fold") -> Split:
        """The run's clips: the study's random split or an official fold; its training clips cut to a class-balanced
        ``labelled_fraction`` (nested across fractions for one seed); then the clips it trains on and those that
        pick its model under ``selection`` (no ``val`` part under ``last``)."""
        split = evaluation_split(self.esc50, kind, fold)
        labelled = split.train
        if labelled_fraction < 1.0:
            labelled, _ = labelled_subset(labelled, fraction=labelled_fraction, seed=self.seed)
        train, val = selection_sets(selection, labelled, split.val, seed=self.seed)
        return Split({"train": train, **({"val": val} if val is not None else {}), "test": split.test}, split.kind,
                     split.test_fold)

    def classifier(self, arm: str, recipe: FinetuneRecipe) -> CAEClassifier:
        """The classifier ``arm`` starts fine-tuning from: its encoder the pre-trained one of ``arm``'s decoder (same
        recipe: input, batch size, filters), or random weights for ``supervised``."""
        feature = recipe.feature
        model = CAEClassifier(tuple(feature.shape[1:]), self.esc50.num_classes, in_channels=feature.shape[0],
                              filters=recipe.filters, kernel_sizes=KERNEL_SIZES, hidden=HIDDEN,
                              hidden_activation=recipe.hidden_activation, dropout=DROPOUT)
        if ARM_DECODER[self.check_arm(arm)] is not None:
            model.load_encoder(self.pretraining.pretrained(arm, recipe.pretraining)[0])
        return model

    def train(self, ctx: RunContext, arm: str, recipe: FinetuneRecipe, split: Split) -> dict[str, Any]:
        roles = [role for role in ("train", "val") if role in split.parts]
        for role in roles:
            assert_trainable(split.parts[role])
        model = self.classifier(arm, recipe)
        loaders = {role: feature_loader(self.inputs_of(recipe, split.parts[role]), split.parts[role].targets,
                                        batch_size=recipe.batch_size if role == "train" else 256,
                                        shuffle=role == "train")
                   for role in (*roles, "test")}
        has_val = "val" in loaders
        history = ctx.fit(model, loaders["train"], epochs=recipe.finetune_epochs,
                          optimizer=torch.optim.Adam(model.parameters(), lr=recipe.lr), loss_fn=F.cross_entropy,
                          val_loader=loaders.get("val"),
                          early_stopping=EarlyStopping(recipe.patience, "val_acc", "max") if has_val else None,
                          restore_best=recipe.restore_best)
        scores, targets = predict(model, loaders["test"], self.device)
        test = classification_metrics(targets, scores, self.esc50.num_classes)
        best = history.best("val_acc", "max") if has_val else history.epochs[-1]
        kept = best["epoch"] if has_val and recipe.restore_best else history.epochs[-1]["epoch"]
        return {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"], "auc": test.get("auc"),
                "val_acc": best.get("val_acc"), "best_epoch": best["epoch"], "kept_epoch": kept,
                "stopped_early": history.stopped_early, "n_train": len(split.train),
                "n_val": len(split.val) if has_val else 0,
                "n_labelled": len(split.train) + (len(split.val) if has_val and recipe.selection == "budgeted" else 0),
                "n_test": len(split.test)}

    def splits(self, random: bool, folds: Sequence[int]) -> list[tuple[str, int | None]]:
        """The evaluation splits of a chapter run: the study's random split (if ``random``) and each official fold."""
        return [("random", None)] * bool(random) + [("folds", int(f)) for f in folds]

    def run_grid(self, arms: Sequence[str], recipe: FinetuneRecipe, batch_sizes: Sequence[int],
                 filters: Sequence[int], splits: Sequence[tuple[str, int | None]],
                 labelled_fractions: Sequence[float] = (1.0,), selections: Sequence[str] | None = None,
                 desc: str = "CAE runs") -> Results:
        """Every (selection, batch size, filters, labelled fraction, split, arm) run (finished runs reused);
        ``selections`` default to the recipe's."""
        cells = [(arm, recipe.replace(batch_size=b, filters=f, labelled_fraction=p, selection=s),
                  self.split_of(kind, fold, p, s))
                 for s in (selections or (recipe.selection,)) for b in batch_sizes for f in filters
                 for p in labelled_fractions for kind, fold in splits for arm in arms]
        return self.grid(cells, desc=desc)


# ------------------------------------------------------------------------------------------------- tables
def unique_runs(*groups: Results) -> Results:
    """The runs of several grids together, each run once (grids that share a cell return the same run twice)."""
    seen: dict[str, dict] = {}
    for group in groups:
        for result in group:
            seen.setdefault(result["id"], result)
    return Results(seen.values())


#: what tells one configuration of a chapter run from another (the folds are its repeats)
CONFIGURATION = ("selection", "filters", "batch_size", "labelled_fraction")


def paired_table(results: Results, a: str = "supervised", b: str = "cae-unpool",
                 by: Sequence[str] = CONFIGURATION) -> pd.DataFrame:
    """``b - a`` test accuracy per configuration (``by``): over the official folds as a paired difference with its
    bootstrap interval (:meth:`Results.paired`; ``folds higher``: the folds on which ``b`` scored higher), and on
    the study's random split as the single difference it gives (empty where the runs lack it). Configurations where
    either arm has no run are left out."""
    frame = results.frame()
    columns = ["comparison", *by, "folds", "mean difference", "95% interval", "folds higher",
               "inside the noise", "random split"]
    if frame.empty or not {a, b} <= set(frame["arm"]):
        return pd.DataFrame(columns=columns)
    rows = []
    for values, group in frame.groupby(list(by), sort=True):
        keys = dict(zip(by, values if isinstance(values, tuple) else (values,)))
        if not {a, b} <= set(group["arm"]):
            continue
        row: dict[str, Any] = {"comparison": f"{b} − {a}", **keys}
        folds = results.select(split="folds", **keys)
        if {a, b} <= {r["arm"] for r in folds}:
            row.update({("folds higher" if k == f"folds {b} higher" else k): v
                        for k, v in folds.paired(a, b).row().items() if k not in ("comparison", "metric")})
        single = group[group["split"] == "random"].set_index("arm")["accuracy"]
        row["random split"] = round(float(single[b] - single[a]), 3) if {a, b} <= set(single.index) else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)


def selection_table(results: Results, a: str = "supervised", b: str = "cae-unpool") -> pd.DataFrame:
    """The effect of ``selection`` (issue "methods as published"; Oliver et al. 2018): per selection and labelled
    fraction, each arm's test accuracy (mean ± sd over the official folds), the epoch whose weights were tested,
    the clips that trained and that picked the model, and ``b - a`` with its bootstrap interval."""
    frame = results.select(split="folds").frame()
    if frame.empty:
        return pd.DataFrame()
    rows = []
    for (selection, fraction), group in frame.groupby(["selection", "labelled_fraction"], sort=False):
        row: dict[str, Any] = {"selection": selection, "labelled fraction": fraction,
                               "labelled clips": round(group["n_labelled"].mean()),
                               "training clips": round(group["n_train"].mean()),
                               "clips picking the model": round(group["n_val"].mean())}
        for arm in (a, b):
            acc = group.loc[group["arm"] == arm, "accuracy"]
            if len(acc):
                row[f"{arm} accuracy"] = f"{acc.mean():.3f} ± {acc.std():.3f}" if len(acc) > 1 else f"{acc.mean():.3f}"
        row["epoch kept (mean)"] = round(group["kept_epoch"].mean(), 1)
        if {a, b} <= set(group["arm"]):
            diff = results.select(split="folds", selection=selection, labelled_fraction=fraction).paired(a, b)
            row[f"{b} − {a}"] = f"{diff.mean:+.3f} [{diff.low:+.3f}, {diff.high:+.3f}]"
        rows.append(row)
    order = {s: i for i, s in enumerate(SELECTIONS)}
    return (pd.DataFrame(rows).sort_values(["labelled fraction", "selection"], key=lambda c: c.map(order)
                                           if c.name == "selection" else c).reset_index(drop=True))


def accuracy_table(results: Results) -> pd.DataFrame:
    """Test accuracy per arm and configuration: mean ± sd over the official folds and the single run on the study's
    random split side by side, with the study's published number for that setting and its protocol (Table 1:
    one random split, no repetition) beside it."""
    frame = results.frame()
    if frame.empty:
        return pd.DataFrame()
    rows = []
    for (arm, batch_size, filters, fraction), group in frame.groupby(["arm", "batch_size", "filters",
                                                                     "labelled_fraction"], sort=False):
        folds, single = group[group["split"] == "folds"]["accuracy"], group[group["split"] == "random"]["accuracy"]
        published = study_value(EXPERIMENT, arm, "accuracy", {"dataset": "esc50", "split": "random",
                                                             "batch_size": batch_size, "labelled_fraction": fraction})
        rows.append({"arm": arm, "batch size": batch_size, "filters": filters, "labelled fraction": fraction,
                     "official folds": (f"{folds.mean():.3f} ± {folds.std():.3f} ({len(folds)} folds)"
                                        if len(folds) > 1 else (f"{folds.mean():.3f}" if len(folds) else "")),
                     "random split": f"{single.iloc[0]:.3f}" if len(single) else "",
                     "study 002": f"{published.value:.3f}" if published else "",
                     "study's protocol": (f"{published.study.source}: {published.study.protocol}"
                                          + (f"; {published.note}" if published.note else "")) if published else ""})
    return pd.DataFrame(rows)


def comparison_frame(results: Results) -> pd.DataFrame:
    """Our test accuracies (one row per run) and the study's Table 1 numbers for the same arms and batch sizes, in
    one long table with a ``source`` column, for a side-by-side figure."""
    runs = results.frame()
    if runs.empty:
        return pd.DataFrame(columns=["arm", "batch_size", "accuracy", "source"])
    ours = runs.assign(source=runs["split"].map({"random": "this run: random split",
                                                 "folds": "this run: official folds"}))
    study = []
    for arm in runs["arm"].unique():
        for b in sorted(runs["batch_size"].unique()):
            v = study_value(EXPERIMENT, arm, "accuracy", {"dataset": "esc50", "split": "random", "batch_size": b,
                                                          "labelled_fraction": 1.0})
            if v is not None and "batch_size" in v.setting:
                study.append({"arm": arm, "batch_size": b, "accuracy": v.value,
                              "source": "study 002: random split (Table 1)"})
    return pd.concat([ours[["arm", "batch_size", "accuracy", "source"]], pd.DataFrame(study)], ignore_index=True)


def labelled_equivalent(curve: Results | pd.DataFrame, pretrained: str = "cae-unpool",
                        scratch: str = "supervised") -> pd.DataFrame:
    """How many labelled clips the pre-training is worth: for each point of the ``pretrained`` arm's curve, the
    number of labelled clips at which the ``scratch`` arm's curve (linear between its measured points) first reaches
    the same accuracy; NaN when it never does within the measured range, and its fewest measured clips (an upper
    bound, said in ``note``) when it is already there.

    ``curve``: the runs (or one row per run with ``arm``, ``labelled_fraction``, ``n_labelled`` and ``accuracy``);
    runs of one arm and fraction (folds, seeds) are averaged first.
    """
    if isinstance(curve, Results):
        curve = curve.frame()
    mean = curve.groupby(["arm", "labelled_fraction"])[["n_labelled", "accuracy"]].mean()
    for arm in (pretrained, scratch):
        if arm not in mean.index.get_level_values("arm"):
            raise ValueError(f"labelled_equivalent: the curve has no runs of arm {arm!r}")
    n_ref, acc_ref = mean.loc[scratch, "n_labelled"].to_numpy(), mean.loc[scratch, "accuracy"].to_numpy()
    rows = []
    for fraction, (n, acc) in mean.loc[pretrained].iterrows():
        needed, note = (n_ref[0], f"{scratch} is there at its fewest clips: an upper bound") \
            if acc <= acc_ref[0] else (np.nan, f"{scratch} never gets there")
        for n0, n1, a0, a1 in zip(n_ref, n_ref[1:], acc_ref, acc_ref[1:]):
            if np.isnan(needed) and a0 < acc <= a1:
                needed, note = n0 + (acc - a0) / (a1 - a0) * (n1 - n0), ""
        rows.append({"labelled_fraction": fraction, "labelled_clips": n, f"{pretrained} accuracy": acc,
                     f"{scratch} clips for it": needed, "worth (x labelled clips)": needed / n, "note": note})
    return pd.DataFrame(rows)


# -------------------------------------------------------------------------------------------- diagnostics
@torch.no_grad()
def encoder_codes(encoder: CAEEncoder, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The flattened codes ``(N, f * h * w)`` of the inputs ``x`` (``(N, C, H, W)``) under ``encoder``."""
    encoder.eval()
    return np.concatenate([encoder(torch.as_tensor(np.asarray(x[i:i + batch_size], dtype=np.float32))).flatten(1)
                           .numpy() for i in range(0, len(x), batch_size)])


def probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """Test accuracy of a linear probe: standardised features, multinomial logistic regression (scikit-learn,
    L2 penalty C = 1) fitted on the training features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(train_x.reshape(len(train_x), -1), train_y)
    return float((probe.predict(test_x.reshape(len(test_x), -1)) == test_y).mean())


def encoder_probe(experiment: CAEExperiment, recipe: FinetuneRecipe, arms: Sequence[str],
                  splits: Sequence[tuple[str, int | None]], labelled_fractions: Sequence[float] = (1.0,)
                  ) -> pd.DataFrame:
    """What each encoder knows before fine-tuning: per split and labelled fraction, the test accuracy of a linear
    probe (:func:`probe_accuracy`) on the frozen codes of each arm's starting encoder (pre-trained, or random for
    ``supervised``, drawn from the chapter's seed) and, as a reference, on the input itself (``input``)."""
    rows = []
    with torch.random.fork_rng():
        torch.manual_seed(experiment.seed)
        encoders = {arm: experiment.classifier(arm, recipe).encoder for arm in arms}
    for kind, fold in splits:
        split = evaluation_split(experiment.esc50, kind, fold)
        x_test, y_test = experiment.inputs_of(recipe, split.test), split.test.targets
        for fraction in labelled_fractions:
            train = split.train if fraction >= 1.0 else labelled_subset(split.train, fraction=fraction,
                                                                         seed=experiment.seed)[0]
            x_train, y_train = experiment.inputs_of(recipe, train), train.targets
            where = {"split": kind, "fold": fold, "labelled_fraction": fraction}
            rows.append({**where, "features": "input", "accuracy": probe_accuracy(x_train, y_train, x_test, y_test)})
            for arm, encoder in encoders.items():
                rows.append({**where, "features": f"{arm} encoder",
                             "accuracy": probe_accuracy(encoder_codes(encoder, x_train), y_train,
                                                        encoder_codes(encoder, x_test), y_test)})
    return pd.DataFrame(rows)


def probe_summary(probe: pd.DataFrame, reference: str = "supervised encoder") -> pd.DataFrame:
    """:func:`encoder_probe` over the official folds: mean ± sd probe accuracy per features and labelled fraction,
    and each features' paired difference from ``reference`` (the random encoder) with its bootstrap interval."""
    folds = probe[probe["split"] == "folds"]
    rows = []
    for (fraction, features), group in folds.groupby(["labelled_fraction", "features"], sort=False):
        ref = folds[(folds["labelled_fraction"] == fraction) & (folds["features"] == reference)]
        diff = group.set_index("fold")["accuracy"] - ref.set_index("fold")["accuracy"]
        low, high = bootstrap_interval(diff.to_numpy())
        rows.append({"labelled fraction": fraction, "features": features,
                     "probe accuracy": f"{group['accuracy'].mean():.3f} ± {group['accuracy'].std():.3f}",
                     f"− {reference}": "" if features == reference else
                     f"{diff.mean():+.3f} [{low:+.3f}, {high:+.3f}]"})
    return pd.DataFrame(rows)


def probe_numbers(probe: pd.DataFrame, fraction: float = 1.0) -> dict[str, float | str]:
    """The probe accuracies the prose quotes (official folds, ``fraction`` of the labels): ``probe_<features>``
    (``input``, ``supervised``, ``cae-unpool``, ``cae-upsample``: mean over folds) and, for each pre-trained
    encoder, how its code compares with the random encoder's, fold by fold with a bootstrap interval
    (``probe_vs_<arm>``: ``better than`` / ``worse than`` / ``no better than``; NaN and ``not measured`` when
    missing)."""
    folds = probe[(probe["split"] == "folds") & (probe["labelled_fraction"] == fraction)]
    by = folds.pivot_table(index="fold", columns="features", values="accuracy") if len(folds) else pd.DataFrame()
    numbers: dict[str, float | str] = {}
    for name in ("input", *ARMS):
        column = name if name == "input" else f"{name} encoder"
        numbers[f"probe_{name}"] = float(by[column].mean()) if column in by else float("nan")
    for arm in ("cae-unpool", "cae-upsample"):
        words = "not measured"
        if {f"{arm} encoder", "supervised encoder"} <= set(by.columns):
            low, high = bootstrap_interval((by[f"{arm} encoder"] - by["supervised encoder"]).to_numpy())
            words = "better than" if low > 0 else "worse than" if high < 0 else "no better than"
        numbers[f"probe_vs_{arm}"] = words
    return numbers


def code_scale(experiment: CAEExperiment, recipe: FinetuneRecipe, arms: Sequence[str]) -> pd.DataFrame:
    """The size of the code each arm's starting encoder hands the fresh Dense(128) layer, over every ESC-50 clip:
    its root mean square and its largest absolute value (random encoders drawn from the chapter's seed)."""
    x = experiment.inputs_of(recipe, experiment.esc50)
    with torch.random.fork_rng():
        torch.manual_seed(experiment.seed)
        encoders = {arm: experiment.classifier(arm, recipe).encoder for arm in arms}
    rows = []
    for arm, encoder in encoders.items():
        codes = encoder_codes(encoder, x)
        rows.append({"encoder": arm, "code RMS": float(np.sqrt((codes ** 2).mean())),
                     "largest |code|": float(np.abs(codes).max()), "input RMS": float(np.sqrt((x ** 2).mean()))})
    return pd.DataFrame(rows)


def start_of_training(results: Results) -> pd.DataFrame:
    """How each arm's fine-tuning began, per labelled fraction (mean over its runs): the training loss of the first
    epoch, the validation accuracy after it and after the third, and the epochs run (from the stored curves)."""
    rows = []
    for result in results:
        curve = result.get("curves") or []
        if not curve or "val_acc" not in curve[0]:
            continue
        rows.append({"arm": result["arm"], "labelled fraction": result["setting"]["labelled_fraction"],
                     "first-epoch loss": curve[0]["loss"], "val. accuracy after epoch 1": curve[0]["val_acc"],
                     "after epoch 3": curve[min(2, len(curve) - 1)]["val_acc"], "epochs run": len(curve)})
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).groupby(["labelled fraction", "arm"], sort=False).mean().round(3).reset_index()


def pool_ablation(escus: ClipSet, pool_sizes: Sequence[int], experiment: CAEExperiment, recipe: FinetuneRecipe,
                  splits: Sequence[tuple[str, int | None]], arm: str = "cae-unpool") -> pd.DataFrame:
    """Pre-training on pools of ``pool_sizes`` ESC-US clips (:func:`pretraining_pool`, the same recipe, runs of
    the results store), then :func:`encoder_probe` of the encoder on ``splits``: one row per pool size with the
    reconstruction error on its validation clips, the mean image's, and the probe accuracy over the splits."""
    rows = []
    for size in pool_sizes:
        pretraining = CAEPretraining(pretraining_pool(escus, int(size)), experiment.store, source=escus,
                                     profile=experiment.profile, seed=experiment.seed, device=experiment.device,
                                     progress=False)
        result = pretraining.pretrained(arm, recipe.pretraining)[1]["metrics"]
        probed = CAEExperiment(experiment.esc50, pretraining, experiment.store, profile=experiment.profile,
                               seed=experiment.seed, device=experiment.device, progress=False)
        probe = encoder_probe(probed, recipe, [arm], splits)
        accuracy = probe.loc[probe["features"] == f"{arm} encoder", "accuracy"]
        rows.append({"pool size": len(pretraining.pool_clips), "training clips": len(pretraining.pool.train),
                     "epochs": result["epochs"], "validation MSE": result["val_mse"],
                     "mean-image MSE": result["val_mse_mean_image"],
                     "variance explained": 1 - result["val_mse"] / result["val_mse_mean_image"],
                     "probe accuracy": accuracy.mean(), "probe sd": accuracy.std()})
    return pd.DataFrame(rows).sort_values("pool size").reset_index(drop=True)


@torch.no_grad()
def reconstruct(model: ConvAutoencoder, x: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """The autoencoder's reconstructions of the inputs ``x`` (``(N, C, H, W)``), as a numpy array."""
    model.eval().to(device)
    return model(torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)).cpu().numpy()


# ----------------------------------------------------------------------------------- numbers for the prose
def effect_words(low: float, high: float) -> str:
    """What an interval ``[low, high]`` of a difference ``b - a`` says about ``b``: ``helps``, ``hurts`` or ``makes
    no difference the folds can detect`` (``not measured`` for NaN)."""
    if np.isnan(low) or np.isnan(high):
        return "not measured"
    return "helps" if low > 0 else "hurts" if high < 0 else "makes no difference the folds can detect"


def difference_numbers(name: str, results: Results, a: str, b: str, **where: Any) -> dict[str, float | str]:
    """The numbers the chapter's prose quotes about ``b - a`` (runs selected by ``where``): on the official folds
    the mean difference (``name``), its 95 % bootstrap interval (``name_low``, ``name_high``), on how many folds
    ``b`` was higher (``name_higher``), a verdict (``name_verdict``) and :func:`effect_words` (``name_effect``); on
    the study's random split its single difference (``name_random``). NaN and "not run" where an arm or a split is
    missing."""
    nan = float("nan")
    numbers: dict[str, float | str] = {name: nan, f"{name}_low": nan, f"{name}_high": nan, f"{name}_random": nan,
                                       f"{name}_higher": "no fold", f"{name}_verdict": f"not run ({a} or {b} missing)",
                                       f"{name}_effect": "not measured"}
    folds = results.select(split="folds", **where)
    if {a, b} <= {r["arm"] for r in folds}:
        diff = folds.paired(a, b)
        numbers.update({name: diff.mean, f"{name}_low": diff.low, f"{name}_high": diff.high,
                        f"{name}_higher": f"{diff.favour_b} of {len(diff.per_fold)}",
                        f"{name}_verdict": ("inside the fold noise" if diff.inside_noise
                                            else f"clearly {'above' if diff.low > 0 else 'below'} zero"),
                        f"{name}_effect": effect_words(diff.low, diff.high)})
    single = {r["arm"]: r["metrics"]["accuracy"] for r in results.select(split="random", **where)}
    if {a, b} <= set(single):
        numbers[f"{name}_random"] = single[b] - single[a]
    return numbers


def curve_story(results: Results, a: str = "supervised", b: str = "cae-unpool") -> str:
    """One phrase per labelled fraction of ``results`` (official folds): ``b - a`` and :func:`effect_words`, e.g.
    "25 % of the labels: -0.185 (hurts); 100 %: -0.028 (makes no difference the folds can detect)"."""
    fractions = sorted({r["setting"]["labelled_fraction"] for r in results.select(split="folds")})
    parts = []
    for fraction in fractions:
        numbers = difference_numbers("d", results, a, b, labelled_fraction=fraction)
        if not np.isnan(numbers["d"]):
            parts.append(f"{fraction:.0%}{' of the labels' if not parts else ''}: {numbers['d']:+.3f} "
                         f"({numbers['d_effect']})")
    return "; ".join(parts) or "not run"


def mean_accuracy(results: Results, arm: str, metric: str = "accuracy", **where: Any) -> float:
    """Mean ``metric`` of ``arm``'s runs on the official folds that match ``where`` (NaN when there are none)."""
    values = [r["metrics"][metric] for r in results.select(split="folds", arm=arm, **where)]
    return float(np.mean(values)) if values else float("nan")


def glue_numbers(numbers: dict[str, Any]) -> None:
    """Glue every value of ``numbers`` under its name for the prose (``myst_nb.glue``, not displayed)."""
    from myst_nb import glue

    for name, value in numbers.items():
        glue(name, value, display=False)
