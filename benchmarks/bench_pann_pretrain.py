"""The quick profile's mini-PANN pre-training (esclib.train.pann_pretrain.MINI_CONFIG): time, held-out mAP per epoch,
and what the tagger says about downstream clips it never saw.

Generates the quick synthetic mini-AudioSet when absent, pre-trains ``CnnMini16k`` on it with ``--threads`` torch
threads into a temporary file (the shared cache is left alone), and prints the wall and CPU seconds, the per-epoch
loss and held-out mAP, and a zero-shot check of the tagging demo: for every clip of the quick synthetic ESC-50 and
UrbanSound8K, whether the highest-scoring *sound type* among the mini-AudioSet's labels is the one that covers the
clip's class (:mod:`esclib.data.synth.ontology`), and the top three tags of one clip per class.

    python benchmarks/bench_pann_pretrain.py [--threads 2] [--epochs N] [--steps-per-epoch N] [--lr X]
        [--mixup ALPHA] [--authors-dropout] [--hop SAMPLES]

``--hop 160`` runs the mini model on ``Cnn14_16k``'s own 10-ms hop (its frontend before it took a 20-ms one).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from esclib.data.cache import cached_waveforms
from esclib.data.registry import load
from esclib.data.sources import dataset_root, load_dataset
from esclib.data.synth.classes import CATALOGUE, SOUND_TYPES
from esclib.models.panns import CnnMini16k, load_pann
from esclib.models.panns.frontend import FRONTEND_MINI
from esclib.train.pann_pretrain import MINI_CONFIG, pretrain


def zero_shot(model: torch.nn.Module, name: str) -> tuple[float, pd.DataFrame]:
    """Share of the quick world ``name``'s clips whose top sound-type tag covers their class, and one clip per
    class with its top three tags."""
    clips = load_dataset(name, "quick")
    waves = torch.from_numpy(np.array(cached_waveforms(clips, model.frontend.sample_rate, progress=False)))
    with torch.no_grad():
        scores = torch.cat([model(chunk)["clipwise_output"] for chunk in waves.split(32)]).numpy()
    labels = np.array(model.labels)
    types = np.isin(labels, SOUND_TYPES)
    top_type = labels[types][scores[:, types].argmax(1)]
    expected = np.array([CATALOGUE[c].label for c in clips.table["category"]])
    rows = [{"class": clips.classes[c], "expected": CATALOGUE[clips.classes[c]].label,
             "top tags": ", ".join(f"{labels[k]} {scores[i, k]:.2f}" for k in np.argsort(-scores[i])[:3])}
            for c in range(clips.num_classes) for i in np.flatnonzero(clips.targets == c)[:1]]
    return float((top_type == expected).mean()), pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=MINI_CONFIG.epochs)
    parser.add_argument("--steps-per-epoch", type=int, default=MINI_CONFIG.steps_per_epoch)
    parser.add_argument("--lr", type=float, default=MINI_CONFIG.lr)
    parser.add_argument("--mixup", type=float, default=MINI_CONFIG.mixup_alpha)
    parser.add_argument("--authors-dropout", action="store_true",
                        help="the authors' dropout (0.2 after each block, 0.5 before fc1) instead of the mini's")
    parser.add_argument("--hop", type=int, default=FRONTEND_MINI.hop_size,
                        help="the frontend's hop in samples at 16 kHz (the mini's: 320; Cnn14_16k's: 160)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.authors_dropout:
        CnnMini16k.block_dropout, CnnMini16k.pre_fc_dropout = 0.2, 0.5
    CnnMini16k.default_frontend = replace(FRONTEND_MINI, hop_size=args.hop)
    config = replace(MINI_CONFIG, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, lr=args.lr,
                     mixup_alpha=args.mixup, seed=args.seed)
    corpus = load("audioset-mini", dataset_root("audioset-mini", "quick", seed=args.seed))
    cached_waveforms(corpus, 16000, float((corpus.table["end"] - corpus.table["start"]).max()), progress=False)
    print(f"threads={args.threads} {config}; frontend {CnnMini16k.default_frontend}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mini.pth"
        wall, cpu = time.perf_counter(), time.process_time()
        report = pretrain(corpus, config, path, progress=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        model = load_pann(path)
    print(pd.DataFrame(report["history"]).round(4).to_string(index=False))
    print(f"held-out mAP {report['held_out_metrics']['mAP']:.3f}, AUC {report['held_out_metrics']['auc']:.3f} "
          f"({report['corpus']['held_out']} clips, {report['held_out_metrics']['classes_scored']} labels); "
          f"pre-training {wall:.0f} s wall, {cpu:.0f} s CPU")
    for name in ("esc50", "us8k"):
        share, table = zero_shot(model, name)
        print(f"\n{name}: the top sound-type tag covers the clip's class for {share:.1%} of the clips")
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
