"""`prepare --image-folder`: both layouts, both stores, class rules, every quirk of a real
folder, broken pictures with and without --skip-bad, and label order against torchvision."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import ImageFolder

from inception_v2 import cli
from inception_v2.data import PreparedDataset, prepare
from inception_v2.data.prepare import BadSourceFileError
from inception_v2.errors import UsageError
from tests.data.folders import BROKEN_REASONS, encode, gradient, quirky_folder, write

QUIET = dict(progress=False, log=lambda _: None)
CLASSES = ["Zebra", "cat", "dog house", "émigré.v2"]  # code-point order, as ImageFolder sorts


def manifest(out: Path) -> list:
    with open(out / "manifest.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def stored(out: Path, row: dict, store_cache: dict) -> np.ndarray:
    split = row["status"]
    if split not in store_cache:
        store_cache[split] = PreparedDataset(out, split)
    return store_cache[split].image(int(row["store_index"])).permute(1, 2, 0).numpy()


@pytest.fixture(scope="module")
def quirky(tmp_path_factory) -> tuple:
    root = tmp_path_factory.mktemp("folder") / "pictures"
    return root, quirky_folder(root)


def test_every_quirk_of_a_folder_with_skip_bad(quirky, tmp_path):
    root, expected = quirky
    out = tmp_path / "p"
    counts = prepare(out, image_folder=root, val_fraction=0.25, test_fraction=0.25, skip_bad=True, workers=2, **QUIET)
    assert counts["classes"] == CLASSES and counts["layout"] == "pool"
    rows = manifest(out)
    assert list(rows[0]) == ["file", "class", "status", "store_index", "reason", "warnings"]
    by_file = {r["file"]: r for r in rows}
    # every picture is stored as a viewer shows it, under its folder's class
    cache: dict = {}
    for rel, (pixels, tolerance) in expected.items():
        row = by_file[rel]
        assert row["status"] in ("train", "val", "test") and row["class"] == rel.split("/")[0], rel
        image = stored(out, row, cache)
        assert image.shape == pixels.shape, rel
        assert np.abs(image.astype(int) - pixels.astype(int)).mean() <= tolerance, rel
        assert cache[row["status"]][int(row["store_index"])][1] == CLASSES.index(row["class"])
    (rotated,) = [rel for rel in expected if rel.endswith("rotated6.jpg")]
    assert "EXIF orientation 6 applied" in by_file[rotated]["warnings"]
    # ignored entries: listed and counted, never classes
    ignored = {r["file"]: r["reason"] for r in rows if r["status"] == "ignored"}
    assert ignored == {
        ".ipynb_checkpoints/": "hidden-folder",
        "README.txt": "outside-class-folder",
        "cat/.git/": "hidden-folder",
        "cat/.DS_Store": "hidden-file",
        "cat/notes.txt": "not-an-image",
        "dog house/Thumbs.db": "not-an-image",
    }
    assert counts["ignored_files"] == {
        "hidden-file": 1,
        "hidden-folder": 2,
        "not-an-image": 2,
        "outside-class-folder": 1,
    }
    # broken pictures: skipped with their reason, in the manifest and in counts.json
    skipped = {r["file"].split("/")[-1]: r for r in rows if r["status"] == "skipped"}
    assert {name: r["reason"] for name, r in skipped.items()} == BROKEN_REASONS
    assert all(r["store_index"] == "" and r["warnings"] for r in skipped.values())
    assert sorted(s["file"].split("/")[-1] for s in counts["skipped"]) == sorted(BROKEN_REASONS)
    assert counts["skipped_files"] == {"bad-image": 2, "decompression-bomb": 1, "empty-file": 1}
    # every class in every split whose fraction is > 0; totals add up; one row per file
    for split in ("train", "val", "test"):
        assert all(n >= 1 for n in counts[split]["per_class"].values()), split
        assert counts[split]["total"] == len(PreparedDataset(out, split)) == sum(counts[split]["per_class"].values())
        indices = sorted(int(r["store_index"]) for r in rows if r["status"] == split)
        assert indices == list(range(counts[split]["total"]))
    assert len(rows) == len(expected) + len(ignored) + len(BROKEN_REASONS)
    assert PreparedDataset(out, "train").classes == CLASSES


def test_broken_picture_without_skip_bad_stops_naming_it(quirky, tmp_path, capsys):
    root, _ = quirky
    out = tmp_path / "p"
    with pytest.raises(BadSourceFileError) as info:
        prepare(out, image_folder=root, workers=1, **QUIET)
    assert Path(info.value.path).name in BROKEN_REASONS and "--skip-bad" in str(info.value)
    assert not (out / "counts.json").exists()
    status = cli.main(["prepare", "--image-folder", str(root), "--out", str(tmp_path / "q"), "--workers", "1"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "Traceback" not in err and "0x" not in err and "--skip-bad" in err


def test_both_stores_hold_the_same_pictures_and_jpeg_keeps_original_bytes(tmp_path):
    root = tmp_path / "photos"
    for i in range(6):
        cls = ("bird", "fish")[i % 2]
        write(root / cls / f"{i}.jpg", encode(Image.fromarray(gradient(60 + i, 80, seed=i)), "JPEG", quality=90))
    write(root / "bird" / "lossless.png", encode(Image.fromarray(gradient(30, 30, seed=9)), "PNG"))
    kw = dict(image_folder=root, val_fraction=0.2, test_fraction=0.2, workers=1, **QUIET)
    prepare(tmp_path / "raw", **kw)
    prepare(tmp_path / "jpeg", store="jpeg", **kw)
    assert manifest(tmp_path / "raw") == manifest(tmp_path / "jpeg")
    assert not (tmp_path / "jpeg" / "train.pixels").exists() and (tmp_path / "jpeg" / "train.jpeg").is_file()
    for row in manifest(tmp_path / "raw"):
        raw, jpeg = PreparedDataset(tmp_path / "raw", row["status"]), PreparedDataset(tmp_path / "jpeg", row["status"])
        i = int(row["store_index"])
        a, b = raw.image(i), jpeg.image(i)
        assert a.shape == b.shape and b.dtype == torch.uint8 and jpeg[i][1] == raw[i][1]
        if row["file"].endswith(".jpg"):  # the file's own bytes, decoded by the loader to PIL's pixels
            entry = jpeg.index[i]
            data = (tmp_path / "jpeg" / f"{row['status']}.jpeg").read_bytes()[entry[0] : entry[0] + entry[4]]
            assert data == (root / row["file"]).read_bytes()
            assert torch.equal(a, b)
        else:  # re-encoded at quality 95
            assert (a.float() - b.float()).abs().mean() < 3


def test_split_layout_holds_out_val_from_train_and_keeps_test(tmp_path):
    root = tmp_path / "imagenet-style"
    for cls, n in (("ant", 5), ("bee", 3)):
        for i in range(n):
            write(root / "train" / cls / f"{i}.png", encode(Image.fromarray(gradient(12, 12, seed=i)), "PNG"))
    write(root / "test" / "bee" / "t.png", encode(Image.fromarray(gradient(12, 12)), "PNG"))
    counts = prepare(tmp_path / "p", image_folder=root, val_fraction=0.2, workers=1, **QUIET)
    assert counts["layout"] == "splits" and counts["classes"] == ["ant", "bee"]
    assert counts["val"]["per_class"] == {"ant": 1, "bee": 1}  # round(0.2 n), at least one per class
    assert counts["train"]["per_class"] == {"ant": 4, "bee": 2}
    assert counts["test"]["per_class"] == {"ant": 0, "bee": 1}  # a test class may be missing
    rows = manifest(tmp_path / "p")
    assert all(r["status"] == "test" for r in rows if r["file"].startswith("test/"))
    # without test/ the test split is empty; with val/ it is used as it is
    shutil.rmtree(root / "test")
    write(root / "val" / "ant" / "v.png", encode(Image.fromarray(gradient(12, 12)), "PNG"))
    counts = prepare(tmp_path / "q", image_folder=root, workers=1, **QUIET)
    assert counts["test"]["total"] == 0 and len(PreparedDataset(tmp_path / "q", "test")) == 0
    assert counts["val"]["per_class"] == {"ant": 1, "bee": 0} and counts["train"]["total"] == 8


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda r: write(r / "val" / "cow" / "a.png", b""), "'cow' of .*val have no counterpart in .*train"),
        (lambda r: write(r / "train" / "cow" / "notes.txt", b"x"), "'cow' in .*train hold no picture files"),
        (lambda r: shutil.rmtree(r / "train"), "no class folders in"),
    ],
    ids=["val-class-not-in-train", "class-without-pictures", "no-classes"],
)
def test_class_rules_are_clear_errors(tmp_path, make, message):
    root = tmp_path / "r"
    write(root / "train" / "ant" / "a.png", encode(Image.fromarray(gradient(8, 8)), "PNG"))
    write(root / "train" / "ant" / "b.png", encode(Image.fromarray(gradient(8, 8)), "PNG"))
    make(root)
    with pytest.raises(UsageError, match=message):
        prepare(tmp_path / "p", image_folder=root, workers=1, **QUIET)


def test_too_few_pictures_for_every_split_is_an_error(tmp_path):
    root = tmp_path / "r"
    for cls, n in (("ant", 6), ("bee", 2)):
        for i in range(n):
            write(root / cls / f"{i}.png", encode(Image.fromarray(gradient(8, 8, seed=i)), "PNG"))
    with pytest.raises(UsageError, match=r"class 'bee' has 2 usable image\(s\).*train.*--val-fraction / --test"):
        prepare(tmp_path / "p", image_folder=root, workers=1, **QUIET)
    counts = prepare(tmp_path / "q", image_folder=root, test_fraction=0, workers=1, **QUIET)
    assert counts["val"]["per_class"] == {"ant": 1, "bee": 1} and counts["test"]["total"] == 0


def test_labels_and_order_agree_with_torchvision_imagefolder(tmp_path):
    root = tmp_path / "clean"  # no hidden entries, only formats ImageFolder reads
    names = ["Zebra", "cat", "cat food", "cat.2", "dog", "émigré", "Ärger"]
    for k, cls in enumerate(names):
        for j, rel in enumerate(["b.png", "a.jpg", "sub/z.png", "sub/deeper/c.png", "sub 2/y.png"][: 2 + k % 4]):
            pixels = gradient(10 + j, 12, seed=10 * k + j)
            fmt = "JPEG" if rel.endswith(".jpg") else "PNG"
            write(root / cls / rel, encode(Image.fromarray(pixels), fmt, **({"quality": 95} if fmt == "JPEG" else {})))
    out = tmp_path / "p"
    counts = prepare(out, image_folder=root, val_fraction=0, test_fraction=0, workers=1, **QUIET)
    reference = ImageFolder(str(root))
    train = PreparedDataset(out, "train")
    assert counts["classes"] == reference.classes and train.class_to_idx == reference.class_to_idx
    assert train.targets == reference.targets  # the same files in the same order
    files = [r["file"] for r in manifest(out)]
    assert files == [Path(p).relative_to(root).as_posix() for p, _ in reference.samples]
    for i, (path, label) in enumerate(reference.samples):
        pixels = np.asarray(Image.open(path).convert("RGB"))
        assert np.array_equal(train.image(i).permute(1, 2, 0).numpy(), pixels) and train[i][1] == label


def test_cli_prepare_image_folder(tmp_path, capsys):
    root = tmp_path / "r"
    for i in range(4):
        write(root / ("a", "b")[i % 2] / f"{i}.png", encode(Image.fromarray(gradient(8, 8, seed=i)), "PNG"))
    args = ["prepare", "--image-folder", str(root), "--out", str(tmp_path / "p"), "--workers", "1"]
    assert cli.main(args + ["--val-fraction", "0.3", "--test-fraction", "0", "--store", "jpeg"]) == 0
    out = capsys.readouterr().out
    assert "found an image folder (ROOT/CLASS/...)" in out and "total" in out
    assert json.loads((tmp_path / "p" / "prepare.json").read_text())["options"]["store"] == "jpeg"
    assert cli.main(args + ["--verify-counts", "seed"]) == 2
    assert "does not apply to --image-folder" in capsys.readouterr().err
    assert cli.main(args + ["--strict"]) == 2
    assert cli.main(args + ["--val-fraction", "0.6", "--test-fraction", "0.5"]) == 2
    assert "leave nothing to train on" in capsys.readouterr().err
