"""Data parallelism: two CPU processes (gloo) through torchrun, on the tiny sample — one
machine, an elastic restart after a worker dies, and two "nodes" joined by a c10d rendezvous."""

import os
import socket
import subprocess
import sys

import pytest
import torch

from inception_v2.cli.train import FAULT_ENV
from inception_v2.data import VOCCrops, eval_transform, make_loader
from inception_v2.train import evaluate, load_checkpoint, load_model
from inception_v2.train.distributed import DistInfo, ShardSampler
from inception_v2.train.metrics import read_metrics_csv

EPOCHS = 2
TRAIN_ARGS = [
    "-m",
    "inception_v2",
    "train",
    "--model",
    "googlenet_bn",
    "--epochs",
    str(EPOCHS),
    "--batch-size",
    "8",
    "--image-size",
    "32",
    "--workers",
    "0",
    "--device",
    "cpu",
    "--no-progress",
]


def _torchrun(launch, data, out, env=None, timeout=300):
    cmd = [sys.executable, "-m", "torch.distributed.run", *launch, *TRAIN_ARGS, "--data", str(data), "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env), timeout


def _finish(started):
    proc, timeout = started
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    return stdout, stderr


def _assert_same_weights(a, b, atol=1e-4):
    wa, wb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    assert wa.keys() == wb.keys()
    for k in wa:
        if wa[k].is_floating_point():
            assert torch.allclose(wa[k], wb[k], atol=atol, rtol=0), k
        else:
            assert torch.equal(wa[k], wb[k]), k


@pytest.fixture(scope="module")
def ddp_run(prepared_sample, tmp_path_factory):
    """An undisturbed two-process run: ``(run directory, stdout)``."""
    out = tmp_path_factory.mktemp("ddp") / "run"
    stdout, _ = _finish(_torchrun(["--standalone", "--nproc_per_node=2"], prepared_sample, out))
    return out, stdout


def test_shard_sampler_covers_every_index_once():
    data = list(range(11))
    shards = [list(ShardSampler(data, DistInfo(rank=r, world_size=3))) for r in range(3)]
    assert sorted(i for s in shards for i in s) == data
    assert [len(ShardSampler(data, DistInfo(rank=r, world_size=3))) for r in range(3)] == [4, 4, 3]


def test_torchrun_two_cpu_processes(ddp_run, prepared_sample):
    out, stdout = ddp_run
    assert stdout.count(f"epoch   1/{EPOCHS}") == 1  # only rank 0 reports
    assert "2 process(es)" in stdout
    rows = read_metrics_csv(out / "metrics.csv")
    assert len(rows) == EPOCHS
    assert {p.name for p in out.iterdir()} >= {"config.json", "metrics.csv", "last.pt", "best.pt", "summary.json"}

    # The val metrics reduced over the two shards are exactly those of rank 0's saved model
    # evaluated on the whole split in one process.
    model = load_model(out / "last.pt")
    val = VOCCrops(prepared_sample, "val", eval_transform(model.data_config))
    result = evaluate(
        model, make_loader(val, 8, shuffle=False, workers=0), device=torch.device("cpu"), num_classes=20, progress=False
    )
    assert result.images == len(val)
    assert result.acc1 == pytest.approx(rows[-1]["val_acc1"], abs=1e-5)
    assert result.loss == pytest.approx(rows[-1]["val_loss"], rel=1e-4)


def test_elastic_restart_resumes_from_last_checkpoint(ddp_run, prepared_sample, tmp_path):
    """Rank 0 dies hard in epoch 2; torchrun restarts both workers, which resume from the end
    of epoch 1 and end with the undisturbed run's weights."""
    reference, _ = ddp_run
    steps_per_epoch = len(VOCCrops(prepared_sample, "train")) // (8 * 2)
    out = tmp_path / "elastic"
    launch = ["--standalone", "--nproc_per_node=2", "--max-restarts=1", "--monitor-interval=0.5"]
    # a new rendezvous store per attempt: torchrun's shared one can hand the restarted workers
    # the dead attempt's addresses (docs/training.md, Elastic runs)
    env = {FAULT_ENV: str(steps_per_epoch + 2), "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    stdout, stderr = _finish(_torchrun(launch, prepared_sample, out, env=env))
    assert f"rank 0 exits hard at step {steps_per_epoch + 2}" in stderr
    assert "torchrun restarted the workers: resuming from" in stdout
    assert f"resuming {out} after epoch 1" in stdout
    assert stdout.count(f"epoch   1/{EPOCHS}") == 1 and stdout.count(f"epoch   2/{EPOCHS}") == 1
    _assert_same_weights(reference / "last.pt", out / "last.pt")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_through_a_c10d_rendezvous(ddp_run, prepared_sample, tmp_path):
    """Two torchrun launches (one process each) meet at a c10d rendezvous on 127.0.0.1: the
    same job as one launch of two processes, hence the same weights."""
    reference, _ = ddp_run
    out = tmp_path / "nodes"
    launch = [
        "--nnodes=2",
        "--nproc_per_node=1",
        "--rdzv_backend=c10d",
        f"--rdzv_endpoint=127.0.0.1:{_free_port()}",
        "--rdzv_id=two-nodes",
    ]
    nodes = [_torchrun(launch, prepared_sample, out) for _ in range(2)]
    outputs = [_finish(node)[0] for node in nodes]
    assert sum(o.count(f"epoch   2/{EPOCHS}") for o in outputs) == 1  # one rank 0 among the nodes
    assert any("2 process(es)" in o for o in outputs)
    _assert_same_weights(reference / "last.pt", out / "last.pt")
