"""NPID memory bank and NCE loss (study 004): closed-form values, the memory update, and that it learns."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from esclib.losses.npid import NPIDMemory


def _nce_by_hand(memory, features, candidates, temperature, n, k, log_z):
    total = 0.0
    for b in range(features.shape[0]):
        x = np.exp(memory[candidates[b]] @ features[b] / temperature - log_z)
        pn = k / n
        total += -math.log(x[0] / (x[0] + pn)) - sum(math.log(pn / (xi + pn)) for xi in x[1:])
    return total / features.shape[0]


def test_nce_loss_matches_the_formula():
    bank = NPIDMemory(20, 4, nce_k=5, temperature=0.5, generator=torch.Generator().manual_seed(3))
    feats = F.normalize(torch.randn(3, 4, generator=torch.Generator().manual_seed(1)), dim=1)
    index = torch.tensor([2, 7, 11])
    memory = bank.memory.clone().numpy()
    state = bank.generator.get_state()
    loss = bank.loss(feats, index)
    bank.generator.set_state(state)
    noise = torch.randint(0, 20, (3, 5), generator=bank.generator)
    candidates = torch.cat([index[:, None], noise], 1).numpy()
    logits = np.einsum("bkd,bd->bk", memory[candidates], feats.numpy()) / 0.5
    log_z = np.log(np.exp(logits).mean() * 20)  # Z estimated once, on the first batch
    assert float(bank.log_z) == pytest.approx(log_z, rel=1e-5)
    expected = _nce_by_hand(memory, feats.numpy(), candidates, 0.5, 20, 5, log_z)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_zero_noise_gives_the_full_softmax():
    bank = NPIDMemory(10, 4, nce_k=0, temperature=0.1)
    feats = F.normalize(torch.randn(4, 4), dim=1)
    index = torch.tensor([0, 3, 5, 9])
    expected = F.cross_entropy(feats @ bank.memory.t() / 0.1, index)
    assert torch.allclose(bank.loss(feats, index), expected)


def test_memory_update_is_a_normalised_moving_average():
    bank = NPIDMemory(6, 3, nce_k=2, momentum=0.5)
    before = bank.memory.clone()
    feats = F.normalize(torch.randn(2, 3), dim=1)
    bank.update(feats, torch.tensor([1, 4]))
    expected = F.normalize(0.5 * before[[1, 4]] + 0.5 * feats, dim=1)
    assert torch.allclose(bank.memory[[1, 4]], expected)
    assert torch.equal(bank.memory[[0, 2, 3, 5]], before[[0, 2, 3, 5]])


def test_npid_learns_to_tell_instances_apart():
    torch.manual_seed(0)
    n, d = 32, 16
    data = torch.randn(n, 8)
    net = torch.nn.Linear(8, d)
    bank = NPIDMemory(n, d, nce_k=8, temperature=0.1, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(200):
        index = torch.randperm(n)[:16]
        noisy = data[index] + 0.05 * torch.randn(16, 8)
        f = F.normalize(net(noisy), dim=1)
        loss = bank.loss(f, index)
        opt.zero_grad()
        loss.backward()
        opt.step()
        bank.update(f, index)
    with torch.no_grad():
        f = F.normalize(net(data + 0.05 * torch.randn(n, 8)), dim=1)
    nearest = (f @ bank.memory.t()).argmax(1)
    assert (nearest == torch.arange(n)).float().mean() > 0.9


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="nce_k"):
        NPIDMemory(10, 4, nce_k=10)
    with pytest.raises(ValueError, match="disagree"):
        NPIDMemory(10, 4, nce_k=3).loss(torch.zeros(2, 4), torch.tensor([1]))
