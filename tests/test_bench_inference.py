"""``benchmarks/bench_inference.py`` runs end to end on small settings, timing and ``--accuracy``
(its figures are not checked here: benchmarks measure, tests check that they still run and
report every path)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inception_v2 import load_model
from inception_v2.data import VOCCrops

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_inference.py"

pytest.importorskip("onnxruntime", reason="needs the onnx extra: pip install 'inception-v2[onnx]'")
pytest.importorskip("openvino", reason="needs the openvino extra: pip install 'inception-v2[openvino]'")


def run_script(argv):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def test_a_small_run_times_every_path_and_writes_its_json(tmp_path):
    out = tmp_path / "bench.json"
    argv = ["--model", "googlenet_bn", "--image-size", "75", "--batch-sizes", "1", "2", "--rounds", "1"]
    argv += ["--iters", "1", "--warmup", "0", "--settle", "0", "--threads", "1", "--json", str(out)]
    argv += ["--paths", "fused", "onnx", "ov-onnx"]
    r = run_script(argv)
    result = json.loads(out.read_text())
    rows = {row["path"]: row for row in result["rows"]}
    assert set(rows) == {"torchvision", "fused", "onnx", "ov-onnx"}
    assert all(row["images_per_s"] > 0 and row["latency_ms"] > 0 for row in rows.values())
    assert rows["torchvision"]["per_mac"] == 1.0 and "instruction sets" in r.stdout


def test_accuracy_mode_evaluates_every_runtime_and_precision(tiny_run, prepared_sample, tmp_path):
    """``--accuracy``: every file exported from one model and evaluated on the split, one row a
    run. At 64 px: the tiny run's 32 px network leaves a 2 x 2 ceil-mode pool OpenVINO cannot take."""
    from inception_v2.deploy.cpu import bf16_support
    from inception_v2.deploy.release import write_release

    model = load_model(tiny_run / "best.pt")
    model.data_config = model.data_config.with_input_size(64)
    write_release(model, tmp_path / "release", classes=list(model.classes))
    out = tmp_path / "accuracy.json"
    argv = ["--accuracy", str(tmp_path / "release"), "--data", str(prepared_sample), "--splits", "val"]
    argv += ["--calibration-images", "16", "--threads", "1", "--json", str(out)]
    run_script(argv)
    rows = json.loads(out.read_text())["rows"]
    runs = [row["run"] for row in rows]
    expected = ["PyTorch float32", "PyTorch bf16", "ONNX Runtime float32", "OpenVINO float32", "OpenVINO bf16"]
    expected += ["ONNX Runtime INT8", "OpenVINO INT8 (.onnx)", "OpenVINO INT8 (NNCF IR)"]
    if bf16_support() is None:  # skipped, and said so, on a CPU without bfloat16 instructions
        expected = [run for run in expected if "bf16" not in run]
    assert runs == expected
    images = len(VOCCrops(prepared_sample, "val"))
    for row in rows:
        assert row["split"] == "val" and row["images"] == images and row["image_size"] == 64
        assert 0.0 <= row["acc1"] <= row["acc5"] <= 1.0
    by_run = {row["run"]: row for row in rows}
    assert by_run["ONNX Runtime float32"]["runtime"] == "onnxruntime"
    assert by_run["OpenVINO INT8 (NNCF IR)"]["runtime"] == "openvino"
    # The float paths run the same arithmetic up to rounding: the same top-1 on a tiny split.
    assert by_run["ONNX Runtime float32"]["acc1"] == by_run["PyTorch float32"]["acc1"]
