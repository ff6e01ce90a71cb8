"""Chapter 3's experiment (study 002, Jensen & Pethick, DTU): CAE pre-training on ESC-US, fine-tuning on ESC-50.

What the chapter runs, every step resumable:

1. :func:`cae_inputs` -- the study's 1x28x36 log-mel (:class:`esclib.features.CAEInput`) of every clip, computed once
   per clip set and cached on disk (one ``.npy`` per clip set and feature configuration).
2. :meth:`CAEExperiment.pretrain` -- the autoencoder (:class:`esclib.models.cae.ConvAutoencoder`, unpooling or
   upsampling decoder) trained on the ESC-US pool with the mean squared reconstruction error, Adam 1e-3, early
   stopping on the validation loss (patience 5, at most 50 epochs; Sec. 4.2).
3. :meth:`CAEExperiment.finetune` -- the classifier (:class:`esclib.models.cae.CAEClassifier`) from the pretrained
   encoder (arms ``cae-unpool`` / ``cae-upsample``) or at random (arm ``supervised``), early stopping on the
   validation accuracy (patience 5, at most 150 epochs), tested on the study's random split (seed 1337,
   1,280 / 320 / 400) or an official ESC-50 fold, on all or a class-balanced fraction of the training clips.

Each run goes into the results store (experiment ``cae``) and is skipped when it has finished before; training
checkpoints live under ``esclib.paths.cache_dir()/checkpoints/cae``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from esclib import paths
from esclib.data import audio
from esclib.data.clips import ClipSet
from esclib.data.splits import FoldSplit, assert_trainable, fold_split, labelled_subset, random_split
from esclib.features import CAEInput
from esclib.metrics import classification_metrics
from esclib.models.cae import CAEClassifier, ConvAutoencoder
from esclib.results.store import ResultsStore
from esclib.results.studies import study_value
from esclib.train import EarlyStopping, History, fit, predict

EXPERIMENT = "cae"
#: arms of the results store (``esclib.results.studies``) and the decoder each pre-trains with (None: no pre-training)
ARM_DECODER: dict[str, str | None] = {"supervised": None, "cae-unpool": "unpool", "cae-upsample": "upsample"}
#: the study's random split of ESC-50: seed and (train, val, test) fractions (1,280 / 320 / 400 of 2,000 clips)
STUDY_SPLIT_SEED = 1337
STUDY_SPLIT_FRACTIONS = (0.64, 0.16, 0.20)
#: the study's ESC-US hold-out: 10,000 of its 50,000 clips for validation, 16 for test (Fig. 1)
POOL_VAL_FRACTION = 0.2
POOL_TEST_CLIPS = 16
#: parameters that do not affect pre-training (left out of its run's identity)
_CLASSIFIER_ONLY = ("finetune_epochs", "hidden", "hidden_activation", "dropout", "esc50_clips")
#: bump when the cached features change meaning
FEATURE_CACHE_VERSION = 1


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


def _feature_key(clips: ClipSet, feature: CAEInput) -> str:
    missing = audio.find_problems(clips.paths, "exists")
    if missing:
        raise audio.AudioError(missing[0].path, f"{missing[0].reason} ({len(missing)} of {clips.name} missing)")
    files = [(path, (st := os.stat(path)).st_size, st.st_mtime_ns) for path in clips.paths]
    payload = json.dumps({"version": FEATURE_CACHE_VERSION, "dataset": clips.name, "samples": feature.samples,
                          "feature": repr(feature.logmel), "resampler": audio.RESAMPLER, "files": files})
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


class _Waves(Dataset):
    """Each clip decoded, mono, at the feature's rate (the CAE input crops / pads it to its length)."""

    def __init__(self, paths_: Sequence[str], sample_rate: int, samples: int):
        self.paths, self.sample_rate, self.samples = list(paths_), sample_rate, samples

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        wave = audio.load_audio(self.paths[i], self.sample_rate)[: self.samples]
        return torch.from_numpy(np.pad(wave, (0, self.samples - len(wave))))


