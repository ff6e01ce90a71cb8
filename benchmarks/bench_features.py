"""Feature speed: log-mel clips/s for 5-s clips at 32 kHz (batch 32), on the CPU and on CUDA when present.

Compares :class:`esclib.features.LogMel` (torch.stft + Slaney mel, the PANN frontend) with librosa clip by clip,
and times the ESResNet 3-band input and the CAE input on 5-s clips at 44.1 kHz.

    python benchmarks/bench_features.py [--batch 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import librosa
import torch

from esclib.features import CAEInput, LogMel, ThreeBandSpectrogram


def clips_per_second(function: Callable[[], object], clips: int, repeats: int, sync: Callable[[], None]) -> float:
    """Clips per second of ``function`` (one warm-up call, then the mean of ``repeats`` calls)."""
    function()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    sync()
    return clips * repeats / (time.perf_counter() - start)


def devices() -> list[tuple[torch.device, Callable[[], None]]]:
    """The CPU, and the CUDA device when there is one, each with its synchronisation call."""
    found = [(torch.device("cpu"), lambda: None)]
    if torch.cuda.is_available():
        found.append((torch.device("cuda"), torch.cuda.synchronize))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch {args.batch}, 5-s clips")

    waves32 = torch.randn(args.batch, 5 * 32000) * 0.1
    numpy32 = waves32.numpy()
    rate = clips_per_second(lambda: [librosa.power_to_db(librosa.feature.melspectrogram(
        y=y, sr=32000, n_fft=1024, hop_length=320, n_mels=64, fmin=50, fmax=14000, pad_mode="reflect"),
        top_db=None) for y in numpy32], args.batch, 1, lambda: None)
    print(f"  librosa log-mel, 32 kHz, clip by clip (cpu): {rate:9.1f} clips/s")

    waves44 = torch.randn(args.batch, 5 * 44100) * 0.1
    features = (("LogMel 32 kHz 1024/320/64 (PANN)", LogMel(32000, 1024, 320, 64, 50, 14000), waves32),
                ("ThreeBandSpectrogram 44.1 kHz (ESResNet)", ThreeBandSpectrogram(), waves44),
                ("CAEInput 44.1 kHz 28 x 36", CAEInput(), waves44))
    for device, sync in devices():
        for name, module, waves in features:
            module, batch = module.to(device), waves.to(device)
            with torch.no_grad():
                rate = clips_per_second(lambda: module(batch), args.batch, args.repeats, sync)
            print(f"  {name} ({device.type}): {rate:9.1f} clips/s")


if __name__ == "__main__":
    main()
