"""Chapter 05's experiment (study 001, QUACLRS): six self-supervised methods on UrbanSound8K under one protocol.

Notebook: 05_ssl. Two experiments on the foundation of :mod:`esclib.experiments.base`:

1. :class:`SSLPretraining` (results-store experiment ``ssl_pretrain``, one arm per method: ``simclr``, ``mocov2``,
   ``byol``, ``dino``, ``barlowtwins``, ``swav``) -- the method (:func:`esclib.models.ssl.ssl_method`) trained
   without labels by the one loop :func:`esclib.train.ssl.pretrain`, the same :class:`PretrainRecipe` for every
   method, on a pool of training clips whose labels are removed before the loader sees them. Its weights and input
   statistics are kept with the run (an artifact the evaluations load); its metrics are the collapse monitors:
   the final loss, the effective rank (RankMe) of the pool's embeddings beside that of the random initialisation,
   and for DINO the teacher's entropy.
2. :class:`SSLExperiment` (experiment ``ssl``, arms ``random``, the six methods and ``supervised-scratch``) -- one
   evaluation protocol for every arm on one official fold: embeddings of the frozen backbone (``random``: the very
   initial weights every method started from), a linear probe on standardised embeddings (HEAR / EVAR style, its
   model picked under ``selection``), a weighted kNN (``knn_k``, ``knn_temperature``), the probe's label-budget
   curve and the embeddings' effective rank. ``supervised-scratch`` trains the same backbone with labels (the
   study's from-scratch baseline, a ceiling). An SSL arm's identity includes the identity of the pre-training run
   it evaluates.

Where the pre-training pool comes from (:func:`pretraining_pool`): ``shared`` -- the clips that are training clips
of *every* evaluated split (no test or validation fold of any of them, nor a clip sharing their source recording),
one pre-training per method for all folds; ``per-fold`` -- each split's own training folds (the cost times the
folds). The input: study 001's log-mel (:func:`esclib.train.ssl.study_frontend`), computed once per clip and cached
on disk (:func:`ssl_inputs`), standardised with the training clips' statistics and resized to the backbone's input.
Figures: :mod:`esclib.experiments.ssl_figures`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from esclib.augment.views import VIEW_POLICIES, get_view_policy
from esclib.data.cache import cached_features, cached_waveforms
from esclib.data.clips import ClipSet
from esclib.data.identity import dataset_identity
from esclib.data.splits import FoldSplit, check_selection, selection_sets
from esclib.data.torchdata import array_loader, pool_rows
from esclib.digest import seed_from
from esclib.experiments.base import Experiment, Recipe, RunContext, Split
from esclib.metrics import classification_metrics
from esclib.models.backbones import BACKBONES, backbone, cam_layer, check_input_size, grad_cam
from esclib.models.ssl import SSLMethod, ssl_method
from esclib.results.summary import Results
from esclib.train import EarlyStopping, predict
from esclib.train.probe import ProbeResult, effective_rank, knn_evaluation, label_budget_curve, linear_probe
from esclib.train.ssl import (STUDY_FRONTEND, SpectrogramClassifier, SpectrogramInput, SSLRecipe, TwoViewInput,
                              embeddings, pretrain, study_frontend)

EXPERIMENT = "ssl"
PRETRAIN_EXPERIMENT = "ssl_pretrain"
#: arms of the results store (``esclib.results.studies``) and the method of :mod:`esclib.models.ssl` each trains
ARM_METHOD: dict[str, str] = {"simclr": "simclr", "mocov2": "moco", "byol": "byol", "dino": "dino",
                              "barlowtwins": "barlowtwins", "swav": "swav"}
METHOD_ARMS: tuple[str, ...] = tuple(ARM_METHOD)
ARMS: tuple[str, ...] = ("random", *METHOD_ARMS, "supervised-scratch")
#: the family of each method (the chapter's table)
FAMILIES: dict[str, str] = {"simclr": "contrastive, in-batch negatives", "mocov2": "contrastive, queue + momentum",
                            "byol": "momentum teacher, no negatives", "dino": "self-distillation (teacher)",
                            "barlowtwins": "redundancy reduction", "swav": "clustering (prototypes)"}
#: where the pre-training pool comes from (:func:`pretraining_pool`)
POOLS: tuple[str, ...] = ("shared", "per-fold")
#: study 001's clip length in seconds (4 s, UrbanSound8K's longest)
CLIP_SECONDS = 4.0
#: early-stopping patience (epochs) of the supervised baseline when a validation set picks its model
SUPERVISED_PATIENCE = 10


# --------------------------------------------------------------------------------------------------- data
def ssl_inputs(clips: ClipSet, *, progress: bool = True) -> np.ndarray:
    """Study 001's log-mel (dB) of every clip, ``(len(clips), frames, 128)`` float32, computed once per clip set and
    cached on disk (:func:`esclib.data.cache.cached_features`, keyed by the frontend and every file)."""
    frontend = study_frontend()
    samples = int(CLIP_SECONDS * STUDY_FRONTEND["sample_rate"])
    frames = samples // STUDY_FRONTEND["hop_length"] + 1
    return cached_features(clips, frontend, sample_rate=STUDY_FRONTEND["sample_rate"], samples=samples,
                           shape=(frames, STUDY_FRONTEND["n_mels"]),
                           config={"feature": "study001-logmel", "frontend": repr(frontend), "samples": samples},
                           name="ssl-logmel", progress=progress)


def pretraining_pool(splits: Sequence[FoldSplit], pool: str, fold: int | None = None) -> ClipSet:
    """The clips a method pre-trains on, their labels removed: ``pool="shared"`` -- the clips that are training
    clips of every split in ``splits`` (so that no test or validation clip of any evaluated split, nor a clip of
    their source recordings, is ever seen); ``"per-fold"`` -- the training clips of the split whose test fold is
    ``fold``."""
    if pool not in POOLS:
        raise ValueError(f"pretraining_pool: pool must be one of {list(POOLS)}, got {pool!r}")
    if not splits:
        raise ValueError("pretraining_pool: no split given")
    if pool == "per-fold":
        chosen = [s for s in splits if s.test_fold == fold]
        if not chosen:
            raise ValueError(f"pretraining_pool: no split has test fold {fold}; folds: {[s.test_fold for s in splits]}")
        return chosen[0].train.unlabelled()
    common = set.intersection(*(set(s.train.table["clip_id"]) for s in splits))
    first = splits[0].train
    clips = first.subset(first.table["clip_id"].isin(common).to_numpy())
    if len(clips) == 0:
        raise ValueError("pretraining_pool: the splits share no training clip; run fewer folds or pool='per-fold'")
    return clips.unlabelled()


def pool_split(clips: ClipSet) -> Split:
    """The :class:`Split` of a pre-training run: its pool as training clips."""
    return Split({"train": clips}, kind="pretrain")


# ------------------------------------------------------------------------------------------------- recipes
@dataclass(frozen=True)
class PretrainRecipe(Recipe):
    """Pre-training, the same for every method (issue 14: one loop, one optimiser recipe, the same epochs and
    batch): ``backbone`` (torchvision, 1 input channel) at ``input_frames`` x ``input_bins``, two views by
    ``view_policy`` (:data:`esclib.augment.views.VIEW_POLICIES`), ``ssl_epochs`` of ``batch_size`` with AdamW
    (``lr``, ``weight_decay``), ``warmup_epochs`` of linear warm-up then cosine decay; the published widths of the
    methods' wide heads times ``head_scale``; MoCo's and SwAV's queues of ``queue_size``; SimCLR's projection
    ``simclr_proj_dim`` (the study's ablation: 64 / 128 / 256)."""

    backbone: str
    input_frames: int
    input_bins: int
    view_policy: str
    ssl_epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_epochs: int
    head_scale: float
    queue_size: int
    simclr_proj_dim: int

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"{type(self).__name__}: backbone must be one of {sorted(BACKBONES)}, got "
                             f"{self.backbone!r}")
        if self.view_policy not in VIEW_POLICIES:
            raise ValueError(f"{type(self).__name__}: view_policy must be one of {list(VIEW_POLICIES)}, got "
                             f"{self.view_policy!r}")
        check_input_size(self.backbone, self.size)
        self.ssl  # noqa: B018 -- validates the optimisation fields

    @property
    def size(self) -> tuple[int, int]:
        """The backbone's input (frames, bins)."""
        return int(self.input_frames), int(self.input_bins)

    @property
    def ssl(self) -> SSLRecipe:
        """The optimisation recipe of :func:`esclib.train.ssl.pretrain`."""
        return SSLRecipe(epochs=self.ssl_epochs, batch_size=self.batch_size, lr=self.lr,
                         weight_decay=self.weight_decay, warmup_epochs=self.warmup_epochs)

    def method_params(self, arm: str) -> dict[str, Any]:
        """The hyper-parameters the recipe sets for method ``arm`` (the rest are the published ones)."""
        method = ARM_METHOD[arm]
        return {**({"queue_size": self.queue_size} if method in ("moco", "swav") else {}),
                **({"proj_dim": self.simclr_proj_dim} if method == "simclr" else {})}


