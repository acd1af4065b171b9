"""``inception-v2 predict``: :func:`inception_v2.predict.predict`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from inception_v2.deploy.runtime import PRECISIONS, RUNTIMES, RunOptions
from inception_v2.predict import parse_box, predict

TRUST_FILE_HELP = (
    "load a TorchScript --checkpoint: it runs its own code, so only a file from someone you trust "
    "(refused without this flag; other kinds never run code from the file)"
)


def add_runtime_arguments(p: argparse.ArgumentParser) -> None:
    """``--runtime`` and ``--precision`` (shared with ``evaluate``)."""
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="auto",
        help="auto (default: the fastest installed runtime for the file on this host, timed once and cached), "
        "torch, onnxruntime or openvino",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="default: the file's own (int8 for an INT8 file, else fp32); bf16 needs AMX or AVX-512 BF16",
    )


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Classify images (or a box in them) with a checkpoint, a release folder, or an exported "
        ".onnx (float or INT8), .pt2 or (with --trust-file) TorchScript file."
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        type=Path,
        metavar="F",
        help="a .pt from train, a release folder, or a .onnx / .pt2 / TorchScript (--trust-file) file from export",
    )
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument(
        "--box",
        default=None,
        metavar="x1,y1,x2,y2",
        help="classify this box of every image (1-based, inclusive pixel coordinates, as VOC)",
    )
    p.add_argument("--topk", type=int, default=5, help="how many classes to print (5)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    add_runtime_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.add_argument("--trust-file", action="store_true", help=TRUST_FILE_HELP)


def run(args: argparse.Namespace) -> int:
    box = parse_box(args.box) if args.box else None
    results = predict(
        args.checkpoint,
        args.images,
        box=box,
        topk=args.topk,
        device=args.device,
        run=RunOptions(args.runtime, args.precision),
        trust_file=args.trust_file,
    )
    if args.json:
        print(json.dumps(results))
        return 0
    if results:
        r = results[0]
        print(f"runtime: {r['runtime']} {r['precision']} ({r['runtime_choice']})")
    for r in results:
        where = f" [box {','.join(map(str, r['box']))}]" if r["box"] else ""
        print(f"{r['image']}{where}")
        for t in r["top"]:
            print(f"  {t['class']:<12} {t['probability']:7.2%}")
    return 0
