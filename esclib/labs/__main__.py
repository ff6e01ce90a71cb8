"""``python -m esclib.labs``: insert a chapter's lab into its notebook, or list the labs.

    python -m esclib.labs insert notebooks/02_fixmatch.ipynb                  # replaces its esc-lab cells, or appends
    python -m esclib.labs insert notebooks/03_cae.ipynb --before "## What we learned"
    python -m esclib.labs summary
"""

from __future__ import annotations

import argparse
import sys

from esclib.labs import insert_lab, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m esclib.labs", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    insert = commands.add_parser("insert", help="insert a chapter's lab cells into a notebook")
    insert.add_argument("notebook", help="chapter notebook, e.g. notebooks/02_fixmatch.ipynb")
    insert.add_argument("--chapter", help="lab to insert (default: the notebook's stem)")
    insert.add_argument("--before", help="insert before the first markdown cell starting with this text")
    commands.add_parser("summary", help="exercises and checks per chapter")
    args = parser.parse_args(argv)
    if args.command == "summary":
        print(summary().to_string(index=False))
        return 0
    try:
        path = insert_lab(args.notebook, args.chapter, before=args.before)
    except (ValueError, FileNotFoundError) as error:
        print(f"python -m esclib.labs insert: error: {error}", file=sys.stderr)
        return 2
    print(f"lab inserted into {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
