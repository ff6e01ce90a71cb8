"""``esc run``, ``esc book`` and ``esc results``: execute chapters, build the book, print the results.

Examples::

    esc run 01_pann_transfer --profile paper -p lr 1e-4       # one run into book/chapters/01_pann_transfer.ipynb
    esc run 01_pann_transfer --folds 1-5                       # one run per fold, resumable
    esc run 03_cae --sweep batch_size 16,32,64
    esc book --profile quick                                   # every chapter, then the strict HTML build
    esc results pann_transfer --format csv
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from esclib.runner.editions import EDITIONS
from esclib.runner.spec import PROFILES, parse_folds

FORMATS = ("table", "csv", "json")


def _error(command: str, message: str) -> int:
    print(f"esc {command}: error: {message}", file=sys.stderr)
    return 2


def _enter_root(args: argparse.Namespace) -> Path:
    """The repository root (``--root`` or found upwards from here), made the working directory so that the
    results store, the kernels and the book agree on ``./results``."""
    from esclib.runner.execute import find_root

    root = Path(args.root).resolve() if args.root else find_root()
    os.chdir(root)
    return root


def _named_values(pairs: list[list[str]], option: str, split: bool = False) -> dict[str, Any]:
    from esclib.runner.execute import literal

    values: dict[str, Any] = {}
    for name, text in pairs:
        if name in values:
            raise ValueError(f"{option} {name} given twice")
        if name == "profile":
            raise ValueError(f"use --profile, not {option} profile")
        values[name] = [literal(t) for t in text.split(",")] if split else literal(text)
    return values


def _print_results(experiment: str | None, profile: str, fmt: str = "table") -> None:
    import pandas as pd

    from esclib.results import ResultsStore

    table = ResultsStore.for_profile(profile).aggregate(experiment)
    if fmt == "csv":
        print(table.to_csv(index=False), end="")
    elif fmt == "json":
        print(table.to_json(orient="records", indent=1))
    elif table.empty:
        print(f"no finished runs{f' of {experiment}' if experiment else ''} in {ResultsStore.for_profile(profile)}")
    else:
        with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 200,
                               "display.max_colwidth", 60):
            print(table.to_string(index=False))


def _profile(args: argparse.Namespace) -> str:
    """The run's profile: ``--profile``, else ``paper`` for a smoke run and ``quick`` otherwise."""
    smoke = getattr(args, "smoke", False)
    profile = args.profile or ("paper" if smoke else "quick")
    if smoke and profile != "paper":
        raise ValueError("--smoke runs the paper profile's code path; use --profile paper (or leave it out)")
    return profile


def cmd_run(args: argparse.Namespace) -> int:
    """``esc run``: validate, then execute one notebook or a sweep of it."""
    from esclib.runner.execute import CHAPTERS_DIR, check_request, execute, find_notebook, smoke_environment
    from esclib.runner.specs import get_spec
    from esclib.runner.sweep import run_sweep

    notebook = str(Path(args.notebook).resolve()) if Path(args.notebook).suffix == ".ipynb" else args.notebook
    output = Path(args.output).resolve() if args.output else None
    root = _enter_root(args)
    try:
        args.profile = _profile(args)
        source = find_notebook(notebook, root)
        params = _named_values(args.param, "-p")
        sweeps = _named_values(args.sweep, "--sweep", split=True)
        if args.folds is not None:
            folds = parse_folds(args.folds)
            if folds == "all":
                params["folds"] = "all"
            else:
                sweeps["folds"] = list(folds)
        overlap = sorted(set(params) & set(sweeps))
        if overlap:
            raise ValueError(f"parameter(s) {overlap} both set with -p and swept")
        out_dir = output or root / CHAPTERS_DIR / ("smoke" if args.smoke else "")
        if not sweeps:
            with smoke_environment(args.smoke):
                check_request(source, args.profile, params)
    except ValueError as err:
        return _error("run", str(err))
    progress = not args.no_progress
    if sweeps:
        try:
            executions = run_sweep(source, out_dir / "sweeps" / source.stem, params, sweeps, profile=args.profile,
                                   root=root, run=execute, force=args.force, progress=progress)
        except ValueError as err:
            return _error("run", str(err))
    else:
        executions = [execute(source, out_dir / f"{source.stem}.ipynb", params, profile=args.profile, root=root,
                              progress=progress, force=args.force, smoke=args.smoke)]
    for e in executions:
        state = f"done in {e.seconds:.1f} s -> {e.output}" if e.ok else f"FAILED; copy kept out of the book: {e.output}"
        print(f"[esc] {source.stem} {state}")
        if not e.ok:
            print(e.error, file=sys.stderr)
    spec = get_spec(source.stem)
    if sweeps and spec is not None and spec.experiment:
        _print_results(spec.experiment, args.profile)
    return 1 if any(not e.ok for e in executions) else 0


