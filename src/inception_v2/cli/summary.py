"""``inception-v2 summary``: :func:`inception_v2.summary.summarize` of a model."""

from __future__ import annotations

import argparse
import json

from inception_v2.models import list_models
from inception_v2.summary import format_summary, summarize


def configure(p: argparse.ArgumentParser) -> None:
    p.description = "Print every stage's output shape, the parameter count and the multiply-adds of a model."
    p.add_argument("--model", required=True, help=f"one of: {', '.join(list_models())}")
    p.add_argument("--image-size", type=int, default=None, help="input side (default: the model's own)")
    p.add_argument("--num-classes", type=int, default=1000, help="classifier width (default 1000)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    s = summarize(args.model, args.image_size, args.num_classes)
    print(json.dumps(s) if args.json else format_summary(s))
    return 0
