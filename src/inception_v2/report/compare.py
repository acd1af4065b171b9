"""``inception-v2 compare``: the source's comparison table and training curves from run
directories.

The table has the honest figures (best val top-1; test top-1 of the epoch val selected; final
test top-1) next to the source's way of reporting (the best test top-1 over all epochs, i.e.
selected on the test set), labelled as such. Figures use matplotlib's Agg backend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from inception_v2.atomic import write_json, write_text
from inception_v2.errors import UsageError
from inception_v2.report.figures import plot_curves, plot_test_accuracy
from inception_v2.train.metrics import read_metrics_csv

# What the source reported (docs/data.md) (100 epochs on the real data; its "best" is the
# maximum test accuracy over epochs, with random-crop test evaluation).
SOURCE_RESULTS = (
    ("inception_v2", 0.7802, 0.7693, 308),
    ("googlenet_bn", 0.7477, 0.7427, 195),
)


# The figures of summary.json that the table needs (all numbers).
SUMMARY_FIGURES = (
    "best_val_acc1",
    "test_acc1_at_best_val",
    "final_test_acc1",
    "best_test_acc1",
    "train_time_s",
    "params",
    "macs",
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
    for name, value in files.items():
        if not isinstance(value, dict):
            raise UsageError(f"{path / name} does not hold a JSON object (got {type(value).__name__})")
    missing = [k for k in SUMMARY_FIGURES if k not in summary]
    if missing:
        raise UsageError(f"{path / 'summary.json'} lacks {', '.join(missing)}")
    for key in SUMMARY_FIGURES + ("epochs", "best_epoch", "image_size"):
        value = summary.get(key)
        optional = key not in ("train_time_s", "params", "macs", "best_val_acc1")  # None: no test split, unknown
        if not ((value is None and optional) or (isinstance(value, (int, float)) and not isinstance(value, bool))):
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            raise UsageError(f"{path / 'summary.json'}: {key} must be a number, got {shown}")
    return Run(path.name, path, files["config.json"], summary, history)


# --------------------------------------------------------------------------- the table


def _pct(x: Optional[float]) -> str:
    """A fraction as a percentage; "-" for a figure the run does not have (no test split)."""
    return "-" if x is None or x != x else f"{100 * x:.2f}%"


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
    header = (
        "run",
        "model",
        "epochs",
        "input",
        "best val top-1",
        "test top-1 at best val",
        "final test top-1",
        "best test top-1 (source-style)",
        "train time",
        "params",
        "mult-adds",
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        cells = (
            r["run"],
            r["model"],
            str(r["epochs"]),
            f"{r['image_size']}px",
            f"{_pct(r['best_val_acc1'])} (epoch {r['best_epoch']})",
            _pct(r["test_acc1_at_best_val"]),
            _pct(r["final_test_acc1"]),
            _pct(r["best_test_acc1"]),
            f"{r['train_time_s'] / 60:.1f} min",
            f"{r['params'] / 1e6:.2f} M",
            f"{r['macs'] / 1e9:.3f} G",
        )
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
    markdown = "\n".join(
        [
            "# Comparison",
            "",
            "Honest figures: *best val top-1* selects the checkpoint; *test top-1 at best val* is the test "
            "accuracy of that epoch; *final* is the last epoch's. *Best test top-1 (source-style)* is the "
            "maximum test accuracy over epochs, the way the source reported its results (selected on the "
            "test set, hence optimistic); it is here only for comparison with the source.",
            "",
            table,
            "",
            "The source's reported results (100 epochs on PASCAL VOC 07+12 crops, docs/data.md):",
            "",
            source_table(),
            "",
        ]
    )
    figures = [plot_curves(r, out / f"curves-{r.name}.png") for r in runs]
    figures.append(plot_test_accuracy(runs, out / "test-acc1.png"))
    write_text(out / "comparison.md", markdown)
    write_json(out / "comparison.json", {"runs": rows, "accuracy_units": "fractions in [0, 1]"})
    return {"table": table, "rows": rows, "markdown": out / "comparison.md", "figures": figures}
