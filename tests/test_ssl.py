"""The six SSL methods of study 001: each loss against a value computed by hand (numpy) from the method's own
projections, and the properties only the right method has (EMA teachers, MoCo's queue of keys, DINO's asymmetry and
temperature warm-up, SwAV's normalised / frozen prototypes and Sinkhorn codes)."""

import numpy as np
import pytest
import torch
from torch import nn

from esclib.models.ssl import (BYOL, DINO, METHODS, BarlowTwins, FeatureQueue, MoCo, SimCLR, SwAV, cosine_momentum,
                               ssl_method)

SMALL = {"simclr": {"proj_dim": 16}, "moco": {"proj_dim": 16, "queue_size": 64},
         "byol": {"hidden_dim": 32, "proj_dim": 16}, "dino": {"hidden_dim": 32, "bottleneck_dim": 16, "out_dim": 64},
         "barlowtwins": {"proj_dim": 32}, "swav": {"hidden_dim": 32, "proj_dim": 16, "n_prototypes": 8,
                                                   "queue_size": 0}}


def _backbone():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _method(name, **extra):
    """A small method; a momentum teacher is moved away from its student (as after training), so that a loss that
    took the student for the teacher would show."""
    torch.manual_seed(0)
    method = ssl_method(name, _backbone(), 8, **{**SMALL[name], **extra})
    if hasattr(method, "teacher_backbone"):
        with torch.no_grad():
            for p in list(method.teacher_backbone.parameters()) + list(method.teacher_head.parameters()):
                p.add_(0.3 * torch.randn_like(p))
    return method


def _views(n=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 10, 10, generator=g)
    return x + 0.3 * torch.randn(x.shape, generator=g), x + 0.3 * torch.randn(x.shape, generator=g)


def _np(t):
    return t.detach().double().numpy()


def _unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _log_softmax(a, axis=1):
    a = a - a.max(axis=axis, keepdims=True)
    return a - np.log(np.exp(a).sum(axis=axis, keepdims=True))


def _softmax(a, axis=1):
    return np.exp(_log_softmax(a, axis))


# --- the common interface ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_method_trains_its_backbone_and_embeds(name):
    method = _method(name)
    opt = torch.optim.SGD(method.trainable_parameters(), lr=0.05)
    v0, v1 = _views()
    before = [p.detach().clone() for p in method.backbone.parameters()]
    loss = method.loss(v0, v1, progress=0.5)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    opt.step()
    method.after_step(0.5)
    assert any(not torch.equal(b, p) for b, p in zip(before, method.backbone.parameters()))
    assert method.embed(v0).shape == (12, 8)


def test_unknown_method_and_bad_head_scale_are_named():
    with pytest.raises(ValueError, match="unknown SSL method 'simsiam'"):
        ssl_method("simsiam", _backbone(), 8)
    with pytest.raises(ValueError, match="head_scale"):
        ssl_method("byol", _backbone(), 8, head_scale=0)


def test_head_scale_multiplies_the_published_widths_only():
    byol = ssl_method("byol", _backbone(), 8, head_scale=0.125)
    assert byol.head.layers[0].out_features == 512 and byol.head.layers[-1].out_features == 256
    swav = ssl_method("swav", _backbone(), 8, head_scale=0.5, n_prototypes=10)
    assert swav.prototypes.weight.shape == (10, 128) and swav.head.layers[0].out_features == 1024
    assert ssl_method("barlowtwins", _backbone(), 8, head_scale=1 / 64).head.layers[-1].out_features == 128


# --- SimCLR ------------------------------------------------------------------------------------------------------

def nt_xent(z0, z1, temperature):
    """NT-Xent (SimCLR, eq. 1) by hand: each of the 2N projections against its partner, the other 2N - 2 as
    negatives, averaged over the 2N anchors."""
    z = _unit(np.concatenate([z0, z1]))
    n = len(z0)
    sim = z @ z.T / temperature
    np.fill_diagonal(sim, -np.inf)
    partner = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
    return float(np.mean(-_log_softmax(sim)[np.arange(2 * n), partner]))


