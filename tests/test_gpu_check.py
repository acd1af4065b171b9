"""``benchmarks/gpu_check.sh``: its syntax, its dry run, and its summary (the GPU run itself
happens on a GPU machine)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def test_syntax():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_dry_run_prints_every_step_and_runs_nothing(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run(["bash", str(SCRIPT), str(out), "--dry-run"], capture_output=True, text=True, check=True)
    steps = [line.split("]")[0] + "]" for line in r.stdout.splitlines() if line.startswith("[")]
    # correctness first: the probe, then the gradient and pooling tests, then the measurements
    assert steps == [
        "[probe]",
        "[gradient-tests]",
        "[bench-pools]",
        "[bench-gpu]",
        "[sample]",
        "[train-299]",
        "[gpu-tests]",
        "[bench-memory]",
        "[summary]",
    ]
    assert "pool_probe.py" in r.stdout and "test_gradients.py" in r.stdout and "test_pooling.py" in r.stdout
    assert "pytest -m 'gpu and not slow'" in r.stdout and "bench_gpu.py" in r.stdout and "--pools-only" in r.stdout
    assert "googlenet_bn" in r.stdout and "--batch-size" in r.stdout and "--device-augment" in r.stdout
    assert "--compile" not in r.stdout  # the minutes-long compiles only with --with-compile
    assert not out.exists()


def test_with_compile_adds_the_compiled_candidates_before_the_other_tests(tmp_path):
    r = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "o"), "--dry-run", "--with-compile"],
        capture_output=True,
        text=True,
        check=True,
    )
    steps = [line.split("]")[0] + "]" for line in r.stdout.splitlines() if line.startswith("[")]
    assert steps.index("[bench-compile]") < steps.index("[train-299-compile]") < steps.index("[gpu-tests]")
    assert "bf16-cl-compile-mant" in r.stdout and "--compile" in r.stdout


def test_bad_option_is_refused(tmp_path):
    r = subprocess.run(["bash", str(SCRIPT), "--budget", "soon"], capture_output=True, text=True)
    assert r.returncode == 2 and "budget" in r.stderr


def test_summary_reads_what_the_steps_left(tmp_path):
    (tmp_path / "steps.tsv").write_text("gpu-tests\t0\t40\tpytest -m gpu\ntrain-299-compile\tskipped\t0\tx\n")
    (tmp_path / "pytest-gpu.xml").write_text(
        '<testsuites><testsuite name="pytest" tests="4" failures="1" errors="0" skipped="0" time="39.1">'
        '<testcase classname="tests.train.test_gpu" name="test_a"/>'
        '<testcase classname="tests.train.test_gpu" name="test_b"><failure message="x"/></testcase>'
        "</testsuite></testsuites>"
    )
    row = {
        "model": "inception_v2",
        "config": "bf16-cl",
        "image_size": 299,
        "train_ips_no_data": 2417.0,
        "train_ips_with_data": {"uint8": 2097.0},
        "eval_ips": 7993.0,
        "experiment_minutes": 34.4,
    }
    (tmp_path / "bench_gpu.json").write_text(json.dumps({"rows": [row]}))
    probe = {"torch": "2.11.0+cu130", "cuda": "13.0", "devices": {"cuda": "H200"}}
    (tmp_path / "probe.json").write_text(json.dumps({**probe, "avg_pool_backward_broken": {"cuda": True}}))
    pools = {"model": "inception_v2", "config": "bf16-cl", "image_size": 299}
    pools["images_per_s"] = {"native": 2000.0, "project_first+depthwise": 2600.0}
    (tmp_path / "bench_pools.json").write_text(json.dumps({"pools": [pools]}))
    r = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check_summary.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    s = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [st["status"] for st in s["steps"]] == [0, "skipped"]
    assert s["gpu_tests"]["failures"] == 1 and s["gpu_tests"]["failed"] == ["tests.train.test_gpu::test_b"]
    assert s["bench_gpu"]["rows"][0]["eval_ips"] == 7993.0
    assert "2,417 img/s without data" in r.stdout and "1 failed" in r.stdout
    assert s["probe"]["avg_pool_backward_broken"] == {"cuda": True}
    assert "avg_pool2d backward on cuda: BROKEN" in r.stdout
    assert "project_first+depthwise 2,600 (1.30x)" in r.stdout
