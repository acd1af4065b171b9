"""`prepare`: counts, crop geometry, exclusions, bad files, resuming, tar files, CLI."""

from __future__ import annotations

import csv
import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inception_v2 import cli
from inception_v2.data import VOC_CLASSES, VOCCrops, prepare
from inception_v2.data.counts import compare_with_seed
from inception_v2.data.prepare import OUTPUT_FILES, SCRATCH
from inception_v2.data.voc import SEED_COUNTS, clamp_box, parse_annotation
from inception_v2.errors import UsageError
from tests.conftest import SAMPLE_VAL_FRACTION
from tests.data.devkit import annotation_xml, coordinate_image, object_xml, official_tars, png_bytes, write_devkit

prep = importlib.import_module("inception_v2.data.prepare")  # the module (the package exports the function)
QUIET = dict(progress=False, log=lambda _: None)


def manifest(out: Path) -> list:
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def assert_same_output(a: Path, b: Path, same_files: bool = True) -> None:
    """Byte-for-byte equal outputs (prepare.json may differ only in where the source was, and
    in the inputs' fingerprint when they were read from other files)."""
    for name in OUTPUT_FILES + ("counts.json",):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    pa, pb = json.loads((a / "prepare.json").read_text()), json.loads((b / "prepare.json").read_text())
    pa.pop("source"), pb.pop("source")
    if not same_files:
        pa.pop("inputs"), pb.pop("inputs")
    assert pa == pb
    assert not (a / SCRATCH).exists() and not (b / SCRATCH).exists()


# --------------------------------------------------------------------------- counts and manifest


def test_counts_match_the_independent_counts(prepared_sample, sample_devkit):
    expected = json.loads((sample_devkit / "COUNTS.json").read_text())
    counts = json.loads((prepared_sample / "counts.json").read_text())
    for name in VOC_CLASSES:
        trainval = sum(expected[k]["per_class_non_difficult"][name] for k in ("2007/trainval", "2012/trainval"))
        assert counts["trainval"]["per_class"][name] == trainval
        assert counts["test"]["per_class"][name] == expected["2007/test"]["per_class_non_difficult"][name]
        assert counts["train"]["per_class"][name] + counts["val"]["per_class"][name] == trainval
        # val is a stratified 20% of each class, rounded half up
        assert counts["val"]["per_class"][name] == int(np.floor(SAMPLE_VAL_FRACTION * trainval + 0.5))
    for split in ("trainval", "train", "val", "test"):
        assert list(counts[split]["per_class"]) == list(VOC_CLASSES)
        assert counts[split]["total"] == sum(counts[split]["per_class"].values())
    difficult = sum(e["objects"] - e["non_difficult_objects"] for e in expected.values())
    assert counts["excluded"] == {"difficult": difficult}
    assert {k: v["images"] for k, v in counts["sources"].items()} == {k: v["images"] for k, v in expected.items()}


def test_manifest_has_every_annotated_object(prepared_sample, sample_devkit):
    rows = manifest(prepared_sample)
    objects = 0
    for xml in sorted((sample_devkit / "VOCdevkit").glob("VOC*/Annotations/*.xml")):
        objects += len(parse_annotation(xml.read_bytes(), str(xml)).objects)
    assert len(rows) == objects
    for split in ("train", "val", "test"):
        indices = [int(r["store_index"]) for r in rows if r["status"] == split]
        assert indices == list(range(len(VOCCrops(prepared_sample, split))))
    for row in rows:
        assert row["status"] in ("train", "val", "test", "excluded")
        assert (row["status"] == "excluded") == (row["reason"] != "")
        assert (row["status"] == "test") == (row["status"] != "excluded" and row["image_set"] == "test")
        if row["reason"] == "difficult":
            assert row["difficult"] == "1"


def test_val_split_is_deterministic_and_independent_of_workers(prepared_sample, sample_devkit, tmp_path):
    out = tmp_path / "p"
    prepare(out, voc_root=sample_devkit, val_fraction=SAMPLE_VAL_FRACTION, workers=2, **QUIET)
    assert_same_output(out, prepared_sample)


def test_val_fraction_zero_gives_train_equal_trainval(sample_devkit, tmp_path):
    counts = prepare(tmp_path / "p", voc_root=sample_devkit, val_fraction=0, workers=1, **QUIET)
    assert counts["train"] == counts["trainval"] and counts["val"]["total"] == 0
    assert len(VOCCrops(tmp_path / "p", "val")) == 0