def cmd_smoke(args: argparse.Namespace) -> int:
    """``esc smoke``: the smoke run (:mod:`esclib.smoke`) of every chapter of the book (or of those named), ``--jobs``
    at once."""
    import time

    from esclib.runner.book import run_chapters, smoke_jobs, toc_chapters
    from esclib.runner.execute import find_notebook

    root = _enter_root(args)
    try:
        stems = [find_notebook(stem, root).stem for stem in args.notebooks or toc_chapters(root / "_toc.yml")]
    except ValueError as err:
        return _error("smoke", str(err))
    start, jobs = time.monotonic(), args.jobs or smoke_jobs()
    executions = run_chapters(root, stems, "paper", progress=not args.no_progress, force=args.force, jobs=jobs,
                              smoke=True)
    for execution in executions:
        if not execution.ok:
            print(execution.error, file=sys.stderr)
    for execution in executions:
        print(f"[esc] smoke {execution.source.stem}: {'passed' if execution.ok else 'FAILED'} in "
              f"{execution.seconds:.1f} s")
    print(f"[esc] smoke: {sum(e.ok for e in executions)} of {len(executions)} chapters passed in "
          f"{time.monotonic() - start:.1f} s ({jobs} at once; {sum(e.seconds for e in executions):.1f} s of "
          "chapter time)")
    return 0 if all(e.ok for e in executions) else 1


def cmd_book(args: argparse.Namespace) -> int:
    """``esc book``: execute every chapter and build the HTML strictly."""
    from esclib.runner.book import build_book

    toc = Path(args.toc).resolve() if args.toc else None
    root = _enter_root(args)
    return build_book(root, profile=args.profile or "quick", skip_run=args.skip_run, toc=toc,
                      progress=not args.no_progress, force=args.force, edition=args.edition, jobs=args.jobs)


def cmd_results(args: argparse.Namespace) -> int:
    """``esc results``: the aggregated results beside the studies' numbers."""
    from esclib.results.studies import EXPERIMENTS

    if args.experiment is not None and args.experiment not in EXPERIMENTS:
        return _error("results", f"unknown experiment {args.experiment!r}; experiments: {', '.join(EXPERIMENTS)}")
    _enter_root(args)
    _print_results(args.experiment, args.profile or "quick", args.format)
    return 0


