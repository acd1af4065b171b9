"""``inception-v2 evaluate``: :func:`inception_v2.evaluate.evaluate_checkpoint`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from inception_v2.evaluate import evaluate_checkpoint, format_result


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Evaluate a checkpoint on the test (or val) split with its own deterministic preprocessing, "
        "through the deployment path (BatchNorm folded). Writes a confusion-matrix PNG."
    )
    p.add_argument("--checkpoint", required=True, type=Path, metavar="F", help="a .pt written by train")
    p.add_argument("--data", required=True, type=Path, metavar="DIR", help="the prepared directory")
    p.add_argument("--split", choices=["test", "val"], default="test")
    p.add_argument("--tta", choices=["none", "flip"], default="none", help="flip: average with the mirrored image")
    p.add_argument("--workers", type=int, default=2, help="data-loading processes (2)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--confusion-png", type=Path, default=None,
                   help="where to write the figure (default: next to the checkpoint)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    r = evaluate_checkpoint(
        args.checkpoint, args.data, split=args.split, tta=args.tta, workers=args.workers,
        batch_size=args.batch_size, device=args.device, confusion_png=args.confusion_png,
        progress=not args.json,
    )
    print(json.dumps(r) if args.json else format_result(r))
    return 0
