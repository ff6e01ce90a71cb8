"""PANN fine-tuning throughput: esclib's training step against the authors' loop, side by side in one run.

Study 003's fine-tuning step on CNN14 (5-s clips at 32 kHz, batch 32 with mixup: the loader gives 64 clips, mixed in
pairs into 32; Adam 1e-4 with amsgrad; binary cross-entropy on the sigmoid output; SpecAugment in training mode), with
a 50-class head (ESC-50). Variants:

- ``authors``: the authors' frontend (torchlibrosa's conv-STFT ``Spectrogram`` + ``LogmelFilterBank``, as their
  Cnn14), float32 -- their training loop's arithmetic;
- ``esclib fp32``: esclib's FFT frontend (the same numbers), float32;
- ``esclib bf16``: bf16 autocast; ``+ channels-last``; ``+ torch.compile``.

Each prints training clips/s and the peak GPU memory. The data loader is measured alone (clips/s of
:class:`esclib.data.torchdata.WaveformDataset` over a memory-mapped waveform cache, pinned memory, N workers) to show
whether it can feed the GPU. On a CPU every variant runs a step or two at ``--cpu-batch`` only to check the script;
the targets (issue "paper profile ... GPU throughput": >= 1,000 clips/s on an H100 / H200 and >= 2x the authors'
loop) are for CUDA.

    python benchmarks/bench_panns.py [--arch Cnn14] [--batch 32] [--steps 20] [--workers 8] [--no-compile]

torchlibrosa (the authors' frontend) is a benchmark-only dependency: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from esclib.data.torchdata import WaveformDataset
from esclib.losses import clip_bce
from esclib.models.panns import build_pann
from esclib.train.pann_pretrain import mixup_step


def authors_frontend(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with the authors' torchlibrosa frontend (conv-STFT, power 2, Slaney mel, 10 log10) in place of
    esclib's, built with their arguments (Cnn14: 1024 / 320 / 64 mels / 50-14000 Hz)."""
    from torchlibrosa.stft import LogmelFilterBank, Spectrogram

    f = model.frontend
    model.spectrogram_extractor = Spectrogram(n_fft=f.window_size, hop_length=f.hop_size, win_length=f.window_size,
                                              window="hann", center=True, pad_mode="reflect", freeze_parameters=True)
    model.logmel_extractor = LogmelFilterBank(sr=f.sample_rate, n_fft=f.window_size, n_mels=f.mel_bins, fmin=f.fmin,
                                              fmax=f.fmax, ref=1.0, amin=1e-10, top_db=None, freeze_parameters=True)
    return model


def time_steps(step: Callable[[], None], clips: int, steps: int, device: torch.device) -> float:
    """Clips per second over ``steps`` calls of ``step`` (after two warm-up calls: compilation, cudnn autotune)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return clips * steps / (time.perf_counter() - start)


def training_step(model: torch.nn.Module, waves: torch.Tensor, targets: torch.Tensor,
                  dtype: torch.dtype | None) -> Callable[[], None]:
    """One optimiser step of the fine-tuning recipe on the 2B clips ``waves`` (mixed into B)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, amsgrad=True)
    step_fn = mixup_step(clip_bce, output_key="clipwise_output", alpha=1.0)
    device = waves.device

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype) if dtype else nullcontext():
            loss, _ = step_fn(model, (waves, targets), device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def variants(arch: str, compile_: bool) -> dict[str, tuple[Callable[[], torch.nn.Module], torch.dtype | None]]:
    """The models to compare: name -> (builder, autocast dtype)."""
    def esclib(channels_last: bool = False, compiled: bool = False) -> Callable[[], torch.nn.Module]:
        def build() -> torch.nn.Module:
            model = build_pann(arch, classes_num=50).train()
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            return torch.compile(model) if compiled else model
        return build

    found = {"authors (torchlibrosa, fp32)": (lambda: authors_frontend(build_pann(arch, classes_num=50).train()),
                                              None),
             "esclib fp32": (esclib(), None), "esclib bf16": (esclib(), torch.bfloat16),
             "esclib bf16 + channels-last": (esclib(channels_last=True), torch.bfloat16)}
    if compile_:
        found["esclib bf16 + channels-last + compile"] = (esclib(True, True), torch.bfloat16)
    return found


def loader_rate(samples: int, batch: int, workers: int, pin: bool, batches: int) -> float:
    """Clips/s of the training loader alone: random crops of a memory-mapped waveform cache (twice the clip length)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "waves.npy"
        cache = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(batch * batches, 2 * samples))
        cache[:] = np.random.default_rng(0).standard_normal(cache.shape, dtype=np.float32) * 0.1
        cache.flush()
        del cache
        waves = np.load(path, mmap_mode="r")
        dataset = WaveformDataset(waves, np.zeros(len(waves), dtype=np.int64), crop_samples=samples, train=True)
        loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, pin_memory=pin,
                            persistent_workers=workers > 0, generator=torch.Generator())
        list(zip(range(2), loader))  # start the workers
        start = time.perf_counter()
        clips = sum(len(wave) for wave, _, _ in loader)
        return clips / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="Cnn14")
    parser.add_argument("--batch", type=int, default=32, help="mixed clips per step on CUDA (the loader gives 2x)")
    parser.add_argument("--cpu-batch", type=int, default=2, help="mixed clips per step on the CPU (a script check)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant on CUDA (1 on the CPU)")
    parser.add_argument("--workers", type=int, default=8, help="data-loader workers for the loader check")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    args = parser.parse_args()
    torch.manual_seed(0)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    batch, steps = (args.batch, args.steps) if cuda else (args.cpu_batch, 1)
    probe = build_pann(args.arch, classes_num=50)
    samples = int(args.seconds * probe.frontend.sample_rate)
    print(f"{args.arch} ({sum(p.numel() for p in probe.parameters()) / 1e6:.1f} M parameters), {batch} mixed clips "
          f"per step (loader: {2 * batch}) x {args.seconds:g} s at {probe.frontend.sample_rate} Hz, mixup and "
          f"SpecAugment on; torch {torch.__version__} on {torch.cuda.get_device_name() if cuda else 'CPU'}"
          f"{'' if cuda else ' (script check only: figures are not the targets)'}")
    waves = (torch.randn(2 * batch, samples) * 0.1).to(device)
    targets = F.one_hot(torch.randint(0, 50, (2 * batch,)), 50).float().to(device)
    rates = {}
    for name, (build, dtype) in variants(args.arch, compile_=cuda and not args.no_compile).items():
        try:
            model = build().to(device)
        except ImportError as err:
            print(f"  {name:40s} skipped: {err} (pip install -e '.[bench]')")
            continue
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        rates[name] = time_steps(training_step(model, waves, targets, dtype), batch, steps, device)
        peak = f", peak memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda else ""
        print(f"  {name:40s} {rates[name]:9.1f} training clips/s{peak}")
        del model
    authors = next((r for n, r in rates.items() if n.startswith("authors")), None)
    if authors:
        best = max(rates, key=rates.get)
        print(f"  fastest: {best}, {rates[best] / authors:.2f}x the authors' loop")
    needed = 2 * max(rates.values(), default=0.0)  # the loader gives two clips per mixed training clip
    for pin in (False, True) if cuda else (False,):
        rate = loader_rate(samples, 2 * batch, args.workers, pin, batches=8)
        verdict = "keeps up" if rate >= needed else "STARVES the step"
        print(f"  data loader alone ({args.workers} workers, pinned memory {pin}): {rate:9.1f} clips/s; the fastest "
              f"step needs {needed:.1f}: the loader {verdict}")


if __name__ == "__main__":
    main()
