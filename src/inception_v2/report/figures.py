"""The figures of a run and of an evaluation, drawn on :class:`matplotlib.figure.Figure` objects
(no pyplot, so matplotlib's backend, and the state of a caller's interactive session, stay as
they are) and written atomically as PNG files: training curves (loss and top-1 per epoch), test accuracy of several
runs, and, for ``inception-v2 evaluate --out``, the confusion matrix with class names, the
accuracy of every class and a gallery of the most confident mistakes."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from matplotlib.figure import Figure

from inception_v2.atomic import write_bytes

if TYPE_CHECKING:
    import numpy as np

    from inception_v2.report.compare import Run


def _save_png(fig: Figure, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")  # Agg, whatever the backend
    write_bytes(path, buf.getvalue())


def _subplots(figsize, nrows: int = 1, ncols: int = 1, **kwargs):
    """A new figure and its axes (as ``pyplot.subplots``, without pyplot's global state)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def plot_curves(run: "Run", path: Path) -> Path:
    """Loss and top-1 accuracy per epoch (train, val, test) of one run, as the source's figures."""
    epochs = [r["epoch"] for r in run.history]
    fig, (ax_loss, ax_acc) = _subplots((11, 4), 1, 2)
    for split, style in (("train", "-"), ("val", ":"), ("test", "--")):
        ax_loss.plot(epochs, [r[f"{split}_loss"] for r in run.history], style, marker=".", label=split)
        ax_acc.plot(epochs, [100 * r[f"{split}_acc1"] for r in run.history], style, marker=".", label=split)
    best = run.summary.get("best_epoch")
    if best:
        ax_acc.axvline(best, color="grey", lw=0.8, ls="-.", label=f"best val (epoch {best})")
    ax_loss.set(title=f"{run.name}: loss", xlabel="epoch", ylabel="cross-entropy")
    ax_acc.set(title=f"{run.name}: top-1 accuracy", xlabel="epoch", ylabel="%")
    ax_loss.text(
        0.01, 0.01, "train loss includes aux heads and smoothing", transform=ax_loss.transAxes, fontsize=7, color="grey"
    )
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    _save_png(fig, path)
    return path


def plot_test_accuracy(runs: Sequence["Run"], path: Path) -> Path:
    """Test top-1 per epoch of every run on one plot."""
    fig, ax = _subplots((7, 4))
    for run in runs:
        ax.plot(
            [r["epoch"] for r in run.history], [100 * r["test_acc1"] for r in run.history], marker=".", label=run.name
        )
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
    fig, ax = _subplots((0.45 * n + 3, 0.45 * n + 2.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=90)
    ax.set_yticks(range(n), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for i in range(n):
        for j in range(n):
            if rows[i][j]:
                ax.text(
                    j,
                    i,
                    f"{int(rows[i][j])}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if norm[i][j] > 0.5 else "black",
                )
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    _save_png(fig, path)
    return path


def plot_per_class_accuracy(
    classes: Sequence[str],
    accuracies: Sequence[Optional[float]],
    counts: Sequence[int],
    path: Path,
    title: str,
    overall: Optional[float] = None,
) -> Path:
    """Top-1 accuracy of every class (a fraction, or None / NaN for a class without images) as
    horizontal bars in class order, each labelled with its accuracy and image count; a dashed
    line at ``overall`` (the split's top-1)."""
    n = len(classes)
    values = [None if a is None or math.isnan(a) else 100 * a for a in accuracies]
    fig, ax = _subplots((7, 0.3 * n + 1.5))
    ys = list(range(n))
    ax.barh(ys, [v or 0.0 for v in values], color=["tab:blue" if v is not None else "lightgrey" for v in values])
    for y, v, c in zip(ys, values, counts):
        ax.text(
            min(v or 0.0, 100) + 1, y, f"{v:.0f}% of {c}" if v is not None else "no images", va="center", fontsize=7
        )
    if overall is not None:
        ax.axvline(100 * overall, color="grey", ls="--", lw=0.8, label=f"top-1 {overall:.1%}")
        ax.legend(loc="lower right", fontsize=7)
    ax.set_yticks(ys, classes)
    ax.invert_yaxis()  # the first class on top
    ax.set(xlim=(0, 118), xlabel="top-1 accuracy (%)", title=title)
    ax.grid(axis="x", alpha=0.3)
    _save_png(fig, path)
    return path


def plot_mistakes(
    images: Sequence["np.ndarray"], captions: Sequence[str], path: Path, title: str, columns: int = 4
) -> Path:
    """A gallery: each image (``H x W x 3`` uint8) with its caption (e.g. true and predicted
    class and the confidence), row by row; a figure saying so when there are none."""
    n = len(images)
    if n == 0:
        fig, ax = _subplots((5, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "no mistakes", ha="center", va="center")
        ax.set_title(title, fontsize=9)
        _save_png(fig, path)
        return path
    cols = min(columns, n)
    rows = -(-n // cols)
    fig, axes = _subplots((2.4 * cols, 2.8 * rows), rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i])
            ax.set_title(captions[i], fontsize=7)
    fig.suptitle(title, fontsize=9)
    _save_png(fig, path)
    return path
