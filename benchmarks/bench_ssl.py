"""Throughput of one SSL pre-training step per method (chapter 5): two views on the device, the method's loss, the
backward pass, AdamW and the teacher update -- what :func:`esclib.train.ssl.pretrain` runs per batch.

On CUDA: ResNet-18 at the study's 224 x 224 input, bf16 autocast, batch 256 by default (the published heads,
``head_scale`` 1). Without CUDA: the CPU figure at the quick profile's size (32 x 32, batch 64, heads x 1/8, one
thread) unless told otherwise. Inputs are random study-shaped spectrograms (376 frames x 128 mels), so the figure
excludes data loading. Run from the repository root::

    PYTHONPATH=$PWD python benchmarks/bench_ssl.py                      # CUDA if present, else CPU
    PYTHONPATH=$PWD python benchmarks/bench_ssl.py --size 224 224 --batch 32 --steps 3   # CPU at the study's size

Timings on a shared machine vary; say so when quoting them.
"""

from __future__ import annotations

import argparse
import time
import warnings

import pandas as pd
import torch

from esclib.augment.views import VIEW_POLICIES, get_view_policy
from esclib.models.backbones import backbone
from esclib.models.ssl import METHODS, ssl_method
from esclib.train.loop import autocast
from esclib.train.ssl import SpectrogramInput, SSLRecipe, TwoViewInput


def parse() -> argparse.Namespace:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--size", type=int, nargs=2, default=(224, 224) if cuda else (32, 32))
    parser.add_argument("--batch", type=int, default=256 if cuda else 64)
    parser.add_argument("--head-scale", type=float, default=1.0 if cuda else 0.125)
    parser.add_argument("--policy", default="byola", choices=VIEW_POLICIES)
    parser.add_argument("--steps", type=int, default=20 if cuda else 5)
    parser.add_argument("--warmup", type=int, default=5 if cuda else 1)
    parser.add_argument("--methods", nargs="+", default=sorted(METHODS), choices=sorted(METHODS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-amp", action="store_true", help="fp32 on CUDA")
    return parser.parse_args()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    args = parse()
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    amp = not args.no_amp
    batch = torch.randn(args.batch, 376, 128, device=device)
    rows = []
    for name in args.methods:
        net, dim = backbone(args.backbone)
        method = ssl_method(name, net, dim, head_scale=args.head_scale).to(device)
        views = TwoViewInput(SpectrogramInput(tuple(args.size), 0.0, 1.0), get_view_policy(args.policy)).to(device)
        optimizer = SSLRecipe().optimizer(method.trainable_parameters())
        method.train()
        for step in range(args.warmup + args.steps):
            if step == args.warmup:
                synchronize(device)
                start = time.perf_counter()
            with autocast(device, amp):
                view0, view1 = views(batch, batch, step)
                loss = method.loss(view0, view1, 0.5)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            method.after_step(0.5)
        synchronize(device)
        seconds = (time.perf_counter() - start) / args.steps
        rows.append({"method": name, "step_s": round(seconds, 4), "clips_per_s": round(args.batch / seconds, 1),
                     "loss": round(float(loss), 3)})
        print(rows[-1], flush=True)
        del method, optimizer
        if device.type == "cuda":
            torch.cuda.empty_cache()
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"\n{args.backbone} at {tuple(args.size)}, batch {args.batch}, head_scale {args.head_scale}, policy "
          f"{args.policy}, {'bf16 autocast' if amp and device.type == 'cuda' else 'fp32'} on {where}")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
