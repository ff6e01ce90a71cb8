"""torchvision backbones as spectrogram encoders: embedding widths, channel adaptation, offline weights error."""

import pytest
import torch
from torch import nn

from esclib.models.backbones import BACKBONES, _adapt_stem, backbone

EXPECTED_DIM = {"resnet18": 512, "resnet50": 2048, "mobilenet_v2": 1280, "efficientnet_b0": 1280,
                "convnext_tiny": 768, "vgg16": 4096, "alexnet": 4096}


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "efficientnet_b0", "convnext_tiny"])
def test_backbone_maps_spectrograms_to_embeddings(name):
    net, dim = backbone(name, in_channels=1)
    assert dim == EXPECTED_DIM[name]
    net.eval()
    with torch.no_grad():
        out = net(torch.randn(2, 1, 64, 96))
    assert out.shape == (2, dim)


def test_every_listed_backbone_has_a_known_width():
    assert set(BACKBONES) == set(EXPECTED_DIM)
    for name in ("resnet50", "vgg16", "alexnet"):
        assert backbone(name, in_channels=3)[1] == EXPECTED_DIM[name]


def test_one_channel_stem_responds_to_grey_input_like_the_rgb_stem():
    torch.manual_seed(0)
    rgb = nn.Conv2d(3, 8, 3, padding=1, bias=True)
    grey = _adapt_stem(rgb, 1)
    x = torch.randn(2, 1, 10, 10)
    assert torch.allclose(grey(x), rgb(x.repeat(1, 3, 1, 1)), atol=1e-5)
    assert _adapt_stem(rgb, 3) is rgb


def test_missing_imagenet_weights_say_where_to_put_them(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"resnet18-.*\.pth"):
        backbone("resnet18", pretrained=True)
    with pytest.raises(ValueError, match="unknown backbone 'resnet7'"):
        backbone("resnet7")
