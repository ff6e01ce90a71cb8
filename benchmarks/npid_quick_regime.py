"""Does the quick profile show study 004's method? NPID pre-training and fine-tuning on the synthetic ESC-50 world.

For each test fold: NPID pre-training (``esclib.train.npid.QUICK_NPID`` unless overridden) on the other folds,
the weighted-kNN accuracy of its embedding on the test fold after every epoch beside that of the same network at
its random initialisation (epoch 0); then fine-tuning from the NPID network and from scratch with one recipe
(``QUICK_FINETUNE``), test accuracy per epoch. Prints the per-fold numbers, mean ± std over folds, and wall / CPU
time (one torch thread). Usage::

    OMP_NUM_THREADS=1 python benchmarks/npid_quick_regime.py [--dataset esc50] [--folds 1 2 3]
        [--npid-epochs 30] [--finetune-epochs 10] [--arch resnet18] [--out results.csv]
        [--set npid.lr=0.03 finetune.lr=2.5e-4 input.hop_length=1102 ...]
    python benchmarks/npid_quick_regime.py --summarise fold1.csv fold2.csv fold3.csv

``--set`` overrides fields of the NPID recipe (``npid.``), the fine-tuning recipe (``finetune.``) or the input of
both (``input.``); the fine-tuning arms always share one recipe.
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from esclib.data.sources import load_dataset
from esclib.data.splits import fold_split
from esclib.models.esresnet import imagenet_status
from esclib.train.npid import QUICK_FINETUNE, QUICK_NPID, finetune, finetune_network, pretrain_npid


def _override(obj, assignments: dict[str, str]):
    """``obj`` (a frozen dataclass) with fields replaced, each value parsed as the field's current type."""
    changes = {}
    for key, text in assignments.items():
        current = getattr(obj, key)
        if isinstance(current, tuple):
            changes[key] = tuple(type(current[0])(v) for v in text.split(","))
        elif isinstance(current, bool):
            changes[key] = text.lower() == "true"
        elif current is None:  # optional numbers (crop_seconds, knn_temperature)
            changes[key] = None if text.lower() == "none" else float(text)
        else:
            changes[key] = type(current)(text)
    return replace(obj, **changes)


def _clock() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="esc50", choices=["esc50", "esc10"])
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--npid-epochs", type=int, default=QUICK_NPID.epochs)
    parser.add_argument("--finetune-epochs", type=int, default=QUICK_FINETUNE.epochs)
    parser.add_argument("--arch", default=QUICK_NPID.arch)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the per-epoch table here (CSV)")
    parser.add_argument("--progress", action="store_true", help="print every epoch (progress bars on stderr)")
    parser.add_argument("--set", nargs="*", default=[], help="overrides: npid.FIELD=V, finetune.FIELD=V, input.FIELD=V")
    parser.add_argument("--summarise", nargs="+", default=None, metavar="CSV",
                        help="only print the summary of tables written by --out (e.g. one run per fold)")
    args = parser.parse_args()
    if args.summarise:
        tables = [pd.read_csv(path) for path in args.summarise]
        summarise(pd.concat(tables, ignore_index=True))
        print(f"\nCPU time of the runs: {sum(t.cpu_s.iloc[0] for t in tables):.0f} s")
        return
    torch.set_num_threads(1)
    groups: dict[str, dict[str, str]] = {"npid": {}, "finetune": {}, "input": {}}
    for item in args.set:
        key, _, value = item.partition("=")
        group, _, name = key.partition(".")
        if group not in groups or not name or not value:
            parser.error(f"--set {item!r}: expected npid.FIELD=VALUE, finetune.FIELD=VALUE or input.FIELD=VALUE")
        groups[group][name] = value
    input_ = _override(QUICK_NPID.input, groups["input"])
    npid_recipe = _override(replace(QUICK_NPID, epochs=args.npid_epochs, arch=args.arch, input=input_),
                            groups["npid"])
    ft_recipe = _override(replace(QUICK_FINETUNE, epochs=args.finetune_epochs, arch=args.arch, input=input_),
                          groups["finetune"])
    arms = ["npid", "scratch"] + (["imagenet"] if imagenet_status(args.arch) is None else [])
    if "imagenet" not in arms:
        print(f"ImageNet arm skipped: {imagenet_status(args.arch)}")
    print(f"NPID: {npid_recipe}\nfine-tune: {ft_recipe}\ninput {npid_recipe.input.shape}")
    clips = load_dataset(args.dataset, "quick")
    rows = []
    wall0, cpu0 = _clock()
    for fold in args.folds:
        split = fold_split(clips, test_fold=fold, val_fold=0)
        t0 = _clock()
        npid = pretrain_npid(split.train, npid_recipe, test=split.test, seed=args.seed, progress=args.progress)
        t1 = _clock()
        print(f"fold {fold}: NPID {t1[0] - t0[0]:.0f} s wall, {t1[1] - t0[1]:.0f} s CPU")
        print(npid.history.to_string(index=False, float_format="%.3f"))
        rows += [{"fold": fold, "phase": "npid", **r} for r in npid.history.to_dict("records")]
        for arm in arms:
            model = finetune_network(clips.num_classes, ft_recipe, arm, npid=npid.model if arm == "npid" else None,
                                     seed=args.seed)
            t0 = _clock()
            curve = finetune(model, split.train, split.test, ft_recipe, seed=args.seed, progress=args.progress)
            t1 = _clock()
            print(f"fold {fold} fine-tune {arm}: {t1[0] - t0[0]:.0f} s wall; test_acc "
                  + " ".join(f"{a:.3f}" for a in curve["test_acc"]))
            rows += [{"fold": fold, "phase": f"finetune-{arm}", **r} for r in curve.to_dict("records")]
    wall1, cpu1 = _clock()
    table = pd.DataFrame(rows).assign(cpu_s=cpu1 - cpu0)
    if args.out:
        table.to_csv(args.out, index=False)
    summarise(table)
    print(f"\ntotal {wall1 - wall0:.0f} s wall, {cpu1 - cpu0:.0f} s CPU ({torch.get_num_threads()} torch thread; "
          "shared, loaded machine)")


def summarise(table: pd.DataFrame) -> None:
    """Print the kNN accuracy of the random and of the NPID network, and the fine-tuning curves, over the folds."""
    knn = table[table.phase == "npid"]
    knn_cols = [c for c in knn.columns if c.startswith("knn_k")]
    last = knn.epoch.max()
    per_fold = knn[knn.epoch.isin([0, last])].pivot_table(index="fold", columns="epoch", values=knn_cols)
    print(f"\nkNN accuracy per test fold (epoch 0 = random weights, epoch {last} = NPID):")
    print(per_fold.to_string(float_format="%.3f"))
    print(per_fold.agg(["mean", "std"]).to_string(float_format="%.3f"))
    ft = table[table.phase.str.startswith("finetune")]
    curves = ft.pivot_table(index="epoch", columns="phase", values="test_acc", aggfunc=["mean", "std"])
    print(f"\nfine-tuning test accuracy per epoch (mean, std over folds {sorted(ft.fold.unique())}):")
    print(curves.to_string(float_format="%.3f"))

if __name__ == "__main__":
    main()
