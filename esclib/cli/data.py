"""``esc data``: download the real datasets, verify a dataset folder, generate a synthetic one.

    esc data download NAME [--root DIR] [--keep-archives]
    esc data verify NAME [--root DIR] [--level exists|header|decode]
    esc data synth NAME --root DIR [--size tiny|smoke|quick|full] [--seed N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from esclib.data import registry
from esclib.data.audio import CHECK_LEVELS


def _download(args: argparse.Namespace) -> int:
    from esclib.data.download import DownloadError, download_dataset

    if args.root is not None and args.root.exists() and not args.root.is_dir():
        print(f"error: --root {args.root} is a file; expected the dataset folder (created if absent)", file=sys.stderr)
        return 2
    try:
        root = download_dataset(args.name, args.root, keep_archives=args.keep_archives)
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.name} is in {root}; check it with `esc data verify {args.name} --root {root}`")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from esclib.data.verify import verify_dataset

    report = verify_dataset(args.name, args.root, level=args.level)
    if report.error is not None:
        print(f"error: {report.error}", file=sys.stderr)
        return 2
    print(report.format())
    return 0 if report.ok else 1


def _synth(args: argparse.Namespace) -> int:
    from esclib.data import synth

    if args.name not in synth.SIZES or args.size not in synth.SIZES[args.name]:
        offered = {name: tuple(sizes) for name, sizes in synth.SIZES.items()}
        print(f"error: no synthetic {args.name!r} of --size {args.size}; offered (dataset: sizes): {offered}",
              file=sys.stderr)
        return 2
    print(synth.generate(args.name, args.root, size=args.size, seed=args.seed))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group to the ``esc`` parser."""
    parser = subparsers.add_parser("data", help="datasets: download, verify, generate synthetic ones")
    commands = parser.add_subparsers(dest="data_command", required=True)
    downloadable = [n for n in registry.names() if registry.spec(n).remotes is not None]

    download = commands.add_parser("download", help="download, check (md5) and unpack a dataset; resumes")
    download.add_argument("name", choices=downloadable)
    download.add_argument("--root", type=Path, default=None, help="dataset folder (default: under $ESCLIB_DATA)")
    download.add_argument("--keep-archives", action="store_true", help="keep the archives after unpacking")
    download.set_defaults(func=_download)

    check = commands.add_parser("verify", help="clips per fold and class, every missing or unreadable file and "
                                               "every file the dataset does not list; exit status 1 when there is "
                                               "a problem, 2 when the dataset or its metadata cannot be read")
    check.add_argument("name", choices=registry.names())
    check.add_argument("--root", type=Path, default=None, help="dataset folder (default: under $ESCLIB_DATA)")
    check.add_argument("--level", choices=CHECK_LEVELS, default="decode",
                       help="exists: files present; header: headers readable and complete; decode: whole files "
                            "decode (default)")
    check.set_defaults(func=_verify)

    synth = commands.add_parser("synth", help="generate a synthetic dataset in the real dataset's layout")
    synth.add_argument("name", help="esc50, us8k, escus, audioset-mini or dcase2013")
    synth.add_argument("--root", type=Path, required=True, help="folder to write the dataset into")
    synth.add_argument("--size", default="quick", choices=("tiny", "smoke", "quick", "full"),
                       help="tiny (tests); smoke: the real classes, folds, sample rate, clip length and channels with "
                            "a clip or two per class and fold (paper-profile smoke runs); quick (default): the quick "
                            "profile's world; full: the real dataset's order of size (esclib.data.synth.SIZES)")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=_synth)