@dataclass(frozen=True)
class EvalRecipe(PretrainRecipe):
    """The evaluation protocol, one for every arm (never tuned per method): a linear probe of at most
    ``probe_epochs`` epochs (Adam 1e-3, batches of 200, EVAR's patience of 20) whose model ``selection`` picks
    (:data:`esclib.data.splits.SELECTIONS`), also with ``probe_budgets`` labels per class; a weighted kNN of
    ``knn_k`` neighbours at ``knn_temperature``; the supervised baseline trains ``supervised_epochs`` with the
    pre-training's optimiser recipe and views (view 0) and picks its epoch under the same ``selection``."""

    probe_epochs: int
    probe_budgets: tuple[int, ...]
    knn_k: int
    knn_temperature: float
    selection: str
    supervised_epochs: int

    def __post_init__(self) -> None:
        super().__post_init__()
        check_selection(self.selection, "EvalRecipe")
        if self.knn_k < 1 or self.knn_temperature <= 0 or self.probe_epochs < 1 or self.supervised_epochs < 1:
            raise ValueError(f"EvalRecipe: need knn_k >= 1, knn_temperature > 0, probe_epochs >= 1 and "
                             f"supervised_epochs >= 1, got {self.knn_k}, {self.knn_temperature}, "
                             f"{self.probe_epochs}, {self.supervised_epochs}")

    @property
    def supervised(self) -> SSLRecipe:
        """The supervised baseline's optimisation: the pre-training's, for ``supervised_epochs``."""
        return SSLRecipe(epochs=self.supervised_epochs, batch_size=self.batch_size, lr=self.lr,
                         weight_decay=self.weight_decay, warmup_epochs=min(self.warmup_epochs,
                                                                           self.supervised_epochs - 1))

    @property
    def pretraining(self) -> PretrainRecipe:
        """The recipe of the pre-training this evaluation reads."""
        return self.part(PretrainRecipe)


