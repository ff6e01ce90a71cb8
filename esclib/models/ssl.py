"""The six self-supervised methods of study 001 (SimCLR, MoCo v2, BYOL, DINO, Barlow Twins, SwAV) over any backbone.

Notebook: 05_ssl. Each method wraps a backbone from :func:`esclib.models.backbones.backbone` with the heads of its
paper (lightly's modules, book/protocols.md, study 001) and its loss, following the authors' reference code, behind one
interface so that :func:`esclib.train.ssl.pretrain` trains them all with one loop (solo-learn style: the loop owns
the step, a method only says what differs):

- ``method.loss(view0, view1, progress)`` -- the training loss on a batch of two augmented views of the same clips;
  ``progress`` in [0, 1] is the fraction of the optimiser steps already taken and drives every schedule (teacher
  momentum, DINO's teacher temperature, SwAV's frozen prototypes and queue, DINO's frozen last layer);
- ``method.after_step(progress)`` -- called after each optimiser step: the momentum (EMA) update of a teacher;
- ``method.embed(x)`` -- the embedding that the linear probe and the kNN evaluate (the student backbone; DINO's
  teacher, as the DINO authors evaluate it);
- ``method.trainable_parameters()`` -- what the optimiser updates (never a teacher).

Defaults are the published ones (ResNet-50 / ImageNet scale). ``head_scale`` in :func:`ssl_method` multiplies the
widths of the wide heads (hidden layers, DINO's output, Barlow Twins' projector, SwAV's prototypes) by one factor
for every method, for a small backbone.
"""

from __future__ import annotations

import copy
import inspect
import math
from typing import Callable, Sequence

import torch
from lightly import loss as lloss
from lightly.loss.swav_loss import sinkhorn
from lightly.models import modules as heads
from lightly.models.utils import deactivate_requires_grad, update_momentum
from torch import nn
from torch.nn import functional as F

Tensor = torch.Tensor


class FeatureQueue(nn.Module):
    """A FIFO queue of the last ``size`` feature vectors (MoCo's keys, SwAV's projections), saved with the model.

    ``init="random"`` starts full of random unit vectors (MoCo's reference); ``"zeros"`` starts empty, and
    :attr:`full` says when ``size`` vectors have been pushed (SwAV's reference uses its queue only then).
    """

    def __init__(self, size: int, dim: int, init: str = "random") -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"FeatureQueue: size and dim must be >= 1, got size={size}, dim={dim}")
        if init not in ("random", "zeros"):
            raise ValueError(f"FeatureQueue: init must be 'random' or 'zeros', got {init!r}")
        items = F.normalize(torch.randn(size, dim), dim=1) if init == "random" else torch.zeros(size, dim)
        self.register_buffer("items", items)
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))
        self.register_buffer("count", torch.tensor(size if init == "random" else 0, dtype=torch.long))

    @property
    def full(self) -> bool:
        """True once the queue holds ``size`` vectors."""
        return int(self.count) >= len(self.items)

    @torch.no_grad()
    def push(self, batch: Tensor) -> None:
        """Enqueue ``batch`` (n, dim), overwriting the oldest entries."""
        size = len(self.items)
        batch = batch.detach()[-size:].to(self.items.dtype)
        slots = (int(self.pointer) + torch.arange(len(batch), device=self.items.device)) % size
        self.items[slots] = batch
        self.pointer.fill_((int(self.pointer) + len(batch)) % size)
        self.count.fill_(min(int(self.count) + len(batch), size))


