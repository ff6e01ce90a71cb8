"""The plain CNN family of PANNs: CNN6, CNN10, CNN14 (32 and 16 kHz) and the ``quick`` profile's mini model.

Kong et al. 2020 (study 003), Table I/II: ``conv_block1..N`` with 2 x 2 average pooling, dropout 0.2 after each
block; CNN6 = 4 single 5 x 5 blocks (64-512, fc 512), CNN10 = 4 double 3 x 3 blocks (64-512, fc 512), CNN14 = 6
double 3 x 3 blocks (64-2048, the last without pooling, fc 2048).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from esclib.models.panns.base import PannModel
from esclib.models.panns.blocks import ConvBlock, init_pann_weights
from esclib.models.panns.frontend import FRONTEND_16K, FRONTEND_MINI, FrontendConfig


@dataclass(frozen=True)
class CnnLayout:
    """The blocks of a :class:`CnnPann`: output widths, kernel, convs per block, embedding width, pooling per block
    (default 2 x 2 each) and input widths (default ``(1, *channels[:-1])``)."""

    channels: tuple[int, ...]
    kernel_size: int
    convs: int
    embedding_size: int
    pools: tuple[tuple[int, int], ...] | None = None
    block_inputs: tuple[int, ...] | None = None

    def blocks(self) -> list[tuple[int, int, tuple[int, int]]]:
        """``(in_channels, out_channels, pool)`` of each block."""
        pools = self.pools or ((2, 2),) * len(self.channels)
        inputs = self.block_inputs or (1, *self.channels[:-1])
        if not len(self.channels) == len(pools) == len(inputs):
            raise ValueError(f"CnnLayout: channels {self.channels}, pools {pools} and block_inputs {inputs} "
                             "must have one entry per block")
        return list(zip(inputs, self.channels, pools))


#: CNN14: 6 double 3 x 3 blocks, 2 x 2 pooling after blocks 1-5 and none after block 6, embedding 2048
CNN14_LAYOUT = CnnLayout((64, 128, 256, 512, 1024, 2048), 3, 2, 2048, pools=((2, 2),) * 5 + ((1, 1),))


class CnnPann(PannModel):
    """A PANN made of :class:`~esclib.models.panns.blocks.ConvBlock` s (``conv_block1..N``), dropout
    ``block_dropout`` (the authors' 0.2) after each; subclasses set ``layout``."""

    layout: ClassVar[CnnLayout]
    #: dropout after each block during training (0.2 in every released architecture)
    block_dropout: ClassVar[float] = 0.2
    #: keep the convolution weights (and so the activations) channels-last: faster on a CPU for narrow blocks
    channels_last: ClassVar[bool] = False

    def __init__(self, *, classes_num: int = 527, frontend: FrontendConfig | None = None,
                 spec_augment: bool = True) -> None:
        super().__init__(self.layout.channels[-1], self.layout.embedding_size, classes_num=classes_num,
                         frontend=frontend, spec_augment=spec_augment)
        blocks = self.layout.blocks()
        self.num_blocks = len(blocks)
        for i, (c_in, c_out, pool) in enumerate(blocks, start=1):
            self.add_module(f"conv_block{i}", ConvBlock(c_in, c_out, kernel_size=self.layout.kernel_size,
                                                        convs=self.layout.convs, pool=pool))
        self.apply(init_pann_weights)
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def run_blocks(self, x: torch.Tensor, first: int = 1) -> torch.Tensor:
        """Blocks ``first..N``, each followed by dropout ``block_dropout``."""
        for i in range(first, self.num_blocks + 1):
            x = F.dropout(getattr(self, f"conv_block{i}")(x), p=self.block_dropout, training=self.training)
        return x

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.run_blocks(x)


class Cnn6(CnnPann):
    """CNN6 (Kong et al. 2020, Table I): 4 blocks of one 5 x 5 conv (64, 128, 256, 512), embedding 512."""

    layout = CnnLayout((64, 128, 256, 512), 5, 1, 512)


class Cnn10(CnnPann):
    """CNN10 (Kong et al. 2020, Table I): 4 blocks of two 3 x 3 convs (64, 128, 256, 512), embedding 512."""

    layout = CnnLayout((64, 128, 256, 512), 3, 2, 512)


class Cnn14(CnnPann):
    """CNN14 (Kong et al. 2020, Table II): 6 blocks of two 3 x 3 convs (64 ... 2048), embedding 2048."""

    layout = CNN14_LAYOUT


class Cnn14_16k(Cnn14):  # noqa: N801 -- the authors' class name
    """CNN14 on the 16 kHz frontend (512 / 160 / 64 mel, 50-8000 Hz): the backbone of study 000."""

    default_frontend = FRONTEND_16K


class CnnMini16k(CnnPann):
    """A small CNN of the same family for the ``quick`` profile: 4 double 3 x 3 blocks (16, 32, 64, 128),
    embedding 128, on the 16 kHz frontend of ``Cnn14_16k`` with twice its hop (20 ms,
    :data:`~esclib.models.panns.frontend.FRONTEND_MINI`): half the frames, less than half the time per step.

    Same key names as CNN10/CNN14, so its checkpoints load through :func:`esclib.models.panns.load_pann` exactly
    like the released ones; ``classes_num`` is the number of classes of the corpus it is pretrained on. Lighter
    dropout than the authors' (none after the blocks, 0.2 before ``fc1``, where they use 0.2 and 0.5): so few
    channels, trained for a few hundred steps, learn markedly slower under theirs (``benchmarks/
    bench_pann_pretrain.py --authors-dropout``). Channels-last: a training step on 32 two-second clips takes a third
    less time on 2 CPU cores (``benchmarks/bench_memory_format.py``).
    """

    default_frontend = FRONTEND_MINI
    layout = CnnLayout((16, 32, 64, 128), 3, 2, 128)
    block_dropout = 0.0
    pre_fc_dropout = 0.2
    channels_last = True
