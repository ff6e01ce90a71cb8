"""Chapter 03's experiment (study 002, Jensen & Pethick, DTU): CAE pre-training on ESC-US, fine-tuning on ESC-50.

Notebook: 03_cae. Two experiments on the foundation of :mod:`esclib.experiments.base`:

1. :class:`CAEPretraining` (results-store experiment ``cae_pretrain``, arms ``cae-unpool`` / ``cae-upsample``) --
   the autoencoder (:class:`esclib.models.cae.ConvAutoencoder`, unpooling or upsampling decoder) trained on the
   ESC-US pool with the mean squared reconstruction error, Adam, early stopping on the validation loss (patience 5,
   at most 50 epochs; Sec. 4.2). Its weights are kept with the run (an artifact the classifiers load).
2. :class:`CAEExperiment` (experiment ``cae``, arms ``supervised`` / ``cae-unpool`` / ``cae-upsample``) -- the
   classifier (:class:`esclib.models.cae.CAEClassifier`) from the pre-trained encoder or at random, early stopping
   on the validation accuracy (patience 5, at most 150 epochs), tested on the study's random split (seed 1337,
   1,280 / 320 / 400) or an official ESC-50 fold, on all or a class-balanced fraction of the training clips. A
   pre-trained arm's identity includes the identity of the pre-training run it starts from.

The inputs -- the study's 1x28x36 log-mel (:class:`esclib.features.CAEInput`) of every clip -- are computed once per
clip set and feature configuration and cached (:func:`esclib.data.cache.cached_features`).
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
from esclib.data.splits import FoldSplit, assert_trainable, fold_split, labelled_subset, random_split
from esclib.experiments.base import Experiment, Recipe, RunContext, Split
from esclib.features import CAEInput
from esclib.metrics import classification_metrics
from esclib.models.cae import CAEClassifier, ConvAutoencoder
from esclib.results.studies import study_value
from esclib.results.summary import Results
from esclib.train import EarlyStopping, predict
from esclib.train.steps import reconstruction_loss, reconstruction_step

EXPERIMENT = "cae"
PRETRAIN_EXPERIMENT = "cae_pretrain"
#: arms of the results store (``esclib.results.studies``) and the decoder each pre-trains with (None: no pre-training)
ARM_DECODER: dict[str, str | None] = {"supervised": None, "cae-unpool": "unpool", "cae-upsample": "upsample"}
ARMS: tuple[str, ...] = tuple(ARM_DECODER)
#: the study's random split of ESC-50: seed and (train, val, test) fractions (1,280 / 320 / 400 of 2,000 clips)
STUDY_SPLIT_SEED = 1337
STUDY_SPLIT_FRACTIONS = (0.64, 0.16, 0.20)
#: the study's ESC-US hold-out: 10,000 of its 50,000 clips for validation, 16 for test (Fig. 1)
POOL_VAL_FRACTION = 0.2
POOL_TEST_CLIPS = 16
#: the study's architecture: encoder kernels (f)5c-2p-(f)3c-2p-(f)3c-2p, Dense(128), no dropout in its final runs
KERNEL_SIZES = (5, 3, 3)
HIDDEN = 128
DROPOUT = 0.0


# --------------------------------------------------------------------------------------------------- data
def study_split_sizes(n_clips: int) -> tuple[int, int, int]:
    """(train, val, test) sizes of the study's random split scaled to ``n_clips`` (1280/320/400 for 2,000)."""
    n_val, n_test = round(STUDY_SPLIT_FRACTIONS[1] * n_clips), round(STUDY_SPLIT_FRACTIONS[2] * n_clips)
    return n_clips - n_val - n_test, n_val, n_test


def evaluation_split(clips: ClipSet, split: str, fold: int | None = None) -> FoldSplit:
    """The study's random split (``split="random"``: seed 1337, sizes :func:`study_split_sizes`) or the official
    folds (``split="folds"``: test ``fold``, validation the next fold, training the rest)."""
    if split == "random":
        return random_split(clips, study_split_sizes(len(clips)), seed=STUDY_SPLIT_SEED)
    if split == "folds":
        if fold is None:
            raise ValueError("evaluation_split: split='folds' needs the test fold (fold=1..n_folds)")
        return fold_split(clips, test_fold=fold)
    raise ValueError(f"evaluation_split: split must be 'random' or 'folds', got {split!r}")


