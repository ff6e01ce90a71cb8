"""Small generated inputs of the lab checks: a clip table with folds and source recordings, and a frozen-base toy.

They are built in milliseconds, so a chapter runs its lab checks as it executes. Notebooks: 00_data, 01_pann_transfer,
06_overview (labs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from esclib.data.clips import ClipSet

#: classes of the toy clip table
TOY_CLASSES: tuple[str, ...] = ("dog", "rain", "siren", "engine")


def toy_clips(n_folds: int = 5, recordings_per_class: int = 3, clips_per_recording: int = 2,
              seed: int = 0) -> ClipSet:
    """A clip table in the layout every loader returns, with no audio behind it: ``n_folds`` folds, every class
    with ``recordings_per_class`` source recordings per fold, each cut into ``clips_per_recording`` clips, in a
    shuffled order. One recording, ``rec-cross``, has a clip in fold 2 (class 0) and one in fold 4 (class 1), as
    UrbanSound8K has five recordings whose slices sit in two folds under two classes."""
    rows = []
    for fold in range(1, n_folds + 1):
        for target, category in enumerate(TOY_CLASSES):
            for recording in range(recordings_per_class):
                source = f"rec-{fold}-{category}-{recording}"
                for take in range(clips_per_recording):
                    rows.append((f"{source}-{take}", fold, target, category, source))
    rows += [("rec-cross-0", 2, 0, TOY_CLASSES[0], "rec-cross"), ("rec-cross-1", 4, 1, TOY_CLASSES[1], "rec-cross")]
    table = pd.DataFrame(rows, columns=["clip_id", "fold", "target", "category", "source"])
    table.insert(1, "path", [f"/toy/audio/{clip}.wav" for clip in table["clip_id"]])
    order = np.random.default_rng(seed).permutation(len(table))
    return ClipSet("toy", Path("/toy"), TOY_CLASSES, n_folds, 5.0, table.iloc[order].reset_index(drop=True))


class ToyBase(nn.Module):
    """A stand-in for a PANN base (chapter 1): waveform ``(B, samples)`` -> ``{"embedding": (B, 8)}`` through a
    linear layer, batch-norm and dropout, so that training mode changes its statistics and its output."""

    embedding_size = 8

    def __init__(self, samples: int = 32, seed: int = 0):
        super().__init__()
        self.layer = nn.Linear(samples, self.embedding_size)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.layer.weight.copy_(torch.randn(self.layer.weight.shape, generator=g) / samples ** 0.5)
            self.layer.bias.copy_(torch.randn(self.embedding_size, generator=g))
        self.bn = nn.BatchNorm1d(self.embedding_size)
        self.dropout = nn.Dropout(0.5)

    def forward(self, waveform: torch.Tensor, mixup_lambda: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"embedding": self.dropout(torch.relu(self.bn(self.layer(waveform))))}
