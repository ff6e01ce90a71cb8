"""torchvision image backbones as spectrogram encoders (chapters 4 and 5: ESResNet / NPID, the SSL comparison).

:func:`backbone` returns a torchvision network with its classifier removed, so that it maps a spectrogram batch
``(B, C, frames, bins)`` to embeddings ``(B, D)`` -- what instance discrimination, contrastive heads (lightly) and
the kNN evaluation all take. The first convolution is adapted to the input's channel count (1 for a log-mel, 3 for
the ESResNet 3-band spectrogram); with ImageNet weights a 1-channel stem takes the sum of the RGB filters, which
gives a grey image the same response as the original network. Study 001's backbones: ResNet-18, MobileNetV2,
EfficientNet-B0, ConvNeXt-Tiny, Inception v3, VGG16, AlexNet (plus ResNet-50 for chapter 4).

ImageNet weights are read only from torch's local cache (:func:`imagenet_weights_path` says where); esclib never
downloads them. :func:`grad_cam` maps which time-frequency regions drove a classifier's decision (study 001's
Grad-CAM figures).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

#: supported names -> (attribute path of the classifier to remove, of the first convolution, of the Grad-CAM layer)
BACKBONES: dict[str, tuple[str, str, str]] = {
    "resnet18": ("fc", "conv1", "layer4"),
    "resnet50": ("fc", "conv1", "layer4"),
    "mobilenet_v2": ("classifier", "features.0.0", "features"),
    "efficientnet_b0": ("classifier", "features.0.0", "features"),
    "convnext_tiny": ("classifier.2", "features.0.0", "features"),
    "inception_v3": ("fc", "Conv2d_1a_3x3.conv", "Mixed_7c"),
    "vgg16": ("classifier.6", "features.0", "features"),
    "alexnet": ("classifier.6", "features.0", "features"),
}

#: the smallest input side (frames and bins) each backbone accepts
MIN_INPUT: dict[str, int] = {"inception_v3": 75, "alexnet": 63}

#: extra constructor arguments: Inception v3 without its auxiliary classifier and without the RGB re-normalisation
#: of its input (``transform_input``, which needs 3 ImageNet-normalised channels)
_KWARGS: dict[str, dict[str, bool]] = {"inception_v3": {"aux_logits": False, "transform_input": False}}


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


def imagenet_weights_path(name: str) -> Path:
    """Where torch's cache must hold the ImageNet weights of backbone ``name`` (``$TORCH_HOME/hub/checkpoints``)."""
    weights = torchvision.models.get_model_weights(name).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def has_imagenet_weights(name: str) -> bool:
    """True when the ImageNet weights of ``name`` are in torch's local cache (a chapter skips the arm otherwise)."""
    return imagenet_weights_path(name).exists()


def _imagenet_weights(name: str) -> torchvision.models.WeightsEnum:
    weights = torchvision.models.get_model_weights(name).DEFAULT
    cached = imagenet_weights_path(name)
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
    """A torchvision ``name`` network without its classifier, and its embedding width. Notebooks: 04_npid, 05_ssl.

    ``pretrained=True`` loads the ImageNet weights from torch's local cache (an error says where to put them when
    they are missing: esclib never downloads them behind your back).
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {sorted(BACKBONES)}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    head_path, stem_path, _ = BACKBONES[name]
    kwargs = dict(_KWARGS.get(name, {}))
    if name == "inception_v3" and not pretrained:
        kwargs["init_weights"] = True
    net = torchvision.models.get_model(name, weights=_imagenet_weights(name) if pretrained else None, **kwargs)
    if name == "inception_v3":
        net.transform_input = False
    head = _get(net, head_path)
    dim = head.in_features if isinstance(head, nn.Linear) else _get(net, head_path + ".1").in_features
    _set(net, head_path, nn.Identity())
    _set(net, stem_path, _adapt_stem(_get(net, stem_path), in_channels))
    return net, dim


def check_input_size(name: str, size: tuple[int, int]) -> None:
    """Raise ``ValueError`` when backbone ``name`` cannot take inputs of ``size`` (frames, bins)."""
    smallest = MIN_INPUT.get(name, 32)
    if min(size) < smallest:
        raise ValueError(f"backbone {name!r} needs inputs of at least {smallest} x {smallest}, got {tuple(size)}")


def cam_layer(net: nn.Module, name: str) -> nn.Module:
    """The layer whose activations Grad-CAM weighs for backbone ``name`` (the last convolutional stage)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {sorted(BACKBONES)}")
    return _get(net, BACKBONES[name][2])


def grad_cam(model: Callable[[torch.Tensor], torch.Tensor], layer: nn.Module, x: torch.Tensor,
             target: torch.Tensor | int | None = None) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017) of ``model`` (input -> class scores) for inputs ``x`` (B, C, H, W).

    The activations ``A`` of ``layer`` (B, K, h, w) are weighted by the spatial mean of the gradient of the
    ``target`` class score (default: the predicted class) and summed over channels; the ReLU of that map is
    upsampled bilinearly to ``x``'s size and scaled to [0, 1] per example. Returns (B, H, W). Notebook: 05_ssl.
    """
    stored: dict[str, torch.Tensor] = {}

    def keep(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        stored["activation"] = output

    handle = layer.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            scores = model(x.detach().requires_grad_(True))
            if target is None:
                target = scores.argmax(dim=1)
            target = torch.as_tensor(target, device=scores.device).expand(len(x))
            activation = stored["activation"]
            gradient, = torch.autograd.grad(scores.gather(1, target[:, None]).sum(), activation)
    finally:
        handle.remove()
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activation.detach()).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(dim=1).clamp_min(1e-12)
    return cam / peak[:, None, None]