# ----------------------------------------------------------------------------------------------- helpers
def initial_backbone(recipe: PretrainRecipe, seed: int) -> tuple[torch.nn.Module, int]:
    """The backbone every arm starts from: ``recipe.backbone`` with weights drawn from ``seed`` alone (the
    chapter's seed), so that the random-weight arm is exactly the initialisation of every method."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_from({"seed": seed, "backbone": recipe.backbone}))
        return backbone(recipe.backbone)


def input_of(recipe: PretrainRecipe, bank: np.ndarray, rows: np.ndarray) -> SpectrogramInput:
    """The spectrogram input, standardised with the statistics of ``bank``'s ``rows`` (the training clips)."""
    values = bank[np.sort(rows)]
    return SpectrogramInput(recipe.size, float(values.mean()), float(values.std()))


class SSLPretraining(Experiment):
    """Study 001's self-supervised pre-training, one run per method and pool (see the module docstring)."""

    name = PRETRAIN_EXPERIMENT
    arms = METHOD_ARMS
    artifacts = ("method.pt",)

    def __init__(self, clips: ClipSet, store, **kwargs: Any) -> None:
        super().__init__(store, **kwargs)
        self.clips = clips

    def inputs(self) -> dict[str, Any]:
        return {"us8k": dataset_identity(self.clips, progress=self.progress)}

    def setting(self, arm: str, recipe: Recipe, split: Split) -> dict[str, Any]:
        folds = sorted({int(f) for f in split.train.folds})
        return {"dataset": self.clips.name, "backbone": recipe.backbone,
                "pool_folds": ",".join(map(str, folds)), "pool_clips": len(split.train)}

    @property
    def bank(self) -> np.ndarray:
        """:func:`ssl_inputs` of the dataset."""
        return ssl_inputs(self.clips, progress=self.progress)

    def method(self, arm: str, recipe: PretrainRecipe) -> SSLMethod:
        """A fresh method ``arm`` over :func:`initial_backbone`."""
        net, dim = initial_backbone(recipe, self.seed)
        return ssl_method(ARM_METHOD[arm], net, dim, head_scale=recipe.head_scale, **recipe.method_params(arm))

    def loader(self, recipe: PretrainRecipe, pool: ClipSet, seed: int) -> tuple[Any, TwoViewInput]:
        """The two-view loader of ``pool`` and its view maker: cached spectrograms, or waveforms through the
        study's frontend when the policy has waveform operations."""
        if pool.targets.max(initial=-1) >= 0:
            raise ValueError("SSLPretraining: the pre-training pool must be unlabelled (ClipSet.unlabelled())")
        policy = get_view_policy(recipe.view_policy, sample_rate=STUDY_FRONTEND["sample_rate"])
        spectrogram = input_of(recipe, self.bank, pool_rows(pool, self.clips))
        array, transforms = self.bank, (None, None)
        if policy.needs_waveforms:
            array = cached_waveforms(self.clips, STUDY_FRONTEND["sample_rate"], CLIP_SECONDS,
                                     progress=self.progress)
            spectrogram.frontend, transforms = study_frontend(), policy.waveform
        loader = array_loader(pool, self.clips, array, train=True, batch_size=recipe.batch_size, views=2,
                              transforms=transforms, seed=seed)
        return loader, TwoViewInput(spectrogram, policy, seed=seed)

    def train(self, ctx: RunContext, arm: str, recipe: PretrainRecipe, split: Split) -> dict[str, Any]:
        method = self.method(arm, recipe)
        loader, views = self.loader(recipe, split.train, ctx.seed)
        start = time.perf_counter()
        history = pretrain(method, loader, views, recipe.ssl, device=ctx.device, checkpoint=ctx.checkpoint,
                           progress=ctx.progress, desc=ctx.desc)
        seconds = time.perf_counter() - start
        ctx.histories.append(history)
        spectrogram = SpectrogramInput(recipe.size, views.input.mean, views.input.std)
        ctx.save_artifact("method.pt", {"method": method.state_dict(), "mean": spectrogram.mean,
                                        "std": spectrogram.std})
        eval_loader = array_loader(split.train, self.clips, self.bank, train=False, batch_size=256)
        x, _ = embeddings(method.embed, spectrogram, eval_loader, device=ctx.device, progress=False)
        x0, _ = embeddings(self.method(arm, recipe).embed, spectrogram, eval_loader, device=ctx.device,
                           progress=False)
        metrics = {"final_loss": history.epochs[-1]["loss"], "rankme": effective_rank(x),
                   "rankme_init": effective_rank(x0), "embedding_dim": int(x.shape[1]),
                   "pretrain_seconds": seconds}
        diagnose = getattr(method, "collapse_diagnostics", None)
        if diagnose is not None:
            metrics.update(collapse_monitors(method, views, loader, ctx.device))
        return metrics

    def pretrained(self, arm: str, recipe: PretrainRecipe, pool: ClipSet) -> tuple[SSLMethod, SpectrogramInput, dict]:
        """Method ``arm`` pre-trained on ``pool`` (trained, or reloaded from its run) in eval mode, its input and
        its run's result."""
        result = self.run(arm, recipe, pool_split(pool))
        state = torch.load(self.artifact(result, "method.pt"), map_location="cpu", weights_only=True)
        method = self.method(arm, recipe)
        method.load_state_dict(state["method"])
        return method.eval(), SpectrogramInput(recipe.size, state["mean"], state["std"]), result