def test_simclr_loss_is_nt_xent_at_temperature_0_1():
    method = _method("simclr")
    v0, v1 = _views()
    z0, z1 = (_np(method.head(method.backbone(v))) for v in (v0, v1))
    assert method.criterion.temperature == 0.1
    assert float(method.loss(v0, v1)) == pytest.approx(nt_xent(z0, z1, 0.1), rel=1e-5)
    assert nt_xent(z0, z1, 0.1) != pytest.approx(nt_xent(z0, z1[::-1], 0.1), rel=1e-3)


# --- momentum teachers -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["moco", "byol", "dino"])
def test_teacher_is_the_exponential_moving_average_of_its_student(name):
    method = _method(name)
    assert method.teacher_backbone is not method.backbone and method.teacher_head is not method.head
    assert not any(p.requires_grad for p in method.teacher_backbone.parameters())
    assert not any(p.requires_grad for p in method.teacher_head.parameters())
    trainable = {id(p) for p in method.trainable_parameters()}
    assert not trainable & {id(p) for p in method.teacher_backbone.parameters()}
    with torch.no_grad():
        for p in list(method.backbone.parameters()) + list(method.head.parameters()):
            p.add_(torch.randn_like(p))
    students = [p.detach().clone() for p in list(method.backbone.parameters()) + list(method.head.parameters())]
    old = [p.detach().clone() for p in list(method.teacher_backbone.parameters())
           + list(method.teacher_head.parameters())]
    method.after_step(0.25)
    m = method.momentum_at(0.25)
    assert 0.9 < m < 1.0
    new = list(method.teacher_backbone.parameters()) + list(method.teacher_head.parameters())
    for o, t, s in zip(old, new, students):
        torch.testing.assert_close(t, m * o + (1 - m) * s, rtol=0, atol=1e-6)
        assert not torch.allclose(t, s)


def test_momentum_schedules_of_the_references():
    moco, byol, dino = _method("moco"), _method("byol"), _method("dino")
    assert moco.momentum == 0.999 and moco.momentum_at(0.0) == moco.momentum_at(0.7) == 0.999
    assert byol.momentum_at(0.0) == pytest.approx(0.99) and byol.momentum_at(1.0) == pytest.approx(1.0)
    assert byol.momentum_at(0.5) == pytest.approx(0.995)
    assert dino.momentum_at(0.0) == pytest.approx(0.996) and dino.momentum_at(1.0) == pytest.approx(1.0)
    assert cosine_momentum(0.9, 0.25) == pytest.approx(1 - 0.1 * (np.cos(np.pi / 4) + 1) / 2)


# --- MoCo v2 -----------------------------------------------------------------------------------------------------

def info_nce(q, k, negatives, temperature):
    logits = np.concatenate([(q * k).sum(1, keepdims=True), q @ negatives.T], axis=1) / temperature
    return float(np.mean(-_log_softmax(logits)[:, 0]))


def test_moco_loss_is_info_nce_against_the_queue_which_then_receives_the_keys():
    method = _method("moco")
    v0, v1 = _views()
    queue_before = _np(method.queue.items.clone())
    q = _unit(_np(method.head(method.backbone(v0))))
    k = _unit(_np(method.teacher_head(method.teacher_backbone(v1))))
    assert float(method.loss(v0, v1)) == pytest.approx(info_nce(q, k, queue_before, 0.2), rel=1e-5)
    stored = _np(method.queue.items)
    np.testing.assert_allclose(stored[:12], k, atol=1e-6)
    assert not np.allclose(stored[:12], q, atol=1e-3)
    np.testing.assert_array_equal(stored[12:], queue_before[12:])
    assert int(method.queue.pointer) == 12


def test_symmetric_moco_averages_both_directions_and_enqueues_both_keys():
    method = _method("moco", symmetric=True)
    v0, v1 = _views()
    queue_before = _np(method.queue.items.clone())
    q0, q1 = (_unit(_np(method.head(method.backbone(v)))) for v in (v0, v1))
    k0, k1 = (_unit(_np(method.teacher_head(method.teacher_backbone(v)))) for v in (v0, v1))
    expected = 0.5 * (info_nce(q0, k1, queue_before, 0.2) + info_nce(q1, k0, queue_before, 0.2))
    assert float(method.loss(v0, v1)) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(_np(method.queue.items)[:24], np.concatenate([k0, k1]), atol=1e-6)


