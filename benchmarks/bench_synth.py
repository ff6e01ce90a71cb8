"""Generation time of the synthetic worlds (esclib.data.synth), per dataset and size, and for all four together.

Writes each world into a temporary folder with ``--workers`` processes and prints its files, size on disk, seconds
and files per second; then the total (the ``quick`` profile's data for a fresh machine).

    python benchmarks/bench_synth.py [--size tiny|smoke|quick|full] [--workers 2] [--seed 0] [--datasets esc50 ...]

Datasets without the requested size (DCASE 2013 has no ``quick`` world) are skipped.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from esclib.data.synth import DATASETS, SIZES, generate


def measure(name: str, size: str, seed: int, workers: int, folder: Path) -> tuple[int, float, float]:
    """Files written, megabytes on disk and wall seconds of generating ``name`` at ``size`` into ``folder``."""
    start = time.perf_counter()
    root = generate(name, folder / name, size, seed=seed, workers=workers, progress=False)
    seconds = time.perf_counter() - start
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files) / 1e6, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="quick", choices=("tiny", "smoke", "quick", "full"))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    args = parser.parse_args()
    print(f"size={args.size} workers={args.workers} cpus={os.cpu_count()}")
    print(f"{'dataset':<15}{'files':>8}{'MB':>9}{'seconds':>10}{'files/s':>10}")
    total_files = total_seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name in (n for n in args.datasets if args.size in SIZES[n]):
            files, megabytes, seconds = measure(name, args.size, args.seed, args.workers, Path(tmp))
            total_files += files
            total_seconds += seconds
            print(f"{name:<15}{files:>8}{megabytes:>9.1f}{seconds:>10.1f}{files / seconds:>10.1f}")
    print(f"{'all':<15}{int(total_files):>8}{'':>9}{total_seconds:>10.1f}")


if __name__ == "__main__":
    main()
