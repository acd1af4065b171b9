"""Hostile data and config files through the command line: the pictures a user points
``prepare`` and ``predict`` at (EXIF-rotated, float, huge, a FIFO, names that are not UTF-8)
and the config and run files of ``train``, ``summary`` and ``compare``. Each bad one is one
``error: ...`` line naming the file or flag with the documented status, before any output
folder is made."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from inception_v2.cli import main
from tests.data.folders import black_png, encode, exif_rotated_jpeg, quadrants, two_classes, write

TRAIN = "train --model googlenet_bn --epochs 1 --batch-size 8 --image-size 32 --workers 0 --device cpu --no-progress"
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def one_error_line(err: str, *names: object) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and " at 0x" not in err, err
    for name in names:
        assert str(name) in err, (name, err)


# --------------------------------------------------------------------------- predict


def test_predict_sees_an_exif_rotated_photo_upright_as_training_did(tiny_run, tmp_path, capsys):
    shown = quadrants(64, 48)  # portrait, as a viewer shows it
    write(tmp_path / "phone.jpg", exif_rotated_jpeg(shown, 6))  # stored landscape, turned by its tag
    upright = np.asarray(Image.open(tmp_path / "phone.jpg").transpose(Image.Transpose.ROTATE_270))
    Image.fromarray(upright).save(tmp_path / "upright.png")  # the same pixels, no tag
    argv = ["predict", "--checkpoint", str(tiny_run / "best.pt"), "--device", "cpu", "--json", "--topk", "20"]
    assert main(argv + [str(tmp_path / "phone.jpg"), str(tmp_path / "upright.png")]) == 0
    rotated, plain = json.loads(capsys.readouterr().out)
    assert rotated["top"] == plain["top"]  # the model saw the same upright pixels
    sideways = np.ascontiguousarray(np.asarray(Image.open(tmp_path / "phone.jpg")))
    Image.fromarray(sideways).save(tmp_path / "sideways.png")
    assert main(argv + [str(tmp_path / "sideways.png")]) == 0
    assert json.loads(capsys.readouterr().out)[0]["top"] != plain["top"]  # the frame matters to the model


def test_predict_on_a_fifo_is_one_line_and_does_not_wait(tiny_run, tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    argv = ["predict", "--checkpoint", str(tiny_run / "best.pt"), str(tmp_path / "pipe.jpg"), "--device", "cpu"]
    done = subprocess.run(
        [sys.executable, "-m", "inception_v2", *argv], capture_output=True, text=True, timeout=300, env=ENV
    )
    assert done.returncode == 2
    one_error_line(done.stderr, tmp_path / "pipe.jpg", "not a regular file")


# --------------------------------------------------------------------------- prepare


def test_prepare_refuses_a_100_megapixel_png_or_skips_it(tmp_path, capsys):
    root = tmp_path / "pictures"
    two_classes(root, n=6)
    write(root / "cat" / "huge.png", black_png(10_000, 10_000))
    argv = ["prepare", "--image-folder", str(root), "--workers", "1", "--out"]
    assert main(argv + [str(tmp_path / "p")]) == 2
    one_error_line(capsys.readouterr().err, root / "cat" / "huge.png", "decompression bomb", "100,000,000 pixels")
    assert not (tmp_path / "p" / "counts.json").exists()
    assert main(argv + [str(tmp_path / "q"), "--skip-bad"]) == 0
    counts = json.loads((tmp_path / "q" / "counts.json").read_text())
    assert counts["skipped_files"] == {"decompression-bomb": 1}
    assert counts["skipped"][0]["file"] == "cat/huge.png"


def test_prepare_stores_a_float_tiff_as_its_intensities(tmp_path, capsys):
    root = tmp_path / "pictures"
    two_classes(root)
    values = np.tile(np.linspace(0.0, 1.0, 16, dtype=np.float32), (12, 1))
    write(root / "dog" / "depth.tif", encode(Image.fromarray(values, "F"), "TIFF"))
    argv = ["prepare", "--image-folder", str(root), "--out", str(tmp_path / "p"), "--workers", "1"]
    assert main(argv + ["--val-fraction", "0", "--test-fraction", "0"]) == 0
    from inception_v2.data import PreparedDataset

    ds = PreparedDataset(tmp_path / "p", "train")
    images = [ds.image(i).permute(1, 2, 0).numpy() for i in range(len(ds))]
    want = np.repeat(np.rint(values * 255).astype(np.uint8)[:, :, None], 3, axis=2)
    assert any(np.array_equal(image, want) for image in images)  # not black


def test_prepare_names_a_class_folder_that_is_not_utf8_before_any_work(tmp_path, capsys):
    root = tmp_path / "pictures"
    two_classes(root)
    shutil.copytree(root / "dog", root / os.fsdecode(b"caf\xe9"))
    assert main(["prepare", "--image-folder", str(root), "--out", str(tmp_path / "p"), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    one_error_line(err, "caf\\xe9", "not UTF-8")
    assert not (tmp_path / "p").exists()


# --------------------------------------------------------------------------- train, summary, compare


def alias_bomb(levels: int = 9) -> str:
    """A "billion laughs" YAML inside a known key: 9**levels strings from a few hundred bytes."""
    text = "lr:\n  - &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for i in range(1, levels):
        text += f"  - &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n"
    return text


def test_train_config_alias_bomb_is_one_line_in_little_time(prepared_sample, tmp_path):
    (tmp_path / "bomb.yaml").write_text(alias_bomb())
    argv = [*TRAIN.split(), "--data", str(prepared_sample), "--out", str(tmp_path / "run")]
    done = subprocess.run(
        [sys.executable, "-m", "inception_v2", *argv, "--config", str(tmp_path / "bomb.yaml")],
        capture_output=True,
        text=True,
        timeout=120,  # building the value's repr took minutes and gigabytes
        env=ENV,
    )
    assert done.returncode == 2
    one_error_line(done.stderr, tmp_path / "bomb.yaml", "lr (--lr) must be a number, got a list")
    assert len(done.stderr) < 500 and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("int-key.yaml", "1: 2\nlr: 0.1\n", "unknown keys [1]"),
        ("mapping.yaml", "lr:\n  a: 1\n", "lr (--lr) must be a number, got a dict"),
        ("code.yaml", "lr: !!python/object/apply:os.system [echo hi]\n", "is not valid YAML"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("huge.yaml", "#" * (2 << 20), "more than a config file can be"),
        ("seed.yaml", "seed: -1\n", "seed (--seed) must be an integer in [0, 4294967295]"),
    ],
)
def test_train_config_file_neighbours_are_one_line(prepared_sample, tmp_path, capsys, name, text, message):
    (tmp_path / name).write_text(text)
    argv = [*TRAIN.split(), "--data", str(prepared_sample), "--out", str(tmp_path / "run")]
    assert main(argv + ["--config", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    one_error_line(err, message)
    if name != "seed.yaml":  # the file is named; a bad value from it is named by its key and flag
        assert str(tmp_path / name) in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("seed", ["-1", "4294967296", "1e23", "1.5"])
def test_train_bad_seed_names_the_flag_before_the_run_folder_exists(prepared_sample, tmp_path, capsys, seed):
    argv = [*TRAIN.split(), "--data", str(prepared_sample), "--out", str(tmp_path / "run"), f"--seed={seed}"]
    assert main(argv) == 2
    one_error_line(capsys.readouterr().err, "--seed", seed)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("size", ["0", "-3"])
def test_summary_image_size_zero_is_an_error_not_the_default(capsys, size):
    assert main(["summary", "--model", "inception_v2", "--image-size", size]) == 2
    one_error_line(capsys.readouterr().err, "--image-size", f"got {size}")


@pytest.mark.parametrize(
    "key, value", [("best_val_acc1", "0.9"), ("params", None), ("macs", [1, 2]), ("best_test_acc1", True)]
)
def test_compare_names_summary_json_with_a_value_that_is_not_a_number(tiny_run, tmp_path, capsys, key, value):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns(".lock"))
    summary = json.loads((run / "summary.json").read_text())
    summary[key] = value
    (run / "summary.json").write_text(json.dumps(summary))
    assert main(["compare", str(run), "--out", str(tmp_path / "c")]) == 2
    one_error_line(capsys.readouterr().err, run / "summary.json", f"{key} must be a number")
    assert not (tmp_path / "c").exists()


def test_compare_names_a_summary_json_that_is_not_an_object(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns(".lock"))
    (run / "summary.json").write_text("[1, 2]")
    assert main(["compare", str(run), "--out", str(tmp_path / "c")]) == 2
    one_error_line(capsys.readouterr().err, run / "summary.json", "JSON object")
