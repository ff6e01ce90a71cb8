"""PANN fine-tuning speed: training clips/s of CNN14 on 5-s clips at 32 kHz (batch 32), forward + backward + Adam.

The study-003 fine-tuning step (Adam lr 1e-4, amsgrad; binary cross-entropy on the sigmoid output; SpecAugment in
training mode when :mod:`esclib.augment.specaugment` is installed) with a 50-class head (ESC-50). On the CPU a few
steps in float32; on CUDA float32 and bf16 autocast, with the peak memory ``torch.cuda.max_memory_allocated``.

    python benchmarks/bench_panns.py [--arch Cnn14] [--batch 32] [--cpu-steps 2] [--cuda-steps 20]
"""

from __future__ import annotations

import argparse
import importlib.util
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from bench_features import clips_per_second  # benchmarks/ is on sys.path when run as a script

from esclib.models.panns import build_pann


def train_steps(model: torch.nn.Module, waves: torch.Tensor, targets: torch.Tensor, steps: int,
                autocast_dtype: torch.dtype | None) -> float:
    """Clips per second of ``steps`` training steps (after one warm-up step)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, amsgrad=True)
    device = waves.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step() -> None:
        context = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else nullcontext()
        with context:
            scores = model(waves)["clipwise_output"]
        loss = F.binary_cross_entropy(scores.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return clips_per_second(step, waves.shape[0], steps, sync)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="Cnn14")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--cpu-steps", type=int, default=2)
    parser.add_argument("--cuda-steps", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    spec_augment = importlib.util.find_spec("esclib.augment.specaugment") is not None
    model = build_pann(args.arch, classes_num=50, spec_augment=spec_augment).train()
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.arch} ({params / 1e6:.1f} M parameters), batch {args.batch} x {args.seconds:g} s at "
          f"{model.frontend.sample_rate} Hz, SpecAugment {'on' if spec_augment else 'off (module missing)'}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    samples = int(args.seconds * model.frontend.sample_rate)
    targets = F.one_hot(torch.randint(0, 50, (args.batch,)), 50).float()
    waves = torch.randn(args.batch, samples) * 0.1
    rate = train_steps(model, waves, targets, args.cpu_steps, None)
    print(f"  cpu float32: {rate:8.2f} training clips/s ({args.cpu_steps} steps)")
    if not torch.cuda.is_available():
        print("  cuda: not available")
        return
    model = model.cuda()
    for name, dtype in (("float32", None), ("bf16 autocast", torch.bfloat16)):
        torch.cuda.reset_peak_memory_stats()
        rate = train_steps(model, waves.cuda(), targets.cuda(), args.cuda_steps, dtype)
        peak = torch.cuda.max_memory_allocated() / 2**30
        print(f"  cuda {name}: {rate:8.1f} training clips/s, peak memory {peak:.2f} GiB ({args.cuda_steps} steps)")


if __name__ == "__main__":
    main()
