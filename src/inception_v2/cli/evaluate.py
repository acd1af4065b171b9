"""``inception-v2 evaluate``: :func:`inception_v2.evaluate.evaluate_checkpoint`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from inception_v2.cli.predict import TRUST_FILE_HELP, add_runtime_arguments
from inception_v2.deploy.runtime import RunOptions
from inception_v2.evaluate import DEFAULT_MISTAKES, evaluate_checkpoint, format_result


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Evaluate a trained model on the test (or val) split with its own deterministic preprocessing: "
        "a checkpoint or release folder (through the deployment path, BatchNorm folded), or an exported "
        ".onnx (float or INT8), .pt2 or (with --trust-file) TorchScript file. --out DIR writes the JSON and figures."
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        type=Path,
        metavar="F",
        help="a .pt from train, a release folder, or a .onnx / .pt2 / TorchScript (--trust-file) file from export",
    )
    p.add_argument("--data", required=True, type=Path, metavar="DIR", help="the prepared directory")
    p.add_argument("--split", choices=["test", "val"], default="test")
    p.add_argument("--tta", choices=["none", "flip"], default="none", help="flip: average with the mirrored image")
    p.add_argument("--workers", type=int, default=2, help="data-loading processes (2)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="write evaluation-SPLIT.json, confusion-SPLIT.png, per-class-SPLIT.png and mistakes-SPLIT.png here",
    )
    p.add_argument(
        "--mistakes",
        type=int,
        default=DEFAULT_MISTAKES,
        metavar="K",
        help=f"how many of the most confident mistakes to list and show ({DEFAULT_MISTAKES})",
    )
    p.add_argument(
        "--confusion-png",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the confusion matrix alone to this file",
    )
    add_runtime_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--trust-file", action="store_true", help=TRUST_FILE_HELP)


def run(args: argparse.Namespace) -> int:
    r = evaluate_checkpoint(
        args.checkpoint,
        args.data,
        split=args.split,
        tta=args.tta,
        workers=args.workers,
        batch_size=args.batch_size,
        device=args.device,
        confusion_png=args.confusion_png,
        progress=not args.json,
        out=args.out,
        mistakes=args.mistakes,
        trust_file=args.trust_file,
        run=RunOptions(args.runtime, args.precision),
    )
    print(json.dumps(r) if args.json else format_result(r))
    return 0