def pretraining_pool(escus: ClipSet, pool_size: int | None) -> FoldSplit:
    """The first ``pool_size`` ESC-US clips in path order (all when None) -- with the real layout and 50,000 clips,
    its folders 01-05, as the study -- split at random (seed 1337) into training, 20 % validation and 16 test clips
    (the study's 50,000 = 39,984 + 10,000 + 16)."""
    if pool_size is not None and not 0 < pool_size <= len(escus):
        raise ValueError(f"pool_size={pool_size}, but {escus.name} at {escus.root} has {len(escus)} clips; expected "
                         f"1..{len(escus)} (or None for all)")
    order = np.argsort(escus.table["path"].to_numpy(), kind="stable")[:pool_size]
    pool = escus.subset(np.sort(order))
    n_val = round(POOL_VAL_FRACTION * len(pool))
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
    ``finetune_epochs`` epochs with early stopping on the validation accuracy, on ``labelled_fraction`` of the
    training clips (class-balanced), with ``hidden_activation`` after Dense(128) (``linear`` as its code)."""

    finetune_epochs: int
    labelled_fraction: float
    hidden_activation: str

    @property
    def pretraining(self) -> PretrainRecipe:
        """The recipe of the autoencoder this classifier's encoder comes from."""
        return PretrainRecipe(**{f: getattr(self, f) for f in PretrainRecipe.__dataclass_fields__})


class CAEPretraining(Experiment):
    """Study 002's autoencoder pre-training on one ESC-US pool (see the module docstring)."""

    name = PRETRAIN_EXPERIMENT
    arms = ("cae-unpool", "cae-upsample")
    artifacts = ("autoencoder.pt",)

    def __init__(self, pool: FoldSplit, store, **kwargs: Any) -> None:
        super().__init__(store, **kwargs)
        self.pool = pool
        self.pool_clips = ClipSet(pool.train.name, pool.train.root, (), 0, pool.train.clip_seconds,
                                  pd.concat([pool.train.table, pool.val.table, pool.test.table], ignore_index=True))
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
            self._inputs_cache[key] = cae_inputs(self.pool_clips, recipe.feature, progress=self.progress)
        return np.asarray(self._inputs_cache[key][rows_of(getattr(self.pool, side), self.pool_clips)])

    def train(self, ctx: RunContext, arm: str, recipe: PretrainRecipe, split: Split) -> dict[str, Any]:
        model = ConvAutoencoder(recipe.feature.shape[0], recipe.filters, KERNEL_SIZES, ARM_DECODER[arm])
        history = ctx.fit(model, feature_loader(self.pool_inputs(recipe, "train"), batch_size=recipe.batch_size,
                                                shuffle=True),
                          epochs=recipe.pretrain_epochs, optimizer=torch.optim.Adam(model.parameters(), lr=recipe.lr),
                          step_fn=reconstruction_step,
                          val_loader=feature_loader(self.pool_inputs(recipe, "val"), batch_size=256),
                          val_fn=reconstruction_loss,
                          early_stopping=EarlyStopping(recipe.patience, "val_loss", "min"))
        torch.save(model.state_dict(), ctx.artifact("autoencoder.pt"))
        test = reconstruction_loss(model, feature_loader(self.pool_inputs(recipe, "test"), batch_size=256),
                                   self.device)
        return {"val_mse": history.best("val_loss")["val_loss"], "test_mse": test["val_loss"],
                "stopped_early": history.stopped_early}

    def pretrained(self, arm: str, recipe: PretrainRecipe) -> tuple[ConvAutoencoder, dict]:
        """The autoencoder of ``arm`` (trained, or reloaded from its run) in eval mode, and its run's result."""
        result = self.run(arm, recipe, self.split)
        model = ConvAutoencoder(recipe.feature.shape[0], recipe.filters, KERNEL_SIZES, ARM_DECODER[arm])
        model.load_state_dict(torch.load(self.artifact(result, "autoencoder.pt"), map_location="cpu",
                                         weights_only=True))
        return model.eval(), result


