"""Building blocks shared by the PANN architectures (Kong et al. 2020, study 003, Tables I-III).

Attribute names follow the authors' modules so that the released state dicts load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBlock(nn.Module):
    """``convs`` x (k x k conv, no bias -> BatchNorm -> ReLU), then average pooling over ``pool``.

    ``convs=2, kernel_size=3`` is the authors' ``ConvBlock`` (CNN10/14, ResNet stems, the Wavegram's last block);
    ``convs=1, kernel_size=5`` their ``ConvBlock5x5`` (CNN6). Keys: ``conv1, bn1[, conv2, bn2]``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int = 3, convs: int = 2,
                 pool: tuple[int, int] = (2, 2)) -> None:
        super().__init__()
        self.convs, self.pool = convs, pool
        for i in range(1, convs + 1):
            self.add_module(f"conv{i}", nn.Conv2d(in_channels if i == 1 else out_channels, out_channels,
                                                  kernel_size, padding=kernel_size // 2, bias=False))
            self.add_module(f"bn{i}", nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.convs + 1):
            x = F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
        return F.avg_pool2d(x, kernel_size=self.pool) if self.pool != (1, 1) else x


def init_pann_weights(module: nn.Module) -> None:
    """The authors' initialisation: Xavier-uniform convolutions and linear layers, zero biases, BN weight 1 bias 0.

    Apply with ``model.apply(init_pann_weights)``; matters only for training from scratch (the ``Scratch`` arm of
    study 003 and the ``quick`` mini model), pretrained weights replace it.
    """
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
