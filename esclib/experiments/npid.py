"""Chapter 04's experiment (study 004, DLS): NPID pre-training of an ESResNet, kNN evaluation, fine-tuning from it.

Notebook: 04_npid. Two experiments on the foundation of :mod:`esclib.experiments.base`, both thin over
:mod:`esclib.train.npid` (the method) and :mod:`esclib.data.pooling` (phase 2):

1. :class:`NPIDPretraining` (results-store experiment ``npid_pretrain``) -- instance discrimination on one
   dataset's training folds (arm ``npid``, phase 1), on every dataset pooled as the study pooled them, test folds
   included (``npid-pooled``, phase 2, transductive), or on the pool without the test fold of the run's dataset and
   fold (``npid-leak-free``). With a test fold, the weighted-kNN accuracy of the embedding on it (against the
   dataset's labelled training clips) is recorded after every epoch and, as ``*_random``, before the first: the
   same network at its random initialisation. The network's weights are kept with the run (an artifact).
2. :class:`NPIDExperiment` (experiment ``npid``, arms :data:`ARMS`) -- all layers and a new classifier fine-tuned
   per dataset and official fold from an NPID network (its pre-training run's id is part of the run's identity),
   from ImageNet (torchvision's weights, only where they are in the local cache) or from scratch, with ESResNet's
   recipe; the test-fold accuracy after every epoch is the curve of the study's Fig. 4. The headline ``accuracy``
   is the test accuracy of the epoch ``selection`` picks (:data:`esclib.data.splits.SELECTIONS`): the best epoch
   on the validation fold (``validation-fold``), on clips held out of the training clips (``budgeted``), or the
   last (``last``); every run also records the last epoch's and the best test epoch's accuracy (the latter is what
   reading a peak off a test curve gives: optimistic).

Recipes are flat (every field a chapter parameter) and build the library's :class:`~esclib.train.npid.NPIDRecipe`
and :class:`~esclib.train.npid.FineTuneRecipe`. Figures: :mod:`esclib.experiments.npid_figures`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from esclib.data.audio import load_audio
from esclib.data.clips import ClipSet
from esclib.data.identity import dataset_identity
from esclib.data.pooling import describe_pool, pool_datasets
from esclib.data.splits import assert_trainable, check_selection, fold_split, selection_sets
from esclib.experiments.base import Experiment, Recipe, RunContext, Split, checkpoint_identity
from esclib.models.backbones import imagenet_weights_path
from esclib.models.esresnet import imagenet_status
from esclib.results.summary import Results
from esclib.train.loop import evaluate
from esclib.train.npid import (FineTuneRecipe as LibFineTuneRecipe, NPIDModel, NPIDRecipe, ThreeBandInput,
                               check_noise_clips, embed, finetune_network, finetune_training, npid_model,
                               npid_training)

EXPERIMENT = "npid"
PRETRAIN_EXPERIMENT = "npid_pretrain"
#: where each fine-tuning arm's weights come from: an NPID pre-training arm, ImageNet or nothing (scratch)
ARM_INIT: dict[str, str] = {"npid": "npid", "npid-pooled": "npid", "npid-leak-free": "npid", "imagenet": "imagenet",
                            "scratch": "scratch"}
ARMS: tuple[str, ...] = tuple(ARM_INIT)
#: the pre-training arms: phase 1 (per dataset), phase 2 as the study pooled (test folds in) and leak-free
PRETRAIN_ARMS: tuple[str, ...] = ("npid", "npid-pooled", "npid-leak-free")


# ------------------------------------------------------------------------------------------------- recipes
@dataclass(frozen=True)
class InputRecipe(Recipe):
    """The network and its input (ESResNet; study 004): ``arch`` (a torchvision ResNet) with attention gates when
    ``attention``, over the 3-band spectrogram of the waveform at ``sample_rate`` (``n_fft``, ``hop_length``,
    ``win_length``; ESResNet: 44.1 kHz, 2048, 561, 1654), ESResNet's waveform augmentation when ``augment``."""

    arch: str
    attention: bool
    sample_rate: int
    n_fft: int
    hop_length: int
    win_length: int
    augment: bool

    def input(self, clip_seconds: float) -> ThreeBandInput:
        """The :class:`~esclib.train.npid.ThreeBandInput` of this recipe for clips of ``clip_seconds``."""
        return ThreeBandInput(sample_rate=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_length,
                              win_length=self.win_length, clip_seconds=clip_seconds)