# --------------------------------------------------------------------------- geometry


def test_crops_are_pixel_exact_boxes_of_the_decoded_images(prepared_sample, sample_devkit):
    devkit = sample_devkit / "VOCdevkit"
    stores = {s: VOCCrops(prepared_sample, s) for s in ("train", "val", "test")}
    checked = 0
    for row in manifest(prepared_sample):
        if row["status"] not in stores:
            continue
        image = np.asarray(Image.open(devkit / row["file"]).convert("RGB"))
        box = tuple(int(float(row[k]) + 0.5) for k in ("xmin", "ymin", "xmax", "ymax"))
        xmin, ymin, xmax, ymax = clamp_box(box, image.shape[1], image.shape[0])
        crop = stores[row["status"]].crop(int(row["store_index"])).permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(crop, image[ymin - 1 : ymax, xmin - 1 : xmax])
        assert stores[row["status"]][int(row["store_index"])][1] == VOC_CLASSES.index(row["class"])
        checked += 1
    counts = json.loads((prepared_sample / "counts.json").read_text())
    assert checked == counts["trainval"]["total"] + counts["test"]["total"]


@pytest.fixture
def rules_devkit(tmp_path: Path) -> Path:
    """Hand-written annotations over images whose pixels encode their own coordinates."""
    image = png_bytes(coordinate_image(40, 30))  # 40 wide, 30 high
    objects = [
        object_xml("dog", ["1", "1", "10", "10"]),  # the first ten columns and rows
        object_xml("cat", ["5.0", "3.0", "20.0", "12.0"]),  # floats
        object_xml(
            "person",
            ["11", "5", "30", "25"],
            parts=[("head", ["15", "5", "20", "9"]), ("hand", ["11", "12", "13", "14"])],
        ),
        object_xml("bird", ["35", "20", "45", "40"]),  # past the image: clamped to 35..40, 20..30
        object_xml("boat", ["41", "1", "50", "10"]),  # right of the image: nothing left
        object_xml("unicorn", ["1", "1", "5", "5"]),  # not a VOC class
        object_xml("car", ["2", "2", "4", "6"], difficult=None),  # no <difficult>: kept
        object_xml("cow", ["2", "2", "4", "6"], difficult="1"),  # difficult: excluded
        object_xml("bus", ["0", "-3", "40", "30"]),  # 0 and negative: clamped to the image
    ]
    mismatch = png_bytes(coordinate_image(20, 16))
    return write_devkit(
        tmp_path / "rules",
        {
            ("2007", "trainval", "000001"): (image, annotation_xml(40, 30, objects)),
            ("2007", "test", "000002"): (mismatch, annotation_xml(50, 50, [object_xml("sofa", "1 1 50 50".split())])),
        },
    )


def test_box_rules_on_known_pixels(rules_devkit, tmp_path):
    out = tmp_path / "p"
    counts = prepare(out, voc_root=rules_devkit, val_fraction=0, workers=1, **QUIET)
    rows = manifest(out)
    assert [r["class"] for r in rows] == "dog cat person bird boat unicorn car cow bus sofa".split()
    assert [r["reason"] for r in rows] == ["", "", "", "", "degenerate-box", "unknown-class", "", "difficult", "", ""]
    assert counts["excluded"] == {"degenerate-box": 1, "difficult": 1, "unknown-class": 1}
    assert counts["trainval"]["total"] == 6 and counts["test"]["total"] == 1
    train = VOCCrops(out, "train")

    def check(store_index, xmin, ymin, xmax, ymax):
        crop = train.crop(store_index).permute(1, 2, 0).numpy()
        assert crop.shape == (ymax - ymin + 1, xmax - xmin + 1, 3)
        assert tuple(crop[0, 0]) == (xmin - 1, ymin - 1, 77)  # 1-based box -> 0-based pixels
        assert tuple(crop[-1, -1]) == (xmax - 1, ymax - 1, 77)

    check(0, 1, 1, 10, 10)
    check(1, 5, 3, 20, 12)
    check(2, 11, 5, 30, 25)
    check(3, 35, 20, 40, 30)
    check(4, 2, 2, 4, 6)
    check(5, 1, 1, 40, 30)
    assert [train[i][1] for i in range(6)] == [VOC_CLASSES.index(c) for c in "dog cat person bird car bus".split()]
    assert "clamped" in rows[3]["warnings"] and "clamped" in rows[8]["warnings"]
    assert rows[0]["warnings"] == "" and rows[6]["difficult"] == "0"
    assert rows[1]["xmin"] == "5.0"  # the manifest keeps the box as written
    # XML says 50x50, the image is 20x16: the image is trusted, with a warning
    assert "XML size 50x50 != image size 20x16" in rows[9]["warnings"]
    assert tuple(VOCCrops(out, "test").crop(0).shape) == (3, 16, 20)