def test_feature_queue_is_fifo_and_saved_with_the_model():
    queue = FeatureQueue(5, 2, init="zeros")
    assert not queue.full
    queue.push(torch.arange(6.0).reshape(3, 2))
    queue.push(torch.arange(6.0, 12.0).reshape(3, 2))
    assert queue.full and int(queue.pointer) == 1
    np.testing.assert_array_equal(queue.items.numpy(), [[10, 11], [2, 3], [4, 5], [6, 7], [8, 9]])
    assert {"items", "pointer", "count"} <= set(queue.state_dict())
    with pytest.raises(ValueError, match="init"):
        FeatureQueue(4, 2, init="ones")


# --- BYOL --------------------------------------------------------------------------------------------------------

def test_byol_loss_is_the_symmetrised_normalised_mse_to_the_other_views_target():
    method = _method("byol")
    v0, v1 = _views()
    p0, p1 = (_np(method.predictor(method.head(method.backbone(v)))) for v in (v0, v1))
    t0, t1 = (_np(method.teacher_head(method.teacher_backbone(v))) for v in (v0, v1))

    def nmse(p, z):
        return float(np.mean(((_unit(p) - _unit(z)) ** 2).sum(1)))

    assert float(method.loss(v0, v1)) == pytest.approx(nmse(p0, t1) + nmse(p1, t0), rel=1e-5)
    assert nmse(p0, t1) == pytest.approx(float(np.mean(2 - 2 * (_unit(p0) * _unit(t1)).sum(1))), rel=1e-9)
    assert nmse(p0, t1) + nmse(p1, t0) != pytest.approx(nmse(p0, t0) + nmse(p1, t1), rel=1e-3)


# --- DINO --------------------------------------------------------------------------------------------------------

def dino_by_hand(teacher, student, center, teacher_temp, student_temp=0.1):
    t = [_softmax((a - center) / teacher_temp) for a in teacher]
    s = [_log_softmax(b / student_temp) for b in student]
    terms = [-(t[i] * s[j]).sum(1).mean() for i in range(len(t)) for j in range(len(s)) if i != j]
    return float(np.mean(terms))


def test_dino_loss_is_cross_entropy_of_centred_sharpened_teacher_and_the_centre_moves():
    method = _method("dino")
    v0, v1 = _views()
    center = 0.05 * torch.randn(1, 1, 64)
    method.criterion.center.copy_(center)
    teacher = [_np(method.teacher_head(method.teacher_backbone(v))) for v in (v0, v1)]
    student = [_np(method.head(method.backbone(v))) for v in (v0, v1)]
    expected = dino_by_hand(teacher, student, _np(center[0]), 0.04)
    assert float(method.loss(v0, v1, progress=0.0)) == pytest.approx(expected, rel=1e-5)
    moved = 0.9 * _np(center[0, 0]) + 0.1 * np.concatenate(teacher).mean(0)
    np.testing.assert_allclose(_np(method.criterion.center[0, 0]), moved, atol=1e-6)


def test_dino_is_asymmetric_in_teacher_and_student():
    method = _method("dino")
    v0, v1 = _views()
    teacher = [_np(method.teacher_head(method.teacher_backbone(v))) for v in (v0, v1)]
    with torch.no_grad():
        for p in method.head.parameters():
            p.add_(0.5 * torch.randn_like(p))
    student = [_np(method.head(method.backbone(v))) for v in (v0, v1)]
    zero = np.zeros(64)
    swapped = dino_by_hand(student, teacher, zero, 0.04)
    loss = method.loss(v0, v1, progress=0.0)
    assert float(loss) == pytest.approx(dino_by_hand(teacher, student, zero, 0.04), rel=1e-5)
    assert float(loss) != pytest.approx(swapped, rel=1e-3)
    loss.backward()
    assert all(p.grad is None for p in method.teacher_head.parameters())
    assert method.head.layers[0].weight.grad is not None


def test_dino_teacher_temperature_warms_from_0_04_to_0_07_and_the_loss_uses_it():
    method = _method("dino")
    temps = [method.teacher_temperature(p) for p in (0.0, 0.1, 0.2, 0.3, 0.6, 1.0)]
    assert temps[0] == pytest.approx(0.04) and temps[-1] == pytest.approx(0.07)
    assert temps[1] == pytest.approx(0.05) and temps[3] == temps[4] == pytest.approx(0.07)
    assert all(a < b for a, b in zip(temps[:4], temps[1:4]))
    v0, v1 = _views()
    teacher = [_np(method.teacher_head(method.teacher_backbone(v))) for v in (v0, v1)]
    student = [_np(method.head(method.backbone(v))) for v in (v0, v1)]
    assert float(method.loss(v0, v1, progress=0.6)) == pytest.approx(
        dino_by_hand(teacher, student, np.zeros(64), 0.07), rel=1e-5)


