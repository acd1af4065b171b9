"""The per-epoch ``metrics.csv`` of a run; the classification metrics themselves (sums that add
up across batches and processes exactly) live with the evaluator, :mod:`inception_v2.evaluation`.

Accuracies are fractions in [0, 1] everywhere they leave this module.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple

from inception_v2.atomic import write_text
from inception_v2.evaluation import confusion_matrix, per_class_accuracy, topk_correct  # noqa: F401 (re-exported)

# One row per epoch, in this order (docs/training.md lists the columns).
METRICS_COLUMNS: Tuple[str, ...] = (
    "epoch", "lr", "train_loss", "train_acc1", "val_loss", "val_acc1", "val_acc5",
    "test_loss", "test_acc1", "test_acc5", "images_per_s", "seconds",
)  # fmt: skip


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
