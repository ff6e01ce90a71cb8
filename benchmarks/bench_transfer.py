"""Speed of chapter 01's pieces (study 003 transfer): one training step of a PANN under the authors' recipe (mixup of
pairs, SpecAugment, Adam) and embedding extraction, per architecture and clip length; with ``--chapter``, the
chapter's own stages in the quick profile (the recorded pre-training, the log-mel and embedding caches, one run of
each strategy on fold 1 with the spec's quick recipe).

Prints wall and CPU seconds (CPU / wall > 1 means several cores worked; on a loaded machine the CPU time is the
better guide to an idle one). Usage::

    python benchmarks/bench_transfer.py [--arch CnnMini16k] [--seconds 2 3] [--batch 32] [--repeats 3]
    python benchmarks/bench_transfer.py --chapter [-p NAME VALUE ...]   # uses $ESCLIB_CACHE / $ESCLIB_RESULTS
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from esclib.losses import soft_cross_entropy
from esclib.models.panns import build_pann
from esclib.models.transfer import TransferModel
from esclib.train.pann_pretrain import mixup_step


def _clock() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), usage.ru_utime + usage.ru_stime


def _timed(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    wall0, cpu0 = _clock()
    for _ in range(repeats):
        fn()
    wall1, cpu1 = _clock()
    return (wall1 - wall0) / repeats, (cpu1 - cpu0) / repeats


def chapter_stages(params: dict[str, str]) -> None:
    """Time chapter 01's stages in the quick profile (a stage already cached is reused, and shows as such)."""
    from esclib.data.sources import load_dataset
    from esclib.experiments import pann_transfer as pt
    from esclib.results import ResultsStore
    from esclib.runner.spec import resolve
    from esclib.runner.specs.ch01_pann_transfer import SPEC

    resolved = resolve(SPEC, "quick", **params)
    recipe = pt.TransferRecipe.from_config(resolved)
    print(f"chapter 01 stages, {torch.get_num_threads()} torch threads; {recipe}")
    start = _clock()

    def lap(label: str) -> None:
        nonlocal start
        now = _clock()
        print(f"  {label}: {now[0] - start[0]:.1f} s wall, {now[1] - start[1]:.1f} s CPU", flush=True)
        start = now

    clips = load_dataset(resolved["dataset"], "quick", resolved["data_root"], seed=resolved["seed"])
    experiment = pt.TransferExperiment(clips, resolved["checkpoint"], store=ResultsStore.for_profile("quick"),
                                       seed=resolved["seed"], progress=False)
    lap("data and pre-training (reused when recorded)")
    experiment.logmels
    lap(f"log-mels of {len(clips)} clips")
    experiment.embeddings
    lap(f"embeddings of {len(clips)} clips")
    for strategy in pt.STRATEGIES:
        result = experiment.run(strategy, recipe, experiment.split(1, recipe.selection))
        lap(f"{strategy} on fold 1 ({recipe.steps} steps; accuracy {result['metrics']['accuracy']:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="CnnMini16k")
    parser.add_argument("--seconds", type=float, nargs="+", default=[2.0, 3.0])
    parser.add_argument("--batch", type=int, default=32, help="mixed clips per step (twice as many are loaded)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chapter", action="store_true", help="time the chapter's stages instead (quick profile)")
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a chapter parameter for --chapter")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.chapter:
        chapter_stages(dict(args.p))
        return
    print(f"{args.arch}, batch {args.batch} mixed clips, {torch.get_num_threads()} torch threads")
    for strategy in ("fine-tune", "freeze_l1"):
        model = TransferModel(build_pann(args.arch, classes_num=10), 10, strategy).train()
        rate = model.base.frontend.sample_rate
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=1e-4, amsgrad=True)
        step = mixup_step(soft_cross_entropy, alpha=1.0)
        for seconds in args.seconds:
            x = 0.1 * torch.randn(2 * args.batch, round(seconds * rate))
            batch = (x, torch.arange(len(x)) % 10, torch.arange(len(x)))

            def train_step() -> None:
                loss, _ = step(model, batch, torch.device("cpu"))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

            wall, cpu = _timed(train_step, args.repeats)
            print(f"  {strategy:<10} train step, {seconds:g} s clips: {wall:.2f} s wall, {cpu:.2f} s CPU "
                  f"({wall / args.batch * 1000:.0f} ms wall per mixed clip)")
    base = build_pann(args.arch, classes_num=10)
    for seconds in args.seconds:
        x = 0.1 * torch.randn(args.batch, round(seconds * base.frontend.sample_rate))
        wall, cpu = _timed(lambda: base.embed(x), args.repeats)
        print(f"  embeddings of {args.batch} clips of {seconds:g} s: {wall:.2f} s wall, {cpu:.2f} s CPU "
              f"({wall / args.batch * 1000:.1f} ms per clip)")


if __name__ == "__main__":
    main()