class SSLMethod(nn.Module):
    """Base: a backbone (``(B, C, frames, bins) -> (B, dim)``) plus the method's heads and loss."""

    #: hyper-parameters that ``head_scale`` multiplies (the published absolute widths of the method's heads)
    wide: tuple[str, ...] = ()

    def __init__(self, backbone: nn.Module, dim: int) -> None:
        super().__init__()
        self.backbone, self.dim = backbone, dim

    @property
    def embedding_backbone(self) -> nn.Module:
        """The network whose output :meth:`embed` returns (the backbone; DINO's teacher)."""
        return self.backbone

    def embed(self, x: Tensor) -> Tensor:
        """The embedding of a batch that linear probes and kNN evaluate (:attr:`embedding_backbone`'s output)."""
        return self.embedding_backbone(x)

    def loss(self, view0: Tensor, view1: Tensor, progress: float = 0.0) -> Tensor:
        """The method's loss on two views of the same clips at training ``progress`` (0 to 1)."""
        raise NotImplementedError

    def after_step(self, progress: float) -> None:
        """Called after each optimiser step with the progress reached; nothing by default."""

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters an optimiser updates: everything but a momentum teacher."""
        return [p for name, p in self.named_parameters() if not name.startswith("teacher_")]


def _float(x: Tensor) -> Tensor:
    """Losses are computed in float32, also under bf16 autocast."""
    return x.float()


def cosine_momentum(base: float, progress: float) -> float:
    """BYOL's / DINO's teacher momentum: ``1 - (1 - base) (cos(pi progress) + 1) / 2``, from ``base`` to 1."""
    return 1.0 - (1.0 - base) * (math.cos(math.pi * min(max(progress, 0.0), 1.0)) + 1.0) / 2.0


class MomentumTeacher(SSLMethod):
    """A student (backbone + ``head``) and a teacher with the same architecture whose weights are the exponential
    moving average of the student's: after each step ``teacher <- m teacher + (1 - m) student`` with ``m``
    constant (MoCo) or cosine-annealed from ``momentum`` to 1 (BYOL, DINO). The teacher gets no gradient."""

    def __init__(self, backbone: nn.Module, dim: int, make_head: Callable[[], nn.Module], momentum: float,
                 schedule: str) -> None:
        super().__init__(backbone, dim)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{type(self).__name__}: momentum must be in [0, 1], got {momentum}")
        if schedule not in ("constant", "cosine"):
            raise ValueError(f"momentum schedule must be 'constant' or 'cosine', got {schedule!r}")
        self.head, self.momentum, self.schedule = make_head(), momentum, schedule
        self.teacher_backbone, self.teacher_head = copy.deepcopy(backbone), make_head()
        self.teacher_head.load_state_dict(self.head.state_dict())
        deactivate_requires_grad(self.teacher_backbone)
        deactivate_requires_grad(self.teacher_head)

    def momentum_at(self, progress: float) -> float:
        """The EMA momentum used after the step that reaches ``progress``."""
        return self.momentum if self.schedule == "constant" else cosine_momentum(self.momentum, progress)

    def student(self, x: Tensor) -> Tensor:
        """The student's head output (float32)."""
        return _float(self.head(self.backbone(x)))

    @torch.no_grad()
    def teacher(self, x: Tensor) -> Tensor:
        """The teacher's head output (float32, no gradient)."""
        return _float(self.teacher_head(self.teacher_backbone(x)))

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        m = self.momentum_at(progress)
        update_momentum(self.backbone, self.teacher_backbone, m)
        update_momentum(self.head, self.teacher_head, m)


class SimCLR(SSLMethod):
    """SimCLR (Chen et al. 2020): NT-Xent between the projections of the two views, the other 2B - 2 projections of
    the batch as negatives. Projection MLP dim -> dim -> ``proj_dim`` (the study's ablation: 64 / 128 / 256);
    temperature 0.1 (the paper's ImageNet value, solo-learn's)."""

    def __init__(self, backbone: nn.Module, dim: int, *, proj_dim: int = 128, temperature: float = 0.1) -> None:
        super().__init__(backbone, dim)
        self.head = heads.SimCLRProjectionHead(dim, dim, proj_dim)
        self.criterion = lloss.NTXentLoss(temperature=temperature)

    def loss(self, view0: Tensor, view1: Tensor, progress: float = 0.0) -> Tensor:
        return self.criterion(_float(self.head(self.backbone(view0))), _float(self.head(self.backbone(view1))))