@dataclass(frozen=True)
class PretrainRecipe(InputRecipe):
    """NPID pre-training (study 004; lemniscate's SGD, momentum 0.9, lr x0.1 at 60 % and 80 % of the epochs, where
    the study is silent): ``npid_epochs`` epochs of batches of ``npid_batch_size`` (training crops of
    ``npid_crop_seconds``; None: whole clips), a ``low_dim`` L2-normalised embedding, NCE with ``nce_k`` noise
    clips at ``temperature``, memory momentum ``memory_momentum``, SGD ``npid_lr`` / ``npid_weight_decay``; the
    kNN evaluation with ``knn_ks`` neighbours at ``knn_temperature`` (None: the NCE temperature)."""

    npid_epochs: int
    npid_batch_size: int
    npid_crop_seconds: float | None
    low_dim: int
    nce_k: int
    temperature: float
    memory_momentum: float
    npid_lr: float
    npid_weight_decay: float
    knn_ks: tuple[int, ...]
    knn_temperature: float | None

    def npid(self, clip_seconds: float) -> NPIDRecipe:
        """The library's :class:`~esclib.train.npid.NPIDRecipe` of this recipe for clips of ``clip_seconds``."""
        return NPIDRecipe(arch=self.arch, attention=self.attention, input=self.input(clip_seconds),
                          epochs=self.npid_epochs, batch_size=self.npid_batch_size, augment=self.augment,
                          crop_seconds=_crop(self.npid_crop_seconds, clip_seconds), low_dim=self.low_dim,
                          nce_k=self.nce_k, temperature=self.temperature, memory_momentum=self.memory_momentum,
                          lr=self.npid_lr, weight_decay=self.npid_weight_decay, knn_ks=tuple(self.knn_ks),
                          knn_temperature=self.knn_temperature)


@dataclass(frozen=True)
class FinetuneRecipe(PretrainRecipe):
    """Fine-tuning (ESResNet's recipe): the pre-training fields (the network it starts from), then
    ``finetune_epochs`` epochs of Adam ``finetune_lr`` / ``finetune_weight_decay``, batch ``finetune_batch_size``
    (training crops of ``finetune_crop_seconds``; None: whole clips), ``cold_epochs`` at a tenth of the rate, a
    linear warm-up over ``warm_epochs``, then x ``gamma`` per epoch; ``selection`` picks the epoch whose test
    accuracy is reported (:func:`esclib.data.splits.selection_sets`)."""

    finetune_epochs: int
    finetune_batch_size: int
    finetune_crop_seconds: float | None
    finetune_lr: float
    finetune_weight_decay: float
    gamma: float
    cold_epochs: int
    warm_epochs: int
    selection: str

    def __post_init__(self) -> None:
        check_selection(self.selection, "npid.FinetuneRecipe")

    @property
    def pretraining(self) -> PretrainRecipe:
        """The recipe of the NPID network this fine-tuning starts from (its pre-training fields)."""
        return self.part(PretrainRecipe)

    def finetune(self, clip_seconds: float) -> LibFineTuneRecipe:
        """The library's :class:`~esclib.train.npid.FineTuneRecipe` of this recipe for clips of ``clip_seconds``."""
        return LibFineTuneRecipe(arch=self.arch, attention=self.attention, input=self.input(clip_seconds),
                                 epochs=self.finetune_epochs, batch_size=self.finetune_batch_size,
                                 augment=self.augment, crop_seconds=_crop(self.finetune_crop_seconds, clip_seconds),
                                 lr=self.finetune_lr, weight_decay=self.finetune_weight_decay, gamma=self.gamma,
                                 cold_epochs=self.cold_epochs, warm_epochs=self.warm_epochs)


#: the recipe fields only NPID pre-training reads
NPID_ONLY_FIELDS: frozenset[str] = frozenset(f.name for f in fields(PretrainRecipe)) - {f.name for f in
                                                                                       fields(InputRecipe)}


def _crop(seconds: float | None, clip_seconds: float) -> float | None:
    """A training crop no longer than the clips (a 4-s UrbanSound8K clip with a 5-s crop: whole clips)."""
    return None if seconds is None or seconds >= clip_seconds else seconds


