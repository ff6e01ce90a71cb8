"""Early stopping on a validation metric (study 002 stops after 5 epochs without improvement)."""

from __future__ import annotations

import math


class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``update(record)`` takes an epoch's record (a dict holding ``monitor``) and returns True when that epoch is the
    best so far; ``should_stop`` then says whether training should end.
    """

    def __init__(self, patience: int = 5, monitor: str = "val_loss", mode: str = "min", min_delta: float = 0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        if patience < 1:
            raise ValueError(f"EarlyStopping: patience must be >= 1, got {patience}")
        self.patience, self.monitor, self.mode, self.min_delta = patience, monitor, mode, min_delta
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = 0
        self.bad_epochs = 0

    @property
    def should_stop(self) -> bool:
        """True once ``patience`` epochs in a row brought no improvement."""
        return self.bad_epochs >= self.patience

    def update(self, record: dict[str, float]) -> bool:
        """Account for one epoch's record; True when it is the best so far."""
        if self.monitor not in record:
            raise KeyError(f"EarlyStopping monitors {self.monitor!r}, absent from the epoch record {sorted(record)}")
        value = record[self.monitor]
        better = value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        if better:
            self.best, self.best_epoch, self.bad_epochs = value, int(record.get("epoch", 0)), 0
        else:
            self.bad_epochs += 1
        return better

    def state_dict(self) -> dict[str, float]:
        """What a checkpoint must keep to resume the count."""
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restore the count from :meth:`state_dict`."""
        self.best, self.best_epoch, self.bad_epochs = state["best"], int(state["best_epoch"]), int(state["bad_epochs"])