class MoCo(MomentumTeacher):
    """MoCo v2 (Chen, Fan et al. 2020; facebookresearch/moco): the query (student projection of view 0) against
    its key (the momentum encoder's projection of view 1) and a FIFO queue of past keys as negatives, InfoNCE at
    temperature 0.2; after the loss the batch's keys (never the queries) are enqueued. Momentum 0.999, constant.
    ``symmetric=True`` adds the swapped term (view 1 queries, view 0 keys; solo-learn's mocov2+) and enqueues both
    keys; the reference is asymmetric. Projection MLP dim -> ``hidden_dim`` (default dim) -> 128. The queue
    (reference 65,536; the study 4,096 / 8,192) should be smaller than the training set."""

    def __init__(self, backbone: nn.Module, dim: int, *, hidden_dim: int | None = None, proj_dim: int = 128,
                 queue_size: int = 4096, temperature: float = 0.2, momentum: float = 0.999,
                 symmetric: bool = False) -> None:
        super().__init__(backbone, dim, lambda: heads.MoCoProjectionHead(dim, hidden_dim or dim, proj_dim),
                         momentum, "constant")
        self.temperature, self.symmetric = temperature, symmetric
        self.queue = FeatureQueue(queue_size, proj_dim, init="random")

    def info_nce(self, query: Tensor, key: Tensor, negatives: Tensor) -> Tensor:
        """Cross-entropy of the positive logit ``q.k`` against ``q.negatives``, all over the temperature."""
        positive = (query * key).sum(dim=1, keepdim=True)
        logits = torch.cat([positive, query @ negatives.T], dim=1) / self.temperature
        return F.cross_entropy(logits, torch.zeros(len(query), dtype=torch.long, device=query.device))

    def loss(self, view0: Tensor, view1: Tensor, progress: float = 0.0) -> Tensor:
        negatives = self.queue.items.clone()
        query0, key1 = F.normalize(self.student(view0), dim=1), F.normalize(self.teacher(view1), dim=1)
        if not self.symmetric:
            loss = self.info_nce(query0, key1, negatives)
            self.queue.push(key1)
            return loss
        query1, key0 = F.normalize(self.student(view1), dim=1), F.normalize(self.teacher(view0), dim=1)
        loss = 0.5 * (self.info_nce(query0, key1, negatives) + self.info_nce(query1, key0, negatives))
        self.queue.push(torch.cat([key0, key1]))
        return loss


def normalised_mse(prediction: Tensor, target: Tensor) -> Tensor:
    """BYOL's loss: the mean over the batch of ``|| p/|p| - z/|z| ||^2 = 2 - 2 cos(p, z)``."""
    return (F.normalize(prediction, dim=1) - F.normalize(target, dim=1)).pow(2).sum(dim=1).mean()


class BYOL(MomentumTeacher):
    """BYOL (Grill et al. 2020): the online network's prediction of each view regresses the target (EMA) network's
    projection of the other view, normalised MSE, symmetrised as in the paper (L + L~). Projection and predictor
    MLPs 4096 -> 256; target momentum cosine from 0.99 (the paper's value below batch 4096; BYOL-A's) to 1."""

    wide = ("hidden_dim",)

    def __init__(self, backbone: nn.Module, dim: int, *, hidden_dim: int = 4096, proj_dim: int = 256,
                 momentum: float = 0.99) -> None:
        super().__init__(backbone, dim, lambda: heads.BYOLProjectionHead(dim, hidden_dim, proj_dim), momentum,
                         "cosine")
        self.predictor = heads.BYOLPredictionHead(proj_dim, hidden_dim, proj_dim)

    def loss(self, view0: Tensor, view1: Tensor, progress: float = 0.0) -> Tensor:
        p0, p1 = (_float(self.predictor(self.student(v))) for v in (view0, view1))
        return normalised_mse(p0, self.teacher(view1)) + normalised_mse(p1, self.teacher(view0))