# --------------------------------------------------------------------------------------------------- data
def pretraining_split(arm: str, datasets: Mapping[str, ClipSet], dataset: str | None = None,
                      fold: int | None = None) -> Split:
    """The clips of a pre-training run. ``npid``: ``dataset``'s folds but ``fold`` (and any clip of a test
    recording) to train on, ``fold`` to test the kNN on. ``npid-pooled``: every dataset of ``datasets`` pooled with
    its test folds, as the study (:func:`esclib.data.pooling.pool_datasets`; each file once), no kNN test (one run
    serves every fold). ``npid-leak-free``: the pool without ``dataset``'s ``fold`` and every clip sharing a file or
    recording with it; the kNN tests that fold against ``dataset``'s labelled training folds (``reference``)."""
    if arm not in PRETRAIN_ARMS:
        raise ValueError(f"pretraining_split: arm must be one of {PRETRAIN_ARMS}, got {arm!r}")
    if arm == "npid-pooled":
        return Split({"train": pool_datasets(list(datasets.values()))}, kind="pool")
    if dataset not in datasets or fold is None:
        raise ValueError(f"pretraining_split: arm {arm!r} needs a dataset of {sorted(datasets)} and a fold, got "
                         f"{dataset!r}, {fold!r}")
    parts = fold_split(datasets[dataset], test_fold=fold, val_fold=0)
    if arm == "npid":
        return Split({"train": parts.train, "test": parts.test}, fold=fold)
    pool = pool_datasets(list(datasets.values()), held_out={dataset: [fold]})
    return Split({"train": pool, "test": parts.test, "reference": parts.train}, kind="pool", fold=fold)


def waveform(path: str, sample_rate: int, seconds: float) -> np.ndarray:
    """A clip as a mono wave at ``sample_rate``, cut or zero-padded to ``seconds`` (what the network sees of it)."""
    wave = load_audio(path, sample_rate)
    samples = round(seconds * sample_rate)
    return np.pad(wave[:samples], (0, max(0, samples - len(wave))))


def pool_composition(datasets: Mapping[str, ClipSet], dataset: str, fold: int) -> pd.DataFrame:
    """Clips per dataset of the study's pool and of the leak-free pool for ``dataset``'s test ``fold`` (the clips
    of that fold the study's pool holds, which the leak-free one drops), from :func:`describe_pool`."""
    study = pool_datasets(list(datasets.values()))
    free = pool_datasets(list(datasets.values()), held_out={dataset: [fold]})
    rows = {"study's pool (test folds in)": describe_pool(study)["total"],
            f"leak-free pool ({dataset} fold {fold} out)": describe_pool(free)["total"]}
    table = pd.DataFrame(rows).fillna(0).astype(int)
    test = fold_split(datasets[dataset], test_fold=fold, val_fold=0).test
    table.loc["test clips of the run", :] = [int(np.isin(test.paths, pool.paths).sum()) for pool in (study, free)]
    return table.astype(int)


# ---------------------------------------------------------------------------------------------- pre-training
class _Datasets(Experiment):
    """What both experiments share: the datasets by name, and the identity of those a run reads."""

    def __init__(self, datasets: Mapping[str, ClipSet], store, **kwargs: Any) -> None:
        super().__init__(store, **kwargs)
        if not datasets:
            raise ValueError(f"{type(self).__name__}: give at least one dataset")
        self.datasets = dict(datasets)
        self._identities: dict[str, dict] = {}

    def dataset_identities(self, names: Sequence[str]) -> dict[str, Any]:
        """``dataset_identity`` of each dataset named, computed once."""
        for name in names:
            if name not in self._identities:
                self._identities[name] = dataset_identity(self.datasets[name])
        return {name: self._identities[name] for name in names}


class NPIDPretraining(_Datasets):
    """Study 004's NPID pre-training, phase 1 and 2 (see the module docstring)."""

    name = PRETRAIN_EXPERIMENT
    version = 2
    arms = PRETRAIN_ARMS
    artifacts = ("network.pt",)

    def run_inputs(self, arm: str, recipe: Recipe, split: Split) -> dict[str, Any]:
        names = [split.test.name] if arm == "npid" else list(self.datasets)
        return {"datasets": self.dataset_identities(names)}

    def setting(self, arm: str, recipe: Recipe, split: Split) -> dict[str, Any]:
        if arm == "npid-pooled":
            return {"dataset": "+".join(self.datasets), "pool": "study"}
        return {"dataset": split.test.name, "fold": split.fold,
                "pool": "none" if arm == "npid" else "leak-free"}

    def split(self, arm: str, dataset: str | None = None, fold: int | None = None) -> Split:
        """:func:`pretraining_split` of this experiment's datasets."""
        return pretraining_split(arm, self.datasets, dataset, fold)

    def train(self, ctx: RunContext, arm: str, recipe: PretrainRecipe, split: Split) -> dict[str, Any]:
        train = split.train
        assert_trainable(train)
        reference = split.parts.get("reference", train)
        # K never above the clips that vote (DCASE 2013's 50 training clips, NPID's K = 200): knn_k<clips> instead
        npid = dataclasses.replace(recipe.npid(train.clip_seconds),
                                   knn_ks=tuple(sorted({min(k, len(reference)) for k in recipe.knn_ks})))
        check_noise_clips(train, npid)
        model = npid_model(npid, len(train))
        loader, kwargs, before = npid_training(model, train, npid, test=split.parts.get("test"),
                                               reference=split.parts.get("reference"), device=self.device,
                                               seed=ctx.seed, progress=False)
        whole = npid.loader(train, train=False, progress=False)
        random_neighbours = neighbour_agreement(model.network, whole, train, self.device)
        history = ctx.fit(model, loader, **kwargs)
        ctx.save_artifact("network.pt", model.network.state_dict())
        last = history.epochs[-1]
        embedding, _ = embed(model.network, whole, self.device)  # one pass serves both diagnostics
        metrics: dict[str, Any] = {"n_train": len(train), "loss": last["loss"],
                                   "instance_recall": instance_recall(model, whole, embedding=embedding),
                                   **neighbour_agreement(model.network, whole, train, embedding=embedding),
                                   **{f"{k}_random": v for k, v in random_neighbours.items()}}
        return {**metrics, **knn_metrics(before, last)}

    def pretrained(self, arm: str, recipe: PretrainRecipe, split: Split) -> tuple[dict, str]:
        """The result of the pre-training run (trained now, or reused) and the path of its network's weights."""
        result = self.run(arm, recipe, split)
        return result, str(self.artifact(result, "network.pt"))


