"""ResNet38 PANN (Kong et al. 2020, study 003, Sec. II-C, Table III).

A double 3 x 3 stem block (64, pool 2), four stages of basic residual blocks (3, 4, 6, 3; 64-512 channels) in which
a stride of 2 is an average pooling before the first convolution (and in the shortcut), then 2 x 2 pooling, a
double 3 x 3 block to 2048 channels; dropout 0.1 inside each residual block and 0.2 between the parts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from esclib.models.panns.base import PannModel
from esclib.models.panns.blocks import ConvBlock, init_pann_weights
from esclib.models.panns.frontend import FrontendConfig

#: basic blocks per stage and stage widths of ResNet38
RESNET38_STAGES = ((3, 64), (4, 128), (6, 256), (3, 512))


def _conv(c_in: int, c_out: int, kernel_size: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size, stride=1, padding=kernel_size // 2, bias=False)


class BasicBlock(nn.Module):
    """``[pool 2] -> conv 3 x 3 -> BN -> ReLU -> dropout 0.1 -> conv 3 x 3 -> BN`` plus the shortcut, ReLU.

    The shortcut is ``downsample`` = ``[AvgPool 2] -> conv 1 x 1 -> BN`` when the stride or the width changes.
    """

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv1, self.bn1 = _conv(c_in, c_out, 3), nn.BatchNorm2d(c_out)
        self.conv2, self.bn2 = _conv(c_out, c_out, 3), nn.BatchNorm2d(c_out)
        if stride == 2:
            self.downsample = nn.Sequential(nn.AvgPool2d(2), _conv(c_in, c_out, 1), nn.BatchNorm2d(c_out))
        elif c_in != c_out:
            self.downsample = nn.Sequential(_conv(c_in, c_out, 1), nn.BatchNorm2d(c_out))
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.avg_pool2d(x, 2) if self.stride == 2 else x
        out = F.relu(self.bn1(self.conv1(out)))
        out = F.dropout(out, p=0.1, training=self.training)
        out = self.bn2(self.conv2(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + identity)


class ResNetStages(nn.Module):
    """Stages ``layer1..4`` of basic blocks; every stage but the first halves the resolution."""

    def __init__(self, stages: tuple[tuple[int, int], ...] = RESNET38_STAGES, c_in: int = 64) -> None:
        super().__init__()
        for i, (blocks, width) in enumerate(stages, start=1):
            layer = [BasicBlock(c_in, width, 2 if i > 1 else 1)]
            layer += [BasicBlock(width, width, 1) for _ in range(blocks - 1)]
            self.add_module(f"layer{i}", nn.Sequential(*layer))
            c_in = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            x = layer(x)
        return x


class ResNet38(PannModel):
    """ResNet38 PANN: ``conv_block1`` -> ``resnet`` (3, 4, 6, 3 basic blocks) -> pool -> ``conv_block_after1``
    (2048); embedding 2048."""

    def __init__(self, *, classes_num: int = 527, frontend: FrontendConfig | None = None,
                 spec_augment: bool = True) -> None:
        super().__init__(2048, 2048, classes_num=classes_num, frontend=frontend, spec_augment=spec_augment)
        self.conv_block1 = ConvBlock(1, 64)
        self.resnet = ResNetStages()
        self.conv_block_after1 = ConvBlock(512, 2048, pool=(1, 1))
        self.apply(init_pann_weights)
        for block in self.resnet.modules():
            if isinstance(block, BasicBlock):
                nn.init.zeros_(block.bn2.weight)  # the authors' zero-initialised residual branches

    def body(self, x: torch.Tensor) -> torch.Tensor:
        x = F.dropout(self.conv_block1(x), p=0.2, training=self.training)
        x = F.dropout(F.avg_pool2d(self.resnet(x), 2), p=0.2, training=self.training)
        return F.dropout(self.conv_block_after1(x), p=0.2, training=self.training)
