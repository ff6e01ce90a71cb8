"""The six SSL methods of study 001 over a backbone: losses train the backbone, teachers follow by momentum."""

import pytest
import torch
from torch import nn

from esclib.models.ssl import METHODS, ssl_method

SMALL = {"simclr": {"proj_dim": 16}, "moco": {"proj_dim": 16, "queue_size": 64},
         "byol": {"hidden_dim": 32, "proj_dim": 16}, "dino": {"hidden_dim": 32, "bottleneck_dim": 16, "out_dim": 64},
         "barlowtwins": {"proj_dim": 32}, "swav": {"proj_dim": 16, "n_prototypes": 8}}


def _backbone():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_trains_its_backbone(name):
    torch.manual_seed(0)
    method = ssl_method(name, _backbone(), 8, **SMALL[name])
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.05)
    x = torch.randn(16, 1, 12, 12)
    v0, v1 = x + 0.1 * torch.randn_like(x), x + 0.1 * torch.randn_like(x)
    before = [p.detach().clone() for p in method.backbone.parameters()]
    loss = method.loss(v0, v1, progress=0.0)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    opt.step()
    method.after_step(0.0)
    assert any(not torch.equal(b, p) for b, p in zip(before, method.backbone.parameters()))
    assert method.embed(x).shape == (16, 8)


@pytest.mark.parametrize("name", ["moco", "byol", "dino"])
def test_teacher_is_a_moving_average_of_the_student(name):
    torch.manual_seed(0)
    method = ssl_method(name, _backbone(), 8, **SMALL[name])
    assert not any(p.requires_grad for p in method.teacher_backbone.parameters())
    for p in method.backbone.parameters():
        p.data.add_(1.0)
    old = [p.detach().clone() for p in method.teacher_backbone.parameters()]
    method.after_step(0.0)
    m = method.momentum
    for o, t, s in zip(old, method.teacher_backbone.parameters(), method.backbone.parameters()):
        assert torch.allclose(t, m * o + (1 - m) * s, atol=1e-6)


def test_simclr_loss_falls_when_views_agree():
    torch.manual_seed(0)
    method = ssl_method("simclr", _backbone(), 8, proj_dim=16)
    opt = torch.optim.Adam(method.parameters(), lr=1e-2)
    x = torch.randn(32, 1, 12, 12)
    first = None
    for _ in range(60):
        loss = method.loss(x + 0.05 * torch.randn_like(x), x + 0.05 * torch.randn_like(x))
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.9 * first


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="unknown SSL method 'simsiam'"):
        ssl_method("simsiam", _backbone(), 8)
