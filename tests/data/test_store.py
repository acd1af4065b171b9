"""The stores: damaged files are one-line errors naming the file, at open; folders prepared
before the jpeg store and image folders (no class list, 4-column index) still load as VOC."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from inception_v2 import cli
from inception_v2.data import VOC_CLASSES, PreparedDataset, VOCCrops, prepare
from inception_v2.data.store import SplitWriter, read_index
from inception_v2.errors import UsageError
from tests.conftest import SAMPLE_VAL_FRACTION

QUIET = dict(progress=False, log=lambda _: None)


@pytest.fixture(scope="module")
def prepared_jpeg(sample_devkit, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared-jpeg") / "sample"
    prepare(out, voc_root=sample_devkit, val_fraction=SAMPLE_VAL_FRACTION, store="jpeg", workers=1, **QUIET)
    return out


def test_voc_jpeg_store_is_small_and_close_to_the_raw_crops(prepared_sample, prepared_jpeg):
    raw_bytes = sum((prepared_sample / f"{s}.pixels").stat().st_size for s in ("train", "val", "test"))
    jpeg_bytes = sum((prepared_jpeg / f"{s}.jpeg").stat().st_size for s in ("train", "val", "test"))
    assert jpeg_bytes <= raw_bytes / 3
    assert (prepared_sample / "manifest.csv").read_bytes() == (prepared_jpeg / "manifest.csv").read_bytes()
    raw, jpeg = VOCCrops(prepared_sample, "val"), PreparedDataset(prepared_jpeg, "val")
    assert jpeg.store == "jpeg" and jpeg.classes == list(VOC_CLASSES) and jpeg.targets == raw.targets
    for i in range(len(raw)):
        a, b = raw.image(i), jpeg.image(i)
        assert a.shape == b.shape and (a.float() - b.float()).abs().mean() < 4  # quality 95


@pytest.mark.parametrize("store", ["raw", "jpeg"])
def test_truncated_store_is_a_one_line_error_naming_the_file(prepared_sample, prepared_jpeg, tmp_path, capsys, store):
    out = Path(shutil.copytree(prepared_sample if store == "raw" else prepared_jpeg, tmp_path / "p"))
    data = out / ("train.pixels" if store == "raw" else "train.jpeg")
    data.write_bytes(data.read_bytes()[:-100])
    with pytest.raises(UsageError, match=rf"{data.name} is truncated or damaged: .* bytes, expected"):
        PreparedDataset(out, "train")
    assert len(PreparedDataset(out, "val")) > 0  # the other splits are fine
    status = cli.main(
        [
            "train",
            "--model",
            "googlenet_bn",
            "--data",
            str(out),
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
    assert status == 2 and err.count("\n") == 1 and str(data) in err and "Traceback" not in err
    (out / "test.index.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(UsageError, match=r"test\.index\.npy is damaged"):
        PreparedDataset(out, "test")


def test_damaged_jpeg_entry_names_the_store_without_a_repr(prepared_jpeg, tmp_path):
    out = Path(shutil.copytree(prepared_jpeg, tmp_path / "p"))
    ds = PreparedDataset(out, "test")
    start, nbytes = int(ds.index[1, 0]), int(ds.index[1, 4])
    data = bytearray((out / "test.jpeg").read_bytes())
    data[start + nbytes // 3 : start + nbytes] = bytes(nbytes - nbytes // 3)  # same size, bad content
    (out / "test.jpeg").write_bytes(bytes(data))
    ds = PreparedDataset(out, "test")
    assert ds.image(0).shape[0] == 3
    with pytest.raises(UsageError, match=r"test\.jpeg: image 1 is not a decodable JPEG") as info:
        for _ in range(3):  # libjpeg may decode garbage as grey; zeros end it for good
            ds.image(1)
    assert "0x" not in str(info.value)


def test_folder_prepared_before_image_folders_loads_as_voc(prepared_sample, tmp_path):
    out = Path(shutil.copytree(prepared_sample, tmp_path / "old"))
    for split in ("train", "val", "test"):  # the 4-column index of the first store format
        np.save(out / f"{split}.index.npy", read_index(out, split)[:, :4])
    counts = json.loads((out / "counts.json").read_text())
    del counts["classes"]
    (out / "counts.json").write_text(json.dumps(counts))
    info = json.loads((out / "prepare.json").read_text())
    info["format"] = 1
    del info["options"]["store"], info["options"]["test_fraction"], info["kind"]
    info["files"] = {k: v for k, v in info["files"].items() if not k.endswith(".npy")}
    (out / "prepare.json").write_text(json.dumps(info))
    old, new = PreparedDataset(out, "train"), PreparedDataset(prepared_sample, "train")
    assert old.classes == list(VOC_CLASSES) and old.store == "raw" and old.targets == new.targets
    assert all(torch.equal(old[i][0], new[i][0]) for i in range(0, len(new), 7))
    assert np.array_equal(old.index, new.index)  # nbytes derived from height x width


def test_split_writer_refuses_a_wrong_pixel_count(tmp_path):
    with pytest.raises(ValueError, match="not the pixels of a 2x3"):
        with SplitWriter(tmp_path, "train", "raw") as w:
            w.append(np.zeros(17, np.uint8), 2, 3, 0)
    assert not (tmp_path / "train.pixels").exists() and not list(tmp_path.glob(".*.tmp"))
