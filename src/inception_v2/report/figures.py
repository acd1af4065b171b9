"""The figures of a run and of an evaluation, drawn with matplotlib's Agg backend and written
atomically as PNG files: training curves (loss and top-1 per epoch), test accuracy of several
runs, and the confusion matrix with class names."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from inception_v2.atomic import write_bytes  # noqa: E402

if TYPE_CHECKING:
    from inception_v2.report.compare import Run


def _save_png(fig: "plt.Figure", path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    write_bytes(path, buf.getvalue())


def plot_curves(run: "Run", path: Path) -> Path:
    """Loss and top-1 accuracy per epoch (train, val, test) of one run, as the source's figures."""
    epochs = [r["epoch"] for r in run.history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for split, style in (("train", "-"), ("val", ":"), ("test", "--")):
        ax_loss.plot(epochs, [r[f"{split}_loss"] for r in run.history], style, marker=".", label=split)
        ax_acc.plot(epochs, [100 * r[f"{split}_acc1"] for r in run.history], style, marker=".", label=split)
    best = run.summary.get("best_epoch")
    if best:
        ax_acc.axvline(best, color="grey", lw=0.8, ls="-.", label=f"best val (epoch {best})")
    ax_loss.set(title=f"{run.name}: loss", xlabel="epoch", ylabel="cross-entropy")
    ax_acc.set(title=f"{run.name}: top-1 accuracy", xlabel="epoch", ylabel="%")
    ax_loss.text(0.01, 0.01, "train loss includes aux heads and smoothing", transform=ax_loss.transAxes,
                 fontsize=7, color="grey")  # fmt: skip
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    _save_png(fig, path)
    return path


def plot_test_accuracy(runs: Sequence["Run"], path: Path) -> Path:
    """Test top-1 per epoch of every run on one plot."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for run in runs:
        ax.plot([r["epoch"] for r in run.history], [100 * r["test_acc1"] for r in run.history], marker=".", label=run.name)
    ax.set(title="test top-1 accuracy", xlabel="epoch", ylabel="%")
    ax.grid(alpha=0.3)
    ax.legend()
    _save_png(fig, path)
    return path


def plot_confusion(confusion: Sequence[Sequence[int]], classes: Sequence[str], path: Path, title: str) -> Path:
    """A row-normalized confusion matrix (row = true class) with the counts written in."""
    n = len(classes)
    rows = [[float(v) for v in row] for row in confusion]
    norm = [[v / max(sum(row), 1.0) for v in row] for row in rows]
    fig, ax = plt.subplots(figsize=(0.45 * n + 3, 0.45 * n + 2.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=90)
    ax.set_yticks(range(n), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for i in range(n):
        for j in range(n):
            if rows[i][j]:
                ax.text(j, i, f"{int(rows[i][j])}", ha="center", va="center", fontsize=6,
                        color="white" if norm[i][j] > 0.5 else "black")  # fmt: skip
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    _save_png(fig, path)
    return path
