"""The convolutional autoencoder of Jensen & Pethick (study 002, DTU) and the classifier built on its encoder.

Encoder ``(f)5c-2p-(f)3c-2p-(f)3c-2p``: 'same'-padded convolutions with ReLU, each followed by a 2x2 max-pooling
(floor, as Keras' ``valid`` pooling: 28x36 -> 14x18 -> 7x9 -> 3x4). The decoder mirrors it with transposed
convolutions (ReLU, a linear last layer) and inverts each pooling in one of two ways (study 002, Sec. 2.4):

- ``"unpool"``: the *what-where* unpooling of Zhao et al.: every value goes back to the position its maximum was
  taken from, zeros elsewhere (:class:`Unpool2d`);
- ``"upsample"``: nearest-neighbour x2 repetition, zero-padded at the bottom/right to the pre-pool size
  (:class:`Upsample2d`, the study's ``UpSampling2D`` + ``ZeroPad2D``).

Both restore the exact pre-pool sizes, so the autoencoder works for any input of at least 8x8 bins (the study's
1x28x36 log-mel or a larger one, its proposed next step). :class:`CAEClassifier` is encoder -> flatten ->
Dense(128) -> Dense(classes), initialised from a trained :class:`ConvAutoencoder` or at random. Every layer starts
as Keras 2 started the study's (:func:`keras_init`: Glorot-uniform weights, zero biases). Notebook: 03_cae.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: how a decoder inverts max-pooling (study 002, Sec. 2.4)
DECODERS: tuple[str, ...] = ("unpool", "upsample")
#: activation after the classifier's hidden dense layer: none ("linear") as the study's code, "relu" as its text
HIDDEN_ACTIVATIONS: tuple[str, ...] = ("linear", "relu")


@dataclass
class Switches:
    """What max-pooling forgets and an unpooling layer needs: the argmax positions and the pre-pool size."""

    indices: torch.Tensor
    size: torch.Size


def keras_init(module: nn.Module) -> None:
    """Keras 2's default initialisation, which study 002's code used: Glorot-uniform weights
    (``U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``) and zero biases, for every convolution, transposed
    convolution and dense layer (use as ``model.apply(keras_init)``)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


def _check_input(x: torch.Tensor, in_channels: int, depth: int) -> None:
    smallest = 2 ** depth
    if x.dim() != 4 or x.shape[1] != in_channels or min(x.shape[-2:]) < smallest:
        raise ValueError(
            f"CAE input must be (batch, {in_channels}, height, width) with height, width >= {smallest} "
            f"({depth} poolings of 2); got shape {tuple(x.shape)}"
        )


class CAEEncoder(nn.Module):
    """``(f)5c-2p-(f)3c-2p-(f)3c-2p`` (study 002, Sec. 4.4): conv('same') -> ReLU -> 2x2 max-pool, per kernel size.

    ``forward(x)`` returns the code ``(B, f, H/8, W/8)`` (floor at every pooling); ``encode(x)`` also returns the
    :class:`Switches` of each pooling, outermost first, for the unpooling decoder.
    """

    def __init__(self, in_channels: int = 1, filters: int = 64, kernel_sizes: Sequence[int] = (5, 3, 3)):
        super().__init__()
        if filters < 1 or not kernel_sizes or any(k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError(
                f"CAEEncoder: filters must be >= 1 and kernel_sizes odd positive integers; "
                f"got filters={filters}, kernel_sizes={tuple(kernel_sizes)}"
            )
        self.in_channels, self.filters, self.kernel_sizes = in_channels, filters, tuple(kernel_sizes)
        channels = [in_channels] + [filters] * len(kernel_sizes)
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, k, padding=k // 2) for c_in, c_out, k in zip(channels, channels[1:], kernel_sizes)
        )
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.apply(keras_init)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[Switches]]:
        """The code and the switches of every pooling layer (outermost first)."""
        _check_input(x, self.in_channels, len(self.convs))
        switches = []
        for conv in self.convs:
            x = F.relu(conv(x))
            size = x.shape[-2:]
            x, indices = self.pool(x)
            switches.append(Switches(indices, size))
        return x, switches

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)[0]

    def code_shape(self, input_hw: tuple[int, int]) -> tuple[int, int, int]:
        """Shape ``(f, h, w)`` of the code for an input of ``input_hw`` bins (floor halving per pooling)."""
        h, w = input_hw
        for _ in self.convs:
            h, w = h // 2, w // 2
        if h < 1 or w < 1:
            raise ValueError(f"CAEEncoder: input {input_hw} is too small for {len(self.convs)} poolings of 2")
        return self.filters, h, w


class Unpool2d(nn.Module):
    """Unpooling with switches (Zhao et al., study 002 Sec. 2.4): ``y[argmax_k] = x_k``, zero elsewhere.

    The output has the recorded pre-pool size, so odd sizes lost to floor pooling (7 -> 3) come back (3 -> 7).
    """

    def forward(self, x: torch.Tensor, switches: Switches) -> torch.Tensor:
        return F.max_unpool2d(x, switches.indices, kernel_size=2, stride=2, output_size=switches.size)


