"""``inception-v2 evaluate``: a trained model's top-1, top-5, loss, per-class accuracy, confusion
matrix and most confident mistakes on a split, and with ``out`` the figures of them.

The model is any deployed form of it (:func:`inception_v2.deploy.runners.load_classifier`): a
training checkpoint or a release folder (run through
:func:`~inception_v2.deploy.inference.prepare_for_inference`: BatchNorm folded, channels_last,
bf16 on CUDA), or an exported ``.onnx`` (float or INT8), ``.pt2`` or TorchScript file.
Preprocessing is the model's own eval transform (its trained input and resize size, from the
checkpoint or the file's metadata); the class names must be the prepared folder's.

The figures come from the one evaluator, :class:`inception_v2.evaluation.Evaluator` (the
same that training uses), asked for per-image predictions. ``out`` (a folder, owned by this
process while it writes) receives, for split ``S``:
``evaluation-S.json`` (what :func:`evaluate_checkpoint` returns), ``confusion-S.png`` (the
confusion matrix as a heatmap with class names), ``per-class-S.png`` (accuracy of every class)
and ``mistakes-S.png`` (the most confident mistakes: the image the model saw, true and predicted
class, confidence). See ``docs/deployment.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from inception_v2.atomic import write_json
from inception_v2.data import VOCCrops, eval_transform, make_loader
from inception_v2.deploy.runners import load_classifier
from inception_v2.deploy.runtime import DEFAULT_RUN, RunOptions
from inception_v2.errors import UsageError
from inception_v2.evaluation import TTA_CHOICES, Evaluator
from inception_v2.locking import exclusive
from inception_v2.train.data import resolve_prepared

DEFAULT_MISTAKES = 16  # images in the gallery of confident mistakes


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


@dataclass
class EvaluateOptions:
    """What :func:`evaluate_checkpoint` does; checked on construction."""

    split: str = "test"  # test or val
    tta: str = "none"  # none or flip (the mirror's logits averaged in)
    workers: int = 2  # loader processes
    batch_size: int = 64
    device: str = "auto"
    progress: bool = True
    mistakes: int = DEFAULT_MISTAKES  # most confident mistakes reported (and drawn with ``out``)
    out: Optional[Path] = None  # a folder for the JSON and the figures (module docstring)
    confusion_png: Optional[Path] = None  # write only the confusion matrix, to this file
    trust_file: bool = False  # load a TorchScript file, which runs its own code (refused otherwise)
    run: RunOptions = DEFAULT_RUN  # the runtime and precision (inception_v2.deploy.runtime)

    def __post_init__(self) -> None:
        if self.split not in ("test", "val"):
            raise UsageError(f"--split must be test or val, got {self.split!r}")
        if self.tta not in TTA_CHOICES:
            raise UsageError(f"--tta must be none or flip, got {self.tta!r}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.mistakes < 0:
            raise UsageError(f"--mistakes must be >= 0, got {self.mistakes}")
        if self.out is not None and Path(self.out).exists() and not Path(self.out).is_dir():
            raise UsageError(f"--out {self.out} is a file, not a folder")


def evaluate_checkpoint(
    checkpoint: Path, data: Path, options: Optional[EvaluateOptions] = None, **given: Any
) -> Dict[str, Any]:
    """Evaluate ``checkpoint`` (any form :func:`~inception_v2.deploy.runners.load_classifier`
    takes) on a split of ``data`` (a prepared directory or a VOC root), as ``options`` say (or
    the same fields given as keywords: ``split="val", workers=0``).

    Returns ``acc1``, ``acc5``, ``loss`` (mean cross-entropy), ``per_class`` (class -> accuracy,
    ``None`` for a class with no sample), ``confusion`` (rows = true class), ``mistakes`` (the
    ``mistakes`` most confident wrong predictions: ``index`` in the split, ``true``,
    ``predicted``, ``confidence``), ``format`` and ``files`` (what was written). Without ``out``
    or ``confusion_png`` nothing is written.
    """
    if options is not None and given:
        raise TypeError("give evaluate_checkpoint options or keywords, not both")
    o = options or EvaluateOptions(**given)
    checkpoint = Path(checkpoint)
    runner = load_classifier(checkpoint, o.device, o.run.runtime, o.run.precision, trust_file=o.trust_file)
    prepared = resolve_prepared(str(data), str(checkpoint.parent))
    dataset = VOCCrops(prepared, o.split, eval_transform(runner.data_config, normalize=False))
    if len(dataset) == 0:
        raise UsageError(f"{prepared}: the {o.split} split is empty")
    if list(dataset.classes) != list(runner.classes):
        raise UsageError(f"{checkpoint} was trained on other classes than those of {prepared}")
    title = f"{runner.name} ({checkpoint.name}, {runner.kind}) on {o.split}"
    if o.out is None:
        result = _evaluate(runner, checkpoint, dataset, o)
    else:
        out = Path(o.out)
        with exclusive(out, "evaluate output folder"):
            result = _evaluate(runner, checkpoint, dataset, o)
            result["files"] = _write_figures(out, o.split, result, dataset, f"{title}: top-1 {result['acc1']:.2%}")
            result["files"]["json"] = str(out / f"evaluation-{o.split}.json")
            write_json(out / f"evaluation-{o.split}.json", result)
    if o.confusion_png is not None:
        from inception_v2.report.figures import plot_confusion

        title = f"{title}: top-1 {result['acc1']:.2%}"
        plot_confusion(result["confusion"], list(result["per_class"]), Path(o.confusion_png), title)
        result["files"]["confusion_png"] = str(o.confusion_png)
    return result


def _evaluate(runner: Any, checkpoint: Path, dataset: VOCCrops, o: EvaluateOptions) -> Dict[str, Any]:
    """The result of :func:`evaluate_checkpoint` before any file is written."""
    pin = runner.device.type == "cuda"
    loader = make_loader(dataset, o.batch_size, shuffle=False, workers=o.workers, pin_memory=pin)
    classes = list(runner.classes)
    evaluator = Evaluator(runner.device, len(classes), runner.data_config, tta=o.tta, progress=o.progress)
    r = evaluator(runner, loader, f"evaluate {o.split}", predictions=True)
    per_class = {c: (None if math.isnan(a) else a) for c, a in zip(classes, r.per_class)}
    return {
        "checkpoint": str(checkpoint),
        "format": runner.kind,
        "runtime": runner.runtime,
        "precision": runner.precision,
        "runtime_choice": runner.runtime_choice,
        "model": runner.name,
        "split": o.split,
        "tta": o.tta,
        "images": r.images,
        "image_size": runner.data_config.input_size,
        "acc1": r.acc1,
        "acc5": r.acc5,
        "loss": r.loss,
        "per_class": per_class,
        "confusion": r.confusion.tolist(),
        "mistakes": _mistakes(dataset, r.predictions, r.confidences, classes, o.mistakes),
        "files": {},
    }


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