def cae_inputs(clips: ClipSet, feature: CAEInput | None = None, *, cache_dir: str | Path | None = None,
               batch_size: int = 64, num_workers: int = 0, progress: bool = True) -> np.ndarray:
    """The CAE input (``feature``, default the study's 1x28x36 :class:`CAEInput`) of every clip, as a read-only
    ``(len(clips), 1, n_mels, frames)`` float32 memmap.

    Computed once per clip set and feature configuration (deterministic) and cached in ``cache_dir`` (default
    ``esclib.paths.cache_dir()/cae-inputs``) under a hash of the configuration and every file's path, size and
    mtime. Clips are decoded one batch at a time, so 50,000 ESC-US clips never need a 44 GB waveform cache.
    """
    feature = feature or CAEInput()
    folder = Path(cache_dir) if cache_dir is not None else paths.cache_dir() / "cae-inputs"
    target = folder / f"{clips.name}-{'x'.join(map(str, feature.shape))}-{_feature_key(clips, feature)}.npy"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp.npy")
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(clips), *feature.shape))
            waves = DataLoader(_Waves(clips.paths, feature.logmel.sample_rate, feature.samples),
                               batch_size=batch_size, num_workers=num_workers)
            row = 0
            with torch.no_grad():
                for batch in tqdm(waves, desc=f"CAE inputs of {clips.name}", unit="batch", disable=not progress):
                    out[row:row + len(batch)] = feature(batch).numpy()
                    row += len(batch)
            out.flush()
            del out
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return np.load(target, mmap_mode="r")


def rows_of(part: ClipSet, whole: ClipSet) -> np.ndarray:
    """Row of each clip of ``part`` in ``whole`` (by ``clip_id``), to index features computed for ``whole``."""
    index = pd.Index(whole.table["clip_id"])
    rows = index.get_indexer(part.table["clip_id"])
    if (rows < 0).any():
        missing = part.table["clip_id"][rows < 0].tolist()[:5]
        raise KeyError(f"clips of {part.name} absent from {whole.name}: {missing}")
    return rows


def feature_loader(x: np.ndarray, targets: np.ndarray | None = None, *, batch_size: int,
                   shuffle: bool = False) -> DataLoader:
    """Batches ``(x, target, index)`` of in-memory features (targets -1 when None). Shuffling draws from torch's
    global generator, which :func:`esclib.train.fit` checkpoints, so a resumed run repeats the same order."""
    y = np.full(len(x), -1) if targets is None else np.array(targets)
    dataset = TensorDataset(torch.as_tensor(np.array(x, dtype=np.float32)), torch.as_tensor(y, dtype=torch.long),
                            torch.arange(len(x)))
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)


