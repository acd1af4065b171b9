"""``inception-v2 evaluate``: a checkpoint's top-1, top-5, loss, per-class accuracy and confusion
matrix on a split, through the deployment path (:func:`inception_v2.deploy.inference.prepare_for_inference`).

Preprocessing is the checkpoint's own eval transform (its trained input and resize size).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Optional

from inception_v2.data import VOCCrops, eval_transform, make_loader
from inception_v2.errors import UsageError
from inception_v2.deploy.inference import prepare_for_inference
from inception_v2.report.figures import plot_confusion
from inception_v2.deploy.load import load_model
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