class DINO(MomentumTeacher):
    """DINO (Caron et al. 2021; facebookresearch/dino): the student's softmax at temperature 0.1 matches the
    teacher's centred, sharpened softmax of the *other* views (cross-entropy, same-view pairs excluded; the
    centre is an EMA, momentum 0.9, of the teacher's batch means). The teacher temperature warms linearly from
    ``warmup_teacher_temp`` (0.04) to ``teacher_temp`` (0.07) over the first ``warmup`` fraction of training (the
    reference: 30 of 100 epochs); teacher momentum cosine from 0.996 to 1; the weight-normalised last layer is
    frozen for the first ``freeze_last_layer`` fraction (the reference: 1 epoch). Head 2048 -> 2048 -> 256 ->
    ``out_dim`` (65,536), GELU, no batch-norm. ``local_views`` (multi-crop) go through the student only. The
    evaluated embedding is the teacher's backbone, as the DINO authors evaluate it."""

    wide = ("hidden_dim", "out_dim")

    def __init__(self, backbone: nn.Module, dim: int, *, hidden_dim: int = 2048, bottleneck_dim: int = 256,
                 out_dim: int = 65536, momentum: float = 0.996, warmup_teacher_temp: float = 0.04,
                 teacher_temp: float = 0.07, warmup: float = 0.3, student_temp: float = 0.1,
                 center_momentum: float = 0.9, freeze_last_layer: float = 0.01) -> None:
        super().__init__(backbone, dim,
                         lambda: heads.DINOProjectionHead(dim, hidden_dim, bottleneck_dim, out_dim), momentum,
                         "cosine")
        if not 0.0 <= warmup <= 1.0:
            raise ValueError(f"DINO: warmup (fraction of training) must be in [0, 1], got {warmup}")
        self.warmup_teacher_temp, self.teacher_temp, self.warmup = warmup_teacher_temp, teacher_temp, warmup
        self.freeze_last_layer = freeze_last_layer
        self.criterion = lloss.DINOLoss(output_dim=out_dim, warmup_teacher_temp=warmup_teacher_temp,
                                        teacher_temp=teacher_temp, student_temp=student_temp,
                                        center_momentum=center_momentum)

    def teacher_temperature(self, progress: float) -> float:
        """The teacher temperature at ``progress``: linear warm-up, then constant."""
        if self.warmup == 0.0 or progress >= self.warmup:
            return self.teacher_temp
        return self.warmup_teacher_temp + (self.teacher_temp - self.warmup_teacher_temp) * progress / self.warmup

    @property
    def embedding_backbone(self) -> nn.Module:
        return self.teacher_backbone

    @torch.no_grad()
    def collapse_diagnostics(self, view0: Tensor, view1: Tensor, progress: float) -> dict[str, float]:
        """DINO's collapse monitors (Caron et al. 2021, Sec. 5.3): the mean entropy of the teacher's centred,
        sharpened distribution (``log_k`` when it has collapsed to the uniform distribution, 0 when to one output)
        and the mean KL divergence from each teacher view to the student's other view (0 in either collapse). The
        centre is not updated."""
        temperature, student_temp = self.teacher_temperature(progress), self.criterion.student_temp
        teacher = [F.softmax((self.teacher(v) - self.criterion.center[0]) / temperature, dim=-1)
                   for v in (view0, view1)]
        student = [F.log_softmax(self.student(v) / student_temp, dim=-1) for v in (view0, view1)]
        entropy = [-(t * t.clamp_min(1e-30).log()).sum(-1).mean() for t in teacher]
        kl = [(teacher[i] * (teacher[i].clamp_min(1e-30).log() - student[1 - i])).sum(-1).mean() for i in (0, 1)]
        return {"teacher_entropy": float(sum(entropy) / 2), "kl": float(sum(kl) / 2),
                "log_k": math.log(teacher[0].shape[-1])}

    def loss(self, view0: Tensor, view1: Tensor, progress: float = 0.0, local_views: Sequence[Tensor] = ()) -> Tensor:
        self.head.last_layer.weight_v.requires_grad_(progress >= self.freeze_last_layer)
        student = [self.student(v) for v in (view0, view1, *local_views)]
        teacher = [self.teacher(v) for v in (view0, view1)]
        return self.criterion(teacher, student, teacher_temp=self.teacher_temperature(progress))


class BarlowTwins(SSLMethod):
    """Barlow Twins (Zbontar et al. 2021): the cross-correlation of the two views' batch-standardised projections
    is pushed to the identity, ``sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2`` with lambda 0.0051; projector
    three layers of 8,192 units."""

    wide = ("proj_dim",)

    def __init__(self, backbone: nn.Module, dim: int, *, proj_dim: int = 8192, lambda_param: float = 0.0051) -> None:
        super().__init__(backbone, dim)
        self.head = heads.BarlowTwinsProjectionHead(dim, proj_dim, proj_dim)
        self.criterion = lloss.BarlowTwinsLoss(lambda_param=lambda_param)

    def loss(self, view0: Tensor, view1: Tensor, progress: float = 0.0) -> Tensor:
        return self.criterion(_float(self.head(self.backbone(view0))), _float(self.head(self.backbone(view1))))


