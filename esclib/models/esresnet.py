"""ESResNet (Guzhov et al. 2021), the network of study 004 (DLS / NPID): a torchvision ResNet on the 3-band power
spectrogram, with a convolutional attention gate after each stage (book/protocols.md, study 004; reference code
AndreyGuzhov/ESResNet, ``model/esresnet.py`` and ``model/attention.py``).

Each stage's gate takes the stage *input*, max-pools it to the stage output's size, applies a depthwise
convolution with a narrow kernel ((3,1) along frequency or (1,5) along time, alternately; (3,5) after global
pooling), a 1×1 convolution, batch-norm and a sigmoid, and multiplies the stage output by it. Every audio channel
(stereo: 2) runs through the same network; their features are summed before the linear head.

The study's network is ResNet-50 (2048-d features); the ``quick`` profile runs the same code on a smaller
torchvision ResNet (``arch="resnet18"``, 512-d) and a smaller spectrogram. For NPID the head is lemniscate's
``fc -> low_dim`` followed by L2 normalisation (``normalize=True``); for classification it is a plain linear layer.

Used by chapter 04 (Notebook: 04_npid) through :mod:`esclib.train.npid`.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from esclib.models.backbones import _imagenet_weights

#: torchvision ResNets ESResNet can be built on (``arch``)
ARCHS: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
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


def imagenet_status(arch: str = "resnet50") -> str | None:
    """None when torchvision's ImageNet weights of ``arch`` are in the local torch hub cache, else the message
    saying where to put them (study 004's ImageNet arm is skipped with it; esclib never downloads them)."""
    try:
        _imagenet_weights(arch)
    except FileNotFoundError as err:
        return str(err)
    return None


class ESResNet(nn.Module):
    """A torchvision ResNet (optionally with attention gates) over 3-band spectrograms, shared across channels.

    Input: ``(B, 3, F, T)`` or ``(B, C, 3, F, T)`` spectrograms, or -- with a ``frontend`` such as
    :class:`esclib.features.ThreeBandSpectrogram`, as in the reference where the model computes its own input --
    waveforms ``(B, samples)`` / ``(B, C, samples)``. :meth:`features` returns the channel-summed pooled features
    (``width``: 2048 for ResNet-50), ``forward`` the head's output ``(B, num_classes)``, L2-normalised when
    ``normalize`` (the NPID embedding). ``spec_augment`` (e.g. :class:`esclib.augment.esresnet.RandomBandGain`)
    acts on the spectrograms in training mode only. ``pretrained=True`` starts the ResNet from torchvision's
    ImageNet weights (from the local cache; study 004's "ImageNet" arm); the gates and the head always start at
    random.
    """

    def __init__(self, num_classes: int, *, arch: str = "resnet50", attention: bool = True, pretrained: bool = False,
                 normalize: bool = False, frontend: nn.Module | None = None, spec_augment: nn.Module | None = None):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"ESResNet: arch must be one of {ARCHS}, got {arch!r}")
        if num_classes < 1:
            raise ValueError(f"ESResNet: num_classes must be >= 1, got {num_classes}")
        self.arch, self.normalize, self.frontend, self.spec_augment = arch, normalize, frontend, spec_augment
        self.resnet = torchvision.models.get_model(arch, weights=_imagenet_weights(arch) if pretrained else None)
        self.width = self.resnet.fc.in_features
        self.resnet.fc = nn.Identity()
        self.stages = [self.resnet.layer1, self.resnet.layer2, self.resnet.layer3, self.resnet.layer4]
        stem = self.resnet.conv1.out_channels
        outputs = [stage[-1].conv3.out_channels if hasattr(stage[-1], "conv3") else stage[-1].conv2.out_channels
                   for stage in self.stages]
        widths = (stem, *outputs, outputs[-1])
        self.gates = nn.ModuleList(
            AttentionGate(widths[i], widths[i + 1], *_GATES[i]) for i in range(5)
        ) if attention else None
        self.classifier = nn.Linear(self.width, num_classes)

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

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Summed per-channel features ``(B, width)`` of a spectrogram (or, with a frontend, waveform) batch."""
        spec = self.frontend(x) if self.frontend is not None else x
        if self.spec_augment is not None and self.training:
            spec = self.spec_augment(spec)
        if spec.dim() == 4:
            spec = spec.unsqueeze(1)
        if spec.dim() != 5 or spec.shape[2] != 3:
            raise ValueError(f"ESResNet expects (B, 3, F, T) or (B, C, 3, F, T) spectrograms, got "
                             f"{tuple(spec.shape)}")
        return sum(self._one_channel(spec[:, c]) for c in range(spec.shape[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.classifier(self.features(x))
        return F.normalize(out, dim=1) if self.normalize else out