def knn_metrics(before: Sequence[Mapping[str, float]], last: Mapping[str, float]) -> dict[str, float]:
    """A pre-training run's kNN metrics: each ``knn_k<K>`` of the last epoch, and as ``knn_k<K>_random`` the same
    accuracy before the first epoch (``before``: :func:`esclib.train.npid.npid_training`'s epoch-0 row, the
    network's random initialisation; none without a test fold)."""
    metrics: dict[str, float] = {}
    for row in before:
        metrics.update({f"{k}_random": v for k, v in row.items() if k.startswith("knn_")})
        metrics.update({k: last[k] for k in row if k.startswith("knn_")})
    return metrics


def instance_recall(model: NPIDModel, loader, device: str | torch.device = "cpu", *,
                    embedding: np.ndarray | None = None) -> float:
    """NPID's own task, measured: the share of training clips (whole, unaugmented, in the memory bank's order)
    whose embedding is most cosine-similar to their own memory-bank entry (chance: one over the clips).
    ``embedding``: the network's embedding of ``loader``'s clips when already computed (else computed here)."""
    if embedding is None:
        embedding, _ = embed(model.network, loader, device)
    bank = torch.nn.functional.normalize(model.memory.memory.detach().cpu(), dim=1).numpy()
    if len(embedding) != len(bank):
        raise ValueError(f"instance_recall: {len(embedding)} clips, {len(bank)} memory entries; give the training "
                         "clips in order")
    return float(np.mean((embedding @ bank.T).argmax(axis=1) == np.arange(len(bank))))


def neighbour_agreement(network: torch.nn.Module, loader, clips: ClipSet,
                        device: str | torch.device = "cpu", *, embedding: np.ndarray | None = None) -> dict[str, float]:
    """What a clip's nearest other clip (cosine, in ``network``'s embedding; ``loader`` gives ``clips`` whole and in
    order) shares with it: the class (``nn_same_class``, where both are labelled) and the source recording
    (``nn_same_source``: another take of the same recording). An embedding that separates recordings, rooms and
    backgrounds rather than sound classes has many more of the second than of the first. ``mean_cosine``: the mean
    cosine between two different clips (near 1: every clip's embedding points the same way, a collapse).
    ``embedding``: ``network``'s embedding of ``loader``'s clips when already computed (else computed here)."""
    if embedding is None:
        embedding, _ = embed(network, loader, device)
    if len(embedding) != len(clips):
        raise ValueError(f"neighbour_agreement: {len(embedding)} embeddings for {len(clips)} clips")
    unit = embedding / np.linalg.norm(embedding, axis=1, keepdims=True)
    similarity = unit @ unit.T
    n = len(unit)
    mean_cosine = float((similarity.sum() - np.trace(similarity)) / (n * (n - 1)))
    np.fill_diagonal(similarity, -np.inf)
    nearest = similarity.argmax(axis=1)
    targets, sources = clips.targets, clips.table["source"].to_numpy()
    labelled = (targets >= 0) & (targets[nearest] >= 0)
    same_class = float(np.mean(targets[nearest][labelled] == targets[labelled])) if labelled.any() else float("nan")
    return {"nn_same_class": same_class, "nn_same_source": float(np.mean(sources[nearest] == sources)),
            "mean_cosine": mean_cosine}


