"""The ``esc`` command: one entry point, one sub-module per command group.

Each sub-module defines ``register(subparsers)`` that adds its commands and sets ``func`` on each parser;
``func(args)`` returns the process exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: command-group modules, in the order their commands are listed by ``esc --help``
GROUPS = ("data", "run", "pann")


def build_parser() -> argparse.ArgumentParser:
    """The ``esc`` argument parser with every command group registered."""
    parser = argparse.ArgumentParser(prog="esc", description="esc-book: datasets, runs, results and the book.")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        importlib.import_module(f"esclib.cli.{group}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``esc`` command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
