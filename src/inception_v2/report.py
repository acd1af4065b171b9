"""``inception-v2 compare``: the source's comparison table and training curves from run
directories, and the confusion-matrix figure of ``inception-v2 evaluate``.

The table has the honest figures (best val top-1; test top-1 of the epoch val selected; final
test top-1) next to the source's way of reporting (the best test top-1 over all epochs, i.e.
selected on the test set), labelled as such. Figures use matplotlib's Agg backend.
"""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from inception_v2.atomic import write_bytes, write_json, write_text  # noqa: E402
from inception_v2.errors import UsageError  # noqa: E402
from inception_v2.train.metrics import read_metrics_csv  # noqa: E402

# SPEC.md section 4: what the source reported (100 epochs on the real data; its "best" is the
# maximum test accuracy over epochs, with random-crop test evaluation).
SOURCE_RESULTS = (
    ("inception_v2", 0.7802, 0.7693, 308),
    ("googlenet_bn", 0.7477, 0.7427, 195),
)


@dataclass
class Run:
    name: str  # the run directory's name
    path: Path
    config: Dict[str, Any]
    summary: Dict[str, Any]
    history: List[Dict[str, float]]

    @property
    def model(self) -> str:
        return str(self.summary.get("model") or self.config.get("model"))


def load_run(path: Path) -> Run:
    """A finished run directory (``summary.json``, ``metrics.csv``, ``config.json``)."""
    path = Path(path)
    if not path.is_dir():
        raise UsageError(f"run directory {path} does not exist")
    files = {}
    for name in ("summary.json", "config.json"):
        f = path / name
        if not f.is_file():
            hint = " (the run has not finished: summary.json is written at the end)" if name == "summary.json" else ""
            raise UsageError(f"{path} is not a finished run directory: no {name}{hint}")
        try:
            files[name] = json.loads(f.read_text())
        except ValueError as e:
            raise UsageError(f"{f} is not valid JSON: {e}") from None
    try:
        history = read_metrics_csv(path / "metrics.csv")
    except FileNotFoundError:
        raise UsageError(f"{path} has no metrics.csv") from None
    except (ValueError, KeyError) as e:
        raise UsageError(f"{path / 'metrics.csv'} is malformed: {e}") from None
    if not history:
        raise UsageError(f"{path / 'metrics.csv'} has no epochs")
    summary = files["summary.json"]
    missing = [k for k in ("best_val_acc1", "test_acc1_at_best_val", "final_test_acc1", "best_test_acc1",
                           "train_time_s", "params", "macs") if k not in summary]  # fmt: skip
    if missing:
        raise UsageError(f"{path / 'summary.json'} lacks {', '.join(missing)}")
    return Run(path.name, path, files["config.json"], summary, history)


# --------------------------------------------------------------------------- the table


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def comparison_rows(runs: Sequence[Run]) -> List[Dict[str, Any]]:
    return [
        {
            "run": r.name,
            "model": r.model,
            "epochs": r.summary.get("epochs", len(r.history)),
            "image_size": r.summary.get("image_size"),
            "best_val_acc1": r.summary["best_val_acc1"],
            "best_epoch": r.summary.get("best_epoch"),
            "test_acc1_at_best_val": r.summary["test_acc1_at_best_val"],
            "final_test_acc1": r.summary["final_test_acc1"],
            "best_test_acc1": r.summary["best_test_acc1"],
            "train_time_s": r.summary["train_time_s"],
            "params": r.summary["params"],
            "macs": r.summary["macs"],
        }
        for r in runs
    ]


def comparison_table(rows: Sequence[Dict[str, Any]]) -> str:
    """The markdown table (accuracies as percentages for reading; the JSON keeps fractions)."""
    header = ("run", "model", "epochs", "input", "best val top-1", "test top-1 at best val",
              "final test top-1", "best test top-1 (source-style)", "train time", "params", "mult-adds")  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        cells = (
            r["run"], r["model"], str(r["epochs"]), f"{r['image_size']}px",
            f"{_pct(r['best_val_acc1'])} (epoch {r['best_epoch']})", _pct(r["test_acc1_at_best_val"]),
            _pct(r["final_test_acc1"]), _pct(r["best_test_acc1"]), f"{r['train_time_s'] / 60:.1f} min",
            f"{r['params'] / 1e6:.2f} M", f"{r['macs'] / 1e9:.3f} G",
        )  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def source_table() -> str:
    lines = [
        "| model | best test top-1 (source-style) | final test top-1 | train time |",
        "|---|---|---|---|",
    ]
    for model, best, final, minutes in SOURCE_RESULTS:
        lines.append(f"| {model} | {_pct(best)} | {_pct(final)} | {minutes} min |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures


def _save_png(fig: "plt.Figure", path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    write_bytes(path, buf.getvalue())


def plot_curves(run: Run, path: Path) -> Path:
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


def plot_test_accuracy(runs: Sequence[Run], path: Path) -> Path:
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


# --------------------------------------------------------------------------- compare


def compare(run_dirs: Sequence[Path], out: Path) -> Dict[str, Any]:
    """Write ``OUT/comparison.md`` (the table), ``OUT/comparison.json`` (the rows, accuracies as
    fractions), ``OUT/curves-<run>.png`` per run and ``OUT/test-acc1.png``; return them."""
    if not run_dirs:
        raise UsageError("give at least one run directory")
    runs = [load_run(Path(d)) for d in run_dirs]
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise UsageError(f"run directories must have distinct names, got {names}")
    out = Path(out)
    rows = comparison_rows(runs)
    table = comparison_table(rows)
    markdown = "\n".join([
        "# Comparison", "",
        "Honest figures: *best val top-1* selects the checkpoint; *test top-1 at best val* is the test "
        "accuracy of that epoch; *final* is the last epoch's. *Best test top-1 (source-style)* is the "
        "maximum test accuracy over epochs, the way the source reported its results (selected on the "
        "test set, hence optimistic); it is here only for comparison with the source.", "",
        table, "",
        "The source's reported results (100 epochs on PASCAL VOC 07+12 crops, SPEC.md section 4):", "",
        source_table(), "",
    ])  # fmt: skip
    figures = [plot_curves(r, out / f"curves-{r.name}.png") for r in runs]
    figures.append(plot_test_accuracy(runs, out / "test-acc1.png"))
    write_text(out / "comparison.md", markdown)
    write_json(out / "comparison.json", {"runs": rows, "accuracy_units": "fractions in [0, 1]"})
    return {"table": table, "rows": rows, "markdown": out / "comparison.md", "figures": figures}


def run(args: argparse.Namespace) -> int:
    result = compare(args.runs, args.out)
    print(result["table"])
    print(f"\nwrote {result['markdown']}")
    for f in result["figures"]:
        print(f"wrote {f}")
    return 0


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compare", help="the comparison table and curves of finished runs",
        description="Print and write (markdown) the comparison table of finished run directories, "
        "and one loss/accuracy figure per run.",
    )
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="where to write the table and figures")
    p.set_defaults(func=run)

