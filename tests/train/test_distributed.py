"""Data parallelism: two CPU processes (gloo) through torchrun, on the tiny sample."""

import os
import subprocess
import sys

import pytest
import torch

from inception_v2.data import VOCCrops, eval_transform, make_loader
from inception_v2.train import evaluate, load_model
from inception_v2.train.distributed import DistInfo, ShardSampler
from inception_v2.train.metrics import read_metrics_csv


def test_shard_sampler_covers_every_index_once():
    data = list(range(11))
    shards = [list(ShardSampler(data, DistInfo(rank=r, world_size=3))) for r in range(3)]
    assert sorted(i for s in shards for i in s) == data
    assert [len(ShardSampler(data, DistInfo(rank=r, world_size=3))) for r in range(3)] == [4, 4, 3]


def test_torchrun_two_cpu_processes(prepared_sample, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "inception_v2", "train", "--model", "googlenet_bn", "--data", str(prepared_sample),
        "--out", str(out), "--epochs", "1", "--batch-size", "4", "--image-size", "32",
        "--workers", "0", "--device", "cpu", "--no-progress",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("epoch   1/1") == 1  # only rank 0 reports
    assert "2 process(es)" in proc.stdout
    rows = read_metrics_csv(out / "metrics.csv")
    assert len(rows) == 1
    assert {p.name for p in out.iterdir()} >= {"config.json", "metrics.csv", "last.pt", "best.pt", "summary.json"}

    # The val metrics reduced over the two shards are exactly those of rank 0's saved model
    # evaluated on the whole split in one process.
    model = load_model(out / "last.pt")
    val = VOCCrops(prepared_sample, "val", eval_transform(model.data_config))
    result = evaluate(model, make_loader(val, 8, shuffle=False, workers=0), device=torch.device("cpu"),
                      num_classes=20, progress=False)  # fmt: skip
    assert result.images == len(val)
    assert result.acc1 == pytest.approx(rows[0]["val_acc1"], abs=1e-5)
    assert result.loss == pytest.approx(rows[0]["val_loss"], rel=1e-4)
