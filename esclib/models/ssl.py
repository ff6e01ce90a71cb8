"""Self-supervised methods of study 001 (SimCLR, MoCo v2, BYOL, DINO, Barlow Twins, SwAV) over any backbone.

Each method wraps a backbone from :func:`esclib.models.backbones.backbone` with the heads and the loss from lightly
(PROTOCOLS.md B8) behind one interface, so that the SSL chapter trains them all with one loop:

- ``method.loss(view0, view1, progress)`` — the training loss of a batch of two augmented views of the same clips
  (:class:`esclib.data.torchdata.TwoViewDataset`); ``progress`` in [0, 1] drives momentum and temperature schedules;
- ``method.after_step(progress)`` — momentum (EMA) updates of the teacher / key networks;
- ``method.embed(x)`` — the backbone's embedding, for the linear probe and the weighted kNN evaluation.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from lightly import loss as lloss
from lightly.models import modules as heads
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import nn
from torch.nn import functional as F


class SSLMethod(nn.Module):
    """Base: a backbone (``(B, C, F, T) -> (B, dim)``) plus method-specific heads and loss."""

    def __init__(self, backbone: nn.Module, dim: int):
        super().__init__()
        self.backbone, self.dim = backbone, dim

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's embedding of a batch (what linear probes and kNN evaluate)."""
        return self.backbone(x)

    def loss(self, view0: torch.Tensor, view1: torch.Tensor, progress: float = 0.0) -> torch.Tensor:
        """The method's loss on two views of the same clips."""
        raise NotImplementedError

    def after_step(self, progress: float) -> None:
        """Called after each optimiser step (momentum updates); nothing by default."""


class _Momentum(SSLMethod):
    """A student (backbone + head) and its exponential-moving-average teacher, momentum cosine-annealed to 1."""

    def __init__(self, backbone: nn.Module, dim: int, make_head: Callable[[], nn.Module], momentum: float):
        super().__init__(backbone, dim)
        self.head, self.momentum = make_head(), momentum
        self.teacher_backbone, self.teacher_head = copy.deepcopy(backbone), make_head()
        self.teacher_head.load_state_dict(self.head.state_dict())
        deactivate_requires_grad(self.teacher_backbone)
        deactivate_requires_grad(self.teacher_head)

    def teacher(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.teacher_head(self.teacher_backbone(x))

    def after_step(self, progress: float) -> None:
        m = cosine_schedule(int(progress * 1000), 1000, self.momentum, 1.0)
        update_momentum(self.backbone, self.teacher_backbone, m)
        update_momentum(self.head, self.teacher_head, m)


class SimCLR(SSLMethod):
    """SimCLR: NT-Xent between the projections of the two views (in-batch negatives)."""

    def __init__(self, backbone: nn.Module, dim: int, *, proj_dim: int = 128, temperature: float = 0.5):
        super().__init__(backbone, dim)
        self.head = heads.SimCLRProjectionHead(dim, dim, proj_dim)
        self.criterion = lloss.NTXentLoss(temperature=temperature)

    def loss(self, view0, view1, progress=0.0):
        return self.criterion(self.head(self.backbone(view0)), self.head(self.backbone(view1)))


class MoCo(_Momentum):
    """MoCo v2: the query's projection against its momentum key and a FIFO queue of past keys as negatives."""

    def __init__(self, backbone: nn.Module, dim: int, *, proj_dim: int = 128, queue_size: int = 4096,
                 temperature: float = 0.2, momentum: float = 0.99):
        super().__init__(backbone, dim, lambda: heads.MoCoProjectionHead(dim, dim, proj_dim), momentum)
        self.criterion = lloss.NTXentLoss(temperature=temperature, memory_bank_size=(queue_size, proj_dim))

    def loss(self, view0, view1, progress=0.0):
        return self.criterion(self.head(self.backbone(view0)), self.teacher(view1))


class BYOL(_Momentum):
    """BYOL: the online network predicts the target network's projection of the other view (no negatives)."""

    def __init__(self, backbone: nn.Module, dim: int, *, hidden_dim: int = 4096, proj_dim: int = 256,
                 momentum: float = 0.99):
        super().__init__(backbone, dim, lambda: heads.BYOLProjectionHead(dim, hidden_dim, proj_dim), momentum)
        self.predictor = heads.BYOLPredictionHead(proj_dim, hidden_dim, proj_dim)
        self.criterion = lloss.NegativeCosineSimilarity()

    def loss(self, view0, view1, progress=0.0):
        p0 = self.predictor(self.head(self.backbone(view0)))
        p1 = self.predictor(self.head(self.backbone(view1)))
        return 0.5 * (self.criterion(p0, self.teacher(view1)) + self.criterion(p1, self.teacher(view0)))


class DINO(_Momentum):
    """DINO: the student matches the centred, sharpened softmax of the momentum teacher (self-distillation)."""

    def __init__(self, backbone: nn.Module, dim: int, *, hidden_dim: int = 2048, bottleneck_dim: int = 256,
                 out_dim: int = 2048, momentum: float = 0.996, epochs: int = 100):
        super().__init__(backbone, dim, lambda: heads.DINOProjectionHead(dim, hidden_dim, bottleneck_dim, out_dim),
                         momentum)
        self.epochs = epochs
        self.criterion = lloss.DINOLoss(output_dim=out_dim, warmup_teacher_temp_epochs=max(1, epochs // 10))

    def loss(self, view0, view1, progress=0.0):
        student = [self.head(self.backbone(v)) for v in (view0, view1)]
        teacher = [self.teacher(v) for v in (view0, view1)]
        return self.criterion(teacher, student, epoch=int(progress * self.epochs))


class BarlowTwins(SSLMethod):
    """Barlow Twins: the cross-correlation of the two views' projections is pushed to the identity."""

    def __init__(self, backbone: nn.Module, dim: int, *, proj_dim: int = 2048, lambda_param: float = 5e-3):
        super().__init__(backbone, dim)
        self.head = heads.BarlowTwinsProjectionHead(dim, proj_dim, proj_dim)
        self.criterion = lloss.BarlowTwinsLoss(lambda_param=lambda_param)

    def loss(self, view0, view1, progress=0.0):
        return self.criterion(self.head(self.backbone(view0)), self.head(self.backbone(view1)))


class SwAV(SSLMethod):
    """SwAV: each view predicts the other's Sinkhorn cluster assignment over learned prototypes."""

    def __init__(self, backbone: nn.Module, dim: int, *, proj_dim: int = 128, n_prototypes: int = 512):
        super().__init__(backbone, dim)
        self.head = heads.SwaVProjectionHead(dim, dim, proj_dim)
        self.prototypes = heads.SwaVPrototypes(proj_dim, n_prototypes)
        self.criterion = lloss.SwaVLoss()

    def loss(self, view0, view1, progress=0.0):
        self.prototypes.normalize()
        scores = [self.prototypes(F.normalize(self.head(self.backbone(v)), dim=1)) for v in (view0, view1)]
        return self.criterion(scores, []).sum()


METHODS: dict[str, type[SSLMethod]] = {
    "simclr": SimCLR, "moco": MoCo, "byol": BYOL, "dino": DINO, "barlowtwins": BarlowTwins, "swav": SwAV,
}


def ssl_method(name: str, backbone: nn.Module, dim: int, **hparams: float) -> SSLMethod:
    """The self-supervised method ``name`` (one of :data:`METHODS`) over ``backbone`` with embedding width ``dim``."""
    if name not in METHODS:
        raise ValueError(f"unknown SSL method {name!r}; expected one of {sorted(METHODS)}")
    return METHODS[name](backbone, dim, **hparams)