# ---------------------------------------------------------------------------------------------- fine-tuning
class NPIDExperiment(_Datasets):
    """Study 004's fine-tuning per dataset and fold from each initialisation (see the module docstring)."""

    name = EXPERIMENT
    arms = ARMS

    def __init__(self, datasets: Mapping[str, ClipSet], pretraining: NPIDPretraining, store, **kwargs: Any) -> None:
        super().__init__(datasets, store, **kwargs)
        self.pretraining = pretraining

    def pretraining_split(self, arm: str, split: Split) -> Split:
        """The pre-training run a fine-tuning arm starts from: on the split's dataset without its test fold
        (``npid``), the study's pool (``npid-pooled``) or the pool without the test fold (``npid-leak-free``)."""
        return self.pretraining.split(arm, split.test.name, split.fold)

    def run_inputs(self, arm: str, recipe: FinetuneRecipe, split: Split) -> dict[str, Any]:
        inputs: dict[str, Any] = {"dataset": self.dataset_identities([split.test.name])[split.test.name]}
        if ARM_INIT[arm] == "npid":
            result, _ = self.pretraining.pretrained(arm, recipe.pretraining, self.pretraining_split(arm, split))
            inputs["pretraining"] = result["id"]
        elif arm == "imagenet":
            inputs["imagenet"] = checkpoint_identity(imagenet_weights_path(recipe.arch), recipe.arch)
        return inputs

    def setting(self, arm: str, recipe: FinetuneRecipe, split: Split) -> dict[str, Any]:
        return {"dataset": split.test.name, "fold": split.fold, "selection": recipe.selection}

    def identity(self, arm: str, recipe: FinetuneRecipe, split: Split, setting: Mapping[str, Any]) -> dict[str, Any]:
        """The base's identity, except that an arm which starts from no NPID run (ImageNet, scratch) leaves the
        NPID pre-training fields out of its recipe: they cannot change it (a pre-trained arm has them through
        its pre-training run's id), so a new pre-training recipe does not re-run the baselines."""
        identity = super().identity(arm, recipe, split, setting)
        if ARM_INIT[arm] != "npid":
            identity["recipe"] = {k: v for k, v in identity["recipe"].items() if k not in NPID_ONLY_FIELDS}
        return identity

    def split_of(self, dataset: str, fold: int, selection: str) -> Split:
        """Official fold ``fold`` of ``dataset`` as test, the next fold as validation, the rest to train on; then
        the clips a run trains on and those that pick its epoch under ``selection`` (none under ``last``)."""
        parts = fold_split(self.datasets[dataset], test_fold=fold)
        train, val = selection_sets(selection, parts.train, parts.val, seed=self.seed)
        return Split({"train": train, **({"val": val} if val is not None else {}), "test": parts.test},
                     fold=fold)

    def network(self, arm: str, recipe: FinetuneRecipe, split: Split, seed: int = 0):
        """The network ``arm`` fine-tunes: ESResNet with a new classifier, its other weights from the arm's NPID
        run, from ImageNet, or random."""
        clips = split.test
        weights = None
        if ARM_INIT[self.check_arm(arm)] == "npid":
            weights = self.pretraining.pretrained(arm, recipe.pretraining, self.pretraining_split(arm, split))[1]
        return finetune_network(clips.num_classes, recipe.finetune(clips.clip_seconds), ARM_INIT[arm], npid=weights,
                                seed=seed)

    def train(self, ctx: RunContext, arm: str, recipe: FinetuneRecipe, split: Split) -> dict[str, Any]:
        ft = recipe.finetune(split.test.clip_seconds)
        model = self.network(arm, recipe, split, seed=ctx.seed)
        loader, kwargs = finetune_training(model, split.train, split.test, ft, seed=ctx.seed, progress=False)
        select = split.parts.get("val")
        if select is not None:
            kwargs["val_fn"] = SelectionMonitor(kwargs["val_fn"], ft.loader(select, train=False, progress=False))
        history = ctx.fit(model, loader, **kwargs)
        curve = history.frame()
        picked = int(curve["sel_acc"].idxmax()) if select is not None else len(curve) - 1
        return {"accuracy": float(curve["test_acc"].iloc[picked]), "selected_epoch": int(curve["epoch"].iloc[picked]),
                "accuracy_last": float(curve["test_acc"].iloc[-1]), "accuracy_peak": float(curve["test_acc"].max()),
                "peak_epoch": int(curve["epoch"].iloc[int(curve["test_acc"].idxmax())]),
                "n_train": len(split.train), "n_select": len(select) if select is not None else 0,
                "n_test": len(split.test)}

    def run_grid(self, arms: Sequence[str], recipe: FinetuneRecipe, datasets: Sequence[str], folds: Sequence[int],
                 selections: Sequence[str] | None = None, desc: str = "fine-tuning runs") -> Results:
        """Every (selection, dataset, fold, arm) fine-tuning run (finished ones reused)."""
        cells = [(arm, recipe.replace(selection=s), self.split_of(d, fold, s))
                 for s in (selections or (recipe.selection,)) for d in datasets for fold in folds for arm in arms]
        return self.grid(cells, desc=desc)