def test_strict_makes_unknown_classes_an_error(rules_devkit, tmp_path):
    with pytest.raises(UsageError, match=r"000001\.xml.*unknown class 'unicorn'"):
        prepare(tmp_path / "p", voc_root=rules_devkit, workers=1, strict=True, **QUIET)
    assert not (tmp_path / "p" / "counts.json").exists()


def test_max_side_downscales_only_large_crops(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, size=(100, 200, 3), dtype=np.uint8)
    root = write_devkit(
        tmp_path / "big",
        {
            ("2007", "trainval", "000001"): (
                png_bytes(pixels),
                annotation_xml(
                    200, 100, [object_xml("dog", ["1", "1", "200", "100"]), object_xml("cat", ["1", "1", "40", "50"])]
                ),
            )
        },
    )
    prepare(tmp_path / "p", voc_root=root, val_fraction=0, max_side=50, workers=1, **QUIET)
    train = VOCCrops(tmp_path / "p", "train")
    assert tuple(train.crop(0).shape) == (3, 25, 50)
    np.testing.assert_array_equal(train.crop(1).permute(1, 2, 0).numpy(), pixels[:50, :40])


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def devkit_copy(sample_devkit, tmp_path) -> Path:
    return Path(shutil.copytree(sample_devkit, tmp_path / "copy"))


def first_id(root: Path, year: str = "2007", image_set: str = "trainval") -> str:
    return (root / "VOCdevkit" / f"VOC{year}" / "ImageSets" / "Main" / f"{image_set}.txt").read_text().split()[0]


@pytest.mark.parametrize(
    "damage, reason, problem",
    [
        ("truncate-jpeg", "bad-image", "cannot decode image"),
        ("garbage-jpeg", "bad-image", "cannot decode image"),
        ("bad-xml", "bad-xml", "malformed XML"),
        ("no-jpeg", "missing-file", "image file not found"),
    ],
)
def test_bad_files_stop_the_run_or_are_skipped(devkit_copy, tmp_path, damage, reason, problem):
    image_id = first_id(devkit_copy)
    jpeg = devkit_copy / "VOCdevkit" / "VOC2007" / "JPEGImages" / f"{image_id}.jpg"
    xml = devkit_copy / "VOCdevkit" / "VOC2007" / "Annotations" / f"{image_id}.xml"
    n_objects = len(parse_annotation(xml.read_bytes(), "x").objects)
    if damage == "truncate-jpeg":
        jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    elif damage == "garbage-jpeg":
        jpeg.write_bytes(b"not a jpeg at all")
    elif damage == "bad-xml":
        xml.write_text("<annotation><object><name>dog</name>")
    else:
        jpeg.unlink()
    bad_name = xml.name if damage == "bad-xml" else jpeg.name

    out = tmp_path / "p"
    with pytest.raises(UsageError, match=problem) as info:
        prepare(out, voc_root=devkit_copy, workers=2, **QUIET)
    assert bad_name in str(info.value)
    assert not (out / "counts.json").exists()  # nothing looks finished

    counts = prepare(out, voc_root=devkit_copy, workers=2, skip_bad=True, **QUIET)
    assert counts["skipped_files"] == {reason: 1}
    rows = [r for r in manifest(out) if r["image_id"] == image_id and r["year"] == "2007"]
    file_rows = [r for r in rows if r["object_index"] == ""]
    assert len(file_rows) == 1 and file_rows[0]["file"].endswith(bad_name) and problem in file_rows[0]["warnings"]
    object_rows = [r for r in rows if r["object_index"] != ""]
    assert len(object_rows) == (0 if damage == "bad-xml" else n_objects)
    assert all(r["status"] == "excluded" and r["reason"] == reason for r in rows)
    if object_rows:
        assert counts["excluded"][reason] == n_objects


# --------------------------------------------------------------------------- resuming and reruns