def test_dino_last_layer_is_frozen_at_first_and_the_teacher_is_evaluated():
    method = _method("dino", freeze_last_layer=0.1)
    v0, v1 = _views()
    method.loss(v0, v1, progress=0.05).backward()
    assert method.head.last_layer.weight_v.grad is None and method.head.layers[0].weight.grad is not None
    method.loss(v0, v1, progress=0.2).backward()
    assert method.head.last_layer.weight_v.grad is not None
    with torch.no_grad():
        method.backbone[0].weight.add_(1.0)
    torch.testing.assert_close(method.embed(v0), method.teacher_backbone(v0))
    assert not torch.allclose(method.embed(v0), method.backbone(v0))


def test_dino_collapse_diagnostics_are_the_teacher_entropy_and_the_kl_to_the_student():
    method = _method("dino")
    v0, v1 = _views()
    center = 0.05 * torch.randn(1, 1, 64)
    method.criterion.center.copy_(center)
    found = method.collapse_diagnostics(v0, v1, progress=0.1)
    teacher = [_softmax((_np(method.teacher_head(method.teacher_backbone(v))) - _np(center[0])) / 0.05)
               for v in (v0, v1)]
    student = [_log_softmax(_np(method.head(method.backbone(v))) / 0.1) for v in (v0, v1)]
    entropy = np.mean([-(t * np.log(t)).sum(1).mean() for t in teacher])
    kl = np.mean([(teacher[i] * (np.log(teacher[i]) - student[1 - i])).sum(1).mean() for i in (0, 1)])
    assert found["teacher_entropy"] == pytest.approx(entropy, rel=1e-4)
    assert found["kl"] == pytest.approx(kl, rel=1e-4)
    assert found["log_k"] == pytest.approx(np.log(64)) and found["teacher_entropy"] < found["log_k"]
    torch.testing.assert_close(method.criterion.center, center)


def test_dino_multi_crop_local_views_only_reach_the_student():
    method = _method("dino")
    v0, v1 = _views()
    local = _views(seed=5)[0]
    teacher = [_np(method.teacher_head(method.teacher_backbone(v))) for v in (v0, v1)]
    student = [_np(method.head(method.backbone(v))) for v in (v0, v1, local)]
    assert float(method.loss(v0, v1, progress=1.0, local_views=[local])) == pytest.approx(
        dino_by_hand(teacher, student, np.zeros(64), 0.07), rel=1e-5)


# --- Barlow Twins ------------------------------------------------------------------------------------------------

def test_barlow_twins_loss_from_the_cross_correlation_by_hand():
    method = _method("barlowtwins")
    v0, v1 = _views()
    z0, z1 = (_np(method.head(method.backbone(v))) for v in (v0, v1))
    n0 = (z0 - z0.mean(0)) / np.sqrt(z0.var(0) + 1e-5)
    n1 = (z1 - z1.mean(0)) / np.sqrt(z1.var(0) + 1e-5)
    c = n0.T @ n1 / len(z0)
    off = c - np.diag(np.diag(c))
    expected = ((1 - np.diag(c)) ** 2).sum() + 0.0051 * (off ** 2).sum()
    assert float(method.loss(v0, v1)) == pytest.approx(expected, rel=1e-4)
    assert float(method.loss(v0, v0)) < float(method.loss(v0, v1))


# --- SwAV --------------------------------------------------------------------------------------------------------

def sinkhorn_reference(scores, epsilon=0.05, iterations=3):
    """facebookresearch/swav ``distributed_sinkhorn`` on one process, in numpy."""
    q = np.exp(scores / epsilon).T
    q /= q.sum()
    k, b = q.shape
    for _ in range(iterations):
        q /= q.sum(axis=1, keepdims=True)
        q /= k
        q /= q.sum(axis=0, keepdims=True)
        q /= b
    return (q * b).T


