"""What every PANN shares: the log-mel frontend with ``bn0``, training-time SpecAugment and mixup, the pooled head.

Kong et al. 2020 (study 003), Sec. II and the authors' ``pytorch/models.py``: waveform -> log-mel -> ``bn0`` (a
BatchNorm over the mel bins) -> [training: SpecAugment (time 64 x 2, frequency 8 x 2), then mixup of pairs] ->
body -> mean over frequency -> max + mean over time -> dropout 0.5 -> ``fc1`` + ReLU (the embedding, returned after
another dropout 0.5) -> ``sigmoid(fc_audioset)`` on the pre-dropout embedding.
"""

from __future__ import annotations

from functools import cache
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from esclib.models.panns.frontend import (
    CONV_IMAG_KEY,
    CONV_REAL_KEY,
    FRONTEND_32K,
    MEL_KEY,
    FrontendConfig,
    FrontendMismatchError,
    LogmelFilterBank,
    Spectrogram,
    check_stft_kernels,
    describe_frontend,
)

FRONTEND_KEYS = (CONV_REAL_KEY, CONV_IMAG_KEY, MEL_KEY)
#: the authors' SpecAugment (torchlibrosa ``SpecAugmentation(64, 2, 8, 2)``): time width, stripes, freq width, stripes
SPEC_AUGMENT_ARGS = (64, 2, 8, 2)


@cache
def _spec_augmenter() -> nn.Module:
    """The authors' SpecAugment, in training mode (imported when first needed)."""
    from esclib.augment.specaugment import SpecAugment

    return SpecAugment(*SPEC_AUGMENT_ARGS).train()


class PannModel(nn.Module):
    """Base class of the PANN architectures: frontend, augmentation and head; subclasses build ``body``.

    ``forward(waveform (B, samples), mixup_lambda=None) -> {"clipwise_output": (B, classes_num), "embedding":
    (B, embedding_size)}`` as the authors' models. The two halves are exposed for chapters that augment the
    spectrogram themselves: :meth:`logmel` (frontend + ``bn0``, ``(B, 1, frames, mel_bins)``) and
    :meth:`forward_logmel` (everything after). ``spec_augment=False`` (or setting ``model.spec_augment = False``)
    turns the built-in training-time SpecAugment off. ``labels`` holds the class names when known (set by
    :func:`esclib.models.panns.load_pann`).
    """

    #: the frontend used when none is given (the authors' per-model default)
    default_frontend: ClassVar[FrontendConfig] = FRONTEND_32K
    #: dropout before ``fc1`` (0.5; MobileNetV2 has none)
    pre_fc_dropout: ClassVar[float] = 0.5

    def __init__(self, body_channels: int, embedding_size: int, *, classes_num: int = 527,
                 frontend: FrontendConfig | None = None, spec_augment: bool = True) -> None:
        super().__init__()
        self.frontend = frontend or self.default_frontend
        self.spec_augment = spec_augment
        self.labels: list[str] | None = None
        self.spectrogram_extractor = Spectrogram(self.frontend.window_size, self.frontend.hop_size)
        self.logmel_extractor = LogmelFilterBank(self.frontend)
        self.bn0 = nn.BatchNorm2d(self.frontend.mel_bins)
        self.fc1 = nn.Linear(body_channels, embedding_size)
        self.fc_audioset = nn.Linear(embedding_size, classes_num)
        self.register_load_state_dict_pre_hook(_check_frontend_before_load)

    @property
    def classes_num(self) -> int:
        """Width of ``clipwise_output``."""
        return self.fc_audioset.out_features

    @property
    def embedding_size(self) -> int:
        """Width of ``embedding``."""
        return self.fc_audioset.in_features

    def logmel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Log-mel after ``bn0``: ``(B, samples) -> (B, 1, frames, mel_bins)``."""
        return self.normalise(self.logmel_extractor(self.spectrogram_extractor(waveform)))

    def normalise(self, logmel: torch.Tensor) -> torch.Tensor:
        """``bn0`` over the mel bins of a frontend log-mel ``(B, 1, frames, mel_bins)`` (what :meth:`logmel` applies
        after the frontend; chapter 01 feeds cached frontend log-mels through it)."""
        return self.bn0(logmel.transpose(1, 3)).transpose(1, 3)

    def augment(self, x: torch.Tensor, mixup_lambda: torch.Tensor | None = None) -> torch.Tensor:
        """Training only: SpecAugment (if ``spec_augment``), then mixup of pairs when ``mixup_lambda`` is given."""
        if not self.training:
            return x
        if self.spec_augment:
            x = _spec_augmenter()(x)
        return self.mix(x, mixup_lambda)

    def mix(self, x: torch.Tensor, mixup_lambda: torch.Tensor | None) -> torch.Tensor:
        """``esclib.augment.mixup.do_mixup(x, mixup_lambda)`` in training mode with lambdas, else ``x``."""
        if not self.training or mixup_lambda is None:
            return x
        from esclib.augment.mixup import do_mixup

        return do_mixup(x, mixup_lambda)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """The architecture's feature map ``(B, body_channels, frames', freq')`` from the (augmented) log-mel."""
        raise NotImplementedError

    def head(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Global pooling and the two fully connected layers (the authors' ``clipwise_output`` and ``embedding``)."""
        x = x.mean(dim=3)
        x = x.amax(dim=2) + x.mean(dim=2)
        x = F.dropout(x, p=self.pre_fc_dropout, training=self.training)
        x = F.relu(self.fc1(x))
        embedding = F.dropout(x, p=0.5, training=self.training)
        return {"clipwise_output": torch.sigmoid(self.fc_audioset(x)), "embedding": embedding}

    def forward_logmel(self, x: torch.Tensor, mixup_lambda: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Everything after :meth:`logmel`: augmentation (training), body and head."""
        return self.head(self.body(self.augment(x, mixup_lambda)))

    def forward(self, waveform: torch.Tensor, mixup_lambda: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``{"clipwise_output", "embedding"}`` of a batch of waveforms ``(B, samples)`` at the frontend's rate."""
        return self.forward_logmel(self.logmel(waveform), mixup_lambda)

    @torch.no_grad()
    def embed(self, waveform: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(B, embedding_size)`` in eval semantics (no dropout, no SpecAugment, BN running statistics),
        without gradients; the module's train/eval mode is restored afterwards."""
        was_training = self.training
        self.eval()
        try:
            return self(waveform)["embedding"]
        finally:
            self.train(was_training)


def _check_frontend_before_load(module: PannModel, state_dict: dict, prefix: str, *args: object) -> None:
    """Load-state-dict pre-hook: a checkpoint whose frontend does not fit gets an error naming both frontends."""
    theirs = {key: state_dict[prefix + key] for key in FRONTEND_KEYS if prefix + key in state_dict}
    if len(theirs) < len(FRONTEND_KEYS):
        return  # a strict load reports the missing keys
    ours = module.state_dict()
    if all(tuple(theirs[key].shape) == tuple(ours[key].shape) for key in FRONTEND_KEYS):
        check_stft_kernels(theirs[CONV_REAL_KEY], theirs[CONV_IMAG_KEY])
        return
    from esclib.models.panns.registry import suggest_architecture

    name = type(module).__name__
    own = {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
    raise FrontendMismatchError(
        f"this checkpoint has {describe_frontend(theirs)}, but the {name} model was built for the "
        f"{module.frontend.sample_rate // 1000} kHz frontend ({module.frontend}). {suggest_architecture(name, own)}"
    )