def test_interrupted_run_resumes_to_the_same_bytes(prepared_sample, sample_devkit, tmp_path, monkeypatch):
    out = tmp_path / "p"
    opts = dict(voc_root=sample_devkit, val_fraction=SAMPLE_VAL_FRACTION, **QUIET)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as if killed after the stores and the manifest, before prepare.json

    monkeypatch.setattr(prep, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        prepare(out, workers=1, **opts)
    monkeypatch.undo()
    assert not (out / "counts.json").exists() and (out / "train.pixels").exists()
    chunks = sorted((out / SCRATCH).glob("*.chunk"))
    assert len(chunks) >= 3
    chunks[1].unlink()  # as if killed before this chunk was done
    dead = 2**22 + 1  # above Linux's largest pid: a process that is gone
    (out / f".counts.json.iv2-{dead}-abc123de.tmp").write_text("half")  # a temp file a kill left behind
    (out / SCRATCH / f".x.chunk.iv2-{dead}-abc123de.tmp").write_text("half")
    (out / ".notes.tmp").write_text("the user's")  # not ours: never removed
    prepare(out, workers=2, **opts)
    assert_same_output(out, prepared_sample)
    assert [p.name for p in out.glob(".*.tmp")] == [".notes.tmp"]


def test_rerun_on_finished_output_verifies_and_returns(sample_devkit, tmp_path):
    out = tmp_path / "p"
    first = prepare(out, voc_root=sample_devkit, workers=1, **QUIET)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != ".lock"}
    lines = []
    again = prepare(out, voc_root=sample_devkit, workers=1, progress=False, log=lines.append)
    assert again == first
    assert any("already prepared" in line for line in lines)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != ".lock"} == mtimes

    with pytest.raises(UsageError, match="other options"):
        prepare(out, voc_root=sample_devkit, workers=1, max_side=64, **QUIET)

    (out / "test.pixels").unlink()  # damaged: prepared again
    reference = (out / "manifest.csv").read_bytes()
    assert prepare(out, voc_root=sample_devkit, workers=1, **QUIET) == first
    assert (out / "test.pixels").exists() and (out / "manifest.csv").read_bytes() == reference


# --------------------------------------------------------------------------- tar files


def test_tar_files_give_the_same_output(prepared_sample, sample_devkit, tmp_path):
    tars = official_tars(sample_devkit, tmp_path / "tars")
    out = tmp_path / "p"
    prepare(out, voc_tars=tars, val_fraction=SAMPLE_VAL_FRACTION, workers=2, **QUIET)
    assert_same_output(out, prepared_sample, same_files=False)


def test_exactly_one_source(sample_devkit, tmp_path):
    with pytest.raises(UsageError, match="exactly one"):
        prepare(tmp_path / "p", **QUIET)
    with pytest.raises(UsageError, match="exactly one"):
        prepare(tmp_path / "p", voc_root=sample_devkit, voc_tars=[tmp_path / "x.tar"], **QUIET)


# --------------------------------------------------------------------------- seed table and CLI


