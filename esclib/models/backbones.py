"""torchvision image backbones as spectrogram encoders (chapters 4 and 5: ESResNet / NPID, the SSL comparison).

:func:`backbone` returns a torchvision network with its classifier removed, so that it maps a spectrogram batch
``(B, C, F, T)`` to embeddings ``(B, D)`` — what instance discrimination, contrastive heads (lightly) and the kNN
evaluation all take. The first convolution is adapted to the input's channel count (1 for a log-mel, 3 for the
ESResNet 3-band spectrogram); with ImageNet weights a 1-channel stem takes the sum of the RGB filters, which gives
a grey image the same response as the original network.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

#: supported names -> (attribute path of the classifier to remove, attribute path of the first convolution)
BACKBONES: dict[str, tuple[str, str]] = {
    "resnet18": ("fc", "conv1"),
    "resnet50": ("fc", "conv1"),
    "mobilenet_v2": ("classifier", "features.0.0"),
    "efficientnet_b0": ("classifier", "features.0.0"),
    "convnext_tiny": ("classifier.2", "features.0.0"),
    "vgg16": ("classifier.6", "features.0"),
    "alexnet": ("classifier.6", "features.0"),
}


def _get(module: nn.Module, path: str) -> nn.Module:
    for part in path.split("."):
        module = getattr(module, part) if not part.isdigit() else module[int(part)]
    return module


def _set(module: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, last = path.rpartition(".")
    parent = _get(module, parent_path) if parent_path else module
    if last.isdigit():
        parent[int(last)] = new
    else:
        setattr(parent, last, new)


def _imagenet_weights(name: str) -> torchvision.models.WeightsEnum:
    weights = torchvision.models.get_model_weights(name).DEFAULT
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not cached.exists():
        raise FileNotFoundError(
            f"ImageNet weights for {name!r} are not in torch's cache: download {weights.url} and place it at "
            f"{cached} (or run once on a machine with internet), or use pretrained=False"
        )
    return weights


def _adapt_stem(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A copy of ``conv`` taking ``in_channels`` inputs; pretrained RGB filters are summed (1 channel) or tiled."""
    if conv.in_channels == in_channels:
        return conv
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    conv.groups, conv.bias is not None)
    with torch.no_grad():
        summed = conv.weight.sum(dim=1, keepdim=True)
        new.weight.copy_(summed.repeat(1, in_channels, 1, 1) / in_channels)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def backbone(name: str, *, in_channels: int = 1, pretrained: bool = False) -> tuple[nn.Module, int]:
    """A torchvision ``name`` network without its classifier, and its embedding width.

    ``pretrained=True`` loads the ImageNet weights from torch's local cache (an error says where to put them when
    they are missing: esclib never downloads them behind your back).
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {sorted(BACKBONES)}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    head_path, stem_path = BACKBONES[name]
    net = torchvision.models.get_model(name, weights=_imagenet_weights(name) if pretrained else None)
    head = _get(net, head_path)
    dim = head.in_features if isinstance(head, nn.Linear) else _get(net, head_path + ".1").in_features
    _set(net, head_path, nn.Identity())
    _set(net, stem_path, _adapt_stem(_get(net, stem_path), in_channels))
    return net, dim
