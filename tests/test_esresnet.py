"""ESResNet (study 004's network): shapes, the shared network over audio channels, the attention gates."""

import pytest
import torch

from esclib.models.esresnet import ESResNet


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return ESResNet(num_classes=10).eval()


def test_logits_for_mono_and_stereo_inputs(net):
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        assert net(x).shape == (2, 10)
        stereo = torch.stack([x, x.flip(-1)], dim=1)
        summed = net.features(x) + net.features(x.flip(-1))
        assert torch.allclose(net.features(stereo), summed, atol=1e-4)


def test_without_attention_it_is_torchvision_resnet50():
    torch.manual_seed(0)
    plain = ESResNet(num_classes=5, attention=False).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(plain.features(x), plain.resnet(x), atol=1e-5)


def test_gates_are_sigmoids_of_the_stage_input(net):
    gate = net.gates[0]
    with torch.no_grad():
        g = gate(torch.randn(1, 64, 16, 20), torch.Size([16, 20]))
    assert g.shape == (1, 256, 16, 20) and 0 < g.min() and g.max() < 1


def test_bad_input_shape_is_named(net):
    with pytest.raises(ValueError, match=r"\(B, 3, F, T\)"):
        net(torch.randn(2, 1, 64, 64))
