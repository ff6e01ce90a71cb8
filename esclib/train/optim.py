"""Optimisers and learning-rate schedules of study 000's Table 4: SGD, Adam(W) and Ranger, under cosine annealing.

Ranger (Wright 2019) is RAdam (Liu et al. 2020, ``torch.optim.RAdam``) wrapped in Lookahead (Zhang et al. 2019,
"Lookahead Optimizer: k steps forward, 1 step back"): the inner ("fast") optimiser takes ``k`` steps, then the
slow weights move towards the fast ones by ``alpha`` and the fast weights restart from the slow ones. Lookahead is
small, so it is written here rather than pulled in from another package.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR

#: the optimisers :func:`make_optimizer` knows (study 000, Table 4, plus AdamW)
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw", "ranger")


class Lookahead(Optimizer):
    """Lookahead around any optimiser (Zhang et al. 2019, Algorithm 1).

    The slow weights φ start as the parameters θ at construction. Every ``k``-th call of :meth:`step` (after the
    inner optimiser's own step), φ ← φ + α (θ − φ) and then θ ← φ. Between synchronisations θ follows the inner
    optimiser alone. ``param_groups`` are the inner optimiser's own, so learning-rate schedulers drive it directly.
    """

    def __init__(self, optimizer: Optimizer, k: int = 6, alpha: float = 0.5):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"Lookahead: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if k < 1:
            raise ValueError(f"Lookahead: k (steps between synchronisations) must be >= 1, got {k}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"Lookahead: alpha (slow-weight step size) must be in (0, 1], got {alpha}")
        self.optimizer, self.k, self.alpha = optimizer, k, alpha
        super().__init__(optimizer.param_groups, {})
        self.param_groups = optimizer.param_groups
        self.fast_steps = 0
        self.slow = [p.detach().clone() for group in self.param_groups for p in group["params"]]

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One step of the inner optimiser; every ``k``-th step also synchronises slow and fast weights."""
        if closure is not None:
            with torch.enable_grad():
                loss = self.optimizer.step(closure)
        else:
            loss = self.optimizer.step()
        self.fast_steps += 1
        if self.fast_steps % self.k == 0:
            for fast, slow in zip(self._params(), self.slow):
                slow.add_(fast - slow, alpha=self.alpha)
                fast.copy_(slow)
        return loss

    def state_dict(self) -> dict[str, Any]:
        """The inner optimiser's state, the slow weights and the step count."""
        return {"optimizer": self.optimizer.state_dict(), "slow": [s.clone() for s in self.slow],
                "fast_steps": self.fast_steps, "k": self.k, "alpha": self.alpha}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (the same parameters, in the same order)."""
        missing = {"optimizer", "slow", "fast_steps"} - set(state_dict)
        if missing:
            raise KeyError(f"Lookahead.load_state_dict: the state lacks {sorted(missing)}")
        if len(state_dict["slow"]) != len(self.slow):
            raise ValueError(f"Lookahead.load_state_dict: {len(state_dict['slow'])} slow tensors saved, "
                             f"{len(self.slow)} parameters here")
        self.optimizer.load_state_dict(state_dict["optimizer"])
        self.param_groups = self.optimizer.param_groups  # loading replaced the inner optimiser's group list
        for slow, saved in zip(self.slow, state_dict["slow"]):
            slow.copy_(saved)
        self.fast_steps = int(state_dict["fast_steps"])


def ranger(params: Iterable, lr: float = 1e-3, *, betas: tuple[float, float] = (0.95, 0.999), eps: float = 1e-5,
           weight_decay: float = 0.0, k: int = 6, alpha: float = 0.5) -> Lookahead:
    """Ranger: RAdam inside Lookahead, with Wright's defaults (betas 0.95/0.999, eps 1e-5, k 6, α 0.5)."""
    return Lookahead(torch.optim.RAdam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay),
                     k=k, alpha=alpha)


def make_optimizer(name: str, params: Iterable, lr: float, *, weight_decay: float = 0.0, momentum: float = 0.9,
                   amsgrad: bool = False) -> Optimizer:
    """The optimiser ``name`` (one of :data:`OPTIMIZERS`) over ``params`` (study 000, Table 4).

    ``momentum`` applies to SGD (Nesterov off), ``amsgrad`` to Adam/AdamW (PANN's recipe uses it), ``weight_decay``
    to all (decoupled for AdamW, L2 otherwise).
    """
    if lr <= 0:
        raise ValueError(f"make_optimizer: lr must be > 0, got {lr}")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, amsgrad=amsgrad)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, amsgrad=amsgrad)
    if name == "ranger":
        return ranger(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"make_optimizer: unknown optimiser {name!r}; expected one of {OPTIMIZERS}")


def cosine_schedule(optimizer: Optimizer, epochs: int, eta_min: float = 0.0) -> CosineAnnealingLR:
    """Cosine annealing from the optimiser's lr to ``eta_min`` over ``epochs`` epochs, stepped once per epoch
    (study 000: 35 epochs)."""
    if epochs < 1:
        raise ValueError(f"cosine_schedule: epochs must be >= 1, got {epochs}")
    return CosineAnnealingLR(optimizer, T_max=epochs, eta_min=eta_min)
