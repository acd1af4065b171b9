"""Nothing stale, nothing leaked, nothing left running: prepare notices changed inputs, keeps
VOC2007 test images out of train, refuses path-like image ids, owns its output folder, and a
SIGKILL leaves no process behind and a rerun that gives the uninterrupted run's bytes."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import numpy as np
import pytest
from PIL import Image

from inception_v2.data import make_sample, prepare
from inception_v2.data.prepare import SCRATCH
from inception_v2.errors import LockedError, UsageError
from inception_v2.locking import exclusive
from tests.data.devkit import annotation_xml, coordinate_image, object_xml, png_bytes, write_devkit

prep = __import__("importlib").import_module("inception_v2.data.prepare")
QUIET = dict(progress=False, log=lambda _: None)


def manifest(out: Path) -> list:
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def same_output(a: Path, b: Path) -> None:
    names = [p.name for p in b.iterdir() if p.name not in (".lock", "prepare.json")]
    assert sorted(p.name for p in a.iterdir() if p.name not in (".lock", "prepare.json")) == sorted(names)
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    pa, pb = json.loads((a / "prepare.json").read_text()), json.loads((b / "prepare.json").read_text())
    assert {k: v for k, v in pa.items() if k != "source"} == {k: v for k, v in pb.items() if k != "source"}


def tiny_devkit(root: Path, labels=("dog", "cat"), test_ids=("000009",)) -> Path:
    image = png_bytes(coordinate_image(40, 30))
    objects = [object_xml(name, ["1", "1", "20", "20"]) for name in labels]
    images = {("2007", "trainval", f"00000{i}"): (image, annotation_xml(40, 30, objects)) for i in range(1, 4)}
    for image_id in test_ids:
        images[("2007", "test", image_id)] = (image, annotation_xml(40, 30, [object_xml("sofa", ["1", "1", "9", "9"])]))
    return write_devkit(root, images)


# --------------------------------------------------------------------------- stale inputs


def test_an_edited_annotation_is_noticed_and_changes_the_labels(tmp_path):
    root = tiny_devkit(tmp_path / "voc")
    out = tmp_path / "p"
    prepare(out, voc_root=root, val_fraction=0, workers=1, **QUIET)
    assert [r["class"] for r in manifest(out) if r["image_id"] == "000002"] == ["dog", "cat"]
    xml = root / "VOCdevkit" / "VOC2007" / "Annotations" / "000002.xml"
    xml.write_text(xml.read_text().replace("<name>dog</name>", "<name>horse</name>"))
    lines: List[str] = []
    counts = prepare(out, voc_root=root, val_fraction=0, workers=1, progress=False, log=lines.append)
    assert any("inputs changed" in line and "preparing it again" in line for line in lines)
    assert [r["class"] for r in manifest(out) if r["image_id"] == "000002"] == ["horse", "cat"]
    assert counts["train"]["per_class"]["horse"] == 1 and counts["train"]["per_class"]["dog"] == 2
    prepare(tmp_path / "fresh", voc_root=root, val_fraction=0, workers=1, **QUIET)
    same_output(out, tmp_path / "fresh")


def test_another_root_with_the_same_ids_is_noticed(tmp_path):
    make_sample(tmp_path / "a", images=12, seed=1)
    make_sample(tmp_path / "b", images=12, seed=2)  # the same ids, other pictures and objects
    out = tmp_path / "p"
    prepare(out, voc_root=tmp_path / "a", workers=1, **QUIET)
    lines: List[str] = []
    prepare(out, voc_root=tmp_path / "b", workers=1, progress=False, log=lines.append)
    changed = [line for line in lines if "inputs changed" in line]
    assert changed and str(tmp_path / "a") in changed[0] and str(tmp_path / "b") in changed[0]
    prepare(tmp_path / "fresh", voc_root=tmp_path / "b", workers=1, **QUIET)
    same_output(out, tmp_path / "fresh")
    # the same files somewhere else: noticed, and nothing to redo
    shutil.copytree(tmp_path / "b", tmp_path / "c")  # copies keep sizes and modification times
    lines.clear()
    prepare(out, voc_root=tmp_path / "c", workers=1, progress=False, log=lines.append)
    assert any("nothing to do" in line for line in lines) and any(str(tmp_path / "b") in line for line in lines)


def test_an_interrupted_run_redoes_only_the_chunks_whose_inputs_changed(tmp_path, monkeypatch):
    make_sample(tmp_path / "voc", images=40, seed=3)
    out = tmp_path / "p"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # after every chunk, before prepare.json

    monkeypatch.setattr(prep, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        prepare(out, voc_root=tmp_path / "voc", workers=1, **QUIET)
    monkeypatch.undo()
    before = {p.name: p.stat().st_mtime_ns for p in (out / SCRATCH).glob("*.chunk")}
    annotations = sorted((tmp_path / "voc" / "VOCdevkit" / "VOC2012" / "Annotations").glob("*.xml"))
    xml = next(p for p in annotations if "<difficult>0</difficult>" in p.read_text())
    xml.write_text(xml.read_text().replace("<difficult>0</difficult>", "<difficult>1</difficult>", 1))
    lines: List[str] = []
    prepare(out, voc_root=tmp_path / "voc", workers=1, progress=False, log=lines.append)
    assert any("1 finished chunk(s)" in line and "redoing them" in line for line in lines)
    assert any(f"resuming: {len(before) - 1} of {len(before)} chunks" in line for line in lines)
    prepare(tmp_path / "fresh", voc_root=tmp_path / "voc", workers=1, **QUIET)
    same_output(out, tmp_path / "fresh")


# --------------------------------------------------------------------------- leaks and traversal


def test_an_image_in_voc2007_trainval_and_test_stays_out_of_train(tmp_path):
    root = tiny_devkit(tmp_path / "voc", test_ids=("000002", "000009"))  # 000002 (one sofa) is in both lists
    lines: List[str] = []
    counts = prepare(tmp_path / "p", voc_root=root, val_fraction=0, workers=1, progress=False, log=lines.append)
    rows = manifest(tmp_path / "p")
    leaked = [r for r in rows if r["image_id"] == "000002" and r["image_set"] == "trainval"]
    assert [(r["class"], r["status"], r["reason"]) for r in leaked] == [("sofa", "excluded", "also-in-test")]
    assert [r["status"] for r in rows if r["image_id"] == "000002" and r["image_set"] == "test"] == ["test"]
    assert counts["excluded"] == {"also-in-test": 1} and counts["train"]["total"] == 4
    assert counts["test"]["total"] == 2 and any("also listed in test (000002)" in line for line in lines)


@pytest.mark.parametrize("bad_id", ["..", ".", "../../etc/passwd", "sub/000001", "a\\b", "x\x00y"])
def test_an_image_id_that_is_not_a_plain_stem_is_refused(tmp_path, bad_id):
    root = tiny_devkit(tmp_path / "voc")
    listing = root / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "trainval.txt"
    listing.write_text(listing.read_text() + bad_id + "\n")
    with pytest.raises(UsageError, match=r"trainval\.txt, line 4: .* is not a plain image id") as info:
        prepare(tmp_path / "p", voc_root=root, workers=1, **QUIET)
    assert str(listing) in str(info.value)
    assert not (tmp_path / "p").exists()  # refused before anything was read or written


def test_the_output_folder_has_one_writer(tmp_path):
    root = tiny_devkit(tmp_path / "voc")
    with exclusive(tmp_path / "p", "prepare output"):
        with pytest.raises(LockedError, match=r"prepare output .*p is in use by process \d+"):
            prepare(tmp_path / "p", voc_root=root, workers=1, **QUIET)
    prepare(tmp_path / "p", voc_root=root, workers=1, **QUIET)  # free again


# --------------------------------------------------------------------------- a hard kill


def session_processes(sid: int) -> List[str]:
    """The live (not zombie) processes of session ``sid``: ``pid (name) state``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()  # state ppid pgrp session ...
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            found.append(f"{stat.parent.name} ({text[text.index('(') + 1 : text.rindex(')')]}) {fields[0]}")
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_sigkill_during_prepare_leaves_no_process_and_the_rerun_gives_the_same_bytes(tmp_path):
    root = tmp_path / "pictures"
    rng = np.random.default_rng(0)
    for i in range(720):  # 45 chunks: still running when the first is done, even on a fast machine
        path = root / f"class{i % 3}" / f"{i:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(path, quality=90)
    out = tmp_path / "p"
    command = [
        sys.executable,
        "-m",
        "inception_v2",
        "prepare",
        "--image-folder",
        str(root),
        "--out",
        str(out),
        "--workers",
        "2",
        "--store",
        "jpeg",
    ]
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            workers_up = len(session_processes(proc.pid)) >= 4  # main, fork server, tracker, a worker
            if workers_up and (out / SCRATCH).is_dir() and any((out / SCRATCH).glob("*.chunk")):
                break
            time.sleep(0.01)
        assert proc.poll() is None and not (out / "counts.json").exists(), "prepare ended before the kill"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        left = session_processes(proc.pid)
        deadline = time.monotonic() + 5
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = session_processes(proc.pid)
        assert left == [], f"processes outlived the SIGKILL-ed prepare: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for entry in session_processes(proc.pid):  # never leave anything behind, even on failure
            os.kill(int(entry.split()[0]), signal.SIGKILL)
    assert list((out / SCRATCH).glob("*.chunk")) and not (out / "counts.json").exists()
    kw = dict(image_folder=root, store="jpeg", workers=1, **QUIET)
    prepare(out, **kw)
    prepare(tmp_path / "uninterrupted", **kw)
    same_output(out, tmp_path / "uninterrupted")
    assert not (out / SCRATCH).exists()