class _ChapterHelp(argparse.Action):
    """``-h`` / ``--help`` of ``esc run``: the command's help, then the named chapter's parameters."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from esclib.runner.spec import spec_help
        from esclib.runner.specs import get_spec

        parser.print_help()
        notebook = getattr(namespace, "notebook", None)
        spec = get_spec(Path(notebook).stem) if notebook else None
        if spec is not None:
            print("\n" + spec_help(spec))
        elif notebook:
            print(f"\n{notebook}: no chapter spec (esclib/runner/specs/ch{Path(notebook).stem}.py)")
        parser.exit()


def _positive(text: str) -> int:
    """An integer of at least 1 (argparse type), else an error naming what was given."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 1, got {text!r}")
    return int(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``run``, ``book`` and ``results`` to the ``esc`` command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", choices=PROFILES, default=None,
                        help="quick: synthetic data, CPU, minutes; paper: the study's protocol (default: quick; "
                             "paper with --smoke)")
    common.add_argument("--root", help="repository root (default: the folder holding _config.yml, found upwards)")
    execution = argparse.ArgumentParser(add_help=False)
    execution.add_argument("--force", action="store_true",
                           help="re-compute finished results (and sweep settings) instead of reusing them")
    execution.add_argument("--no-progress", action="store_true", help="no progress bars")

    run = subparsers.add_parser("run", parents=[common, execution], help="execute a chapter notebook with papermill",
                                description="Execute notebooks/NOTEBOOK.ipynb into book/chapters/ (a sweep into "
                                            "book/chapters/sweeps/NOTEBOOK/). `esc run NOTEBOOK --help` lists "
                                            "the chapter's parameters.", add_help=False)
    run.add_argument("-h", "--help", action=_ChapterHelp, help="show this help (and NOTEBOOK's parameters) and exit")
    run.add_argument("notebook", help="chapter stem (01_pann_transfer) or path of a notebook")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="set a parameter (value read as a Python literal, else text); repeatable")
    run.add_argument("--folds", help="one run per fold: '1-5', '1,3,5' (a sweep) or 'all' (one run over all folds)")
    run.add_argument("--sweep", nargs=2, action="append", default=[], metavar=("NAME", "V1,V2"),
                     help="one run per value of parameter NAME; repeatable (runs every combination)")
    run.add_argument("--output", help="folder of the executed copies (default: book/chapters)")
    run.add_argument("--smoke", action="store_true",
                     help="a smoke run: the paper code path at full size on synthetic data in the real layout and "
                          "random-weight checkpoints, one fold, a couple of steps per run (into book/chapters/smoke; "
                          "its numbers mean nothing)")
    run.set_defaults(func=cmd_run)

    smoke = subparsers.add_parser("smoke", parents=[execution], help="the smoke run of every chapter",
                                  description="Run every chapter of _toc.yml (or those named) with `esc run --smoke`: "
                                              "the paper code path, end to end, in minutes on a CPU.")
    smoke.add_argument("notebooks", nargs="*", help="chapter stems (default: every chapter of the book)")
    smoke.add_argument("--root", help="repository root (default: the folder holding _config.yml, found upwards)")
    smoke.add_argument("--jobs", type=_positive, default=None,
                       help="chapters run at once, each on its share of the cores (default: 2, at most the cores)")
    smoke.set_defaults(func=cmd_smoke)

    book = subparsers.add_parser("book", parents=[common, execution], help="execute every chapter, then build the HTML book",
                                 description="Execute every chapter of _toc.yml and build the book strictly "
                                             "(jupyter-book -W -n) into _build/html.")
    book.add_argument("--skip-run", action="store_true", help="build from the executed copies already there")
    book.add_argument("--toc", help="table of contents to build (default: _toc.yml)")
    book.add_argument("--jobs", type=_positive, default=None,
                      help="chapters run at once, each on its share of the cores (default: 2 in quick, at most the "
                           "cores; 1 in paper)")
    # editions (issue 15): the same executed chapters, with solutions (instructor) or without (student)
    book.add_argument("--edition", choices=EDITIONS, default=EDITIONS[0],
                      help="instructor: every solution, into _build/html (default); student: no solutions, into "
                           "_build/student/html")
    book.set_defaults(func=cmd_book)

    results = subparsers.add_parser("results", parents=[common], help="print aggregated results",
                                    description="Mean ± std over folds of every metric, beside the studies' "
                                                "published numbers.")
    results.add_argument("experiment", nargs="?", help="pann_transfer, fixmatch, cae, npid or ssl (default: all)")
    results.add_argument("--format", choices=FORMATS, default="table")
    results.set_defaults(func=cmd_results)
