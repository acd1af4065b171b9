"""``inception-v2``: one command-line entry point, one subcommand per library function.

Each subcommand lives next to the library code it wraps, in a module that exposes
``add_parser(subparsers)``; that function declares the arguments and sets ``func`` to a
callable taking the parsed ``argparse.Namespace`` and returning an exit status. This file only
lists those modules and turns :class:`~inception_v2.errors.UsageError` into a one-line message.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from inception_v2.errors import UsageError

# Order is the order of ``inception-v2 --help``.
COMMAND_MODULES = (
    "inception_v2.summary",
    "inception_v2.data.sample",
    "inception_v2.data.prepare",
    "inception_v2.train.cli",
    "inception_v2.evaluate",
    "inception_v2.report",
    "inception_v2.predict",
    "inception_v2.export",
    "inception_v2.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inception-v2",
        description="Inception-v2/v3 and GoogLeNet-BN on PASCAL VOC 07+12 object crops.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