class CAEExperiment(Experiment):
    """Study 002's classifiers on one ESC-50 clip set, their encoders from :class:`CAEPretraining`."""

    name = EXPERIMENT
    arms = ARMS

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
                "filters": recipe.filters, "labelled_fraction": recipe.labelled_fraction}

    def inputs_of(self, recipe: InputRecipe, part: ClipSet) -> np.ndarray:
        """CAE inputs of the clips of ``part`` (computed once for the whole ESC-50 clip set)."""
        key = (recipe.n_mels, recipe.n_fft, recipe.hop_length)
        if key not in self._inputs_cache:
            self._inputs_cache[key] = cae_inputs(self.esc50, recipe.feature, progress=self.progress)
        return np.asarray(self._inputs_cache[key][rows_of(part, self.esc50)])

    def split_of(self, kind: str, fold: int | None, labelled_fraction: float) -> Split:
        """The run's clips: the study's random split or an official fold, its training clips cut to a class-balanced
        ``labelled_fraction`` (nested across fractions for one seed)."""
        split = evaluation_split(self.esc50, kind, fold)
        train = split.train
        if labelled_fraction < 1.0:
            train, _ = labelled_subset(train, fraction=labelled_fraction, seed=self.seed)
        return Split({"train": train, "val": split.val, "test": split.test}, split.kind, split.test_fold)

    def train(self, ctx: RunContext, arm: str, recipe: FinetuneRecipe, split: Split) -> dict[str, Any]:
        assert_trainable(split.train)
        assert_trainable(split.val)
        feature = recipe.feature
        model = CAEClassifier(tuple(feature.shape[1:]), self.esc50.num_classes, in_channels=feature.shape[0],
                              filters=recipe.filters, kernel_sizes=KERNEL_SIZES, hidden=HIDDEN,
                              hidden_activation=recipe.hidden_activation, dropout=DROPOUT)
        if ARM_DECODER[arm] is not None:
            model.load_encoder(self.pretraining.pretrained(arm, recipe.pretraining)[0])
        loaders = {role: feature_loader(self.inputs_of(recipe, split.parts[role]), split.parts[role].targets,
                                        batch_size=recipe.batch_size if role == "train" else 256,
                                        shuffle=role == "train")
                   for role in ("train", "val", "test")}
        history = ctx.fit(model, loaders["train"], epochs=recipe.finetune_epochs,
                          optimizer=torch.optim.Adam(model.parameters(), lr=recipe.lr), loss_fn=F.cross_entropy,
                          val_loader=loaders["val"], early_stopping=EarlyStopping(recipe.patience, "val_acc", "max"))
        scores, targets = predict(model, loaders["test"], self.device)
        test = classification_metrics(targets, scores, self.esc50.num_classes)
        best = history.best("val_acc", "max")
        return {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"], "auc": test.get("auc"),
                "val_acc": best["val_acc"], "best_epoch": best["epoch"], "stopped_early": history.stopped_early,
                "n_train": len(split.train), "n_test": len(split.test)}

    def splits(self, random: bool, folds: Sequence[int]) -> list[tuple[str, int | None]]:
        """The evaluation splits of a chapter run: the study's random split (if ``random``) and each official fold."""
        return [("random", None)] * bool(random) + [("folds", int(f)) for f in folds]

    def run_grid(self, arms: Sequence[str], recipe: FinetuneRecipe, batch_sizes: Sequence[int],
                 filters: Sequence[int], splits: Sequence[tuple[str, int | None]],
                 labelled_fractions: Sequence[float] = (1.0,)) -> Results:
        """Every (arm, batch size, filters, split, labelled fraction) run (finished runs reused)."""
        cells = [(arm, recipe.replace(batch_size=b, filters=f, labelled_fraction=p), self.split_of(kind, fold, p))
                 for b in batch_sizes for f in filters for kind, fold in splits for p in labelled_fractions
                 for arm in arms]
        return self.grid(cells, desc="CAE runs")


