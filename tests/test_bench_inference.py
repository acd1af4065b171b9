"""``benchmarks/bench_inference.py`` runs end to end on a small setting (its figures are not
checked here: benchmarks measure, tests check that they still run and report every path)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_inference.py"


def test_a_small_run_times_every_path_and_writes_its_json(tmp_path):
    pytest.importorskip("onnxruntime", reason="needs the onnx extra: pip install 'inception-v2[onnx]'")
    pytest.importorskip("openvino", reason="needs the openvino extra: pip install 'inception-v2[openvino]'")
    out = tmp_path / "bench.json"
    argv = ["--model", "googlenet_bn", "--image-size", "75", "--batch-sizes", "1", "2", "--rounds", "1"]
    argv += ["--iters", "1", "--warmup", "0", "--settle", "0", "--threads", "1", "--json", str(out)]
    argv += ["--paths", "fused", "onnx", "ov-onnx"]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(out.read_text())
    rows = {row["path"]: row for row in result["rows"]}
    assert set(rows) == {"torchvision", "fused", "onnx", "ov-onnx"}
    assert all(row["images_per_s"] > 0 and row["latency_ms"] > 0 for row in rows.values())
    assert rows["torchvision"]["per_mac"] == 1.0 and "instruction sets" in r.stdout