class SelectionMonitor:
    """``fit``'s ``val_fn`` for fine-tuning: the test fold's metrics (``test_acc``, ``test_loss``; the curve) and
    the accuracy on the clips that pick the epoch (``sel_acc``)."""

    def __init__(self, test_fn, select_loader) -> None:
        self.test_fn, self.select_loader = test_fn, select_loader

    def __call__(self, model: torch.nn.Module, loader, device: torch.device) -> dict[str, float]:
        chosen = evaluate(model, self.select_loader, device)
        return {**self.test_fn(model, loader, device), "sel_acc": chosen["val_acc"]}


def available_arms(arms: Sequence[str], arch: str, phase2: bool) -> tuple[list[str], list[str]]:
    """The fine-tuning arms that can run, and a message per arm left out: ImageNet where torchvision's weights of
    ``arch`` are not in the local cache (the message says where to put them), the pooled arms unless ``phase2``."""
    kept, why = [], []
    for arm in arms:
        if arm == "imagenet" and imagenet_status(arch) is not None:
            why.append(f"imagenet: skipped -- {imagenet_status(arch)}")
        elif arm in ("npid-pooled", "npid-leak-free") and not phase2:
            why.append(f"{arm}: skipped -- phase 2 (pooled pre-training) is off (phase2=False)")
        else:
            kept.append(arm)
    return kept, why


# ------------------------------------------------------------------------------------------------- tables
def knn_table(pretrain: Results) -> pd.DataFrame:
    """Per pre-training run with a test fold: the kNN accuracy of the random network and of the NPID network after
    its last epoch, for each K, and the difference."""
    rows = []
    for result in pretrain:
        metrics = result["metrics"]
        for key in sorted(k for k in metrics if k.startswith("knn_k") and not k.endswith("_random")):
            rows.append({"pre-training": result["arm"], **{k: v for k, v in result["setting"].items()},
                         "K": int(key.removeprefix("knn_k")), "random weights": metrics[f"{key}_random"],
                         "NPID": metrics[key], "NPID − random": metrics[key] - metrics[f"{key}_random"]})
    return pd.DataFrame(rows)


def knn_curves(pretrain: Results) -> pd.DataFrame:
    """Long table of the kNN accuracy per pre-training epoch (epoch 0: random weights), per run and K."""
    rows = []
    for result in pretrain:
        metrics, setting = result["metrics"], result["setting"]
        keys = sorted(k.removesuffix("_random") for k in metrics if k.startswith("knn_k") and k.endswith("_random"))
        for key in keys:
            base = {"pre-training": result["arm"], "dataset": setting["dataset"], "fold": setting.get("fold"),
                    "K": int(key.removeprefix("knn_k"))}
            rows.append({**base, "epoch": 0, "kNN accuracy": metrics[f"{key}_random"]})
            rows += [{**base, "epoch": r["epoch"], "kNN accuracy": r[key]} for r in result.get("curves") or []
                     if key in r]
    return pd.DataFrame(rows)


def finetune_curves(results: Results) -> pd.DataFrame:
    """Long table of the test accuracy after every fine-tuning epoch, per arm, dataset and fold (Fig. 4)."""
    rows = [{"arm": r["arm"], "dataset": r["setting"]["dataset"], "fold": r["setting"]["fold"],
             "selection": r["setting"]["selection"], "epoch": c["epoch"], "test accuracy": c["test_acc"]}
            for r in results for c in r.get("curves") or [] if "test_acc" in c]
    return pd.DataFrame(rows)


def paired_rows(results: Results, pairs: Sequence[tuple[str, str]], metric: str = "accuracy") -> pd.DataFrame:
    """One row per ``(a, b)`` pair and dataset present in ``results``: ``b - a`` per fold and its bootstrap
    interval (:meth:`Results.paired`), and whether it is inside the fold noise."""
    rows = []
    for dataset in sorted({r["setting"]["dataset"] for r in results}):
        subset = results.select(dataset=dataset)
        for a, b in pairs:
            if {a, b} <= {r["arm"] for r in subset}:
                diff = subset.paired(a, b, metric)
                rows.append({"dataset": dataset, **diff.row(),
                             "per fold": " ".join(f"{v:+.3f}" for v in diff.per_fold["difference"])})
    return pd.DataFrame(rows)