@torch.no_grad()
def collapse_monitors(method: SSLMethod, views: TwoViewInput, loader: Any, device: torch.device,
                      batches: int = 4) -> dict[str, float]:
    """DINO's collapse monitors (:meth:`esclib.models.ssl.DINO.collapse_diagnostics`) averaged over the first
    ``batches`` two-view batches of ``loader``, at the end of the schedule: ``teacher_entropy`` (``log_k`` when the
    teacher outputs the uniform distribution, 0 when one output), ``kl`` and ``log_k``."""
    method.to(device).eval()
    views.to(device).eval()
    found: list[dict[str, float]] = []
    for i, batch in enumerate(loader):
        if i == batches:
            break
        v0, v1 = views(batch[0].to(device), batch[1].to(device), step=10**9 + i)
        found.append(method.collapse_diagnostics(v0, v1, 1.0))
    return {k: float(np.mean([f[k] for f in found])) for k in found[0]} if found else {}


class SSLExperiment(Experiment):
    """Study 001's evaluation: every arm on one official fold of UrbanSound8K, by one protocol."""

    name = EXPERIMENT
    arms = ARMS

    def __init__(self, clips: ClipSet, pretraining: SSLPretraining, splits: Sequence[FoldSplit], store, *,
                 pool: str = "shared", **kwargs: Any) -> None:
        """``splits``: every split the chapter evaluates (the ``shared`` pool is the clips all of them train on);
        ``pool``: :data:`POOLS`."""
        super().__init__(store, **kwargs)
        if pool not in POOLS:
            raise ValueError(f"SSLExperiment: pool must be one of {list(POOLS)}, got {pool!r}")
        self.clips, self.pretraining, self.splits, self.pool = clips, pretraining, list(splits), pool
        self.fold_splits = {s.test_fold: s for s in self.splits}

    def inputs(self) -> dict[str, Any]:
        return {"us8k": dataset_identity(self.clips, progress=self.progress)}

    def split(self, fold: int) -> Split:
        """The :class:`Split` of test fold ``fold``."""
        s = self.fold_splits[fold]
        return Split({"train": s.train, "val": s.val, "test": s.test}, fold=fold)

    def pool_of(self, split: Split) -> ClipSet:
        """The pre-training pool the SSL arms evaluated on ``split`` read."""
        return pretraining_pool(self.splits, self.pool, split.fold)

    def run_inputs(self, arm: str, recipe: EvalRecipe, split: Split) -> dict[str, Any]:
        if arm not in ARM_METHOD:
            return {}
        return {"encoder": self.pretraining.open(arm, recipe.pretraining, pool_split(self.pool_of(split))).id}

    def setting(self, arm: str, recipe: Recipe, split: Split) -> dict[str, Any]:
        return {**super().setting(arm, recipe, split), "backbone": recipe.backbone}

    def encoder(self, arm: str, recipe: EvalRecipe, split: Split) -> tuple[Any, SpectrogramInput, dict]:
        """What ``arm`` evaluates on ``split``: the embedding function, its input and (SSL arms) the pre-training
        run's metrics."""
        if arm in ARM_METHOD:
            method, spectrogram, result = self.pretraining.pretrained(arm, recipe.pretraining, self.pool_of(split))
            return method.embed, spectrogram, result["metrics"]
        net, _ = initial_backbone(recipe, self.seed)
        return net, input_of(recipe, self.pretraining.bank, pool_rows(split.train, self.clips)), {}

    def train(self, ctx: RunContext, arm: str, recipe: EvalRecipe, split: Split) -> dict[str, Any]:
        if arm == "supervised-scratch":
            return self.supervised(ctx, recipe, split)
        encode, spectrogram, pretrained = self.encoder(arm, recipe, split)
        x = self.split_embeddings(encode, spectrogram, split, ctx.device)
        metrics = frozen_evaluation(x, split, recipe, ctx.seed, self.clips.num_classes)
        metrics.update({f"pretrain_{k}": v for k, v in pretrained.items() if k in ("final_loss", "pretrain_seconds",
                                                                                    "teacher_entropy", "log_k")})
        return metrics

    def loader(self, part: ClipSet, batch_size: int = 256) -> Any:
        """An evaluation loader (no augmentation) of ``part``'s cached spectrograms."""
        return array_loader(part, self.clips, self.pretraining.bank, train=False, batch_size=batch_size)

    def split_embeddings(self, encode: Any, spectrogram: SpectrogramInput, split: Split,
                         device: torch.device) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The frozen embeddings and targets of the split's ``train``, ``val`` and ``test`` clips (what
        :func:`frozen_evaluation` and :func:`fit_probe` read)."""
        return {role: embeddings(encode, spectrogram, self.loader(getattr(split, role)), device=device,
                                 progress=False) for role in ("train", "val", "test")}

    def supervised(self, ctx: RunContext, recipe: EvalRecipe, split: Split) -> dict[str, Any]:
        """The from-scratch baseline: the initial backbone and a linear layer trained with labels on the training
        clips (views: view 0 of the policy), its epoch picked under ``recipe.selection``; test metrics of the
        classifier, and the frozen evaluation of its backbone (the ceiling of the probe and kNN)."""
        train, val = selection_sets(recipe.selection, split.train, split.val, seed=ctx.seed)
        net, dim = initial_backbone(recipe, self.seed)
        spectrogram = input_of(recipe, self.pretraining.bank, pool_rows(train, self.clips))
        policy = get_view_policy(recipe.view_policy, sample_rate=STUDY_FRONTEND["sample_rate"])
        if policy.needs_waveforms:
            policy = None  # the cached spectrograms cannot take waveform operations: no augmentation
        model = SpectrogramClassifier(spectrogram, net, dim, self.clips.num_classes, augment=policy)
        schedule = recipe.supervised
        optimizer = schedule.optimizer(model.parameters())
        loader = array_loader(train, self.clips, self.pretraining.bank, train=True, batch_size=recipe.batch_size,
                              seed=ctx.seed)
        history = ctx.fit(model, loader, epochs=schedule.epochs, optimizer=optimizer, loss_fn=F.cross_entropy,
                          val_loader=self.loader(val) if val is not None else None,
                          scheduler=schedule.scheduler(optimizer),
                          early_stopping=(EarlyStopping(SUPERVISED_PATIENCE, "val_acc", "max") if val is not None
                                          else None))
        scores, targets = predict(model, self.loader(split.test), ctx.device)
        metrics = classification_metrics(targets, scores, self.clips.num_classes)
        kept = history.best("val_acc", "max")["epoch"] if val is not None else len(history.epochs)
        x = self.split_embeddings(net, spectrogram, split, ctx.device)
        frozen = frozen_evaluation(x, split, recipe, ctx.seed, self.clips.num_classes, budgets=False)
        return {**metrics, "kept_epoch": int(kept), "probe_accuracy": frozen["accuracy"],
                **{k: v for k, v in frozen.items() if k.startswith(("knn_", "rankme"))}}


def frozen_evaluation(x: dict[str, tuple[np.ndarray, np.ndarray]], split: Split, recipe: EvalRecipe, seed: int,
                      n_classes: int, *, budgets: bool = True) -> dict[str, Any]:
    """The protocol every arm is measured by, on embeddings ``x[role] = (features, targets)`` of the split's
    ``train`` / ``val`` / ``test`` clips: the linear probe with every training label (model picked under
    ``recipe.selection``: the validation fold, a fifth of the training labels held out, or the last epoch) --
    its test metrics are the run's ``accuracy``, ``macro_f1``, ``confusion`` --, the weighted kNN
    (``knn_accuracy``, ``knn_macro_f1``), the training embeddings' effective rank (``rankme``) and, with
    ``budgets``, the probe's accuracy with ``recipe.probe_budgets`` labels per class (``budget_<n>``)."""
    (tx, ty), (vx, vy), (sx, sy) = x["train"], x["val"], x["test"]
    probe, rows = fit_probe(x, split, recipe, seed, n_classes)
    knn = knn_evaluation(tx, ty, sx, sy, k=recipe.knn_k, temperature=recipe.knn_temperature, n_classes=n_classes)
    metrics: dict[str, Any] = {"accuracy": probe.metrics["accuracy"], "macro_f1": probe.metrics["macro_f1"],
                               "confusion": probe.metrics["confusion"], "kept_epoch": int(probe.best_epoch),
                               "knn_accuracy": knn["accuracy"], "knn_macro_f1": knn["macro_f1"],
                               "rankme": effective_rank(tx), "n_train": int(len(rows)), "n_test": int(len(sy))}
    if budgets and recipe.probe_budgets:
        curve = label_budget_curve(tx, split.train, vx, vy, sx, sy, budgets=tuple(recipe.probe_budgets),
                                   selection=recipe.selection, seed=seed, max_epochs=recipe.probe_epochs)
        metrics.update({f"budget_{row.budget}": float(row.accuracy) for row in curve.itertuples()})
    return metrics


