"""Transferring a pretrained audio neural network (PANN) to a new task: the four strategies of Kong et al. 2020.

Study 003, Sec. V and Table IX (chapter 01):

- ``scratch``: the PANN's architecture, every parameter randomly re-initialised, a new classifier;
- ``fine-tune``: the pretrained base, all of it trained, with a new linear classifier on its embedding;
- ``freeze_l1``: the pretrained base frozen (a feature extractor), one linear layer trained on its embedding;
- ``freeze_l3``: the pretrained base frozen, three fully connected layers (ReLU between) trained on its embedding.

A frozen base has ``requires_grad = False`` *and* stays in eval mode when the model is put in training mode, so its
batch-norm running statistics never change and its dropout and SpecAugment are off (the authors' gtzan code only
sets ``requires_grad``, leaving batch-norm statistics drifting and dropout and SpecAugment on: book/protocols.md). A
frozen base therefore maps a clip to one fixed embedding, and mixup for the frozen strategies acts on that
embedding, the classifier's input.

A :class:`TransferModel` reads waveforms (``inputs="waveform"``) or the PANN frontend's log-mel spectrograms
(``inputs="logmel"``, ``(B, mel_bins, frames)`` as :func:`frontend_logmel` computes them): chapter 01 computes the
log-mels once per clip and trains on crops of them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

#: the transfer strategies of study 003 (Table IX), named as the results store's arms
STRATEGIES: tuple[str, ...] = ("scratch", "fine-tune", "freeze_l1", "freeze_l3")
#: the strategies whose base is frozen (trained on the base's embedding only)
FROZEN: tuple[str, ...] = ("freeze_l1", "freeze_l3")
#: what a :class:`TransferModel` reads: waveforms ``(B, samples)`` or frontend log-mels ``(B, mel_bins, frames)``
INPUTS: tuple[str, ...] = ("waveform", "logmel")


def check_strategy(strategy: str) -> str:
    """``strategy`` if it is one of :data:`STRATEGIES`, else a ValueError listing them."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown transfer strategy {strategy!r}; expected one of {list(STRATEGIES)}")
    return strategy


def make_layers(strategy: str, embedding_size: int, num_classes: int, hidden: int | None = None) -> nn.Module:
    """The layers a strategy trains on the base's embedding: three fully connected layers of width ``hidden``
    (default ``embedding_size``) with ReLU between for ``freeze_l3``, one linear layer otherwise."""
    check_strategy(strategy)
    if embedding_size < 1 or num_classes < 1:
        raise ValueError(f"make_layers: embedding_size and num_classes must be >= 1, got {embedding_size}, "
                         f"{num_classes}")
    if strategy != "freeze_l3":
        return nn.Linear(embedding_size, num_classes)
    width = hidden or embedding_size
    return nn.Sequential(nn.Linear(embedding_size, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, num_classes))


