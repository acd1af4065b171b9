"""Classification metrics as sums (so they add up across batches and processes exactly) and
the per-epoch ``metrics.csv``.

Accuracies are fractions in [0, 1] everywhere they leave this module.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple

import torch

from inception_v2.atomic import write_text

# One row per epoch, in this order (docs/training.md lists the columns).
METRICS_COLUMNS: Tuple[str, ...] = (
    "epoch", "lr", "train_loss", "train_acc1", "val_loss", "val_acc1", "val_acc5",
    "test_loss", "test_acc1", "test_acc5", "images_per_s", "seconds",
)  # fmt: skip


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (1, 5)) -> List[torch.Tensor]:
    """Number of samples whose target is among the top-k logits, for each k (capped at the
    number of classes), as 0-d tensors on ``logits``' device."""
    maxk = min(max(ks), logits.shape[1])
    top = logits.topk(maxk, dim=1).indices  # N x maxk
    hit = top.eq(target.view(-1, 1))
    return [hit[:, : min(k, maxk)].any(dim=1).sum() for k in ks]


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``num_classes x num_classes`` int64 counts; row = true class, column = predicted class."""
    idx = target.to(torch.int64) * num_classes + pred.to(torch.int64)
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_accuracy(cm: torch.Tensor) -> List[float]:
    """Recall of every class (the diagonal over the row sum); NaN for a class with no samples."""
    totals = cm.sum(dim=1)
    return [float(cm[i, i]) / float(totals[i]) if totals[i] > 0 else math.nan for i in range(cm.shape[0])]


def format_row(row: Mapping[str, float]) -> Dict[str, str]:
    out = {}
    for k in METRICS_COLUMNS:
        v = row[k]
        out[k] = str(int(v)) if k == "epoch" else f"{float(v):.6g}"
    return out


def write_metrics_csv(path: Path, rows: Sequence[Mapping[str, float]]) -> None:
    """Write every row (atomically: the file is always complete)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRICS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(format_row(row))
    write_text(path, buf.getvalue())


def read_metrics_csv(path: Path) -> List[Dict[str, float]]:
    """The rows of a ``metrics.csv`` as floats (``epoch`` as int)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(METRICS_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        rows = []
        for r in reader:
            row: Dict[str, float] = {k: float(r[k]) for k in METRICS_COLUMNS}
            row["epoch"] = int(row["epoch"])
            rows.append(row)
    return rows
