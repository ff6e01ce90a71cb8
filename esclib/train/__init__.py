"""Training loops shared by every chapter: :func:`fit` (checkpoint/resume, early stopping, AMP), :func:`predict`."""

from esclib.train.checkpoint import atomic_save, load_checkpoint
from esclib.train.early_stopping import EarlyStopping
from esclib.train.loop import History, autocast, evaluate, fit, logits_of, predict, supervised_step, to_device

__all__ = [
    "EarlyStopping", "History", "atomic_save", "autocast", "evaluate", "fit", "load_checkpoint", "logits_of",
    "predict", "supervised_step", "to_device",
]