def fit_probe(x: dict[str, tuple[np.ndarray, np.ndarray]], split: Split, recipe: EvalRecipe, seed: int,
              n_classes: int) -> tuple[ProbeResult, np.ndarray]:
    """The protocol's linear probe on embeddings ``x[role]`` with every training label, its epoch picked under
    ``recipe.selection`` (the validation fold, a fifth of the training labels held out, or the last epoch); also
    the rows of ``x["train"]`` it trained on."""
    (tx, ty), (vx, vy), (sx, sy) = x["train"], x["val"], x["test"]
    train, val = selection_sets(recipe.selection, split.train, split.val, seed=seed)
    rows = pool_rows(train, split.train)
    if val is None:
        held = None
    elif recipe.selection == "validation-fold":
        held = (vx, vy)
    else:
        held_rows = pool_rows(val, split.train)
        held = (tx[held_rows], ty[held_rows])
    probe = linear_probe(tx[rows], ty[rows], sx, sy, val=held, n_classes=n_classes, max_epochs=recipe.probe_epochs,
                         seed=seed)
    return probe, rows


@dataclass
class CamExample:
    """One test clip explained: its audio file, true and predicted class names, the backbone's input
    ``(frequency, time)`` and the Grad-CAM map at the same size."""

    path: str
    true: str
    predicted: str
    image: np.ndarray
    cam: np.ndarray


