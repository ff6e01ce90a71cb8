"""Throughput of chapter 04's NPID pre-training step (study 004): the ESResNet-attention (ResNet-50) on the 3-band
input of 5-s clips at 44.1 kHz (3 x 341 x 394), memory bank and NCE (K = 64, T = 0.4), SGD, batch 64.

On CUDA the step runs under bf16 autocast (as :func:`esclib.train.fit` does) and the script prints clips/s and the
peak GPU memory; on the CPU it prints clips per wall and per CPU second (on a loaded machine the CPU figure is the
better guide). The spectrogram is computed inside the network, as in training. Usage::

    python benchmarks/bench_npid.py [--arch resnet50] [--batch 64] [--steps 10] [--quick]

``--quick`` measures the quick profile's network and input instead (``esclib.train.npid.QUICK_NPID``).
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import replace

import torch

from esclib.train.loop import autocast
from esclib.train.npid import QUICK_NPID, NPIDRecipe, npid_model, npid_step


def _clock() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default=None, help="default: resnet50 (resnet18 with --quick)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--n-items", type=int, default=2000, help="instances in the memory bank")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    recipe = QUICK_NPID if args.quick else NPIDRecipe()
    recipe = replace(recipe, arch=args.arch or recipe.arch, batch_size=args.batch)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = npid_model(recipe, args.n_items).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    wave = 0.1 * torch.randn(args.batch, recipe.input.samples, device=device)
    index = torch.randperm(args.n_items, device=device)[:args.batch]

    def step() -> None:
        with autocast(device, None):
            loss, _ = npid_step(model, (wave, None, index), device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up (cuDNN autotuning, allocator)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    wall0, cpu0 = _clock()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall1, cpu1 = _clock()
    clips = args.steps * args.batch
    print(f"NPID step: ESResNet-attention {recipe.arch}, input {recipe.input.shape}, batch {args.batch}, "
          f"NCE K={recipe.nce_k} T={recipe.temperature}, {device.type}"
          + (f" ({torch.cuda.get_device_name()}, bf16 autocast)" if device.type == "cuda"
             else f" ({torch.get_num_threads()} torch threads)"))
    print(f"  {clips / (wall1 - wall0):.1f} clips/s wall")
    if device.type == "cuda":
        print(f"  peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
        print(f"  200 epochs of the study's pool (~11,000 clips): "
              f"{200 * 11000 / (clips / (wall1 - wall0)) / 3600:.1f} h on this GPU")
    else:
        print(f"  {clips / (cpu1 - cpu0):.2f} clips per CPU second")


if __name__ == "__main__":
    main()