class Upsample2d(nn.Module):
    """Nearest-neighbour x2 upsampling, zero-padded at the bottom/right to the pre-pool size (study 002's
    ``UpSampling2D`` + ``ZeroPad2D``); ignores where the maxima were."""

    def forward(self, x: torch.Tensor, switches: Switches) -> torch.Tensor:
        y = F.interpolate(x, scale_factor=2, mode="nearest")
        height, width = switches.size
        return F.pad(y, (0, width - y.shape[-1], 0, height - y.shape[-2]))


class CAEDecoder(nn.Module):
    """The encoder mirrored: per level, invert the pooling, then a 'same' transposed convolution with ReLU; the
    last (outermost) one is linear and outputs the input's channels (study 002, Fig. 3)."""

    def __init__(self, encoder: CAEEncoder, decoder: str = "unpool"):
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"CAEDecoder: decoder must be one of {DECODERS}, got {decoder!r}")
        self.kind = decoder
        self.invert = Unpool2d() if decoder == "unpool" else Upsample2d()
        kernels = encoder.kernel_sizes[::-1]
        channels = [encoder.filters] * len(kernels) + [encoder.in_channels]
        self.deconvs = nn.ModuleList(
            nn.ConvTranspose2d(c_in, c_out, k, padding=k // 2)
            for c_in, c_out, k in zip(channels, channels[1:], kernels)
        )
        self.apply(keras_init)

    def forward(self, code: torch.Tensor, switches: list[Switches]) -> torch.Tensor:
        x = code
        last = len(self.deconvs) - 1
        for i, (deconv, switch) in enumerate(zip(self.deconvs, reversed(switches))):
            x = deconv(self.invert(x, switch))
            if i < last:
                x = F.relu(x)
        return x


class ConvAutoencoder(nn.Module):
    """Study 002's CAE: :class:`CAEEncoder` + :class:`CAEDecoder`; ``forward(x)`` is the reconstruction, same shape
    as ``x``. Trained with the mean squared reconstruction error (Sec. 2.2)."""

    def __init__(self, in_channels: int = 1, filters: int = 64, kernel_sizes: Sequence[int] = (5, 3, 3),
                 decoder: str = "unpool"):
        super().__init__()
        self.encoder = CAEEncoder(in_channels, filters, kernel_sizes)
        self.decoder = CAEDecoder(self.encoder, decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code, switches = self.encoder.encode(x)
        return self.decoder(code, switches)


class CAEClassifier(nn.Module):
    """Encoder -> flatten -> Dense(``hidden``) -> dropout -> Dense(``n_classes``) logits (study 002, Fig. 2).

    ``hidden_activation`` is ``"linear"`` by default, as in the study's code (its Dense(128) has no activation), or
    ``"relu"`` as its text says ("ReLU is used throughout the network"). ``input_hw`` is the (mels, frames) size
    of the inputs, which fixes the width of the first dense layer. Initialise the encoder from a trained
    autoencoder with :meth:`load_encoder` ("pre-trained"), or leave it random ("supervised").
    """

    def __init__(self, input_hw: tuple[int, int] = (28, 36), n_classes: int = 50, *, in_channels: int = 1,
                 filters: int = 64, kernel_sizes: Sequence[int] = (5, 3, 3), hidden: int = 128,
                 hidden_activation: str = "linear", dropout: float = 0.0):
        super().__init__()
        if hidden_activation not in HIDDEN_ACTIVATIONS:
            raise ValueError(
                f"CAEClassifier: hidden_activation must be one of {HIDDEN_ACTIVATIONS}, got {hidden_activation!r}"
            )
        if n_classes < 2 or hidden < 1 or not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"CAEClassifier: need n_classes >= 2, hidden >= 1 and 0 <= dropout < 1; "
                f"got n_classes={n_classes}, hidden={hidden}, dropout={dropout}"
            )
        self.encoder = CAEEncoder(in_channels, filters, kernel_sizes)
        f, h, w = self.encoder.code_shape(tuple(input_hw))
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(f * h * w, hidden),
            nn.ReLU() if hidden_activation == "relu" else nn.Identity(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )
        self.head.apply(keras_init)

    def load_encoder(self, source: CAEEncoder | ConvAutoencoder) -> "CAEClassifier":
        """Copy the weights of a trained encoder (or an autoencoder's encoder) into this classifier's encoder.

        The weights are copied, not shared: fine-tuning the classifier leaves the autoencoder unchanged.
        """
        encoder = source.encoder if isinstance(source, ConvAutoencoder) else source
        if (encoder.in_channels, encoder.filters, encoder.kernel_sizes) != (
                self.encoder.in_channels, self.encoder.filters, self.encoder.kernel_sizes):
            raise ValueError(
                "CAEClassifier.load_encoder: the source encoder has (in_channels, filters, kernel_sizes) = "
                f"{(encoder.in_channels, encoder.filters, encoder.kernel_sizes)}, this classifier "
                f"{(self.encoder.in_channels, self.encoder.filters, self.encoder.kernel_sizes)}"
            )
        self.encoder.load_state_dict(copy.deepcopy(encoder.state_dict()))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))
