"""Data-layer speed: decoding + resampling from disk vs an epoch from the memory-mapped waveform cache.

Writes a tree in the ESC-50 layout (``--clips`` 5-s, 44.1-kHz, 16-bit mono clips), then prints clips/s for
(1) decode + resample + fix length per clip (what every epoch would cost without a cache), (2) building the cache,
(3) one training epoch through ``clip_loader`` from the cache (0 and 2 workers), the speed-up of (3) over (1), and
the choices behind the data layer: the resampler (soxr_hq vs scipy polyphase), decoding in parallel (threads and
processes vs one process), and collating batches with numpy instead of torch.stack.

    python benchmarks/bench_data.py [--clips 200] [--rate 32000] [--root DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from math import gcd
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.signal
import soundfile as sf
import torch

from esclib.data import audio, esc50
from esclib.data.cache import cached_waveforms
from esclib.data.torchdata import clip_loader, collate

SOURCE_RATE = 44100


def write_tree(root: Path, clips: int) -> None:
    """``clips`` band-limited noise clips in the ESC-50 layout (5 folds, 10 classes)."""
    rng = np.random.default_rng(0)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "meta").mkdir(exist_ok=True)
    rows = []
    b, a = scipy.signal.butter(4, 0.3)
    for i in range(clips):
        fold, target = i % 5 + 1, i % 10
        name = f"{fold}-{100000 + i}-A-{target}.wav"
        wave = scipy.signal.lfilter(b, a, rng.standard_normal(5 * SOURCE_RATE)) * 0.1
        sf.write(root / "audio" / name, wave.astype(np.float32), SOURCE_RATE, subtype="PCM_16")
        rows.append((name, fold, target, f"class{target}", True, 100000 + i, "A"))
    pd.DataFrame(rows, columns=list(esc50.COLUMNS)).to_csv(root / "meta" / "esc50.csv", index=False)


def _decode(path: str, rate: int) -> np.ndarray:
    return audio.fix_length(audio.load_audio(path, rate), 5 * rate)


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8.1f} clips/s"


def timed(function) -> float:
    """Seconds one call of ``function()`` takes."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--rate", type=int, default=32000, help="model sample rate to resample to")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--root", type=Path, default=None, help="where to write the tree (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.root or Path(scratch) / "ESC-50"
        write_tree(root, args.clips)
        clips = esc50.load(root)
        paths, n = clips.paths, len(clips)
        _decode(paths[0], args.rate)  # warm up librosa/soxr
        print(f"{n} clips of 5 s at {SOURCE_RATE} Hz (16-bit WAV) -> {args.rate} Hz mono; 2-core figures vary")

        decode = timed(lambda: [_decode(p, args.rate) for p in paths])
        print(f"decode + resample from disk      {_rate(n, decode)}")
        for workers in (2,):
            with ThreadPoolExecutor(workers) as pool:
                print(f"  ... {workers} threads                 "
                      f"{_rate(n, timed(lambda: list(pool.map(_decode, paths, [args.rate] * n))))}")
            with ProcessPoolExecutor(workers) as pool:
                list(pool.map(_decode, paths[:workers], [args.rate] * workers))
                print(f"  ... {workers} processes               "
                      f"{_rate(n, timed(lambda: list(pool.map(_decode, paths, [args.rate] * n, chunksize=8))))}")

        cache_dir = Path(scratch) / "cache"
        build = timed(lambda: cached_waveforms(clips, args.rate, cache_dir=cache_dir, progress=False))
        print(f"cache build (decode + write)     {_rate(n, build)}")
        loader = clip_loader(clips, args.rate, train=True, batch_size=args.batch, crop_seconds=4.0,
                             cache_dir=str(cache_dir), progress=False, drop_last=False)
        epoch = min(timed(lambda: [batch for batch in loader]) for _ in range(3))
        print(f"cached epoch, DataLoader         {_rate(n, epoch)}  (batch {args.batch}, random 4-s crops)")
        workers = clip_loader(clips, args.rate, train=True, batch_size=args.batch, crop_seconds=4.0, num_workers=2,
                              cache_dir=str(cache_dir), progress=False, drop_last=False)
        print(f"  ... 2 workers                  "
              f"{_rate(n, min(timed(lambda: [batch for batch in workers]) for _ in range(3)))}")
        print(f"speed-up of a cached epoch over decoding: {decode / epoch:.1f}x (target >= 10x)")

        wave = audio.to_mono(sf.read(paths[0], dtype="float32", always_2d=True)[0])
        g = gcd(SOURCE_RATE, args.rate)
        soxr = timed(lambda: [audio.resample(wave, SOURCE_RATE, args.rate) for _ in range(20)]) / 20
        poly = timed(lambda: [scipy.signal.resample_poly(wave, args.rate // g, SOURCE_RATE // g)
                              for _ in range(20)]) / 20
        print(f"resample one clip: librosa soxr_hq {soxr * 1e3:.2f} ms, scipy resample_poly {poly * 1e3:.2f} ms")

        batch = [torch.from_numpy(np.array(row)) for row in cached_waveforms(clips, args.rate, cache_dir=cache_dir,
                                                                             progress=False)[:args.batch]]
        stack = min(timed(lambda: torch.stack(batch)) for _ in range(5))
        numpy_stack = min(timed(lambda: collate([(wave,) for wave in batch])) for _ in range(5))
        print(f"collate a batch: torch.stack ({torch.get_num_threads()} threads) {stack * 1e3:.1f} ms, "
              f"numpy.stack (esclib's collate) {numpy_stack * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