# ----------------------------------------------------------------------------------------------- training
def reconstruction_step(model: nn.Module, batch, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
    """One CAE training step for :func:`esclib.train.fit`: the mean squared error between ``model(x)`` and ``x``
    (study 002, Sec. 2.2; the mean over every bin, as Keras' ``mse``)."""
    x = batch[0]
    loss = F.mse_loss(model(x), x)
    return loss, {"loss": float(loss.detach())}


@torch.no_grad()
def reconstruction_loss(model: nn.Module, loader: Iterable, device: str | torch.device = "cpu") -> dict[str, float]:
    """Mean squared reconstruction error over every bin of ``loader``'s clips, as ``{"val_loss": ...}`` (the
    ``val_fn`` of pre-training)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in loader:
        x = batch[0].to(device)
        total += float(F.mse_loss(model(x), x, reduction="sum"))
        count += x.numel()
    model.train(was_training)
    return {"val_loss": total / count}


@dataclass(frozen=True)
class CAEHyper:
    """The study's training recipe (Sec. 4; its code): Adam 1e-3, early stopping patience 5, at most 50 epochs of
    pre-training and 150 of fine-tuning; encoder kernels (5, 3, 3); Dense(128) without activation, no dropout."""

    lr: float = 1e-3
    patience: int = 5
    pretrain_epochs: int = 50
    finetune_epochs: int = 150
    kernel_sizes: tuple[int, ...] = (5, 3, 3)
    hidden: int = 128
    hidden_activation: str = "linear"
    dropout: float = 0.0


@dataclass
class Pretrained:
    """A trained autoencoder and its per-epoch history (``epoch, loss, val_loss, lr``)."""

    model: ConvAutoencoder
    history: pd.DataFrame


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _seed(*parts: object) -> None:
    """Seed torch from a run's identity: every run starts the same whatever ran before it."""
    torch.manual_seed(int(_digest(*parts), 16) % 2**31)


@dataclass
class CAEExperiment:
    """Study 002 on one ESC-50 clip set and one ESC-US pool (see the module docstring).

    The CAE inputs of both are computed (or read from the cache) at construction. ``progress`` shows the feature
    and run-grid progress bars, ``epoch_progress`` also each training's per-epoch bars and lines.
    """

    esc50: ClipSet
    pool: FoldSplit
    store: ResultsStore
    feature: CAEInput = field(default_factory=CAEInput)
    hyper: CAEHyper = field(default_factory=CAEHyper)
    device: str | torch.device = "cpu"
    seed: int = 0
    progress: bool = True
    epoch_progress: bool = False
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        self.pool_clips = ClipSet(self.pool.train.name, self.pool.train.root, (), 0, self.pool.train.clip_seconds,
                                  pd.concat([self.pool.train.table, self.pool.val.table, self.pool.test.table],
                                            ignore_index=True))
        self.x_pool = cae_inputs(self.pool_clips, self.feature, cache_dir=self._cache("cae-inputs"),
                                 progress=self.progress)
        self.x_esc50 = cae_inputs(self.esc50, self.feature, cache_dir=self._cache("cae-inputs"),
                                  progress=self.progress)
        self._pretrained: dict[tuple, Pretrained] = {}

    def _cache(self, name: str) -> Path:
        return (self.cache_dir or paths.cache_dir()) / name

    @property
    def input_name(self) -> str:
        """The input shape as a setting value, e.g. ``"1x28x36"``."""
        return "x".join(map(str, self.feature.shape))

    @property
    def input_hw(self) -> tuple[int, int]:
        """(mels, frames) of the inputs."""
        return tuple(self.feature.shape[1:])

    def _params(self, **extra: object) -> dict:
        return {**asdict(self.hyper), "input_shape": list(self.feature.shape), "feature": repr(self.feature.logmel),
                "escus_pool": len(self.pool_clips), "esc50_clips": len(self.esc50), **extra}

    def _checkpoint(self, arm: str, setting: dict, params: dict) -> Path:
        data = (self.esc50.name, str(self.esc50.root), len(self.esc50), str(self.pool_clips.root))
        return self._cache("checkpoints") / EXPERIMENT / f"{arm}-{_digest(arm, setting, params, data)}.pt"

    @staticmethod
    def _x(part: ClipSet, whole: ClipSet, x: np.ndarray) -> np.ndarray:
        return np.asarray(x[rows_of(part, whole)])

    def pool_inputs(self, side: str) -> np.ndarray:
        """CAE inputs of the pool's ``train``, ``val`` or ``test`` clips."""
        return self._x(getattr(self.pool, side), self.pool_clips, self.x_pool)

    def pretrain(self, decoder: str, batch_size: int, filters: int) -> Pretrained:
        """Train (or resume, or reload) the CAE with ``decoder`` on the ESC-US pool; records arm ``cae-<decoder>``
        with ``stage="pretrain"`` in the store (metrics ``val_mse``, ``test_mse``, ``epochs``).

        The weights come from the run's checkpoint (kept: the classifiers and the figures need them); a store
        opened with ``force`` (``esc run --force``) trains afresh."""
        key = (decoder, batch_size, filters)
        if key in self._pretrained:
            return self._pretrained[key]
        arm = f"cae-{decoder}"
        setting = {"stage": "pretrain", "dataset": "escus", "pool_size": len(self.pool_clips), "input": self.input_name,
                   "batch_size": batch_size, "filters": filters, "seed": self.seed}
        params = {k: v for k, v in self._params().items() if k not in _CLASSIFIER_ONLY}
        run = self.store.run(EXPERIMENT, arm, setting, params)
        checkpoint = self._checkpoint(arm, setting, params)
        if run.force:
            checkpoint.unlink(missing_ok=True)
        _seed(arm, setting)
        model = ConvAutoencoder(self.feature.shape[0], filters, self.hyper.kernel_sizes, decoder)
        history = fit(
            model, feature_loader(self.pool_inputs("train"), batch_size=batch_size, shuffle=True),
            epochs=self.hyper.pretrain_epochs, optimizer=torch.optim.Adam(model.parameters(), lr=self.hyper.lr),
            step_fn=reconstruction_step, val_loader=feature_loader(self.pool_inputs("val"), batch_size=256),
            val_fn=reconstruction_loss, device=self.device, checkpoint=checkpoint,
            early_stopping=EarlyStopping(self.hyper.patience, "val_loss", "min"), progress=self.epoch_progress,
            desc=f"pre-train {arm} b={batch_size} f={filters}",
        )
        if not run.done:
            test = reconstruction_loss(model, feature_loader(self.pool_inputs("test"), batch_size=256), self.device)
            _finish(run, history, {"val_mse": history.best("val_loss")["val_loss"], "test_mse": test["val_loss"]})
        model.eval()
        self._pretrained[key] = Pretrained(model, history.frame())
        return self._pretrained[key]

    def finetune(self, arm: str, split: str, batch_size: int, filters: int, *, fold: int | None = None,
                 labelled_fraction: float = 1.0) -> dict:
        """Train (or resume, or reuse) one classifier and test it; returns the run's setting and metrics as a flat
        dict. ``labelled_fraction`` < 1 trains on a class-balanced subset of the training clips (seeded)."""
        if arm not in ARM_DECODER:
            raise ValueError(f"finetune: arm must be one of {list(ARM_DECODER)}, got {arm!r}")
        setting = {"dataset": self.esc50.name, "split": split, **({"fold": fold} if split == "folds" else {}),
                   "batch_size": batch_size, "filters": filters, "labelled_fraction": labelled_fraction,
                   "input": self.input_name, **({"pool_size": len(self.pool_clips)} if ARM_DECODER[arm] else {}),
                   "seed": self.seed}
        run = self.store.run(EXPERIMENT, arm, setting, self._params())
        if not run.done:
            self._train_classifier(run)
        return {"arm": arm, **setting, **run.metrics}

    def _train_classifier(self, run) -> None:
        arm, setting = run.arm, run.setting
        split = evaluation_split(self.esc50, setting["split"], setting.get("fold"))
        train = split.train
        if setting["labelled_fraction"] < 1.0:
            train, _ = labelled_subset(train, fraction=setting["labelled_fraction"], seed=self.seed)
        assert_trainable(train)
        assert_trainable(split.val)
        decoder = ARM_DECODER[arm]
        encoder = self.pretrain(decoder, setting["batch_size"], setting["filters"]).model if decoder else None
        _seed(arm, setting)
        model = CAEClassifier(self.input_hw, self.esc50.num_classes, in_channels=self.feature.shape[0],
                              filters=setting["filters"], kernel_sizes=self.hyper.kernel_sizes,
                              hidden=self.hyper.hidden, hidden_activation=self.hyper.hidden_activation,
                              dropout=self.hyper.dropout)
        if encoder is not None:
            model.load_encoder(encoder)
        loaders = {name: feature_loader(self._x(part, self.esc50, self.x_esc50), part.targets,
                                        batch_size=setting["batch_size"] if name == "train" else 256,
                                        shuffle=name == "train")
                   for name, part in (("train", train), ("val", split.val), ("test", split.test))}
        checkpoint = self._checkpoint(arm, setting, run.params)
        history = fit(model, loaders["train"], epochs=self.hyper.finetune_epochs,
                      optimizer=torch.optim.Adam(model.parameters(), lr=self.hyper.lr), loss_fn=F.cross_entropy,
                      val_loader=loaders["val"], device=self.device, checkpoint=checkpoint,
                      early_stopping=EarlyStopping(self.hyper.patience, "val_acc", "max"), progress=self.epoch_progress,
                      desc=f"{arm} {setting['split']}{setting.get('fold', '')} b={setting['batch_size']}")
        scores, targets = predict(model, loaders["test"], self.device)
        test = classification_metrics(targets, scores, self.esc50.num_classes)
        best = history.best("val_acc", "max")
        _finish(run, history, {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"], "auc": test.get("auc"),
                               "val_acc": best["val_acc"], "best_epoch": best["epoch"],
                               "n_train": len(train), "n_test": len(split.test)})
        checkpoint.unlink(missing_ok=True)

    def splits(self, random: bool, folds: Sequence[int]) -> list[tuple[str, int | None]]:
        """The evaluation splits of a chapter run: the study's random split (if ``random``) and each official fold."""
        return [("random", None)] * bool(random) + [("folds", int(f)) for f in folds]

    def run_grid(self, arms: Sequence[str], batch_sizes: Sequence[int], filters: Sequence[int],
                 splits: Sequence[tuple[str, int | None]], labelled_fractions: Sequence[float] = (1.0,)
                 ) -> pd.DataFrame:
        """Every (arm, batch size, filters, split, labelled fraction) run, one row each (finished runs reused)."""
        grid = [(a, b, f, s, k, p) for b in batch_sizes for f in filters for s, k in splits
                for p in labelled_fractions for a in arms]
        rows = [self.finetune(a, s, b, f, fold=k, labelled_fraction=p)
                for a, b, f, s, k, p in tqdm(grid, desc="CAE runs", disable=not self.progress)]
        return pd.DataFrame(rows)


def _finish(run, history: History, metrics: dict) -> None:
    """Write a run's per-epoch curves and final metrics (plus its epoch count) into the results store."""
    for record in history.epochs:
        run.log_epoch(**record)
    run.finish({**metrics, "epochs": len(history.epochs), "stopped_early": history.stopped_early})


# ------------------------------------------------------------------------------------------------- tables
def accuracy_table(runs: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Mean, std and count of ``metric`` per (split, batch size, filters, labelled fraction, arm) over folds and
    seeds, with the study's published number beside it (``study_value``, ``study_source``; NaN / "" if none)."""
    keys = ["split", "batch_size", "filters", "labelled_fraction", "arm"]
    table = runs.groupby(keys, sort=True)[metric].agg(["mean", "std", "count"]).reset_index()
    found = [study_value(EXPERIMENT, row.arm, metric,
                         {"dataset": "esc50", "split": row.split, "batch_size": row.batch_size,
                          "labelled_fraction": row.labelled_fraction})
             for row in table.itertuples()]
    return table.assign(study_value=[v.value if v else np.nan for v in found],
                        study_source=[v.study.source if v else "" for v in found])


def wide_accuracy_table(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """:func:`accuracy_table` for reading: one row per setting, per arm our "mean ± std (runs)" and, where the
    study published one, its number (columns ``study: <arm>``)."""
    std = table["std"].map(lambda s: "" if pd.isna(s) else f" ± {s:.{digits}f}")
    shown = table.assign(ours=[f"{m:.{digits}f}{d} ({n})" for m, d, n in zip(table["mean"], std, table["count"])],
                         study=table["study_value"].map(lambda v: "" if pd.isna(v) else f"{v:.{digits}f}"))
    wide = shown.pivot(index=["split", "batch_size", "filters", "labelled_fraction"], columns="arm",
                       values=["ours", "study"])
    wide.columns = [arm if kind == "ours" else f"study: {arm}" for kind, arm in wide.columns]
    return wide[[c for c in wide.columns if (wide[c].fillna("") != "").any()]].fillna("")


def comparison_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """Our test accuracies (one row per run) and the study's Table 1 numbers for the same arms and batch sizes, in
    one long table with a ``source`` column, for a side-by-side figure."""
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


def labelled_equivalent(curve: pd.DataFrame, pretrained: str = "cae-unpool",
                        scratch: str = "supervised") -> pd.DataFrame:
    """How many labelled clips the pre-training is worth: for each point of the ``pretrained`` arm's curve, the
    number of labelled clips at which the ``scratch`` arm's curve (linear between its measured points) first reaches
    the same accuracy; NaN when it never does within the measured range, and its fewest measured clips (an upper
    bound, said in ``note``) when it is already there.

    ``curve`` has one row per run with ``arm``, ``labelled_fraction``, ``n_train`` and ``accuracy``; runs of one arm
    and fraction (folds, seeds) are averaged first.
    """
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


def plot_label_curve(curve: pd.DataFrame):
    """Test accuracy against the fraction of labelled training clips, one line per arm and split kind (mean ± sd
    over the official folds)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    sns.lineplot(curve, x="labelled_fraction", y="accuracy", hue="arm", style="split", markers=True, errorbar="sd",
                 ax=ax)
    ax.set(xlabel="fraction of the training clips labelled", ylabel="test accuracy",
           title="ESC-50: CAE pre-training vs random initialisation")
    return fig
