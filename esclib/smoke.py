"""Smoke runs: a chapter's ``paper`` code path end to end at full size except the amount (``esc run --smoke``).

A smoke run uses the paper profile's architectures, sample rates, clip lengths, features and recipes, but reads a
synthetic dataset written in the real layout at the real rate and length (``esc data synth NAME --size smoke``), a
checkpoint in the released format with random weights (:func:`smoke_checkpoint`, created on demand), runs one fold
(the spec's ``smoke`` overrides) and a couple of optimiser steps per epoch (:data:`STEPS`) for one epoch
(:data:`EPOCHS`). Its numbers mean nothing: its results go to their own store (``results/paper-smoke``) and its
executed copies to ``book/chapters/smoke/``, never into the book. ``$ESC_SMOKE=1`` (set by ``esc run --smoke``) turns
it on; everything that changes under it asks :func:`active`.
"""

from __future__ import annotations

import os
from pathlib import Path

from esclib import paths

#: environment variable that marks a smoke run
SMOKE_ENV = "ESC_SMOKE"
#: optimiser steps per epoch (and validation batches) of a smoke run
STEPS = 2
#: epochs of a smoke run
EPOCHS = 1


def active() -> bool:
    """Whether this process runs a smoke run."""
    return os.environ.get(SMOKE_ENV) == "1"


def smoke_checkpoint(name: str) -> Path:
    """A checkpoint of the registered PANN ``name`` (``Cnn14``, ``Cnn14_16k`` ...) in the released format
    (``{"iteration", "model"}``, the released file's name) with random weights (seed 0), created once under
    ``cache_dir()/panns-smoke``: what a smoke run loads instead of the real file."""
    import torch

    from esclib.models.panns import build_pann, save_pann_checkpoint
    from esclib.models.panns.registry import find_checkpoint

    released = find_checkpoint(name)
    if released is None:
        raise ValueError(f"smoke_checkpoint: {name!r} is not a registered PANN checkpoint (see `esc pann list`)")
    path = paths.cache_dir() / "panns-smoke" / released.file_name
    if not path.is_file():
        torch.manual_seed(0)
        save_pann_checkpoint(build_pann(released.arch), path, 0)
    return path
