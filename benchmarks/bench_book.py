"""Wall time of each chapter (from its executed copy's papermill metadata), the share of it spent training, loading
data and plotting (:func:`time_shares`), and the wall time of the HTML build.

    python benchmarks/bench_book.py            # chapters as last executed, then time `esc book --skip-run`
    python benchmarks/bench_book.py --run      # execute every chapter in quick first, one after another
    python benchmarks/bench_book.py --run --jobs 2   # ... two at once, as `esc book` (the chapters' times overlap)
    python benchmarks/bench_book.py --write    # also write book/generated/chapter_times.csv (instructors' page)
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from esclib.runner.book import toc_chapters, write_chapter_times
from esclib.runner.execute import CHAPTERS_DIR, find_root


def chapter_seconds(root: Path) -> list[tuple[str, str, float | None]]:
    """(chapter, profile, seconds) of each chapter of ``_toc.yml``, from its executed copy (None if absent)."""
    rows = []
    for stem in toc_chapters(root / "_toc.yml"):
        path = root / CHAPTERS_DIR / f"{stem}.ipynb"
        if not path.is_file():
            rows.append((stem, "-", None))
            continue
        meta = nbformat.read(path, as_version=4).metadata
        rows.append((stem, meta.get("papermill", {}).get("parameters", {}).get("profile", "?"),
                     meta.get("papermill", {}).get("duration")))
    return rows


#: how a cell's source tells what it spends its time on (the first that matches; training is measured, not guessed)
_DATA = re.compile(r"load_dataset|cached_|Experiment\(|Pretraining\(|pretraining_pool|FewShotTransfer")
_PLOT = re.compile(r"plt\.|sns\.|plot_|\.imshow|display\(Audio|player\(")


def time_shares(path: Path) -> dict[str, float]:
    """Where a chapter's wall time went, from its executed copy: ``training`` (the optimiser steps of the runs it
    trained during that execution, from their results' timing; reused runs cost nothing), ``data`` (cells that load
    datasets, fingerprint them and build the waveform / feature caches, minus any training inside them), ``plotting``
    (cells that draw or play) and ``other``. Approximate: a cell is classified by its source."""
    import json

    nb = nbformat.read(path, as_version=4)
    started = nb.metadata.get("papermill", {}).get("start_time") or ""
    root = path.resolve().parents[2]
    training = 0.0
    for result in nb.metadata.get("esc", {}).get("results", []):
        record = json.loads((root / result).read_text()) if (root / result).is_file() else {}
        finished = record.get("finished", "")
        if finished and started and _utc(finished) >= _utc(started):
            training += float((record.get("timing") or {}).get("train_seconds") or 0.0)
    shares = {"training": training, "data": 0.0, "plotting": 0.0, "other": 0.0}
    for cell in nb.cells:
        seconds = float(cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0)
        kind = "data" if _DATA.search(cell.source) else "plotting" if _PLOT.search(cell.source) else "other"
        shares[kind] += seconds
    total = sum(shares[k] for k in ("data", "plotting", "other"))
    excess = min(training, total)  # the training happened inside some cells: take it out of theirs
    for kind in ("other", "data", "plotting"):
        taken = min(shares[kind], excess)
        shares[kind] -= taken
        excess -= taken
    return shares


def _utc(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def machine() -> str:
    """This machine in a few words, with its load when measured (times on a loaded machine are longer)."""
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, {device}, load {os.getloadavg()[0]:.1f}, "
            f"{time.strftime('%Y-%m-%d')}")


def timed(command: list[str], root: Path) -> tuple[int, float]:
    """Exit status and wall time of ``command`` run in ``root``."""
    start = time.perf_counter()
    status = subprocess.run(command, cwd=root, stdout=subprocess.DEVNULL).returncode
    return status, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="execute every chapter in quick first")
    parser.add_argument("--jobs", default="1",
                        help="chapters --run runs at once (default 1: each chapter's time is its own; `esc book` runs "
                             "2 in quick, so its chapters' times overlap)")
    parser.add_argument("--write", action="store_true",
                        help="write the chapters' times to book/generated/chapter_times.csv (instructors' page)")
    args = parser.parse_args()
    root = find_root()
    esc = str(Path(sys.executable).parent / "esc")
    if args.run:
        status, seconds = timed([esc, "book", "--profile", "quick", "--no-progress", "--jobs", args.jobs], root)
        print(f"esc book --profile quick --jobs {args.jobs}: {seconds:.1f} s (exit {status})")
    total = 0.0
    rows = chapter_seconds(root)
    if args.write:
        print(f"wrote {write_chapter_times(root, rows, machine())}")
    print(f"{'chapter':<20} {'profile':<8} {'wall time':>10}   training   data   plotting   other")
    for stem, profile, seconds in rows:
        total += seconds or 0.0
        line = f"{stem:<20} {profile:<8} {'missing' if seconds is None else f'{seconds:9.1f}s':>10}"
        if seconds:
            shares = time_shares(root / CHAPTERS_DIR / f"{stem}.ipynb")
            line += "   " + "  ".join(f"{100 * shares[k] / seconds:6.0f} %" for k in ("training", "data", "plotting",
                                                                                      "other"))
        print(line)
    print(f"{'chapters':<29} {total:9.1f}s")
    status, seconds = timed([esc, "book", "--skip-run"], root)
    print(f"{'book build (--skip-run)':<29} {seconds:9.1f}s  exit {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
