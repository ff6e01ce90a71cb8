"""Speed of chapter 02's training steps (study 000): the supervised step and FixMatch's step under each pass
structure, per labelled batch B, unlabelled ratio μ and crop length, on a randomly initialised PANN.

Prints wall and CPU seconds per optimiser step and per clip-second through the network (CPU / wall > 1 means
several cores worked; on a loaded machine the CPU time is the better guide to an idle one). On CUDA (when present,
or ``--device cuda``) the steps run under bf16 autocast and the script prints views per second and the peak memory. A joint FixMatch step
sends B + 2μB views through the network with gradients; a separate one B + μB with gradients and μB without.
Usage::

    python benchmarks/bench_fixmatch.py [--arch CnnMini16k] [--batch 8] [--mu 1 3] [--seconds 1] [--repeats 3]
    python benchmarks/bench_fixmatch.py --arch Cnn14 --batch 8 --mu 7 --seconds 4   # the study's step, on a GPU
"""

from __future__ import annotations

import argparse

import torch

from esclib.augment.policies import get_policy
from esclib.models.panns import build_pann
from esclib.models.transfer import TransferModel
from esclib.train.loop import autocast, to_device
from esclib.train.fixmatch import PASS_STRUCTURES, FixMatchStep, LabelledStep, View

from bench_transfer import _timed  # noqa: E402 -- the benchmarks' shared timer (run from benchmarks/ or the root)


def _views() -> tuple[View, View]:
    weak, strong = (get_policy(f"rocling_{strength}") for strength in ("weak", "strong"))
    return View(spec=weak.spectrogram), View(spec=strong.spectrogram)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="CnnMini16k")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--mu", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--seconds", type=float, nargs="+", default=[1.0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    base = build_pann(args.arch, classes_num=10)
    model = TransferModel(base, 10, "fine-tune").train().to(device)
    model.base.spec_augment = False
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    weak, strong = _views()
    rate = base.frontend.sample_rate
    print(f"{args.arch}, batch {args.batch}, {device}, {torch.get_num_threads()} torch thread(s)")
    for seconds in args.seconds:
        samples = round(seconds * rate)
        labelled = to_device((torch.randn(args.batch, samples), torch.randint(0, 10, (args.batch,)),
                             torch.arange(args.batch)), device)
        steps = [("supervised", LabelledStep(weak, 10), labelled, args.batch)]
        for mu in args.mu:
            unlabelled = to_device((torch.randn(mu * args.batch, samples), torch.full((mu * args.batch,), -1),
                                    torch.arange(mu * args.batch)), device)
            steps += [(f"fixmatch μ={mu} {passes}", FixMatchStep(weak, strong, 10, passes=passes),
                       (labelled, unlabelled), args.batch * (1 + 2 * mu)) for passes in PASS_STRUCTURES]
        for name, step, batch, views in steps:
            def one_step(step=step, batch=batch):
                with autocast(device, None):
                    loss, _ = step(model, batch, device)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                if device.type == "cuda":
                    torch.cuda.synchronize()

            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            wall, cpu = _timed(one_step, args.repeats)
            line = f"{seconds:g} s crops, {name:28s}: {wall:.3f} s wall, {cpu:.3f} s CPU per step; "
            if device.type == "cuda":
                line += f"{views / wall:.0f} views/s, peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
            else:
                line += f"{1000 * cpu / (views * seconds):.1f} ms CPU per view-second"
            print(line)


if __name__ == "__main__":
    main()
