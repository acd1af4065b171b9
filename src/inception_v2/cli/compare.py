"""``inception-v2 compare``: :func:`inception_v2.report.compare`."""

from __future__ import annotations

import argparse
from pathlib import Path

from inception_v2.report.compare import compare


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Print and write (markdown) the comparison table of finished run directories, and one "
        "loss/accuracy figure per run."
    )
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="where to write the table and figures")


def run(args: argparse.Namespace) -> int:
    result = compare(args.runs, args.out)
    print(result["table"])
    print(f"\nwrote {result['markdown']}")
    for f in result["figures"]:
        print(f"wrote {f}")
    return 0