# ------------------------------------------------------------------------------------------------- tables
def comparison_frame(results: Results) -> pd.DataFrame:
    """Our test accuracies (one row per run) and the study's Table 1 numbers for the same arms and batch sizes, in
    one long table with a ``source`` column, for a side-by-side figure."""
    runs = results.frame()
    ours = runs.assign(source=runs["split"].map({"random": "this run: random split",
                                                 "folds": "this run: official folds"}))
    study = []
    for arm in runs["arm"].unique():
        for b in sorted(runs["batch_size"].unique()):
            v = study_value(EXPERIMENT, arm, "accuracy", {"dataset": "esc50", "split": "random", "batch_size": b})
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

    ``curve``: the runs (or one row per run with ``arm``, ``labelled_fraction``, ``n_train`` and ``accuracy``); runs of
    one arm and fraction (folds, seeds) are averaged first.
    """
    if isinstance(curve, Results):
        curve = curve.frame()
    mean = curve.groupby(["arm", "labelled_fraction"])[["n_train", "accuracy"]].mean()
    for arm in (pretrained, scratch):
        if arm not in mean.index.get_level_values("arm"):
            raise ValueError(f"labelled_equivalent: the curve has no runs of arm {arm!r}")
    n_ref, acc_ref = mean.loc[scratch, "n_train"].to_numpy(), mean.loc[scratch, "accuracy"].to_numpy()
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


# ------------------------------------------------------------------------------------------------ figures
@torch.no_grad()
def reconstruct(model: ConvAutoencoder, x: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """The autoencoder's reconstructions of the inputs ``x`` (``(N, C, H, W)``), as a numpy array."""
    model.eval().to(device)
    return model(torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)).cpu().numpy()


def plot_reconstructions(inputs: np.ndarray, reconstructions: dict[str, np.ndarray],
                         titles: Sequence[str] | None = None):
    """Study 002's Fig. 1: the inputs (top row) and each decoder's reconstructions below, one clip per column, on
    the inputs' colour scale."""
    import matplotlib.pyplot as plt

    rows = {"input": inputs, **{f"{name}\nreconstruction": r for name, r in reconstructions.items()}}
    n = len(inputs)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.9 * n + 1.2, 1.7 * len(rows)), squeeze=False,
                             sharex=True, sharey=True, layout="constrained")
    lo, hi = float(np.min(inputs)), float(np.max(inputs))
    for r, (name, images) in enumerate(rows.items()):
        for c in range(n):
            image = axes[r, c].imshow(images[c, 0], origin="lower", aspect="auto", cmap="magma", vmin=lo, vmax=hi)
            axes[r, c].grid(False)
        axes[r, 0].set_ylabel(f"{name}\nmel band")
    for c in range(n):
        axes[-1, c].set_xlabel("frame")
        if titles is not None:
            axes[0, c].set_title(titles[c], fontsize="small")
    fig.colorbar(image, ax=axes, label="dB relative to the clip's maximum")
    fig.suptitle("CAE inputs and their reconstructions (held-out ESC-US clips)")
    return fig


def plot_pretraining_curves(histories: dict[str, pd.DataFrame]):
    """Training and validation reconstruction error per epoch of each autoencoder (log scale)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    long = pd.concat([h.melt(id_vars="epoch", value_vars=["loss", "val_loss"], var_name="set", value_name="mse")
                      .assign(decoder=name) for name, h in histories.items()], ignore_index=True)
    long["set"] = long["set"].map({"loss": "training", "val_loss": "validation"})
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    sns.lineplot(long, x="epoch", y="mse", hue="decoder", style="set", markers=True, ax=ax)
    ax.set(yscale="log", xlabel="epoch", ylabel="reconstruction MSE (dB²)",
           title="CAE pre-training on ESC-US: reconstruction error")
    return fig


def plot_label_curve(curve: Results):
    """Test accuracy against the fraction of labelled training clips, one line per arm and split kind (mean ± sd
    over the official folds)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    curve = curve.frame()
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    sns.lineplot(curve, x="labelled_fraction", y="accuracy", hue="arm", style="split", markers=True, errorbar="sd",
                 ax=ax)
    ax.set(xlabel="fraction of the training clips labelled", ylabel="test accuracy",
           title="ESC-50: CAE pre-training vs random initialisation")
    return fig
