"""``inception-v2 evaluate``: a trained model's top-1, top-5, loss, per-class accuracy, confusion
matrix and most confident mistakes on a split, and with ``out`` the figures of them.

The model is any deployed form of it (:func:`inception_v2.deploy.runners.load_classifier`): a
training checkpoint or a release folder (run through
:func:`~inception_v2.deploy.inference.prepare_for_inference`: BatchNorm folded, channels_last,
bf16 on CUDA), or an exported ``.onnx`` (float or INT8), ``.pt2`` or TorchScript file.
Preprocessing is the model's own eval transform (its trained input and resize size, from the
checkpoint or the file's metadata); the class names must be the prepared folder's.

``out`` (a folder, owned by this process while it writes) receives, for split ``S``:
``evaluation-S.json`` (what :func:`evaluate_checkpoint` returns), ``confusion-S.png`` (the
confusion matrix as a heatmap with class names), ``per-class-S.png`` (accuracy of every class)
and ``mistakes-S.png`` (the most confident mistakes: the image the model saw, true and predicted
class, confidence). See ``docs/deployment.md``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F
from tqdm import tqdm

from inception_v2.atomic import write_json
from inception_v2.data import VOCCrops, eval_transform, make_loader, normalize
from inception_v2.deploy.runners import load_classifier
from inception_v2.deploy.runtime import DEFAULT_RUN, RunOptions
from inception_v2.errors import UsageError
from inception_v2.locking import exclusive
from inception_v2.train.data import resolve_prepared
from inception_v2.train.metrics import confusion_matrix, per_class_accuracy, topk_correct

DEFAULT_MISTAKES = 16  # images in the gallery of confident mistakes


def _scores(runner: Any, loader: torch.utils.data.DataLoader, tta: str, progress: bool, desc: str) -> Dict[str, Any]:
    """Sums over the split (loss, top-1, top-5, confusion) and, per image in loader order, the
    predicted class and its softmax probability."""
    cfg, device, num_classes = runner.data_config, runner.device, len(runner.classes)
    loss_sum, top1, top5, n = 0.0, 0, 0, 0
    cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    preds: List[torch.Tensor] = []
    confs: List[torch.Tensor] = []
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, disable=not progress or None, dynamic_ncols=True)
    try:
        with torch.inference_mode():
            for x, y in bar:
                x = normalize(x.to(device, non_blocking=True), cfg)
                logits = runner(x)
                if tta == "flip":
                    logits = (logits + runner(torch.flip(x, dims=[3]))) / 2
                logits, y = logits.float().cpu(), y.cpu()
                if logits.shape != (y.shape[0], num_classes):
                    raise UsageError(
                        f"the model returned logits shaped {tuple(logits.shape)} for {y.shape[0]} images "
                        f"of {num_classes} classes"
                    )
                c1, c5 = topk_correct(logits, y, (1, 5))
                top1, top5, n = top1 + int(c1), top5 + int(c5), n + int(y.shape[0])
                loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
                prob, pred = torch.softmax(logits, dim=1).max(dim=1)
                cm += confusion_matrix(pred, y, num_classes)
                preds.append(pred)
                confs.append(prob)
    finally:
        bar.close()
    if n == 0:
        raise UsageError("evaluation saw no images (empty split)")
    return {
        "loss": loss_sum / n,
        "acc1": top1 / n,
        "acc5": top5 / n,
        "images": n,
        "confusion": cm,
        "pred": torch.cat(preds),
        "conf": torch.cat(confs),
    }


def _mistakes(
    dataset: VOCCrops,
    pred: torch.Tensor,
    conf: torch.Tensor,
    classes: List[str],
    k: int,
) -> List[Dict[str, Any]]:
    """The ``k`` wrong predictions made with the highest confidence, most confident first."""
    labels = torch.as_tensor(dataset.targets)
    wrong = (pred != labels).nonzero().flatten()
    order = wrong[conf[wrong].argsort(descending=True, stable=True)][:k]
    return [
        {
            "index": int(i),
            "true": classes[int(labels[i])],
            "predicted": classes[int(pred[i])],
            "confidence": float(conf[i]),
        }
        for i in order
    ]


def _write_figures(
    out: Path,
    split: str,
    result: Dict[str, Any],
    dataset: VOCCrops,
    title: str,
) -> Dict[str, str]:
    from inception_v2.report.figures import plot_confusion, plot_mistakes, plot_per_class_accuracy

    classes = list(result["per_class"])
    counts = [sum(row) for row in result["confusion"]]
    files = {
        "confusion": plot_confusion(result["confusion"], classes, out / f"confusion-{split}.png", title),
        "per_class": plot_per_class_accuracy(
            classes,
            list(result["per_class"].values()),
            counts,
            out / f"per-class-{split}.png",
            title,
            overall=result["acc1"],
        ),
    }
    images, captions = [], []
    for m in result["mistakes"]:
        images.append(dataset[m["index"]][0].permute(1, 2, 0).numpy())  # the uint8 crop the model saw
        captions.append(f"#{m['index']} true: {m['true']}\npredicted: {m['predicted']} ({m['confidence']:.0%})")
    files["mistakes"] = plot_mistakes(
        images, captions, out / f"mistakes-{split}.png", f"{title}: most confident mistakes"
    )
    return {k: str(v) for k, v in files.items()}


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
    out: Optional[Path] = None,
    mistakes: int = DEFAULT_MISTAKES,
    run: RunOptions = DEFAULT_RUN,
) -> Dict[str, Any]:
    """Evaluate ``checkpoint`` (any form :func:`~inception_v2.deploy.runners.load_classifier`
    takes) on ``split`` of ``data`` (a prepared directory or a VOC root).

    Returns ``acc1``, ``acc5``, ``loss`` (mean cross-entropy), ``per_class`` (class -> accuracy,
    ``None`` for a class with no sample), ``confusion`` (rows = true class), ``mistakes`` (the
    ``mistakes`` most confident wrong predictions: ``index`` in the split, ``true``,
    ``predicted``, ``confidence``), ``format`` and ``files`` (what was written). ``out``: a folder
    for the JSON and the figures (see the module docstring); ``confusion_png``: write only the
    confusion matrix, to this file. Without either nothing is written.
    """
    if split not in ("test", "val"):
        raise UsageError(f"--split must be test or val, got {split!r}")
    if tta not in ("none", "flip"):
        raise UsageError(f"--tta must be none or flip, got {tta!r}")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {batch_size}")
    if mistakes < 0:
        raise UsageError(f"--mistakes must be >= 0, got {mistakes}")
    checkpoint = Path(checkpoint)
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    runner = load_classifier(checkpoint, device, run.runtime, run.precision)
    prepared = resolve_prepared(str(data), str(checkpoint.parent))
    dataset = VOCCrops(prepared, split, eval_transform(runner.data_config, normalize=False))
    if len(dataset) == 0:
        raise UsageError(f"{prepared}: the {split} split is empty")
    if list(dataset.classes) != list(runner.classes):
        raise UsageError(f"{checkpoint} was trained on other classes than those of {prepared}")
    loader = make_loader(dataset, batch_size, shuffle=False, workers=workers, pin_memory=runner.device.type == "cuda")

    def run() -> Dict[str, Any]:
        s = _scores(runner, loader, tta, progress, f"evaluate {split}")
        classes = list(runner.classes)
        per_class = {c: (None if math.isnan(a) else a) for c, a in zip(classes, per_class_accuracy(s["confusion"]))}
        return {
            "checkpoint": str(checkpoint),
            "format": runner.kind,
            "runtime": runner.runtime,
            "precision": runner.precision,
            "runtime_choice": runner.runtime_choice,
            "model": runner.name,
            "split": split,
            "tta": tta,
            "images": s["images"],
            "image_size": runner.data_config.input_size,
            "acc1": s["acc1"],
            "acc5": s["acc5"],
            "loss": s["loss"],
            "per_class": per_class,
            "confusion": s["confusion"].tolist(),
            "mistakes": _mistakes(dataset, s["pred"], s["conf"], classes, mistakes),
            "files": {},
        }

    title = f"{runner.name} ({checkpoint.name}, {runner.kind}) on {split}"
    if out is None:
        result = run()
    else:
        out = Path(out)
        with exclusive(out, "evaluate output folder"):
            result = run()
            result["files"] = _write_figures(out, split, result, dataset, f"{title}: top-1 {result['acc1']:.2%}")
            result["files"]["json"] = str(out / f"evaluation-{split}.json")
            write_json(out / f"evaluation-{split}.json", result)
    if confusion_png is not None:
        from inception_v2.report.figures import plot_confusion

        plot_confusion(
            result["confusion"], list(result["per_class"]), Path(confusion_png), f"{title}: top-1 {result['acc1']:.2%}"
        )
        result["files"]["confusion_png"] = str(confusion_png)
    return result


def format_result(r: Dict[str, Any]) -> str:
    lines = [
        f"{r['model']} ({r['checkpoint']}, {r['format']}) on {r['split']}, {r['images']} images at "
        f"{r['image_size']}px, tta {r['tta']}",
        f"runtime: {r['runtime']} {r['precision']} ({r['runtime_choice']})",
        f"top-1 {r['acc1']:.2%}   top-5 {r['acc5']:.2%}   loss {r['loss']:.4f}",
        "",
        f"{'class':<12} {'accuracy':>9} {'images':>7}",
    ]
    for (name, acc), row in zip(r["per_class"].items(), r["confusion"]):
        lines.append(f"{name:<12} {'-' if acc is None else f'{acc:.2%}':>9} {sum(row):>7}")
    if r["mistakes"]:
        lines.append("\nmost confident mistakes (index in the split: true -> predicted, confidence):")
        for m in r["mistakes"][:5]:
            lines.append(f"  #{m['index']:<6} {m['true']} -> {m['predicted']} ({m['confidence']:.1%})")
    if r["files"]:
        lines.append("")
        lines.extend(f"{what}: {path}" for what, path in r["files"].items())
    return "\n".join(lines)
