"""CPU time of a PANN training step and of an evaluation pass, with the convolution weights contiguous or
channels-last: the figures behind ``CnnPann.channels_last`` (:mod:`esclib.models.panns.cnn`; on for the quick
profile's ``CnnMini16k``, whose narrow blocks run a third faster that way on 2 cores, off for the released
architectures, whose training step does not gain on a CPU).

    python benchmarks/bench_memory_format.py [--threads 2] [--arch CnnMini16k Cnn14] [--steps 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from esclib.models.panns import build_pann

#: (training clips, evaluation clips, seconds per clip) of each architecture's quick or smoke use
SHAPES = {"CnnMini16k": (32, 32, 2.0), "Cnn14": (4, 8, 5.0), "Cnn14_16k": (4, 8, 5.0)}


def seconds_per_call(arch: str, channels_last: bool, train: bool, steps: int) -> float:
    """Mean wall seconds of ``steps`` forward(+backward) passes after one warm-up."""
    torch.manual_seed(0)
    model = build_pann(arch, classes_num=50)
    model = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    model.train(train)
    train_clips, eval_clips, seconds = SHAPES.get(arch, (4, 8, 5.0))
    x = torch.randn(train_clips if train else eval_clips, round(seconds * model.frontend.sample_rate))
    timings = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        if train:
            model(x)["clipwise_output"].mean().backward()
        else:
            with torch.no_grad():
                model(x)
        timings.append(time.perf_counter() - start)
    return sum(timings[1:]) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--arch", nargs="+", default=["CnnMini16k", "Cnn14"])
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    for arch in args.arch:
        train_clips, eval_clips, seconds = SHAPES.get(arch, (4, 8, 5.0))
        for train, clips in ((True, train_clips), (False, eval_clips)):
            contiguous = seconds_per_call(arch, False, train, args.steps)
            channels_last = seconds_per_call(arch, True, train, args.steps)
            print(f"{arch:11s} {'train step' if train else 'evaluation'} ({clips} x {seconds:g} s): contiguous "
                  f"{contiguous:.3f} s, channels-last {channels_last:.3f} s ({contiguous / channels_last:.2f}x)")


if __name__ == "__main__":
    main()
