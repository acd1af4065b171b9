"""``inception-v2``: one command-line entry point, one subcommand per library function.

Each subcommand lives in a module of this package that defines ``configure(parser)`` (its
arguments) and ``run(args) -> int`` (a thin call of the library function). Only the module of
the subcommand being run is imported, so ``inception-v2 --help`` stays fast and a subcommand
loads only what it needs. Nothing outside this package imports it.

It configures logging: the library's messages (``logging.getLogger("inception_v2...")``, e.g.
a training run's epoch lines) go to stdout as plain lines, warnings and worse to stderr.

This is also the one place where exceptions become messages: :func:`main` maps the project's
errors, ``OSError`` and ``ValueError`` to one ``error: ...`` line and an exit status
(:mod:`inception_v2.errors` lists them); ``--debug`` prints the traceback too (same status).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
import traceback
from typing import List, Optional, Sequence, Tuple

from inception_v2 import errors
from inception_v2.version import __version__

# name -> (module, one-line help); the order is that of ``inception-v2 --help``.
COMMANDS = {
    "summary": ("inception_v2.cli.summary", "print stage shapes, parameters and multiply-adds of a model"),
    "make-sample": ("inception_v2.cli.sample", "write a small synthetic VOC devkit (the built-in data set)"),
    "prepare": (
        "inception_v2.cli.prepare",
        "turn VOC or an image folder into fast per-split stores (+ manifest, counts)",
    ),
    "train": ("inception_v2.cli.train", "train a model on a prepared data set (val selects best.pt; test is reported)"),
    "evaluate": ("inception_v2.cli.evaluate", "top-1/top-5/loss, per-class accuracy and figures of a trained model"),
    "compare": ("inception_v2.cli.compare", "the comparison table and curves of finished runs"),
    "predict": ("inception_v2.cli.predict", "top classes of images with probabilities"),
    "export": ("inception_v2.cli.export", "write a model for deployment, verified against PyTorch"),
    "demo": ("inception_v2.cli.demo", "make-sample -> prepare -> train two models -> compare, on CPU in minutes"),
}

DEBUG_ENV = "INCEPTION_V2_DEBUG"  # set to 1: tracebacks instead of one-line errors


class _StreamHandler(logging.StreamHandler):
    """Writes INFO records to whatever ``sys.stdout`` is when a record is emitted, WARNING and
    worse to ``sys.stderr`` (so redirected or captured streams get the messages too)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
        super().emit(record)


def configure_logging() -> None:
    """The package's log records of level INFO and above, as plain lines (once)."""
    logger = logging.getLogger("inception_v2")
    if not any(isinstance(h, _StreamHandler) for h in logger.handlers):
        handler = _StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def build_parser(command: Optional[str] = None, all_commands: bool = False) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported to add that subcommand's arguments
    (``all_commands``: every subcommand's, e.g. to document or test them all)."""
    parser = argparse.ArgumentParser(
        prog="inception-v2",
        description="Inception-v2/v3 and GoogLeNet-BN: prepare data, train, evaluate, compare, export.",
        epilog="exit status: 0 ok, 1 a check failed, 2 bad usage or input, 3 output folder in use, "
        "70 internal error, 130 interrupted. `inception-v2 COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        p = subparsers.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        if all_commands or name == command:
            module = importlib.import_module(module_name)
            module.configure(p)
            p.set_defaults(func=module.run)
    return parser


def _command(argv: Sequence[str]) -> Optional[str]:
    """The subcommand named in ``argv`` (its first non-option word), if any."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


_REPR = re.compile(r"<[^<>\n]*? (?:object )?at 0x[0-9a-fA-F]+>")


def _one_line(text: str) -> str:
    """A message as one line, without Python object reprs (``<_io.BytesIO object at 0x...>``)."""
    text = _REPR.sub("the data", text)
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip()) or "(no message)"


def _os_error(e: OSError) -> str:
    what = e.strerror or _one_line(str(e))
    if getattr(e, "filename", None) is not None:
        where = f"{e.filename}" + (f" -> {e.filename2}" if getattr(e, "filename2", None) else "")
        return f"{where}: {what[0].lower() + what[1:] if what else what}"
    return what


def describe_error(e: BaseException) -> Tuple[int, str]:
    """The exit status and the one-line message for an exception that ended a command."""
    if isinstance(e, errors.LockedError):
        return errors.EXIT_LOCKED, _one_line(str(e))
    if isinstance(e, errors.CheckFailedError):
        return errors.EXIT_CHECK_FAILED, _one_line(str(e))
    if isinstance(e, errors.InceptionV2Error):
        return errors.EXIT_USAGE, _one_line(str(e))
    if isinstance(e, OSError):
        return errors.EXIT_USAGE, _one_line(_os_error(e))
    if isinstance(e, ValueError):  # library validation (bad sizes, values, JSON...)
        return errors.EXIT_USAGE, _one_line(str(e))
    if type(e).__name__ == "DecompressionBombError":  # PIL's, raised before any pixel is decoded
        return errors.EXIT_USAGE, _one_line(f"image refused: {e}")
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError" or "can't allocate memory" in str(e):
        return errors.EXIT_USAGE, _one_line(
            f"out of memory ({_one_line(str(e))[:160]}); try a smaller --batch-size or input size"
        )
    return errors.EXIT_INTERNAL, _one_line(
        f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)"
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv: List[str] = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    configure_logging()
    try:
        status = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return errors.EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - the one place that maps errors to messages
        if debug:  # the traceback too, but the same documented status
            traceback.print_exc()
        status, message = describe_error(e)
        print(f"error: {message}", file=sys.stderr)
        return status
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