def grad_cam_examples(experiment: SSLExperiment, arm: str, recipe: EvalRecipe, split: Split,
                      n: int = 3) -> list[CamExample]:
    """Grad-CAM (:func:`esclib.models.backbones.grad_cam`, at the backbone's last stage) of ``arm``'s frozen
    embedding network read out by the protocol's linear probe (:func:`fit_probe`, refitted with the run's seed: the
    probe the table reports), for the predicted class of the first test clip of each of ``n`` classes. Empty when
    that stage's feature map is a single cell at the recipe's input size (Grad-CAM then has nothing to localise)."""
    encode, spectrogram, _ = experiment.encoder(arm, recipe, split)
    owner = getattr(encode, "__self__", encode)
    net = (owner.embedding_backbone if isinstance(owner, SSLMethod) else owner).eval()
    layer = cam_layer(net, recipe.backbone)
    cells = []
    handle = layer.register_forward_hook(lambda _module, _inputs, output: cells.append(output.shape[-2:].numel()))
    with torch.no_grad():
        net(torch.zeros(1, 1, *recipe.size, device=next(net.parameters()).device))
    handle.remove()
    if cells[-1] == 1:
        return []
    device = experiment.device
    x = experiment.split_embeddings(encode, spectrogram, split, device)
    probe, _ = fit_probe(x, split, recipe, experiment.seed, experiment.clips.num_classes)
    model = torch.nn.Sequential(net, probe.classifier).to(device).eval()
    first = split.test.table.reset_index(drop=True).groupby("target").head(1).index[:n]
    shown = split.test.subset(first.to_numpy())
    batch = torch.as_tensor(experiment.pretraining.bank[pool_rows(shown, experiment.clips)], device=device)
    inputs = spectrogram.to(device).eval()(batch).detach()
    cams = grad_cam(model, layer, inputs).cpu()
    with torch.no_grad():
        predicted = model(inputs).argmax(1).tolist()
    names = experiment.clips.classes
    return [CamExample(path, names[int(true)], names[guess], image[0].T.cpu().numpy(), cam.T.numpy())
            for path, true, guess, image, cam in zip(shown.paths, shown.targets, predicted, inputs, cams)]


# ----------------------------------------------------------------------------------------------- tables
def pretraining_table(experiment: SSLExperiment, recipe: EvalRecipe, arms: Sequence[str]) -> pd.DataFrame:
    """One row per pre-trained method and pool: epochs, final loss, time, RankMe of the pool's embeddings against
    the random initialisation's, and DINO's teacher entropy and final loss as shares of ``log k`` (both reach
    ``log k`` when teacher and student output the uniform distribution)."""
    rows = []
    pools = {tuple(experiment.pool_of(experiment.split(k)).table["clip_id"]): experiment.split(k)
             for k in experiment.fold_splits}
    for arm in arms:
        for split in pools.values():
            result = experiment.pretraining.run(arm, recipe.pretraining, pool_split(experiment.pool_of(split)))
            m = result["metrics"]
            rows.append({"method": arm, "family": FAMILIES[arm], "pool folds": result["setting"]["pool_folds"],
                         "clips": result["setting"]["pool_clips"], "epochs": m["epochs"],
                         "final loss": m["final_loss"], "seconds": m["pretrain_seconds"], "RankMe": m["rankme"],
                         "RankMe at init": m["rankme_init"], "dim": m["embedding_dim"],
                         "teacher entropy / log k": (m["teacher_entropy"] / m["log_k"]) if "log_k" in m
                         else float("nan"),
                         "final loss / log k": (m["final_loss"] / m["log_k"]) if "log_k" in m else float("nan")})
    return pd.DataFrame(rows)


