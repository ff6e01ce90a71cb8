"""ESResNet (Guzhov et al. 2021), the network of study 004 (DLS / NPID): a torchvision ResNet-50 on the 3-band
power spectrogram, with a convolutional attention gate after each stage (PROTOCOLS.md B5).

Each stage's gate takes the stage *input*, max-pools it to the stage output's size, applies a depthwise
convolution with a narrow kernel ((3,1) along frequency or (1,5) along time, alternately; (3,5) after global
pooling), a 1×1 convolution, batch-norm and a sigmoid, and multiplies the stage output by it. Every audio channel
(stereo: 2) runs through the same network; their 2048-d features are summed before the linear classifier.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from esclib.models.backbones import _imagenet_weights

#: (kernel, padding) of the attention gates after layer1..layer4 and after global pooling
_GATES = (((3, 1), (1, 0)), ((1, 5), (0, 2)), ((3, 1), (1, 0)), ((1, 5), (0, 2)), ((3, 5), (1, 2)))


class AttentionGate(nn.Module):
    """Sigmoid gate from a stage's input, resized to the stage output (depthwise conv → 1×1 conv → BN → σ)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int], padding: tuple[int, int]):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel, padding=padding, groups=in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, stage_input: torch.Tensor, size: torch.Size) -> torch.Tensor:
        x = F.adaptive_max_pool2d(stage_input, size)
        return torch.sigmoid(self.bn(self.pointwise(self.depthwise(x))))


class ESResNet(nn.Module):
    """ResNet-50 (optionally with attention gates) over 3-band spectrograms, shared across audio channels.

    Input: ``(B, 3, F, T)`` or ``(B, C, 3, F, T)`` (see :class:`esclib.features.ThreeBandSpectrogram`).
    ``forward`` returns logits ``(B, num_classes)``; :meth:`features` the summed 2048-d features.
    ``pretrained=True`` starts from torchvision's ImageNet weights (from the local cache; study 004's "ImageNet"
    arm); the gates and the classifier always start at random.
    """

    def __init__(self, num_classes: int, *, attention: bool = True, pretrained: bool = False):
        super().__init__()
        weights = _imagenet_weights("resnet50") if pretrained else None
        self.resnet = torchvision.models.resnet50(weights=weights)
        self.resnet.fc = nn.Identity()
        self.stages = [self.resnet.layer1, self.resnet.layer2, self.resnet.layer3, self.resnet.layer4]
        widths = (64, 256, 512, 1024, 2048, 2048)
        self.gates = nn.ModuleList(
            AttentionGate(widths[i], widths[i + 1], *_GATES[i]) for i in range(5)
        ) if attention else None
        self.classifier = nn.Linear(2048, num_classes)

    def _one_channel(self, x: torch.Tensor) -> torch.Tensor:
        r = self.resnet
        x = r.maxpool(r.relu(r.bn1(r.conv1(x))))
        for i, stage in enumerate(self.stages):
            out = stage(x)
            x = out * self.gates[i](x, out.shape[-2:]) if self.gates is not None else out
        pooled = r.avgpool(x)
        if self.gates is not None:
            pooled = pooled * self.gates[4](x, pooled.shape[-2:])
        return pooled.flatten(1)

    def features(self, spec: torch.Tensor) -> torch.Tensor:
        """Summed per-channel features ``(B, 2048)`` of a 3-band spectrogram batch."""
        if spec.dim() == 4:
            spec = spec.unsqueeze(1)
        if spec.dim() != 5 or spec.shape[2] != 3:
            raise ValueError(f"ESResNet expects (B, 3, F, T) or (B, C, 3, F, T) input, got {tuple(spec.shape)}")
        return sum(self._one_channel(spec[:, c]) for c in range(spec.shape[1]))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(spec))