def early_epochs(results: Results, a: str, b: str, epochs: int) -> pd.DataFrame:
    """``b - a`` test accuracy at each of the first ``epochs`` fine-tuning epochs, paired over folds with its
    bootstrap interval: the study's claim is about the first epochs."""
    curves = finetune_curves(results)
    rows = []
    if curves.empty or not {a, b} <= set(curves["arm"]):
        return pd.DataFrame(columns=["dataset", "epoch", "mean", "low", "high", "inside the noise"])
    from esclib.results.summary import bootstrap_interval

    for (dataset, epoch), group in curves[curves["epoch"] <= epochs].groupby(["dataset", "epoch"]):
        by = group.pivot_table(index="fold", columns="arm", values="test accuracy")
        if not {a, b} <= set(by.columns):
            continue
        diff = (by[b] - by[a]).dropna().to_numpy()
        low, high = bootstrap_interval(diff)
        rows.append({"dataset": dataset, "epoch": int(epoch), "mean": float(diff.mean()), "low": low, "high": high,
                     "inside the noise": bool(low <= 0 <= high)})
    return pd.DataFrame(rows)


def selection_table(results: Results, a: str = "scratch", b: str = "npid") -> pd.DataFrame:
    """The effect of the rule that picks the reported epoch, per selection run and arm (mean over folds): the
    epoch it picked, its test accuracy, the last epoch's, the best test epoch's (reading the peak off a test curve,
    as a figure invites: optimistic), and ``b - a`` under each."""
    frame = results.frame()
    if frame.empty:
        return pd.DataFrame()
    rows = []
    for (selection, dataset, arm), group in frame.groupby(["selection", "dataset", "arm"], sort=False):
        rows.append({"selection": selection, "dataset": dataset, "arm": arm, "training clips": group["n_train"].mean(),
                     "clips picking the epoch": group["n_select"].mean(), "epoch picked": group["selected_epoch"].mean(),
                     "accuracy (picked)": group["accuracy"].mean(), "accuracy (last epoch)": group["accuracy_last"].mean(),
                     "accuracy (best test epoch)": group["accuracy_peak"].mean()})
    return pd.DataFrame(rows).round(3)