def comparison_table(results: Results, recipe: EvalRecipe) -> pd.DataFrame:
    """lightly's benchmark table: per arm the backbone, batch, epochs, linear-probe top-1, kNN top-1, macro-F1
    (mean ± std over folds), pre-training time, and the study's number beside ours with its protocol."""
    summary = results.summary(["accuracy", "knn_accuracy", "macro_f1"])
    if summary.empty:
        return summary
    seconds = {arm: np.mean([r["metrics"].get("pretrain_pretrain_seconds", np.nan) for r in results.select(arm=arm)])
               for arm in summary["arm"]}
    summary.insert(1, "backbone", recipe.backbone)
    summary.insert(2, "batch", recipe.batch_size)
    summary.insert(3, "epochs", [recipe.supervised_epochs if a == "supervised-scratch" else
                                 0 if a == "random" else recipe.ssl_epochs for a in summary["arm"]])
    summary["pre-training s"] = [round(seconds[a], 1) if not np.isnan(seconds[a]) else "" for a in summary["arm"]]
    return summary.rename(columns={"accuracy": "linear top-1", "knn_accuracy": "kNN top-1"})


def paired_table(results: Results, arms: Sequence[str], baseline: str = "random",
                 metrics: Sequence[str] = ("accuracy", "knn_accuracy")) -> pd.DataFrame:
    """Every ``arm − baseline`` paired over the folds both ran (:meth:`Results.paired`), one row per arm and metric
    (``accuracy``: the linear probe)."""
    present = {r["arm"] for r in results}
    rows = []
    for arm in arms:
        for metric in metrics:
            if arm != baseline and {arm, baseline} <= present:
                row = results.paired(baseline, arm, metric).row()
                row["folds higher"] = row.pop(f"folds {arm} higher")
                row["evaluation"] = "linear probe" if metric == "accuracy" else metric.replace("_accuracy", "")
                rows.append(row)
    return pd.DataFrame(rows).drop(columns="metric") if rows else pd.DataFrame()


def selection_table(results: Results) -> pd.DataFrame:
    """Mean test accuracy (linear probe; the supervised classifier's own) per arm under each ``selection``, and
    the epoch each kept on average."""
    frame = results.frame()
    if frame.empty:
        return frame
    return (frame.groupby(["arm", "selection"], sort=False)[["accuracy", "kept_epoch"]].mean().round(3)
            .unstack("selection"))


def per_fold_table(results: Results, metric: str = "accuracy") -> pd.DataFrame:
    """``metric`` per arm (rows) and test fold (columns)."""
    frame = results.frame()
    if frame.empty:
        return frame
    return frame.pivot_table(index="arm", columns="fold", values=metric, sort=False).round(3)


def budget_table(results: Results) -> pd.DataFrame:
    """The probe's label-budget curve: one row per arm, fold and budget (labels per class; ``all``)."""
    rows = []
    for r in results:
        for key, value in r["metrics"].items():
            if key.startswith("budget_"):
                rows.append({"arm": r["arm"], "fold": r["setting"]["fold"], "labels per class": int(key[7:]),
                             "accuracy": value})
        if r["arm"] != "supervised-scratch":
            rows.append({"arm": r["arm"], "fold": r["setting"]["fold"], "labels per class": "all",
                         "accuracy": r["metrics"]["accuracy"]})
    return pd.DataFrame(rows)


def ablation(experiment: SSLExperiment, recipe: EvalRecipe, arm: str, field: str, values: Sequence[Any],
             folds: Sequence[int]) -> pd.DataFrame:
    """Study 001's ablations: ``arm`` with ``recipe`` but ``field`` set to each of ``values`` (e.g. SimCLR's
    ``simclr_proj_dim`` 64 / 128 / 256, MoCo's ``queue_size``, the ``view_policy``), each pre-trained and evaluated
    on ``folds`` (runs of the results store); one row per value: the probe and kNN test accuracy, mean ± std over
    the folds."""
    if field not in {f.name for f in fields(EvalRecipe)}:
        raise ValueError(f"ablation: {field!r} is not a recipe field")
    rows = []
    for value in values:
        variant = recipe.replace(**{field: value})
        runs = experiment.grid([(arm, variant, experiment.split(k)) for k in folds], desc=f"{arm}: {field}={value}")
        frame = runs.frame()
        rows.append({"method": arm, field: value, "folds": len(frame),
                     "linear top-1": f"{frame['accuracy'].mean():.3f} ± {frame['accuracy'].std():.3f}",
                     "kNN top-1": f"{frame['knn_accuracy'].mean():.3f} ± {frame['knn_accuracy'].std():.3f}"})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------- numbers for the prose
