"""Optimisers of study 000's Table 4: Lookahead steps as in Zhang et al. 2019, Ranger = RAdam + Lookahead, cosine."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from esclib.train import fit
from esclib.train.optim import Lookahead, cosine_schedule, make_optimizer, ranger


def _param(value=(1.0, -2.0, 0.5)):
    return nn.Parameter(torch.tensor(value))


def _steps(opt, p, grads):
    trajectory = []
    for g in grads:
        p.grad = torch.as_tensor(g, dtype=torch.float32).expand_as(p).clone()
        opt.step()
        trajectory.append(p.detach().clone())
    return trajectory


def test_lookahead_syncs_every_k_steps_towards_the_fast_weights_by_alpha():
    theta0 = torch.tensor([1.0, -2.0, 0.5])
    p = _param()
    lr, k, alpha, g = 0.1, 3, 0.4, 1.0
    opt = Lookahead(torch.optim.SGD([p], lr=lr), k=k, alpha=alpha)
    # steps 1, 2: plain SGD; the slow weights stay at θ0
    first, second = _steps(opt, p, [g, g])
    assert torch.allclose(first, theta0 - lr * g) and torch.allclose(second, theta0 - 2 * lr * g)
    assert torch.equal(opt.slow[0], theta0)
    # step 3: fast = θ0 - 3 lr g, slow = θ0 + α (fast - θ0), and the fast weights restart from the slow ones
    (third,) = _steps(opt, p, [g])
    slow1 = theta0 + alpha * (-3 * lr * g)
    assert torch.allclose(third, slow1) and torch.allclose(opt.slow[0], slow1)
    # steps 4, 5 from the synchronised point; step 6 syncs again
    fourth, _, sixth = _steps(opt, p, [g] * 3)
    assert torch.allclose(fourth, slow1 - lr * g)
    slow2 = slow1 + alpha * (-3 * lr * g)
    assert torch.allclose(sixth, slow2) and torch.allclose(opt.slow[0], slow2)


def test_lookahead_with_k1_alpha1_is_the_inner_optimiser():
    grads = [[0.3, -1.0, 2.0], [1.0, 0.5, -0.2], [-0.7, 0.1, 0.4]]
    p, q = _param(), _param()
    plain = _steps(torch.optim.Adam([p], lr=0.05), p, grads)
    wrapped = _steps(Lookahead(torch.optim.Adam([q], lr=0.05), k=1, alpha=1.0), q, grads)
    for a, b in zip(plain, wrapped):
        assert torch.allclose(a, b)


def test_ranger_is_radam_between_synchronisations():
    grads = [[0.3, -1.0, 2.0], [1.0, 0.5, -0.2], [-0.7, 0.1, 0.4], [0.2, 0.2, 0.2]]
    p, q = _param(), _param()
    radam = _steps(torch.optim.RAdam([p], lr=0.01, betas=(0.95, 0.999), eps=1e-5), p, grads)
    opt = ranger([q], lr=0.01, k=5)
    rng = _steps(opt, q, grads)
    assert isinstance(opt.optimizer, torch.optim.RAdam) and opt.optimizer.defaults["betas"] == (0.95, 0.999)
    for a, b in zip(radam, rng):  # k = 5 > 4 steps: no synchronisation yet
        assert torch.allclose(a, b)


def test_lookahead_state_dict_resumes_the_same_trajectory():
    grads = [[0.3, -1.0, 2.0], [1.0, 0.5, -0.2], [-0.7, 0.1, 0.4], [0.2, 0.2, 0.2], [0.5, -0.5, 0.1]]
    p = _param()
    straight = _steps(ranger([p], lr=0.01, k=2), p, grads)
    q = _param()
    first = ranger([q], lr=0.01, k=2)
    _steps(first, q, grads[:3])
    saved = first.state_dict()
    r = nn.Parameter(q.detach().clone())
    second = ranger([r], lr=0.01, k=2)
    second.load_state_dict(saved)
    resumed = _steps(second, r, grads[3:])
    assert torch.allclose(straight[-1], resumed[-1])


def test_lookahead_rejects_bad_arguments():
    p = _param()
    with pytest.raises(ValueError, match="k"):
        Lookahead(torch.optim.SGD([p], lr=0.1), k=0)
    with pytest.raises(ValueError, match="alpha"):
        Lookahead(torch.optim.SGD([p], lr=0.1), alpha=1.5)
    with pytest.raises(TypeError, match="Optimizer"):
        Lookahead([p])


@pytest.mark.parametrize("name, cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                       ("adamw", torch.optim.AdamW), ("ranger", Lookahead)])
def test_make_optimizer_builds_each_table4_optimiser(name, cls):
    opt = make_optimizer(name, [_param()], lr=5e-4, weight_decay=1e-4)
    assert isinstance(opt, cls)
    assert opt.param_groups[0]["lr"] == 5e-4 and opt.param_groups[0]["weight_decay"] == 1e-4


def test_make_optimizer_names_the_bad_parameter():
    with pytest.raises(ValueError, match="unknown optimiser 'lamb'"):
        make_optimizer("lamb", [_param()], lr=1e-3)
    with pytest.raises(ValueError, match="lr"):
        make_optimizer("adam", [_param()], lr=0.0)


def test_cosine_schedule_follows_the_closed_form_and_drives_lookahead():
    opt = make_optimizer("ranger", [_param()], lr=0.1)
    sched = cosine_schedule(opt, epochs=4, eta_min=0.01)
    lrs = []
    for _ in range(4):
        opt.step()
        sched.step()
        lrs.append(opt.optimizer.param_groups[0]["lr"])
    expected = [0.01 + 0.09 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(1, 5)]
    assert lrs == pytest.approx(expected)


def test_fit_with_ranger_resumes_from_its_checkpoint(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 4, generator=g)
    data = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8)

    def run(epochs, ckpt):
        torch.manual_seed(0)
        model = nn.Linear(4, 2)
        opt = make_optimizer("ranger", model.parameters(), lr=0.05)
        fit(model, data, epochs=epochs, optimizer=opt, scheduler=cosine_schedule(opt, 4),
            loss_fn=nn.functional.cross_entropy, checkpoint=ckpt, progress=False)
        return model

    straight = run(4, tmp_path / "a.pt")
    run(2, tmp_path / "b.pt")
    resumed = run(4, tmp_path / "b.pt")
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_sgd_has_momentum_and_adam_passes_amsgrad_on():
    p = _param((1.0,))
    sgd = make_optimizer("sgd", [p], lr=0.1)
    first, second = _steps(sgd, p, [[1.0], [1.0]])
    # heavy ball, momentum 0.9: v1 = g, v2 = 0.9 v1 + g = 1.9 g
    assert first.item() == pytest.approx(1.0 - 0.1) and second.item() == pytest.approx(1.0 - 0.1 - 0.19)
    assert make_optimizer("adam", [_param()], lr=1e-3, amsgrad=True).param_groups[0]["amsgrad"] is True
    assert make_optimizer("adam", [_param()], lr=1e-3).param_groups[0]["amsgrad"] is False


def test_ranger_uses_wrights_lookahead_defaults():
    opt = make_optimizer("ranger", [_param()], lr=1e-3)
    assert (opt.k, opt.alpha) == (6, 0.5)
    assert isinstance(opt.optimizer, torch.optim.RAdam) and opt.optimizer.defaults["eps"] == 1e-5


def test_cosine_schedule_anneals_to_zero_over_the_given_epochs():
    opt = make_optimizer("adam", [_param()], lr=0.1)
    sched = cosine_schedule(opt, epochs=3)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(3):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([0.1, 0.075, 0.025, 0.0], abs=1e-12)
