"""Study 004 (DLS): NPID pre-training of an ESResNet, its weighted-kNN evaluation, and fine-tuning from it
(book/protocols.md, study 004 and the shared decisions; Notebook: 04_npid).

- :class:`ThreeBandInput` -- the network input (ESResNet's 3-band spectrogram at 44.1 kHz, 5-s clips); the quick
  profile's :data:`QUICK_INPUT` is the same transform on a coarser grid.
- :class:`NPIDRecipe` -- phase-1/2 pre-training: 128-d L2-normalised embedding (lemniscate's ``fc -> low_dim`` +
  ``Normalize``), memory bank with momentum 0.5, NCE with K = 64 noise clips at T = 0.4 (the study;
  :data:`LEMNISCATE_NCE` is lemniscate's K = 4096, T = 0.07), batch 64, 200 epochs, lemniscate's optimiser (SGD lr
  0.03, momentum 0.9, weight decay 1e-4, lr x0.1 at 60 % and 80 % of the epochs); ESResNet's waveform augmentation.
- :func:`npid_step` -- :func:`esclib.train.fit`'s ``step_fn``: NCE loss against the bank, then the bank update of
  the batch's instances (batches ``(wave, target, index)``, ``index`` = the instance id).
- :class:`KNNMonitor` / :func:`knn_evaluation` -- weighted kNN (K = 5 as the study, K = 200 as NPID; weights
  ``exp(cos / T)``) of the test fold's embeddings against the training clips' embeddings, recomputed by the network
  (lemniscate's ``recompute_memory``); per epoch during :func:`pretrain_npid`, whose epoch 0 is the same network
  with its initial (random) weights.
- :class:`FineTuneRecipe` / :func:`finetune_network` / :func:`finetune` -- all layers and a new linear classifier,
  from the NPID network (:func:`load_npid_weights`), from ImageNet (torchvision's weights in the local cache) or
  from scratch, with ESResNet's recipe (Adam 2.5e-4, weight decay 5e-4, warm-up + exponential decay γ 0.985,
  batch 16); the test-fold accuracy after every epoch is the curve of the study's Fig. 4.

These are plain functions of ClipSets and recipes; storing and reusing runs is the chapter's experiment's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from esclib.augment.esresnet import ESResNetTransform, RandomBandGain
from esclib.data.clips import ClipSet
from esclib.data.torchdata import clip_loader
from esclib.features.threeband import ThreeBandSpectrogram
from esclib.losses.npid import NPIDMemory
from esclib.metrics import knn_accuracy
from esclib.models.esresnet import ESResNet
from esclib.train.loop import autocast, evaluate, fit
from esclib.train.optim import make_optimizer

#: the initialisations of the fine-tuning arms (study 004, Fig. 4)
INITS: tuple[str, ...] = ("npid", "imagenet", "scratch")


@dataclass(frozen=True)
class ThreeBandInput:
    """What the network sees: ``clip_seconds`` of audio at ``sample_rate`` through
    :class:`~esclib.features.ThreeBandSpectrogram` (``n_fft``, ``hop_length``, ``win_length``, Blackman-Harris,
    waveform x 32768). The defaults are ESResNet's (3 x 341 x 394 for a 5-s clip); UrbanSound8K uses 4-s clips."""

    sample_rate: int = 44100
    n_fft: int = 2048
    hop_length: int = 561
    win_length: int = 1654
    clip_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.sample_rate < 1 or self.clip_seconds <= 0 or self.hop_length < 1:
            raise ValueError(f"ThreeBandInput: sample_rate, clip_seconds and hop_length must be positive, got "
                             f"{self.sample_rate}, {self.clip_seconds}, {self.hop_length}")

    @property
    def samples(self) -> int:
        """Samples per clip (220,500 for 5 s at 44.1 kHz)."""
        return round(self.clip_seconds * self.sample_rate)

    def frontend(self) -> ThreeBandSpectrogram:
        """The spectrogram module (waveform -> ``(..., 3, bins, frames)`` in dB)."""
        return ThreeBandSpectrogram(n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.win_length)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(3, bins per band, frames)`` of one clip and channel."""
        frontend = self.frontend()
        return 3, frontend.bins_per_band, frontend.num_frames(self.samples)


#: the quick profile's input, a coarse grid that ResNet-18 trains on in minutes on a CPU: 22.05 kHz, n_fft 192
#: (3 bands x 32 bins of 115 Hz up to 11 kHz), a 8.7-ms window every 50 ms; 5-s clips give 3 x 32 x 101
QUICK_INPUT = ThreeBandInput(sample_rate=22050, n_fft=192, hop_length=1102, win_length=192, clip_seconds=5.0)


@dataclass(frozen=True)
class NetworkRecipe:
    """What every ESResNet training of the chapter shares: backbone, attention gates, input, schedule, batch,
    whether ESResNet's training augmentation is on (time flip with probability ``flip_p``, speed scale by
    ``max_scale ** U(-1, 1)``, random pad / crop; ESResNet's 0.5 and 1.25 by default), the length of the
    training crops (``crop_seconds``; None: the input's clip length, as ESResNet; evaluation always sees whole
    clips), and a random gain per band of up to ``band_gain_db`` dB in training (lemniscate's colour jitter on the
    3-band spectrogram, :class:`~esclib.augment.esresnet.RandomBandGain`; 0: none, as ESResNet)."""

    arch: str = "resnet50"
    attention: bool = True
    input: ThreeBandInput = field(default_factory=ThreeBandInput)
    epochs: int = 200
    batch_size: int = 64
    augment: bool = True
    flip_p: float = 0.5
    max_scale: float = 1.25
    crop_seconds: float | None = None
    band_gain_db: float = 0.0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"{type(self).__name__}: epochs and batch_size must be >= 1, got {self.epochs}, "
                             f"{self.batch_size}")
        if self.crop_seconds is not None and not 0 < self.crop_seconds <= self.input.clip_seconds:
            raise ValueError(f"{type(self).__name__}: crop_seconds must be in (0, input.clip_seconds="
                             f"{self.input.clip_seconds}], got {self.crop_seconds}")

    def network(self, num_outputs: int, *, normalize: bool = False, pretrained: bool = False) -> ESResNet:
        """A fresh ESResNet of this recipe with its input frontend (waveforms in, ``num_outputs`` out)."""
        spec_augment = RandomBandGain(self.band_gain_db) if self.band_gain_db > 0 and self.augment else None
        return ESResNet(num_outputs, arch=self.arch, attention=self.attention, pretrained=pretrained,
                        normalize=normalize, frontend=self.input.frontend(), spec_augment=spec_augment)

    def loader(self, clips: ClipSet, *, train: bool, seed: int = 0, progress: bool = True,
               batch_size: int | None = None) -> DataLoader:
        """Batches ``(wave, target, index)`` of ``clips`` at the input's rate: shuffled, augmented (when
        ``augment``), cut to ``crop_seconds`` and without the last partial batch when ``train``; in order, whole
        clips (centre pad / crop to the input's length) otherwise."""
        crop = self.input.clip_seconds if self.crop_seconds is None or not train else self.crop_seconds
        transform = ESResNetTransform(round(crop * self.input.sample_rate), train=train and self.augment,
                                      flip_p=self.flip_p, max_scale=self.max_scale)
        return clip_loader(clips, self.input.sample_rate, train=train, batch_size=batch_size or self.batch_size,
                           transform=transform, seed=seed, progress=progress)


@dataclass(frozen=True)
class NPIDRecipe(NetworkRecipe):
    """NPID pre-training (study 004, phase 1 per dataset and phase 2 pooled); defaults as the study, and
    lemniscate's optimiser and schedule where the study is silent (``optimizer`` any name of
    :func:`esclib.train.optim.make_optimizer`; ``momentum`` is SGD's). ``knn_ks`` and ``knn_temperature`` (None: the
    NCE temperature, as lemniscate) set the per-epoch kNN evaluation."""

    low_dim: int = 128
    nce_k: int = 64
    temperature: float = 0.4
    memory_momentum: float = 0.5
    optimizer: str = "sgd"
    lr: float = 0.03
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_milestones: tuple[float, ...] = (0.6, 0.8)
    lr_gamma: float = 0.1
    knn_ks: tuple[int, ...] = (5, 200)
    knn_temperature: float | None = None

    @property
    def knn_t(self) -> float:
        """The kNN vote's temperature: ``knn_temperature``, else the NCE temperature."""
        return self.temperature if self.knn_temperature is None else self.knn_temperature


#: lemniscate's NCE (K = 4096 noise clips, T = 0.07) as a variant of the study's; needs more than 4,096 clips
#: (the pooled corpus of phase 2), else use ``nce_k=0`` (the full softmax)
LEMNISCATE_NCE = {"nce_k": 4096, "temperature": 0.07}


@dataclass(frozen=True)
class FineTuneRecipe(NetworkRecipe):
    """Fine-tuning all layers with a new classifier: ESResNet's recipe (Adam lr 2.5e-4, betas 0.9/0.999, weight
    decay 5e-4, WarmUpExponentialLR: 0.1 lr for ``cold_epochs``, linear warm-up over ``warm_epochs``, then x
    ``gamma`` per epoch; batch 16; 300 epochs)."""

    epochs: int = 300
    batch_size: int = 16
    lr: float = 2.5e-4
    weight_decay: float = 5e-4
    gamma: float = 0.985
    cold_epochs: int = 5
    warm_epochs: int = 10


# --------------------------------------------------------------------------------------------------- NPID
class NPIDModel(nn.Module):
    """The NPID network (an ESResNet whose head is the L2-normalised ``low_dim`` embedding, or any network ending
    in one) and its memory bank; one module so that :func:`esclib.train.fit` checkpoints both."""

    def __init__(self, network: nn.Module, memory: NPIDMemory) -> None:
        super().__init__()
        if isinstance(network, ESResNet) and (not network.normalize
                                              or network.classifier.out_features != memory.memory.shape[1]):
            raise ValueError(f"NPIDModel: the network must end in an L2-normalised {memory.memory.shape[1]}-d "
                             f"embedding (ESResNet(..., normalize=True)), got normalize={network.normalize}, "
                             f"{network.classifier.out_features} outputs")
        self.network, self.memory = network, memory

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def npid_model(recipe: NPIDRecipe, n_items: int) -> NPIDModel:
    """A fresh NPID network and memory bank of ``n_items`` instances (seed torch first for a reproducible draw)."""
    network = recipe.network(recipe.low_dim, normalize=True)
    memory = NPIDMemory(n_items, recipe.low_dim, nce_k=recipe.nce_k, temperature=recipe.temperature,
                        momentum=recipe.memory_momentum)
    return NPIDModel(network, memory)


def npid_step(model: NPIDModel, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
    """``fit``'s step for batches ``(wave, target, index)``: the NCE loss of the embeddings against the memory
    bank, then the bank entries of ``index`` moved toward them (lemniscate's order: the loss sees the old bank)."""
    wave, index = batch[0], batch[2]
    embedding = model(wave)
    loss = model.memory.loss(embedding, index)
    model.memory.update(embedding, index)
    return loss, {"loss": float(loss.detach())}


@torch.no_grad()
def embed(network: nn.Module, loader: Iterable, device: str | torch.device = "cpu", *, amp: bool | None = None,
          progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The network's outputs (eval mode; the NPID embedding) and targets of every batch ``(x, y, ...)``."""
    device = torch.device(device)
    was_training = network.training
    network.eval().to(device)
    outputs, targets = [], []
    for batch in tqdm(loader, desc="embed", leave=False, disable=not progress):
        with autocast(device, amp):
            outputs.append(network(batch[0].to(device)).float().cpu().numpy())
        targets.append(np.asarray(batch[1]))
    network.train(was_training)
    return np.concatenate(outputs), np.concatenate(targets)


def knn_evaluation(network: nn.Module, train_loader: Iterable, test_loader: Iterable, *, ks: Iterable[int],
                   temperature: float | None, device: str | torch.device = "cpu") -> dict[str, float]:
    """Weighted-kNN accuracy ``knn_k<K>`` of the test clips' embeddings against the training clips' embeddings,
    both computed by ``network`` now (works as well for a network at its random initialisation)."""
    train_emb, train_y = embed(network, train_loader, device)
    test_emb, test_y = embed(network, test_loader, device)
    return {f"knn_k{k}": knn_accuracy(train_emb, train_y, test_emb, test_y, k=k, temperature=temperature)
            for k in ks}


class KNNMonitor:
    """``fit``'s ``val_fn`` for NPID: :func:`knn_evaluation` of the model's network against ``train_loader`` (the
    training clips, unaugmented) on the loader ``fit`` passes (the test fold)."""

    def __init__(self, train_loader: Iterable, ks: Iterable[int], temperature: float | None) -> None:
        self.train_loader, self.ks, self.temperature = train_loader, tuple(ks), temperature

    def __call__(self, model: nn.Module, test_loader: Iterable, device: torch.device) -> dict[str, float]:
        network = model.network if isinstance(model, NPIDModel) else model
        return knn_evaluation(network, self.train_loader, test_loader, ks=self.ks, temperature=self.temperature,
                              device=device)


@dataclass
class NPIDResult:
    """A pre-training run: the trained :class:`NPIDModel` (on the CPU) and its per-epoch ``history`` (``epoch``,
    ``loss``, ``lr`` and, with a test fold, ``knn_k<K>``; the row of epoch 0 is the untrained network's kNN)."""

    model: NPIDModel
    history: pd.DataFrame


def check_noise_clips(train: ClipSet, recipe: NPIDRecipe) -> None:
    """Refuse ``recipe``'s NCE on ``train`` when it has no more clips than noise clips (``nce_k``)."""
    if len(train) <= recipe.nce_k:
        raise ValueError(f"pretrain_npid: nce_k={recipe.nce_k} noise clips need more than {recipe.nce_k} training "
                         f"clips; {train.name} has {len(train)} (use nce_k=0 for the full softmax)")


def npid_training(model: NPIDModel, train: ClipSet, recipe: NPIDRecipe, *, test: ClipSet | None = None,
                  reference: ClipSet | None = None, device: str | torch.device = "cpu", seed: int = 0,
                  progress: bool = True) -> tuple[DataLoader, dict[str, Any], list[dict[str, float]]]:
    """What NPID pre-training of ``model`` on ``train`` hands :func:`esclib.train.fit`: the training loader, the
    other arguments of ``fit`` (epochs, optimiser, :func:`npid_step`, schedule and, with ``test``, the per-epoch
    :class:`KNNMonitor` on it) and the history rows before training (epoch 0: the kNN of the untrained network).
    ``reference``: the labelled clips the kNN votes with (default ``train``; a pooled, unlabelled ``train`` needs
    its dataset's training folds here). Shared by :func:`pretrain_npid` and the chapter's experiment (which trains
    through its run's ``fit``)."""
    check_noise_clips(train, recipe)
    if model.memory.memory.shape[0] != len(train):
        raise ValueError(f"npid_training: the memory bank has {model.memory.memory.shape[0]} entries, {train.name} "
                         f"{len(train)} clips; expected one entry per clip")
    loader = recipe.loader(train, train=True, seed=seed, progress=progress)
    optimizer = make_optimizer(recipe.optimizer, model.parameters(), recipe.lr, momentum=recipe.momentum,
                               weight_decay=recipe.weight_decay)
    milestones = sorted({max(1, round(f * recipe.epochs)) for f in recipe.lr_milestones})
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=recipe.lr_gamma)
    kwargs: dict[str, Any] = {"epochs": recipe.epochs, "optimizer": optimizer, "step_fn": npid_step,
                              "scheduler": scheduler}
    rows: list[dict[str, float]] = []
    if test is not None:
        reference = train if reference is None else reference
        if (reference.targets < 0).any():
            raise ValueError(f"pretrain_npid: the kNN evaluation needs labelled reference clips; {reference.name} has "
                             f"unlabelled ones (give reference=the dataset's training folds, or pass test=None)")
        monitor = KNNMonitor(recipe.loader(reference, train=False, progress=progress), recipe.knn_ks, recipe.knn_t)
        kwargs.update(val_loader=recipe.loader(test, train=False, progress=progress), val_fn=monitor)
        rows.append({"epoch": 0, **monitor(model, kwargs["val_loader"], torch.device(device))})
    return loader, kwargs, rows


def pretrain_npid(train: ClipSet, recipe: NPIDRecipe, *, test: ClipSet | None = None,
                  device: str | torch.device = "cpu", seed: int = 0, progress: bool = True,
                  checkpoint: str | Path | None = None, amp: bool | None = None) -> NPIDResult:
    """NPID pre-training of ``recipe``'s network on the clips of ``train`` (each clip an instance; labels unused),
    with the weighted-kNN accuracy on ``test`` against ``train``'s labelled clips after every epoch when ``test``
    is given (and before the first: epoch 0, the random network). ``checkpoint``: :func:`esclib.train.fit`'s
    resumable state (network, memory bank, optimiser)."""
    check_noise_clips(train, recipe)
    torch.manual_seed(seed)
    model = npid_model(recipe, len(train))
    loader, kwargs, rows = npid_training(model, train, recipe, test=test, device=device, seed=seed,
                                         progress=progress)
    history = fit(model, loader, device=device, checkpoint=checkpoint, amp=amp, progress=progress, desc="NPID",
                  **kwargs)
    return NPIDResult(model.cpu(), pd.DataFrame(rows + history.epochs))


# --------------------------------------------------------------------------------------------------- fine-tuning
def load_npid_weights(model: ESResNet, source: NPIDModel | ESResNet | Mapping[str, torch.Tensor] | str | Path
                      ) -> ESResNet:
    """``model`` with every weight of the NPID network ``source`` except its embedding head (the classifier stays
    new): an :class:`NPIDModel`, its network, a state dict of either, or a file holding one (or a
    :func:`esclib.train.fit` checkpoint). Raises when anything but the head is missing or left over."""
    if isinstance(source, (str, Path)):
        source = torch.load(source, map_location="cpu", weights_only=False)
        source = source.get("model", source)
    state = source.state_dict() if isinstance(source, nn.Module) else dict(source)
    if any(key.startswith("network.") for key in state):
        state = {key.removeprefix("network."): value for key, value in state.items() if key.startswith("network.")}
    state = {key: value for key, value in state.items() if not key.startswith("classifier.")}
    result = model.load_state_dict(state, strict=False)
    missing = [key for key in result.missing_keys if not key.startswith("classifier.")]
    if missing or result.unexpected_keys:
        raise ValueError(f"load_npid_weights: the NPID weights do not fit this ESResNet ({model.arch}): missing "
                         f"{missing[:5]}, unexpected {result.unexpected_keys[:5]}")
    return model


def finetune_network(num_classes: int, recipe: FineTuneRecipe, init: str, *,
                     npid: NPIDModel | ESResNet | Mapping[str, torch.Tensor] | str | Path | None = None,
                     seed: int = 0) -> ESResNet:
    """The classifier of a fine-tuning arm: ``recipe``'s ESResNet with a new ``num_classes`` classifier, its other
    weights from the NPID network ``npid`` (``init="npid"``), from torchvision's ImageNet weights (``"imagenet"``;
    a FileNotFoundError says where to put them when they are not in the local cache) or random (``"scratch"``)."""
    if init not in INITS:
        raise ValueError(f"finetune_network: init must be one of {INITS}, got {init!r}")
    if (init == "npid") != (npid is not None):
        raise ValueError("finetune_network: give the NPID weights (npid=...) exactly when init='npid'")
    torch.manual_seed(seed)
    model = recipe.network(num_classes, pretrained=init == "imagenet")
    return load_npid_weights(model, npid) if init == "npid" else model


def warmup_exponential_lr(optimizer: torch.optim.Optimizer, gamma: float, cold_epochs: int,
                          warm_epochs: int) -> torch.optim.lr_scheduler.LambdaLR:
    """ESResNet's ``WarmUpExponentialLR``, stepped once per epoch: lr x 0.1 in the first ``cold_epochs``, rising
    linearly to the full lr over ``warm_epochs`` (x ``0.1 + 0.9 (e - cold + 1) / warm`` in epoch e, 0-based), then
    x ``gamma ** (e - cold - warm)``."""
    if cold_epochs < 0 or warm_epochs < 1:
        raise ValueError(f"warmup_exponential_lr: need cold_epochs >= 0 and warm_epochs >= 1, got {cold_epochs}, "
                         f"{warm_epochs}")

    def factor(epoch: int) -> float:
        if epoch < cold_epochs:
            return 0.1
        if epoch < cold_epochs + warm_epochs:
            return 0.1 + 0.9 * (1 + epoch - cold_epochs) / warm_epochs
        return gamma ** (epoch - cold_epochs - warm_epochs)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _test_metrics(model: nn.Module, loader: Iterable, device: torch.device) -> dict[str, float]:
    return {key.replace("val_", "test_"): value for key, value in evaluate(model, loader, device).items()}


def finetune_training(model: ESResNet, train: ClipSet, test: ClipSet, recipe: FineTuneRecipe, *, seed: int = 0,
                      progress: bool = True) -> tuple[DataLoader, dict[str, Any]]:
    """What fine-tuning ``model`` on ``train`` hands :func:`esclib.train.fit`: the training loader and the other
    arguments (epochs, ESResNet's Adam and warm-up schedule, cross-entropy, the test loader and a ``val_fn`` that
    reports ``test_acc`` / ``test_loss`` after every epoch). Shared by :func:`finetune` and the chapter's
    experiment."""
    if model.classifier.out_features != train.num_classes:
        raise ValueError(f"finetune: the model has {model.classifier.out_features} outputs, {train.name} "
                         f"{train.num_classes} classes")
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, betas=(0.9, 0.999), eps=1e-8,
                                 weight_decay=recipe.weight_decay)
    scheduler = warmup_exponential_lr(optimizer, recipe.gamma, recipe.cold_epochs, recipe.warm_epochs)
    return recipe.loader(train, train=True, seed=seed, progress=progress), {
        "epochs": recipe.epochs, "optimizer": optimizer, "loss_fn": F.cross_entropy, "scheduler": scheduler,
        "val_loader": recipe.loader(test, train=False, progress=progress), "val_fn": _test_metrics}


def finetune(model: ESResNet, train: ClipSet, test: ClipSet, recipe: FineTuneRecipe, *,
             device: str | torch.device = "cpu", seed: int = 0, progress: bool = True,
             checkpoint: str | Path | None = None, amp: bool | None = None) -> pd.DataFrame:
    """Fine-tune all layers of ``model`` on ``train`` with ``recipe`` (cross-entropy) and return the per-epoch
    curve: ``epoch``, ``loss``, ``lr``, ``test_acc``, ``test_loss`` on ``test`` (the study's Fig. 4; no model
    selection: every epoch is reported)."""
    torch.manual_seed(seed)
    loader, kwargs = finetune_training(model, train, test, recipe, seed=seed, progress=progress)
    history = fit(model, loader, device=device, checkpoint=checkpoint, amp=amp, progress=progress,
                  desc="fine-tune", **kwargs)
    return history.frame()


#: the quick profile's pre-training: the study's NPID (128-d, K = 64, T = 0.4, momentum 0.5, lemniscate's SGD) on
#: ResNet-18 at :data:`QUICK_INPUT`, 2-s training crops, batch 16, 30 epochs; kNN with K = 5 and 20 (a quick
#: world's training folds hold a few hundred clips)
QUICK_NPID = NPIDRecipe(arch="resnet18", input=QUICK_INPUT, epochs=30, batch_size=16, crop_seconds=2.0,
                        knn_ks=(5, 20))
#: the quick profile's fine-tuning: ESResNet's recipe on the same network, 10 epochs, the warm-up shortened to
#: 1 cold + 2 warm epochs
QUICK_FINETUNE = FineTuneRecipe(arch="resnet18", input=QUICK_INPUT, epochs=10, cold_epochs=1, warm_epochs=2)
