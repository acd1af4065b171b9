import math

import pytest
import torch

from inception_v2.train.metrics import (
    METRICS_COLUMNS,
    confusion_matrix,
    per_class_accuracy,
    read_metrics_csv,
    topk_correct,
    write_metrics_csv,
)


def test_topk_correct():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.3], [0.2, 0.3, 0.5]])
    y = torch.tensor([1, 2, 0])
    top1, top2, top5 = topk_correct(logits, y, (1, 2, 5))
    assert (top1.item(), top2.item(), top5.item()) == (1, 2, 3)  # top-5 capped at 3 classes


def test_confusion_and_per_class():
    cm = confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 4)
    assert cm.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    acc = per_class_accuracy(cm)
    assert acc[:3] == [1.0, 1.0, 0.5] and math.isnan(acc[3])


def test_metrics_csv_round_trip(tmp_path):
    rows = [{k: (i + 1 if k == "epoch" else 0.25 * i) for k in METRICS_COLUMNS} for i in range(3)]
    write_metrics_csv(tmp_path / "metrics.csv", rows)
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0]
    assert header == ",".join(METRICS_COLUMNS)
    back = read_metrics_csv(tmp_path / "metrics.csv")
    assert [r["epoch"] for r in back] == [1, 2, 3]
    assert back[2]["val_acc1"] == pytest.approx(0.5)
