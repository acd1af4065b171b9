"""The summary of ``benchmarks/gpu_check.sh``: ``OUT_DIR/gpu_check.json`` and a short table.

    python benchmarks/gpu_check_summary.py OUT_DIR [WORK_DIR]

Reads what the steps left in OUT_DIR: ``steps.tsv`` (name, exit status or ``skipped``,
seconds, command), ``probe.json`` (the build and its pooling bug), ``pytest-gradients.xml`` and
``pytest-gpu.xml`` (JUnit), ``bench_pools.json``, ``bench_gpu.json``, ``bench_compile.json``; and
the ``summary.json`` of the training runs under ``WORK_DIR/runs`` (default ``OUT_DIR/work``).
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List, Optional


def _json(path: Path) -> Optional[Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_steps(path: Path) -> List[Dict[str, Any]]:
    steps = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return steps
    for line in lines:
        name, status, seconds, command = (line.split("\t", 3) + ["", "", ""])[:4]
        steps.append(
            {
                "name": name,
                "status": int(status) if status.lstrip("-").isdigit() else status,
                "seconds": int(seconds) if seconds.isdigit() else None,
                "command": command,
            }
        )
    return steps


def read_junit(path: Path) -> Optional[Dict[str, Any]]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return None
    failed = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in suite.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    return {
        "tests": int(suite.get("tests", 0)),
        "failures": int(suite.get("failures", 0)),
        "errors": int(suite.get("errors", 0)),
        "skipped": int(suite.get("skipped", 0)),
        "seconds": float(suite.get("time", 0.0)),
        "failed": failed,
    }


def summarize(out: Path, work: Optional[Path] = None) -> Dict[str, Any]:
    runs = {}
    for summary in sorted(((work or out / "work") / "runs").glob("*/summary.json")):
        s = _json(summary) or {}
        runs[summary.parent.name] = {
            k: s.get(k)
            for k in ("model", "epochs", "image_size", "best_val_acc1", "test_acc1_at_best_val", "train_time_s")
        }
    return {
        "steps": read_steps(out / "steps.tsv"),
        "probe": _json(out / "probe.json"),
        "gradient_tests": read_junit(out / "pytest-gradients.xml"),
        "gpu_tests": read_junit(out / "pytest-gpu.xml"),
        "train_runs": runs,
        "bench_pools": _json(out / "bench_pools.json"),
        "bench_gpu": _json(out / "bench_gpu.json"),
        "bench_compile": _json(out / "bench_compile.json"),
    }


def _tests_line(what: str, t: Optional[Dict[str, Any]]) -> List[str]:
    if not t:
        return []
    failed = f" ({', '.join(t['failed'])})" if t["failed"] else ""
    bad = t["failures"] + t["errors"]
    return [f"{what}: {t['tests']} run, {bad} failed, {t['skipped']} skipped or xfailed{failed}"]


def format_summary(s: Dict[str, Any]) -> str:
    lines = ["", "gpu_check summary", "| step | status | seconds |", "|---|---|---:|"]
    for step in s["steps"]:
        lines.append(
            f"| {step['name']} | {step['status']} | {step['seconds'] if step['seconds'] is not None else '-'} |"
        )
    probe = s.get("probe") or {}
    if probe:
        lines.append(f"torch {probe.get('torch')}, CUDA {probe.get('cuda')}, devices {probe.get('devices')}")
        for device, broken in (probe.get("avg_pool_backward_broken") or {}).items():
            lines.append(f"channels-last avg_pool2d backward on {device}: {'BROKEN' if broken else 'correct'}")
    lines += _tests_line("gradient and pooling tests", s.get("gradient_tests"))
    lines += _tests_line("gpu tests", s["gpu_tests"])
    for row in (s.get("bench_pools") or {}).get("pools", []):
        ips = row["images_per_s"]
        base = ips.get("native")
        parts = [f"{k} {v:,.0f}" + (f" ({v / base:.2f}x)" if base else "") for k, v in ips.items()]
        lines.append(f"pools {row['model']} {row['config']} @{row['image_size']} fwd+bwd img/s: " + ", ".join(parts))
    for name, r in s["train_runs"].items():
        if r.get("train_time_s") is not None:
            lines.append(
                f"train {name}: {r['model']} at {r['image_size']}px, {r['epochs']} epoch(s) in "
                f"{r['train_time_s']:.0f} s, best val top-1 {r['best_val_acc1']:.2%}"
            )
    rows = [r for key in ("bench_gpu", "bench_compile") for r in (s.get(key) or {}).get("rows", [])]
    for row in rows:
        loaded = ", ".join(f"{k} loader {v:,.0f}" for k, v in row["train_ips_with_data"].items())
        tflops = ""
        if row.get("train_gflops_per_image"):
            achieved = row["train_ips_no_data"] * row["train_gflops_per_image"] / 1e3
            peak = row.get("peak_tflops")
            tflops = f" ({achieved:.0f} TFLOP/s" + (f", {achieved / peak:.1%} of peak)" if peak else ")")
        lines.append(
            f"bench {row['model']} {row['config']} @{row['image_size']}: train {row['train_ips_no_data']:,.0f} "
            f"img/s without data{tflops}, {loaded} with data; eval {row['eval_ips']:,.0f} img/s; "
            f"100 epochs {row['experiment_minutes']:.1f} min"
        )
    return "\n".join(lines)


def main(argv: List[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: gpu_check_summary.py OUT_DIR [WORK_DIR]", file=sys.stderr)
        return 2
    out = Path(argv[0])
    s = summarize(out, Path(argv[1]) if len(argv) == 2 else None)
    (out / "gpu_check.json").write_text(json.dumps(s, indent=2))
    print(format_summary(s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