def verdict_words(low: float, high: float) -> str:
    """What an interval of ``b − a`` says: ``above`` / ``below`` zero, or ``inside the noise``."""
    if np.isnan(low) or np.isnan(high):
        return "not measured"
    return "clearly above zero" if low > 0 else "clearly below zero" if high < 0 else "inside the fold noise"


def difference_numbers(results: Results, arm: str, baseline: str = "random") -> dict[str, Any]:
    """The glued numbers about ``arm − baseline`` (probe ``p``, kNN ``k``): mean, interval, folds, verdict."""
    nan = float("nan")
    out: dict[str, Any] = {}
    present = {r["arm"] for r in results}
    for short, metric in (("p", "accuracy"), ("k", "knn_accuracy")):
        name = f"d{short}_{arm}"
        if {arm, baseline} <= present:
            d = results.paired(baseline, arm, metric)
            out.update({name: d.mean, f"{name}_low": d.low, f"{name}_high": d.high,
                        f"{name}_higher": f"{d.favour_b} of {len(d.per_fold)}",
                        f"{name}_verdict": verdict_words(d.low, d.high)})
        else:
            out.update({name: nan, f"{name}_low": nan, f"{name}_high": nan, f"{name}_higher": "no fold",
                        f"{name}_verdict": "not run"})
    return out


def mean_metric(results: Results, arm: str, metric: str = "accuracy") -> float:
    """Mean ``metric`` of ``arm`` over its folds (NaN when it did not run)."""
    values = [r["metrics"][metric] for r in results.select(arm=arm) if metric in r["metrics"]]
    return float(np.mean(values)) if values else float("nan")


def beats_random_story(results: Results, arms: Sequence[str]) -> str:
    """One phrase per method: whether its probe and kNN are above the random backbone's beyond the fold noise."""
    parts = []
    for arm in arms:
        n = difference_numbers(results, arm)
        if not np.isnan(n[f"dp_{arm}"]):
            parts.append(f"{arm}: probe {n[f'dp_{arm}']:+.3f} ({n[f'dp_{arm}_verdict']}), kNN "
                         f"{n[f'dk_{arm}']:+.3f} ({n[f'dk_{arm}_verdict']})")
    return "; ".join(parts) or "no method ran"


def evaluation_counts(results: Results, arms: Sequence[str]) -> dict[str, Any]:
    """How many of ``arms`` beat the random backbone beyond the fold noise by the probe (``n_probe_above``) and by
    the kNN (``n_knn_above``) out of ``n_methods``; the best arm's probe accuracy (``best_probe``) and how the
    supervised reference compares with it (``sup_words``)."""
    numbers = [difference_numbers(results, arm) for arm in arms]
    ran = [(arm, n) for arm, n in zip(arms, numbers) if not np.isnan(n[f"dp_{arm}"])]
    probe = {arm: mean_metric(results, arm) for arm, _ in ran}
    best = max(probe.values(), default=float("nan"))
    supervised = mean_metric(results, "supervised-scratch")
    return {"n_methods": len(ran),
            "n_probe_above": sum(n[f"dp_{arm}_low"] > 0 for arm, n in ran),
            "n_knn_above": sum(n[f"dk_{arm}_low"] > 0 for arm, n in ran),
            "best_probe": best,
            "sup_words": ("not comparable (an arm did not run)" if np.isnan(best) or np.isnan(supervised) else
                          "above" if supervised > best else "no better than")}


def collapse_words(monitors: dict[str, float], near: float = 0.9) -> dict[str, str]:
    """Words for the collapse monitors of ``monitors`` (``rankme_<arm>``, ``rankme_init``, ``dino_entropy``):
    ``rank_words_<arm>`` says whether the method's effective rank is above or below the random initialisation's,
    ``dino_words`` whether DINO's teacher entropy is near its maximum (``near`` of ``log k``: almost uniform
    targets), near zero (one output) or in between."""
    init = monitors.get("rankme_init", float("nan"))
    words = {}
    for arm in METHOD_ARMS:
        rank = monitors.get(f"rankme_{arm}", float("nan"))
        words[f"rank_words_{arm}"] = ("not run" if np.isnan(rank) or np.isnan(init) else
                                      "above the random initialisation's" if rank > init else
                                      "below the random initialisation's: fewer dimensions than it started with")
    entropy = monitors.get("dino_entropy", float("nan"))
    words["dino_words"] = ("DINO did not run" if np.isnan(entropy) else
                           "near its maximum, the teacher's targets are almost uniform" if entropy >= near else
                           "near zero, the teacher gives every clip the same output" if entropy <= 1 - near else
                           "between the two collapses")
    return words


def glue_numbers(numbers: dict[str, Any]) -> None:
    """Glue every value of ``numbers`` under its name for the prose (``myst_nb.glue``, not displayed)."""
    from myst_nb import glue

    for name, value in numbers.items():
        glue(name, value, display=False)
