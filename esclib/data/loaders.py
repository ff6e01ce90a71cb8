"""Loaders over features already in memory (cached log-mels, CAE inputs, embeddings).

Notebook: 03_cae (its CAE inputs); any chapter that trains on cached features.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset


def feature_loader(x: np.ndarray, targets: np.ndarray | None = None, *, batch_size: int,
                   shuffle: bool = False) -> DataLoader:
    """Batches ``(x, target, index)`` of in-memory features (targets -1 when None). Shuffling draws from torch's
    global generator, which :func:`esclib.train.fit` checkpoints, so a resumed run repeats the same order."""
    y = np.full(len(x), -1) if targets is None else np.array(targets)
    if len(y) != len(x):
        raise ValueError(f"feature_loader: {len(x)} feature rows but {len(y)} targets")
    dataset = TensorDataset(torch.as_tensor(np.array(x, dtype=np.float32)), torch.as_tensor(y, dtype=torch.long),
                            torch.arange(len(x)))
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)