def test_sinkhorn_codes_are_assignments_that_spread_over_the_prototypes():
    method = _method("swav")
    scores = torch.randn(32, 8, generator=torch.Generator().manual_seed(3)) * 0.2
    codes = method.codes(scores).double().numpy()
    np.testing.assert_allclose(codes, sinkhorn_reference(scores.double().numpy()), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(codes.sum(1), 1.0, atol=1e-5)
    softmax_usage = _softmax(scores.double().numpy() / 0.05).sum(0)
    assert np.abs(codes.sum(0) - 32 / 8).max() < 0.5 * np.abs(softmax_usage - 32 / 8).max()
    converged = _method("swav", sinkhorn_iterations=200).codes(scores).double().numpy()
    np.testing.assert_allclose(converged.sum(0), 32 / 8, atol=1e-3)
    np.testing.assert_allclose(converged.sum(1), 1.0, atol=1e-5)


def test_swav_swapped_prediction_loss_by_hand_with_normalised_prototypes():
    method = _method("swav")
    with torch.no_grad():
        method.prototypes.weight.mul_(3.0)
    v0, v1 = _views()
    loss = method.loss(v0, v1, progress=0.5)
    w = _np(method.prototypes.weight)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, atol=1e-6)
    z = [_unit(_np(method.head(method.backbone(v)))) for v in (v0, v1)]
    s = [a @ w.T for a in z]
    q = [sinkhorn_reference(a) for a in s]
    expected = 0.5 * (-(q[0] * _log_softmax(s[1] / 0.1)).sum(1).mean() - (q[1] * _log_softmax(s[0] / 0.1)).sum(1).mean())
    assert float(loss) == pytest.approx(expected, rel=1e-4)
    assert method.prototypes.bias is None


def test_swav_prototypes_are_frozen_for_the_first_iterations_then_learn():
    method = _method("swav", freeze_prototypes=0.1)
    v0, v1 = _views()
    method.loss(v0, v1, progress=0.05).backward()
    assert method.prototypes.weight.grad is None and method.head.layers[0].weight.grad is not None
    method.loss(v0, v1, progress=0.1).backward()
    assert method.prototypes.weight.grad is not None and method.prototypes.weight.grad.abs().sum() > 0


def _swav_by_hand(method, v0, v1, queued=None):
    w = _np(method.prototypes.weight)
    z = [_unit(_np(method.head(method.backbone(v)))) for v in (v0, v1)]
    s = [a @ w.T for a in z]
    extra = [np.zeros((0, w.shape[0]))] * 2 if queued is None else [q @ w.T for q in queued]
    q = [sinkhorn_reference(np.concatenate([s[i], extra[i]]))[:len(z[i])] for i in range(2)]
    loss = 0.5 * (-(q[0] * _log_softmax(s[1] / 0.1)).sum(1).mean() - (q[1] * _log_softmax(s[0] / 0.1)).sum(1).mean())
    return float(loss), z


def test_swav_queue_starts_late_fills_then_joins_the_sinkhorn_step():
    method = _method("swav", queue_size=24, queue_start=0.2)
    v0, v1 = _views()
    method.loss(v0, v1, progress=0.1)
    assert all(int(q.count) == 0 for q in method.queues)
    method.loss(v0, v1, progress=0.3)
    assert all(int(q.count) == 12 and not q.full for q in method.queues)
    u0, u1 = _views(seed=2)
    half_full = method.loss(u0, u1, progress=0.4)
    assert float(half_full) == pytest.approx(_swav_by_hand(method, u0, u1)[0], rel=1e-4)
    assert all(q.full for q in method.queues)
    queued = [_np(q.items.clone()) for q in method.queues]
    loss = method.loss(v0, v1, progress=0.5)
    expected, z = _swav_by_hand(method, v0, v1, queued)
    assert float(loss) == pytest.approx(expected, rel=1e-4)
    assert expected != pytest.approx(_swav_by_hand(method, v0, v1)[0], rel=1e-3)
    np.testing.assert_allclose(_np(method.queues[0].items)[:12], z[0], atol=1e-5)


def test_method_classes_are_the_registered_ones():
    assert METHODS == {"simclr": SimCLR, "moco": MoCo, "byol": BYOL, "dino": DINO, "barlowtwins": BarlowTwins,
                       "swav": SwAV}
