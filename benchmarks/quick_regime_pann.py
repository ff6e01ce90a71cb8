"""Which quick-profile regime makes supervised PANN training work on the synthetic worlds (issue 12)?

Fine-tunes the quick profile's mini PANN (``CnnMini16k`` pre-trained on the synthetic mini-AudioSet,
:func:`esclib.train.pann_pretrain.mini_checkpoint`) -- or trains the same architecture from scratch -- on the
synthetic ESC-50 (chapter 01) or UrbanSound8K (chapter 02), per test fold (validation fold k+1, training the rest)
and label fraction, and prints the test accuracy at the best validation epoch and the CPU seconds of each run.

Log-mels are computed once per clip (the base's frontend; ``bn0`` and everything after it run in training, so the
model is exactly the waveform model) and training crops are cut from them; evaluation uses whole clips. One
thread, as the book's budget is stated for 2 cores shared by two kernels.

    python benchmarks/quick_regime_pann.py --dataset esc50 --folds 1 2 3 --fractions 1 0.1 \\
        --arms fine-tune scratch --crop 3 --batch 16 --epochs 12 --lr 1e-3
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from esclib.augment.mixup import do_mixup, mixup_lambdas
from esclib.data.cache import cached_waveforms
from esclib.data.sources import load_dataset
from esclib.data.splits import fold_split, labelled_subset
from esclib.models.panns import load_pann
from esclib.models.transfer import TransferModel
from esclib.train.pann_pretrain import mini_checkpoint


def logmels(model: TransferModel, waves: np.ndarray) -> torch.Tensor:
    """The base's log-mel (before ``bn0``) of every clip, ``(N, 1, frames, mel_bins)``."""
    base = model.base
    with torch.no_grad():
        return torch.cat([base.logmel_extractor(base.spectrogram_extractor(torch.from_numpy(np.array(chunk))))
                          for chunk in np.array_split(waves, max(1, math.ceil(len(waves) / 64)))])


def logits(model: TransferModel, x: torch.Tensor, lambdas: torch.Tensor | None = None) -> torch.Tensor:
    """The transfer model's logits from cached log-mels: ``bn0``, augmentation (training), body, head."""
    base = model.base
    x = base.bn0(x.transpose(1, 3)).transpose(1, 3)
    return model.head(base.forward_logmel(x, lambdas)["embedding"])["logits"]


def accuracy(model: TransferModel, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy on whole clips (eval mode)."""
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([logits(model, chunk).argmax(1) for chunk in x.split(64)])
    model.train()
    return float((predicted == y).float().mean())


def train_run(checkpoint: Path, arm: str, n_classes: int, features: torch.Tensor, targets: torch.Tensor,
              parts: dict[str, np.ndarray], args: argparse.Namespace) -> tuple[float, float, int]:
    """Test accuracy at the best validation epoch, the best validation accuracy and the optimiser steps."""
    torch.manual_seed(args.seed)
    model = TransferModel(load_pann(checkpoint), n_classes, arm)
    model.base.spec_augment = args.specaugment
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr, amsgrad=True)
    train, crop = parts["train"], round(args.crop * 100)
    x_val, y_val = features[parts["val"]], targets[parts["val"]]
    x_test, y_test = features[parts["test"]], targets[parts["test"]]
    steps_per_epoch = max(1, math.ceil(args.clips_per_epoch / args.batch)) if args.clips_per_epoch else max(
        1, math.ceil(len(train) / args.batch))
    generator = torch.Generator().manual_seed(args.seed)
    best_val, best_test, steps = -1.0, 0.0, 0
    n = 2 * args.batch if args.mixup else args.batch
    for _ in range(args.epochs):
        for _ in range(steps_per_epoch):
            rows = train[torch.randint(len(train), (n,), generator=generator).numpy()]
            frames = features.shape[2]
            starts = torch.randint(0, max(frames - crop, 0) + 1, (n,), generator=generator).tolist()
            x = torch.stack([features[r, :, s:s + crop] for r, s in zip(rows, starts)])
            y = F.one_hot(targets[rows], n_classes).float()
            lambdas = mixup_lambdas(n, args.mixup) if args.mixup else None
            if lambdas is not None:
                y = do_mixup(y, lambdas)
            loss = torch.sum(-y * F.log_softmax(logits(model, x, lambdas), dim=1), dim=1).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            steps += 1
        val = accuracy(model, x_val, y_val)
        if val > best_val:
            best_val, best_test = val, accuracy(model, x_test, y_test)
    return best_test, best_val, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="esc50", choices=("esc50", "us8k"))
    parser.add_argument("--data-root", default=None, help="dataset folder (default: the quick synthetic world)")
    parser.add_argument("--checkpoint", default=None, help="pretrained mini PANN (default: mini_checkpoint(seed))")
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--arms", nargs="+", default=["fine-tune", "scratch"], choices=("fine-tune", "scratch"))
    parser.add_argument("--crop", type=float, default=3.0, help="training crop (s); evaluation on whole clips")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--clips-per-epoch", type=int, default=None,
                        help="clips drawn per epoch (default: the labelled set's size)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--mixup", type=float, default=0.0, help="mixup alpha (0: none)")
    parser.add_argument("--specaugment", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    clips = load_dataset(args.dataset, "quick", args.data_root, args.seed)
    checkpoint = Path(args.checkpoint) if args.checkpoint else mini_checkpoint(args.seed)
    template = TransferModel(load_pann(checkpoint), clips.num_classes, "fine-tune")
    seconds = clips.clip_seconds if args.dataset == "esc50" else 4.0
    start = time.process_time()
    features = logmels(template, cached_waveforms(clips, template.base.frontend.sample_rate, seconds))
    print(f"{args.dataset}: {len(clips)} clips, log-mels {tuple(features.shape)} in "
          f"{time.process_time() - start:.1f} CPU s; {vars(args)}")
    targets = torch.from_numpy(clips.targets.astype(np.int64))
    ids = pd.Index(clips.table["clip_id"])
    rows = []
    for fold in args.folds:
        split = fold_split(clips, fold)
        for fraction in args.fractions:
            labelled = split.train if fraction >= 1 else labelled_subset(split.train, fraction=fraction,
                                                                         seed=args.seed)[0]
            parts = {name: ids.get_indexer(s.table["clip_id"])
                     for name, s in (("train", labelled), ("val", split.val), ("test", split.test))}
            for arm in args.arms:
                start = time.process_time()
                test, val, steps = train_run(checkpoint, arm, clips.num_classes, features, targets, parts, args)
                rows.append(dict(fold=fold, fraction=fraction, arm=arm, labelled=len(labelled), steps=steps,
                                 val=round(val, 3), test=round(test, 3), cpu_s=round(time.process_time() - start, 1)))
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    print(table.groupby(["arm", "fraction"])[["test", "cpu_s"]].agg(["mean", "std"]).round(3).to_string())


if __name__ == "__main__":
    main()
