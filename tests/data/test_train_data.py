"""A run's data (``inception_v2.train.data``): ``--data`` as an image folder, prepared into a
cache; advice ``train`` accepts when a raw source has a bad file; an empty test split; and a
short training run on a learnable generated folder that beats chance, with its class names in
the checkpoint."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch

from inception_v2 import cli
from inception_v2.data import make_folder_sample, prepare
from inception_v2.errors import UsageError
from inception_v2.models.registry import DataConfig
from inception_v2.train.data import build_data, cache_dir_for, resolve_prepared
from inception_v2.train.distributed import DistInfo
from tests.train.helpers import quiet, tiny_config

SMALL = DataConfig(input_size=32, resize_size=36, min_input_size=32)


@pytest.fixture(scope="module")
def learnable_folder(tmp_path_factory) -> Path:
    """4 classes x 40 pictures (train/val/test folders), one synthetic object each."""
    root = tmp_path_factory.mktemp("folder") / "shapes"
    make_folder_sample(root, classes=4, images=160, seed=0, layout="splits")
    return root


def test_an_image_folder_as_data_is_prepared_into_a_cache_once(learnable_folder, tmp_path):
    lines = []
    prepared = resolve_prepared(str(learnable_folder), str(tmp_path / "runs" / "a"), log=lines.append)
    assert prepared == cache_dir_for(learnable_folder, 0.05, tmp_path / "runs" / "a", "image-folder")
    assert (prepared / "counts.json").is_file() and any("is an image folder" in line for line in lines)
    lines.clear()
    assert resolve_prepared(str(learnable_folder), str(tmp_path / "runs" / "b"), log=lines.append) == prepared
    assert any("nothing to do" in line for line in lines)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"neither a prepared directory .* nor an image folder \(no class folders"):
        resolve_prepared(str(tmp_path / "empty"), str(tmp_path / "x"))


def test_a_bad_file_in_a_raw_source_gets_advice_train_accepts(learnable_folder, sample_devkit, tmp_path, capsys):
    folder = Path(shutil.copytree(learnable_folder, tmp_path / "folder"))
    (folder / "train" / "bus" / "000003.jpg").write_bytes(b"")
    voc = Path(shutil.copytree(sample_devkit, tmp_path / "voc"))
    first = (voc / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "test.txt").read_text().split()[0]
    (voc / "VOCdevkit" / "VOC2007" / "JPEGImages" / f"{first}.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    for data, flag, bad in ((folder, "--image-folder", "000003.jpg"), (voc, "--voc-root", f"{first}.jpg")):
        status = cli.main(
            [
                "train",
                "--model",
                "googlenet_bn",
                "--data",
                str(data),
                "--out",
                str(tmp_path / "run"),
                "--device",
                "cpu",
                "--workers",
                "0",
                "--epochs",
                "1",
            ]
        )
        err = capsys.readouterr().err
        assert status == 2 and err.count("\n") == 1 and bad in err, err
        assert f"`inception-v2 prepare {flag} {data} --out DIR --skip-bad`" in err
        assert "then `inception-v2 train --data DIR`" in err and "use --skip-bad" not in err


def test_build_data_allows_an_empty_test_split(learnable_folder, tmp_path):
    root = Path(shutil.copytree(learnable_folder, tmp_path / "no-test", ignore=shutil.ignore_patterns("test")))
    prepare(tmp_path / "p", image_folder=root, workers=1, progress=False, log=quiet)
    data = build_data(
        tmp_path / "p", SMALL, batch_size=8, workers=0, seed=0, info=DistInfo(), device=torch.device("cpu")
    )
    assert len(data.test) == 0 and len(data.val) == 16
    assert data.classes == ["aeroplane", "bus", "diningtable", "pottedplant"]
    assert list(data.test_loader) == []


def test_training_on_a_generated_folder_beats_chance_and_keeps_the_class_names(learnable_folder, tmp_path):
    from inception_v2.deploy.load import load_model
    from inception_v2.train import fit

    prepared = tmp_path / "prepared"
    prepare(prepared, image_folder=learnable_folder, store="jpeg", workers=1, progress=False, log=quiet)
    cfg = tiny_config(prepared, tmp_path / "run", batch_size=16, epochs=2)
    fit(cfg, progress=False)
    history = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=False)["history"]
    best = max(row["val_acc1"] for row in history)
    assert best >= 0.6, f"val top-1 {best:.2f}: no better than chance (0.25) by a clear margin"
    assert load_model(tmp_path / "run" / "best.pt").classes == ["aeroplane", "bus", "diningtable", "pottedplant"]


def test_training_without_a_test_split_reports_none(learnable_folder, tmp_path, caplog):
    """An image folder without test/: every epoch is trained and validated, the test figures
    are absent (NaN in metrics.csv, null in summary.json), and compare shows "-"."""
    import json
    import math

    from inception_v2.report.compare import compare
    from inception_v2.train import fit
    from inception_v2.train.metrics import read_metrics_csv

    root = Path(shutil.copytree(learnable_folder, tmp_path / "no-test", ignore=shutil.ignore_patterns("test")))
    prepare(tmp_path / "p", image_folder=root, workers=1, progress=False, log=quiet)
    with caplog.at_level(logging.INFO, logger="inception_v2"):
        summary = fit(tiny_config(tmp_path / "p", tmp_path / "run", batch_size=16, epochs=1), progress=False)
    lines = caplog.messages
    assert summary["test_acc1_at_best_val"] is None and summary["best_test_acc1"] is None
    assert 0.0 <= summary["best_val_acc1"] <= 1.0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["final_test_acc1"] is None
    assert math.isnan(read_metrics_csv(tmp_path / "run" / "metrics.csv")[0]["test_acc1"])
    assert any("no test split" in line for line in lines)
    table = compare([tmp_path / "run"], tmp_path / "cmp")["table"]
    assert "| - |" in table