class SwAV(SSLMethod):
    """SwAV (Caron et al. 2020; facebookresearch/swav): each view's prototype scores (cosine to L2-normalised,
    bias-free prototypes, renormalised before every step) predict the other view's Sinkhorn-Knopp codes
    (3 iterations, epsilon 0.05), softmax temperature 0.1. The prototypes are frozen for the first
    ``freeze_prototypes`` fraction of training (the reference: 313 iterations). With ``queue_size`` > 0 (the
    reference's 3,840 for batches below 256) each of the two views keeps a queue of past projections from
    ``queue_start`` (the reference: epoch 15) on, and once a queue is full its scores join the batch's in the
    Sinkhorn step. Head dim -> 2048 -> 128; 3,000 prototypes. ``local_views`` (multi-crop) only predict."""

    wide = ("hidden_dim", "n_prototypes")

    def __init__(self, backbone: nn.Module, dim: int, *, hidden_dim: int = 2048, proj_dim: int = 128,
                 n_prototypes: int = 3000, temperature: float = 0.1, sinkhorn_iterations: int = 3,
                 epsilon: float = 0.05, queue_size: int = 3840, queue_start: float = 0.15,
                 freeze_prototypes: float = 0.01) -> None:
        super().__init__(backbone, dim)
        self.head = heads.SwaVProjectionHead(dim, hidden_dim, proj_dim)
        self.prototypes = nn.Linear(proj_dim, n_prototypes, bias=False)
        self.queue_start, self.freeze_prototypes = queue_start, freeze_prototypes
        self.queues = nn.ModuleList([FeatureQueue(queue_size, proj_dim, init="zeros") for _ in range(2)]
                                    if queue_size > 0 else [])
        self.criterion = lloss.SwaVLoss(temperature=temperature, sinkhorn_iterations=sinkhorn_iterations,
                                        sinkhorn_epsilon=epsilon)

    @torch.no_grad()
    def normalize_prototypes(self) -> None:
        """Project every prototype back onto the unit sphere."""
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    def scores(self, z: Tensor) -> Tensor:
        """Cosine of each (normalised) projection to each prototype, in float32."""
        return F.linear(F.normalize(z, dim=1), self.prototypes.weight.float())

    def codes(self, scores: Tensor) -> Tensor:
        """The Sinkhorn-Knopp codes of a batch of scores (rows sum to 1, prototypes equally used)."""
        return sinkhorn(scores, iterations=self.criterion.sinkhorn_iterations,
                        epsilon=self.criterion.sinkhorn_epsilon)

    def loss(self, view0: Tensor, view1: Tensor, progress: float = 0.0, local_views: Sequence[Tensor] = ()) -> Tensor:
        self.normalize_prototypes()
        self.prototypes.weight.requires_grad_(progress >= self.freeze_prototypes)
        z = [F.normalize(_float(self.head(self.backbone(v))), dim=1) for v in (view0, view1, *local_views)]
        scores = [self.scores(zi) for zi in z]
        queued = None
        if self.queues and progress >= self.queue_start:
            if all(queue.full for queue in self.queues):
                with torch.no_grad():
                    queued = [self.scores(queue.items) for queue in self.queues]
            for queue, zi in zip(self.queues, z):
                queue.push(zi)
        return self.criterion(scores[:2], scores[2:], queued).squeeze()


METHODS: dict[str, type[SSLMethod]] = {
    "simclr": SimCLR, "moco": MoCo, "byol": BYOL, "dino": DINO, "barlowtwins": BarlowTwins, "swav": SwAV,
}

#: each method's paper, for tables
PAPERS: dict[str, str] = {
    "simclr": "Chen et al. 2020", "moco": "Chen, Fan et al. 2020 (MoCo v2)", "byol": "Grill et al. 2020",
    "dino": "Caron et al. 2021", "barlowtwins": "Zbontar et al. 2021", "swav": "Caron et al. 2020",
}


def _scaled(cls: type[SSLMethod], head_scale: float, hparams: dict) -> dict:
    defaults = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()}
    scaled = {k: max(1, round(defaults[k] * head_scale)) for k in cls.wide if k not in hparams}
    return {**scaled, **hparams}


def ssl_method(name: str, backbone: nn.Module, dim: int, *, head_scale: float = 1.0, **hparams: object) -> SSLMethod:
    """The self-supervised method ``name`` (one of :data:`METHODS`) over ``backbone`` with embedding width ``dim``.

    ``head_scale`` multiplies the published widths of the method's wide heads (``SSLMethod.wide``) unless
    ``hparams`` sets them; ``hparams`` are the method's keyword arguments. Notebook: 05_ssl.
    """
    if name not in METHODS:
        raise ValueError(f"unknown SSL method {name!r}; expected one of {sorted(METHODS)}")
    if head_scale <= 0:
        raise ValueError(f"head_scale must be > 0, got {head_scale}")
    cls = METHODS[name]
    return cls(backbone, dim, **_scaled(cls, head_scale, dict(hparams)))