class TransferHead(nn.Module):
    """The new classifier on a base's embedding: ``forward(embedding, mixup_lambda=None) -> {"logits",
    "embedding"}``. In training mode with ``mixup_lambda`` the embeddings are first mixed in pairs (mixup for the
    frozen strategies, whose classifier input is the embedding). The frozen strategies train it alone on
    precomputed embeddings."""

    def __init__(self, strategy: str, embedding_size: int, num_classes: int, hidden: int | None = None) -> None:
        super().__init__()
        self.layers = make_layers(strategy, embedding_size, num_classes, hidden)
        self.num_classes = num_classes

    def forward(self, embedding: torch.Tensor, mixup_lambda: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if self.training and mixup_lambda is not None:
            from esclib.augment.mixup import do_mixup

            embedding = do_mixup(embedding, mixup_lambda)
        return {"logits": self.layers(embedding), "embedding": embedding}


def reinitialise(base: nn.Module) -> nn.Module:
    """Randomly re-initialise every trainable layer of a PANN in place (the authors' initialisation) and reset its
    batch-norm running statistics: the ``scratch`` strategy. The frontend's fixed STFT / mel tensors are kept."""
    from esclib.models.panns.blocks import init_pann_weights

    base.apply(init_pann_weights)
    for module in base.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
    return base


class TransferModel(nn.Module):
    """A PANN base (``base(waveform, mixup_lambda) -> {"embedding", ...}``) with a new classifier ``head``.

    ``forward(x, mixup_lambda=None) -> {"logits": (B', num_classes), "embedding": (B', embedding_size)}`` where
    B' = B/2 with mixup (pairs are mixed, as in the authors' code: inside the base, on the log-mel after SpecAugment,
    for ``scratch`` / ``fine-tune``; on the embedding, in :class:`TransferHead`, for a frozen base). ``x`` is a
    batch of waveforms, or of frontend log-mels with ``inputs="logmel"``. Build one with :func:`transfer_model`, or
    directly from a base already holding the weights the strategy needs.
    """

    def __init__(self, base: nn.Module, num_classes: int, strategy: str, *, hidden: int | None = None,
                 inputs: str = "waveform") -> None:
        super().__init__()
        if inputs not in INPUTS:
            raise ValueError(f"TransferModel: inputs must be one of {list(INPUTS)}, got {inputs!r}")
        self.strategy = check_strategy(strategy)
        self.inputs = inputs
        self.base = base
        self.head = TransferHead(strategy, _embedding_size(base), num_classes, hidden)
        self.base_frozen = False
        if strategy == "scratch":
            reinitialise(self.base)
        if strategy in FROZEN:
            self.freeze_base()

    def freeze_base(self) -> None:
        """Stop training the base: no gradients for its parameters, and the base stays in eval mode (batch-norm
        running statistics fixed, no dropout, no SpecAugment) even when ``.train()`` is called."""
        for parameter in self.base.parameters():
            parameter.requires_grad_(False)
        self.base_frozen = True
        self.base.eval()

    def train(self, mode: bool = True) -> "TransferModel":
        """Set training mode; a frozen base stays in eval mode."""
        super().train(mode)
        if self.base_frozen:
            self.base.eval()
        return self

    def embed(self, x: torch.Tensor, mixup_lambda: torch.Tensor | None = None) -> torch.Tensor:
        """The base's embedding of a batch (mixed in pairs inside the base when ``mixup_lambda`` is given)."""
        if self.inputs == "waveform":
            return self.base(x, mixup_lambda)["embedding"]
        return self.base.forward_logmel(self.base.normalise(x.transpose(1, 2).unsqueeze(1)),
                                        mixup_lambda)["embedding"]

    def forward(self, x: torch.Tensor, mixup_lambda: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Logits and embedding of a batch of waveforms ``(B, samples)`` at the base's sample rate, or of frontend
        log-mels ``(B, mel_bins, frames)``."""
        if self.base_frozen:
            with torch.no_grad():
                embedding = self.embed(x)
            return self.head(embedding, mixup_lambda)
        return self.head(self.embed(x, mixup_lambda))


@torch.no_grad()
def frontend_logmel(base: nn.Module, waveform: torch.Tensor) -> torch.Tensor:
    """The PANN frontend's log-mel (dB, before ``bn0``) of a batch of waveforms: ``(B, samples) -> (B, mel_bins,
    frames)``, the input of a :class:`TransferModel` with ``inputs="logmel"`` (Notebook: 01_pann_transfer)."""
    return base.logmel_extractor(base.spectrogram_extractor(waveform))[:, 0].transpose(1, 2)


def _embedding_size(base: nn.Module) -> int:
    size = getattr(base, "embedding_size", None)
    if not isinstance(size, int):
        raise TypeError(f"TransferModel: the base ({type(base).__name__}) must be a PANN with an integer "
                        "`embedding_size` (esclib.models.panns)")
    return size


def transfer_model(checkpoint: str, strategy: str, num_classes: int, *, hidden: int | None = None,
                   inputs: str = "waveform", **load_kwargs: object) -> TransferModel:
    """A :class:`TransferModel` for ``strategy`` on the PANN of ``checkpoint`` (a registered name or a file, as
    :func:`esclib.models.panns.load_pann` takes; ``load_kwargs`` are passed on). For ``scratch`` the checkpoint
    only fixes the architecture and frontend: its weights are re-initialised."""
    from esclib.models.panns import load_pann

    return TransferModel(load_pann(checkpoint, **load_kwargs), num_classes, check_strategy(strategy), hidden=hidden,
                         inputs=inputs)
