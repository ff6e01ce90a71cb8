"""The quick regime of chapter 5: does every SSL method beat the random-weight backbone on the synthetic UrbanSound8K?

One small configuration (backbone, input size, epochs, batch, view policy -- the same for every method, never tuned
per method) is run for the six methods, the random-weight backbone and a supervised from-scratch baseline, and
each is evaluated by the linear probe and the weighted kNN on several official test folds. The spectrograms are
computed once and kept in memory; the views are augmented on the fly.

Pre-training (``--pretrain shared``, the default): one pre-training per method, without labels, on the folds that are
neither a test nor a validation fold of any evaluated split (test folds 1-3 -> validation folds 2-4 -> pre-training
on folds 5-10), so that no evaluated test or validation clip is ever seen; the probe of each split then trains on
that split's training folds. ``--pretrain per-fold`` pre-trains on each split's training folds (the chapter's
protocol; three times the cost).

Run from the repository root (timings on a shared, loaded machine vary; CPU time is reported beside wall time)::

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/ssl_quick_regime.py            # the recommended setting
    PYTHONPATH=$PWD python benchmarks/ssl_quick_regime.py --epochs 30 --size 48 48 --methods simclr byol

Prints one row per (arm, fold) and the mean over folds, and whether each method beats random on both metrics.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import torch

from esclib.augment.views import VIEW_POLICIES, get_view_policy
from esclib.data.sources import load_dataset
from esclib.data.splits import fold_split
from esclib.data.torchdata import pool_rows, array_loader, spectrogram_bank
from esclib.models.backbones import backbone
from esclib.models.ssl import METHODS, ssl_method
from esclib.train.ssl import (STUDY_FRONTEND, SpectrogramClassifier, SpectrogramInput, SSLRecipe, TwoViewInput,
                              evaluate_encoder, input_statistics, pretrain, study_frontend, train_classifier)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--size", type=int, nargs=2, default=(32, 32), help="backbone input (frames, bins)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--warmup", type=int, default=2, help="warm-up epochs")
    parser.add_argument("--head-scale", type=float, default=0.125, help="width factor of the wide SSL heads")
    parser.add_argument("--queue", type=int, default=256, help="MoCo's and SwAV's queue length")
    parser.add_argument("--policy", default="byola", choices=VIEW_POLICIES)
    parser.add_argument("--folds", type=int, nargs="+", default=(1, 2, 3))
    parser.add_argument("--pretrain", choices=("shared", "per-fold"), default="shared")
    parser.add_argument("--methods", nargs="+", default=sorted(METHODS), choices=sorted(METHODS))
    parser.add_argument("--set", nargs="+", default=(), metavar="METHOD.PARAM=VALUE",
                        help="a method's hyper-parameter for a diagnosis or an ablation, e.g. byol.momentum=0.9")
    parser.add_argument("--no-supervised", action="store_true")
    parser.add_argument("--knn-k", type=int, default=20)
    parser.add_argument("--knn-temperature", type=float, default=0.07)
    parser.add_argument("--monitor-every", type=int, default=0,
                        help="also evaluate every N epochs during pre-training (0: only at the end)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def overrides(settings: list[str]) -> dict[str, dict[str, float]]:
    """``["byol.momentum=0.9", ...]`` -> ``{"byol": {"momentum": 0.9}}``."""
    out: dict[str, dict[str, float]] = {}
    for setting in settings:
        key, _, value = setting.partition("=")
        method, _, param = key.partition(".")
        if not (method in METHODS and param and value):
            raise SystemExit(f"--set expects METHOD.PARAM=VALUE with METHOD in {sorted(METHODS)}, got {setting!r}")
        out.setdefault(method, {})[param] = float(value) if "." in value or "e" in value else int(value)
    return out


def evaluate(encode, spectrogram, loaders, n_classes, args) -> dict[str, float]:
    """Probe and kNN test accuracy and macro-F1 of one encoder on one split, and the effective rank (RankMe) of
    its training embeddings."""
    result = evaluate_encoder(encode, spectrogram, *loaders, n_classes=n_classes, k=args.knn_k,
                              temperature=args.knn_temperature, seed=args.seed, progress=False)
    return {"probe_acc": result.probe.metrics["accuracy"], "probe_f1": result.probe.metrics["macro_f1"],
            "knn_acc": result.knn["accuracy"], "knn_f1": result.knn["macro_f1"], "rankme": result.rankme}


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    clips = load_dataset("us8k", "quick")
    bank = spectrogram_bank(clips, study_frontend(), STUDY_FRONTEND["sample_rate"], progress=False)
    recipe = SSLRecipe(epochs=args.epochs, batch_size=args.batch, lr=args.lr, weight_decay=args.weight_decay,
                       warmup_epochs=args.warmup)
    splits = {k: fold_split(clips, k) for k in args.folds}
    held_out = {s.test_fold for s in splits.values()} | {s.val_fold for s in splits.values()}
    shared_train = clips.subset(~np.isin(clips.folds, sorted(held_out)))
    print(f"bank {bank.shape}; recipe {recipe}; policy {args.policy}; backbone {args.backbone} {tuple(args.size)}; "
          f"pre-training {args.pretrain}" + (f" on folds {sorted(set(shared_train.folds))} ({len(shared_train)} "
                                             f"clips)" if args.pretrain == "shared" else ""), flush=True)

    def spectrogram_input(train) -> SpectrogramInput:
        return SpectrogramInput(tuple(args.size), *input_statistics(bank, pool_rows(train, clips)))

    def new_backbone():
        torch.manual_seed(args.seed)
        return backbone(args.backbone)

    def eval_loaders(split) -> list:
        return [array_loader(part, clips, bank, train=False, batch_size=256) for part in
                (split.train, split.val, split.test)]

    def pretrained(name: str, train, evaluated: list) -> tuple:
        net, dim = new_backbone()
        hparams = {**({"queue_size": args.queue} if name in ("moco", "swav") else {}),
                   **overrides(args.set).get(name, {})}
        method = ssl_method(name, net, dim, head_scale=args.head_scale, **hparams)
        spectrogram = spectrogram_input(train)
        views = TwoViewInput(spectrogram, get_view_policy(args.policy), seed=args.seed)
        loader = array_loader(train, clips, bank, train=True, batch_size=args.batch, views=2, seed=args.seed)

        def monitor(m) -> dict[str, float]:
            scores = [evaluate(m.embed, spectrogram, eval_loaders(split), clips.num_classes, args)
                      for split in evaluated]
            return {key: float(np.mean([s[key] for s in scores])) for key in ("probe_acc", "knn_acc", "rankme")}

        t0 = time.process_time()
        history = pretrain(method, loader, views, recipe, progress=False,
                           monitor=monitor if args.monitor_every else None, monitor_every=args.monitor_every or 1)
        curve = history.frame()
        if args.monitor_every:
            print(f"  {name} during pre-training (mean over folds {[s.test_fold for s in evaluated]}):\n"
                  + curve.dropna().round(3).to_string(index=False), flush=True)
        return method, spectrogram, time.process_time() - t0, history.epochs[-1]["loss"]

    shared = {}
    if args.pretrain == "shared":
        for name in args.methods:
            shared[name] = pretrained(name, shared_train, list(splits.values()))
            print(f"  pre-trained {name}: {shared[name][2]:.0f} s CPU, final loss {shared[name][3]:.3f}", flush=True)

    rows = []
    for k, split in splits.items():
        loaders = eval_loaders(split)
        spectrogram = spectrogram_input(split.train)
        net, _ = new_backbone()
        rows.append({"arm": "random", "fold": k, **evaluate(net, spectrogram, loaders, clips.num_classes, args)})
        for name in args.methods:
            method, spec_in, seconds, loss = shared[name] if name in shared else pretrained(name, split.train,
                                                                                                [split])
            rows.append({"arm": name, "fold": k, "pretrain_cpu_s": seconds, "final_loss": loss,
                         **evaluate(method.embed, spec_in, loaders, clips.num_classes, args)})
        if not args.no_supervised:
            net, dim = new_backbone()
            model = SpectrogramClassifier(spectrogram, net, dim, clips.num_classes,
                                          augment=get_view_policy(args.policy))
            train_loader = array_loader(split.train, clips, bank, train=True, batch_size=args.batch, seed=args.seed)
            t0 = time.process_time()
            train_classifier(model, train_loader, loaders[1], recipe, progress=False)
            seconds = time.process_time() - t0
            scratch = evaluate(net, spectrogram, loaders, clips.num_classes, args)
            model.eval()
            with torch.no_grad():
                logits = torch.cat([model(b[0]) for b in loaders[2]])
            targets = np.concatenate([np.asarray(b[1]) for b in loaders[2]])
            rows.append({"arm": "supervised", "fold": k, "pretrain_cpu_s": seconds, **scratch,
                         "classifier_acc": float((logits.argmax(1).numpy() == targets).mean())})
        print(pd.DataFrame(rows[-(len(args.methods) + 2):]).round(3).to_string(index=False), flush=True)

    table = pd.DataFrame(rows)
    mean = table.drop(columns="fold").groupby("arm", sort=False).mean().round(3)
    print("\nmean over folds", list(args.folds))
    print(mean.to_string())
    random = table[table.arm == "random"].set_index("fold")
    verdict = []
    for name in args.methods:
        mine = table[table.arm == name].set_index("fold")
        verdict.append({"method": name,
                        "probe_beats_random": f"{int((mine.probe_acc > random.probe_acc).sum())}/{len(mine)}",
                        "knn_beats_random": f"{int((mine.knn_acc > random.knn_acc).sum())}/{len(mine)}",
                        "mean_probe_gain": round(float((mine.probe_acc - random.probe_acc).mean()), 3),
                        "mean_knn_gain": round(float((mine.knn_acc - random.knn_acc).mean()), 3)})
    print(pd.DataFrame(verdict).to_string(index=False))
    print(f"\ntotal: {time.perf_counter() - start_wall:.0f} s wall, {time.process_time() - start_cpu:.0f} s CPU "
          f"({args.threads} thread(s); shared, loaded machine)")


if __name__ == "__main__":
    main()
