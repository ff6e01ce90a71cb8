"""MobileNetV1 and MobileNetV2 PANNs (Kong et al. 2020, study 003, Sec. II-D, Table IV).

As the authors' code, strides are replaced by average pooling placed right after each 3 x 3 convolution (a
``nn.AvgPool2d(1)`` where the stride is 1, so the layer indices of ``features.*`` match the released files).
"""

from __future__ import annotations

import torch
from torch import nn

from esclib.models.panns.base import PannModel
from esclib.models.panns.blocks import init_pann_weights
from esclib.models.panns.frontend import FrontendConfig

#: MobileNetV1 depthwise-separable layers after the stem: (output channels, stride)
MOBILENET_V1_LAYERS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                       (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
#: MobileNetV2 inverted-residual stages: (expansion t, output channels c, repeats n, stride s)
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 2), (6, 160, 3, 1), (6, 320, 1, 1))


def conv3x3_pool_bn(c_in: int, c_out: int, stride: int, activation: type[nn.Module], *,
                    depthwise: bool = False) -> list[nn.Module]:
    """3 x 3 conv (depthwise if asked) -> AvgPool(stride) -> BN -> activation."""
    return [nn.Conv2d(c_in, c_out, 3, 1, 1, groups=c_in if depthwise else 1, bias=False), nn.AvgPool2d(stride),
            nn.BatchNorm2d(c_out), activation(inplace=True)]


def pointwise_bn(c_in: int, c_out: int, activation: type[nn.Module] | None) -> list[nn.Module]:
    """1 x 1 conv -> BN [-> activation]."""
    layers = [nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False), nn.BatchNorm2d(c_out)]
    return layers + [activation(inplace=True)] if activation is not None else layers


class MobileNetV1(PannModel):
    """MobileNetV1 PANN: stem 3 x 3 conv (32, pool 2) and 13 depthwise-separable layers (ReLU) up to 1024
    channels; embedding 1024."""

    def __init__(self, *, classes_num: int = 527, frontend: FrontendConfig | None = None,
                 spec_augment: bool = True) -> None:
        super().__init__(1024, 1024, classes_num=classes_num, frontend=frontend, spec_augment=spec_augment)
        layers = [nn.Sequential(*conv3x3_pool_bn(1, 32, 2, nn.ReLU))]
        c_in = 32
        for c_out, stride in MOBILENET_V1_LAYERS:
            layers.append(nn.Sequential(*conv3x3_pool_bn(c_in, c_in, stride, nn.ReLU, depthwise=True),
                                        *pointwise_bn(c_in, c_out, nn.ReLU)))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.apply(init_pann_weights)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: [1 x 1 expand -> BN -> ReLU6] -> depthwise 3 x 3 -> pool -> BN -> ReLU6 -> 1 x 1 -> BN,
    with a residual connection when the stride is 1 and the width is unchanged (key ``conv.*``)."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = round(c_in * expand_ratio)
        self.use_residual = stride == 1 and c_in == c_out
        expand = pointwise_bn(c_in, hidden, nn.ReLU6) if expand_ratio != 1 else []
        self.conv = nn.Sequential(*expand, *conv3x3_pool_bn(hidden, hidden, stride, nn.ReLU6, depthwise=True),
                                  *pointwise_bn(hidden, c_out, None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(PannModel):
    """MobileNetV2 PANN: stem 3 x 3 conv (32, pool 2), 17 inverted residuals, 1 x 1 conv to 1280; embedding 1024;
    no dropout before ``fc1`` (as the authors' code)."""

    pre_fc_dropout = 0.0

    def __init__(self, *, classes_num: int = 527, frontend: FrontendConfig | None = None,
                 spec_augment: bool = True) -> None:
        super().__init__(1280, 1024, classes_num=classes_num, frontend=frontend, spec_augment=spec_augment)
        layers: list[nn.Module] = [nn.Sequential(*conv3x3_pool_bn(1, 32, 2, nn.ReLU6))]
        c_in = 32
        for expand_ratio, c_out, repeats, stride in MOBILENET_V2_STAGES:
            for i in range(repeats):
                layers.append(InvertedResidual(c_in, c_out, stride if i == 0 else 1, expand_ratio))
                c_in = c_out
        layers.append(nn.Sequential(*pointwise_bn(c_in, 1280, nn.ReLU6)))
        self.features = nn.Sequential(*layers)
        self.apply(init_pann_weights)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
