"""``inception-v2 evaluate``: a checkpoint's top-1, top-5, loss, per-class accuracy and confusion
matrix on a split, through the deployment path (:func:`inception_v2.inference.prepare_for_inference`).

Preprocessing is the checkpoint's own eval transform (its trained input and resize size).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Dict, Optional

from inception_v2.data import VOCCrops, eval_transform, make_loader
from inception_v2.errors import UsageError
from inception_v2.inference import prepare_for_inference
from inception_v2.report import plot_confusion
from inception_v2.train.checkpoint import load_model
from inception_v2.train.data import resolve_prepared
from inception_v2.train.distributed import DistInfo, resolve_device
from inception_v2.train.engine import evaluate


def evaluate_checkpoint(
    checkpoint: Path,
    data: Path,
    split: str = "test",
    tta: str = "none",
    workers: int = 2,
    batch_size: int = 64,
    device: str = "auto",
    confusion_png: Optional[Path] = None,
    progress: bool = True,
) -> Dict[str, Any]:
    """Evaluate ``checkpoint`` on ``split`` of ``data`` (a prepared directory or a VOC root).

    Returns ``acc1``, ``acc5``, ``loss`` (mean cross-entropy), ``per_class`` (class -> accuracy,
    ``None`` for a class with no sample), ``confusion`` (rows = true class) and
    ``confusion_png``, the figure written (default: next to the checkpoint).
    """
    if split not in ("test", "val"):
        raise UsageError(f"--split must be test or val, got {split!r}")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {batch_size}")
    checkpoint = Path(checkpoint)
    dev = resolve_device(device, DistInfo())
    model = load_model(checkpoint)
    prepared = resolve_prepared(str(data), str(checkpoint.parent))
    dataset = VOCCrops(prepared, split, eval_transform(model.data_config, normalize=False))
    if len(dataset) == 0:
        raise UsageError(f"{prepared}: the {split} split is empty")
    if list(dataset.classes) != list(model.classes):
        raise UsageError(f"{checkpoint} was trained on other classes than those of {prepared}")
    loader = make_loader(dataset, batch_size, shuffle=False, workers=workers, pin_memory=dev.type == "cuda")
    runner = prepare_for_inference(model, dev)
    result = evaluate(runner, loader, device=dev, num_classes=model.num_classes, tta=tta,
                      data_cfg=model.data_config, progress=progress, desc=f"evaluate {split}")  # fmt: skip
    per_class = {c: (None if math.isnan(a) else a) for c, a in zip(model.classes, result.per_class)}
    png = Path(confusion_png) if confusion_png else checkpoint.parent / f"confusion-{checkpoint.stem}-{split}.png"
    title = f"{model.name} ({checkpoint.name}) on {split}: top-1 {result.acc1:.2%}"
    plot_confusion(result.confusion.tolist(), model.classes, png, title)
    return {
        "checkpoint": str(checkpoint),
        "model": model.name,
        "split": split,
        "tta": tta,
        "images": result.images,
        "image_size": model.data_config.input_size,
        "acc1": result.acc1,
        "acc5": result.acc5,
        "loss": result.loss,
        "per_class": per_class,
        "confusion": result.confusion.tolist(),
        "confusion_png": str(png),
    }


def format_result(r: Dict[str, Any]) -> str:
    lines = [
        f"{r['model']} ({r['checkpoint']}) on {r['split']}, {r['images']} images at {r['image_size']}px, tta {r['tta']}",
        f"top-1 {r['acc1']:.2%}   top-5 {r['acc5']:.2%}   loss {r['loss']:.4f}",
        "",
        f"{'class':<12} {'accuracy':>9} {'images':>7}",
    ]
    for (name, acc), row in zip(r["per_class"].items(), r["confusion"]):
        lines.append(f"{name:<12} {'-' if acc is None else f'{acc:.2%}':>9} {sum(row):>7}")
    lines.append(f"\nconfusion matrix: {r['confusion_png']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    r = evaluate_checkpoint(
        args.checkpoint, args.data, split=args.split, tta=args.tta, workers=args.workers,
        batch_size=args.batch_size, device=args.device, confusion_png=args.confusion_png,
        progress=not args.json,
    )  # fmt: skip
    if args.json:
        print(json.dumps(r))
    else:
        print(format_result(r))
    return 0


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate", help="top-1/top-5/loss, per-class accuracy and a confusion matrix of a checkpoint",
        description="Evaluate a checkpoint on the test (or val) split with its own deterministic "
        "preprocessing, through the deployment path (BatchNorm folded). Writes a confusion-matrix PNG.",
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
    p.set_defaults(func=run)  # fmt: skip
