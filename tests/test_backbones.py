"""torchvision backbones as spectrogram encoders: embedding widths, channel adaptation, ImageNet weights from the
local cache only (loaded into the adapted stem), and Grad-CAM against its closed form."""

import pytest
import torch
import torchvision
from torch import nn

from esclib.models.backbones import (BACKBONES, _adapt_stem, backbone, cam_layer, check_input_size, grad_cam,
                                     has_imagenet_weights, imagenet_weights_path)

EXPECTED_DIM = {"resnet18": 512, "resnet50": 2048, "mobilenet_v2": 1280, "efficientnet_b0": 1280,
                "convnext_tiny": 768, "inception_v3": 2048, "vgg16": 4096, "alexnet": 4096}


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
    for name in ("resnet50", "inception_v3", "vgg16", "alexnet"):
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


def test_inception_v3_without_auxiliary_head_or_rgb_transform():
    net, dim = backbone("inception_v3", in_channels=1)
    assert dim == 2048 and net.AuxLogits is None and not net.transform_input
    out = net.train()(torch.randn(2, 1, 80, 80))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 2048)
    check_input_size("inception_v3", (80, 80))
    with pytest.raises(ValueError, match="inception_v3.*75"):
        check_input_size("inception_v3", (64, 64))


def test_imagenet_weights_come_from_the_local_cache_into_the_adapted_stem(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert not has_imagenet_weights("resnet18")
    torch.manual_seed(5)
    reference = torchvision.models.resnet18()
    path = imagenet_weights_path("resnet18")
    assert path.parent == tmp_path / "checkpoints" and path.name.startswith("resnet18-")
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    assert has_imagenet_weights("resnet18")
    net, _ = backbone("resnet18", pretrained=True, in_channels=1)
    torch.testing.assert_close(net.conv1.weight, reference.conv1.weight.sum(dim=1, keepdim=True))
    torch.testing.assert_close(net.layer3[1].conv2.weight, reference.layer3[1].conv2.weight)
    scratch, _ = backbone("resnet18")
    assert not torch.allclose(scratch.layer3[1].conv2.weight, reference.layer3[1].conv2.weight)


class _Tiny(nn.Module):
    """features -> global average pooling -> linear: Grad-CAM has a closed form here."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(1, 3, 1)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def test_grad_cam_weighs_the_layer_activations_by_the_mean_gradient():
    torch.manual_seed(0)
    model = _Tiny()
    with torch.no_grad():
        model.features.weight.copy_(torch.tensor([1.0, 2.0, -1.0]).reshape(3, 1, 1, 1))
        model.features.bias.zero_()
        model.fc.weight.copy_(torch.tensor([[0.1, 0.4, 0.2], [0.5, -0.2, 0.3]]))
    x = torch.randn(2, 1, 4, 6)
    cam = grad_cam(model, model.features, x, target=1)
    activation = model.features(x).detach()
    weights = model.fc.weight[1].detach() / (4 * 6)
    expected = torch.relu((weights[None, :, None, None] * activation).sum(1))
    expected = expected / expected.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    assert (expected.flatten(1).amax(1) > 0).all()
    torch.testing.assert_close(cam, expected)
    assert all(p.grad is None for p in model.parameters())
    predicted = grad_cam(model, model.features, x)
    chosen = model(x).argmax(1)
    for i in range(2):
        torch.testing.assert_close(predicted[i], grad_cam(model, model.features, x[i:i + 1], int(chosen[i]))[0])


def test_grad_cam_on_a_resnet_maps_every_input_pixel():
    net, dim = backbone("resnet18")
    classifier = nn.Sequential(net, nn.Linear(dim, 3)).eval()
    cam = grad_cam(classifier, cam_layer(net, "resnet18"), torch.randn(2, 1, 64, 64))
    assert cam.shape == (2, 64, 64) and cam.min() >= 0 and torch.allclose(cam.flatten(1).amax(1), torch.ones(2))
