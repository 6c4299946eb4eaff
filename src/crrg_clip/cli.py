"""Command line: ``python -m crrg_clip provenance results/table1.csv --row RRG-opt --metric BLEU4``."""

from __future__ import annotations

import argparse
import sys

from . import provenance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crrg-clip")
    commands = parser.add_subparsers(dest="command", required=True)
    explain = commands.add_parser(
        "provenance",
        help="print the chain behind a table number and verify every sha256 on the way")
    explain.add_argument("table", help="results/table1.csv or results/table2.csv")
    explain.add_argument("--row", help="the table's model name, e.g. RRG-opt (default: every reproduced row)")
    explain.add_argument("--metric", help="a metric column, e.g. BLEU4 (default: all)")
    args = parser.parse_args(argv)
    if args.command == "provenance":
        return provenance.explain(args.table, row=args.row, metric=args.metric)
    return 2


if __name__ == "__main__":
    sys.exit(main())