def test_compare_with_seed_reports_per_class_differences():
    counts = {
        "trainval": {"per_class": {k: v[0] for k, v in SEED_COUNTS.items()}},
        "test": {"per_class": {k: v[1] for k, v in SEED_COUNTS.items()}},
    }
    assert compare_with_seed(counts) == []
    counts["test"]["per_class"]["dog"] += 1
    (diff,) = compare_with_seed(counts)
    assert diff.startswith("dog") and "test 490 (source 489, +1)" in diff


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run ``inception-v2`` (only the module of the command being run is imported)."""

    def run(*argv: str):
        status = cli.main([str(a) for a in argv])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def test_cli_make_sample_prepare_and_verify(run_cli, tmp_path):
    status, out, _ = run_cli("make-sample", tmp_path / "s", "--images", "6", "--seed", "3")
    assert status == 0 and "VOC2007 test" in out
    status, out, err = run_cli(
        "prepare", "--voc-root", tmp_path / "s", "--out", tmp_path / "p", "--workers", "1", "--verify-counts", "seed"
    )
    assert status == 1  # a 6-image sample is not VOC07+12
    assert "found VOC2007 trainval + test; VOC2012 trainval" in out and "total" in out
    assert "counts differ from the source's table in 20 classes" in err and "aeroplane" in err
    assert (tmp_path / "p" / "counts.json").exists()


def test_cli_errors_are_one_line(run_cli, tmp_path, devkit_copy):
    status, _, err = run_cli("prepare", "--voc-root", tmp_path / "empty", "--out", tmp_path / "p")
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1 and "VOCdevkit" in err
    image_id = first_id(devkit_copy, "2007", "test")
    (devkit_copy / "VOCdevkit" / "VOC2007" / "JPEGImages" / f"{image_id}.jpg").write_bytes(b"\xff\xd8junk")
    status, _, err = run_cli("prepare", "--voc-root", devkit_copy, "--out", tmp_path / "p", "--workers", "1")
    assert status == 2 and f"{image_id}.jpg" in err and "cannot decode image" in err and "--skip-bad" in err
    status, _, _ = run_cli(
        "prepare", "--voc-root", devkit_copy, "--out", tmp_path / "p", "--workers", "1", "--skip-bad"
    )
    assert status == 0
    status, _, err = run_cli("prepare", "--voc-root", devkit_copy, "--out", tmp_path / "q", "--val-fraction", "1")
    assert status == 2 and "--val-fraction" in err


# --------------------------------------------------------------------------- never delete what is not ours


def test_out_inside_the_input_folder_is_refused_and_nothing_is_deleted(tmp_path):
    """--out equal to or inside the image root (a user class named `work`, a stray .tmp file)
    is refused before anything is read or written."""
    root = tmp_path / "pictures"
    for cls in ("cat", "work"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (20, 20), (i * 40, 0, 0)).save(root / cls / f"{i}.png")
    (root / ".notes.tmp").write_text("mine")
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    for out in (root, root / "prepared", root / "cat" / "p"):
        with pytest.raises(UsageError, match="inside the input folder"):
            prepare(out, image_folder=root, workers=1, **QUIET)
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before


def test_a_scratch_folder_without_the_marker_is_never_touched(sample_devkit, tmp_path):
    out = tmp_path / "p"
    (out / SCRATCH).mkdir(parents=True)
    (out / SCRATCH / "mine.txt").write_text("the user's")
    with pytest.raises(UsageError, match="not made by prepare"):
        prepare(out, voc_root=sample_devkit, workers=1, **QUIET)
    assert (out / SCRATCH / "mine.txt").read_text() == "the user's"


def test_only_our_files_leave_the_scratch_folder(sample_devkit, tmp_path, monkeypatch):
    """A user file put into the scratch folder of an interrupted run, and an old `work`
    folder, survive the run that finishes it."""
    out = tmp_path / "p"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prep, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        prepare(out, voc_root=sample_devkit, workers=1, **QUIET)
    monkeypatch.undo()
    (out / SCRATCH / "mine.txt").write_text("the user's")
    (out / "work").mkdir()
    (out / "work" / "keep.png").write_bytes(b"x")
    lines = []
    prepare(out, voc_root=sample_devkit, workers=1, progress=False, log=lines.append)
    assert (out / SCRATCH / "mine.txt").read_text() == "the user's" and (out / "work" / "keep.png").exists()
    assert not list((out / SCRATCH).glob("*.chunk")) and any("left" in line and SCRATCH in line for line in lines)


def test_a_prepared_folder_inside_an_image_folder_is_never_read_as_pictures(tmp_path):
    """A copy of a prepare output inside the pictures (put there by hand: prepare itself
    refuses to write there) is listed as ignored, neither a class nor pictures of one."""
    root = tmp_path / "pictures"
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (20, 20), (i * 40, 90, 0)).save(root / cls / f"{i}.png")
    prepare(tmp_path / "first", image_folder=root, workers=1, **QUIET)
    shutil.copytree(tmp_path / "first", root / "old-store", ignore=shutil.ignore_patterns(".lock"))
    shutil.copytree(tmp_path / "first", root / "cat" / "nested-store", ignore=shutil.ignore_patterns(".lock"))
    counts = prepare(tmp_path / "second", image_folder=root, workers=1, **QUIET)
    assert counts["classes"] == ["cat", "dog"]
    rows = list(csv.DictReader(open(tmp_path / "second" / "manifest.csv", newline="")))
    ignored = {r["file"]: r["reason"] for r in rows if r["status"] == "ignored"}
    assert ignored == {"old-store/": "prepared-folder", "cat/nested-store/": "prepared-folder"}
    assert not any(r["file"].startswith(("old-store/", "cat/nested-store/")) for r in rows if r["status"] != "ignored")
