"""Seconds per training step of a PANN on the CPU with glibc's default allocator settings and with the ones the
chapters' kernels run under (:data:`esclib.runner.execute.KERNEL_TUNABLES`), each in a fresh process, and the peak
memory of each process.

    python benchmarks/bench_allocator.py                          # Cnn14, 4 clips of 5 s at 32 kHz (the smoke runs)
    python benchmarks/bench_allocator.py --arch CnnMini16k --batch 32 --seconds 2   # the quick mini PANN
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

from esclib.runner.execute import KERNEL_TUNABLES


def steps(arch: str, batch: int, seconds: float, n: int) -> list[float]:
    """Wall seconds of ``n`` Adam steps of ``arch`` (training mode, random weights and inputs) in this process."""
    import torch

    from esclib.models.panns import build_pann

    torch.manual_seed(0)
    model = build_pann(arch, classes_num=527).train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)
    x = torch.randn(batch, round(seconds * model.frontend.sample_rate))
    times = []
    for _ in range(n):
        start = time.perf_counter()
        model(x)["clipwise_output"].mean().backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="Cnn14")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        times = steps(args.arch, args.batch, args.seconds, args.steps)[2:]  # the first steps warm up
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{sorted(times)[len(times) // 2]:.3f} s per step (median of {len(times)}), peak {peak:.0f} MB")
        return
    print(f"{args.arch}, batch {args.batch} of {args.seconds} s, {os.cpu_count()} cores")
    for name, tunables in (("glibc defaults", None), ("KERNEL_TUNABLES", KERNEL_TUNABLES)):
        env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
        if tunables:
            env["GLIBC_TUNABLES"] = tunables
        out = subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]], env=env, check=True,
                             capture_output=True, text=True).stdout.strip()
        print(f"{name:>16}: {out}")


if __name__ == "__main__":
    main()