def nearest_neighbours(network: torch.nn.Module, loader_train, loader_query, k: int = 3,
                       device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """For every query clip, its ``k`` most cosine-similar training clips (rows of the training loader's order) and
    their similarities, from the network's embedding."""
    train, _ = embed(network, loader_train, device)
    query, _ = embed(network, loader_query, device)
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    query = query / np.linalg.norm(query, axis=1, keepdims=True)
    similarity = query @ train.T
    order = np.argsort(-similarity, axis=1)[:, :k]
    return order, np.take_along_axis(similarity, order, axis=1)


def glue_numbers(numbers: Mapping[str, Any]) -> None:
    """Glue every value of ``numbers`` under its name for the prose (``myst_nb.glue``, not displayed)."""
    from myst_nb import glue

    for name, value in numbers.items():
        glue(name, value, display=False)


# ----------------------------------------------------------------------------------- numbers for the prose
def verdict_words(low: float, high: float, better: str = "above", worse: str = "below") -> str:
    """What a bootstrap interval ``[low, high]`` of a difference says: ``clearly above zero``, ``clearly below
    zero`` or ``inside the fold noise`` (``not measured`` for NaN)."""
    if np.isnan(low) or np.isnan(high):
        return "not measured"
    return f"clearly {better} zero" if low > 0 else f"clearly {worse} zero" if high < 0 else "inside the fold noise"


def knn_numbers(pretrain: Results, k: int) -> dict[str, Any]:
    """The numbers the prose quotes about NPID's kNN against the random network's (phase-1 runs, K = ``k``): the
    means over folds, the paired difference with its bootstrap interval and verdict, on how many folds NPID was
    higher, and the diagnostics (own-entry recall, what the nearest clip shares) with their chance levels."""
    from esclib.results.summary import bootstrap_interval

    runs = [r["metrics"] for r in pretrain.select(pool="none") if f"knn_k{k}" in r["metrics"]]
    nan = float("nan")
    numbers: dict[str, Any] = {"knn_k": k, "knn_random": nan, "knn_npid": nan, "knn_diff": nan, "knn_low": nan,
                               "knn_high": nan, "knn_verdict": "not measured", "knn_higher": "no fold",
                               "recall_npid": nan, "recall_chance": nan, "nn_class_random": nan,
                               "nn_class_npid": nan, "nn_source_random": nan, "nn_source_npid": nan,
                               "cos_random": nan, "cos_npid": nan, "loss_first": nan, "loss_last": nan,
                               "npid_diagnosis": "no NPID run to diagnose"}
    curves = [r.get("curves") or [] for r in pretrain.select(pool="none") if f"knn_k{k}" in r["metrics"]]
    if not runs:
        return numbers
    diff = np.array([m[f"knn_k{k}"] - m[f"knn_k{k}_random"] for m in runs])
    low, high = bootstrap_interval(diff) if len(diff) > 1 else (nan, nan)

    def mean(key: str) -> float:
        return float(np.mean([m[key] for m in runs]))

    numbers.update({"knn_random": mean(f"knn_k{k}_random"), "knn_npid": mean(f"knn_k{k}"),
                    "knn_diff": float(diff.mean()), "knn_low": low, "knn_high": high,
                    "knn_verdict": verdict_words(low, high), "knn_higher": f"{int((diff > 0).sum())} of {len(diff)}",
                    "recall_npid": mean("instance_recall"), "recall_chance": float(np.mean([1 / m["n_train"]
                                                                                             for m in runs])),
                    "nn_class_random": mean("nn_same_class_random"), "nn_class_npid": mean("nn_same_class"),
                    "nn_source_random": mean("nn_same_source_random"), "nn_source_npid": mean("nn_same_source"),
                    "cos_random": mean("mean_cosine_random"), "cos_npid": mean("mean_cosine"),
                    "loss_first": float(np.mean([c[0]["loss"] for c in curves if c])),
                    "loss_last": float(np.mean([c[-1]["loss"] for c in curves if c]))})
    numbers["npid_diagnosis"] = diagnosis(numbers)
    return numbers


def diagnosis(numbers: Mapping[str, Any]) -> str:
    """What :func:`knn_numbers`' measurements say about a pre-training, as a sentence for the prose: whether NPID
    learned its own task (own-entry recall against chance, the loss's trend) and, if it did, whether its
    neighbourhoods follow classes or recordings."""
    recall, chance = numbers["recall_npid"], numbers["recall_chance"]
    falling = numbers["loss_last"] < numbers["loss_first"]
    if not recall > 5 * chance:
        collapsed = numbers["cos_npid"] > 0.9
        return (f"NPID has not learned its own task in this schedule: its NCE loss {'fell' if falling else 'rose'} "
                "over the epochs and its embedding recognises few of the very clips it was trained on"
                + (", because the embeddings of all clips point almost the same way (a collapse), where instance "
                   "discrimination needs them spread over the sphere" if collapsed else "")
                + "; an embedding that cannot tell its own training clips apart had no reason to learn their "
                  "classes, and what it changed blurred the structure the random convolutions had")
    if numbers["nn_class_npid"] > numbers["nn_class_random"]:
        return ("NPID learned its own task, and its nearest neighbours share the class more often than the random "
                "network's: telling instances apart taught it something about classes")
    return ("NPID learned its own task, but not through what makes a class: its nearest neighbours share the class "
            "no more often than the random network's" + (", and come more often from the same recording"
                                                         if numbers["nn_source_npid"] > numbers["nn_source_random"]
                                                         else ""))


def difference_numbers(name: str, results: Results, a: str, b: str, metric: str = "accuracy") -> dict[str, Any]:
    """``b - a`` over the folds of ``results`` (one dataset and configuration) for the prose: the mean (``name``),
    its interval (``name_low``, ``name_high``), the verdict (``name_verdict``) and on how many folds ``b`` was
    higher (``name_higher``); NaN and "not run" when an arm is missing."""
    nan = float("nan")
    numbers: dict[str, Any] = {name: nan, f"{name}_low": nan, f"{name}_high": nan,
                               f"{name}_verdict": f"not run ({a} or {b} missing)", f"{name}_higher": "no fold"}
    if {a, b} <= {r["arm"] for r in results}:
        diff = results.paired(a, b, metric)
        numbers.update({name: diff.mean, f"{name}_low": diff.low, f"{name}_high": diff.high,
                        f"{name}_verdict": verdict_words(diff.low, diff.high),
                        f"{name}_higher": f"{diff.favour_b} of {len(diff.per_fold)}"})
    return numbers


def early_story(table: pd.DataFrame) -> str:
    """One phrase per early epoch of :func:`early_epochs` (first dataset), e.g. "epoch 1: +0.050 (inside the
    fold noise); epoch 2: ..."."""
    if table.empty:
        return "not run"
    first = table[table["dataset"] == table["dataset"].iloc[0]]
    return "; ".join(f"epoch {int(r.epoch)}: {r.mean:+.3f} ({verdict_words(r.low, r.high)})"
                     for r in first.itertuples())


def mean_metric(results: Results, arm: str, metric: str = "accuracy") -> float:
    """Mean ``metric`` of ``arm``'s runs in ``results`` (NaN when there are none)."""
    values = [r["metrics"][metric] for r in results if r["arm"] == arm]
    return float(np.mean(values)) if values else float("nan")
