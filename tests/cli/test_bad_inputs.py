"""Every subcommand against a list of bad inputs: a documented exit status, one ``error: ...``
line on stderr, no traceback, no Python object repr, and nothing half-written.

Each case is ``(id, argv template, expected status, text the message must contain)``; the
template's ``{...}`` fields are paths of the fixtures below (``{run}`` is a finished tiny run,
``{data}`` a prepared folder, ``{file}`` an ordinary file, ``{junk}`` random bytes...).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
from PIL import Image

from inception_v2 import errors
from inception_v2.cli import main

TRAIN = "train --model googlenet_bn --epochs 1 --batch-size 8 --image-size 32 --workers 0 --device cpu --no-progress"

CASES = [
    # -- outputs that cannot be written
    ("train-out-under-a-file", TRAIN + " --data {data} --out {file}/run", 2, "{file}"),
    ("train-out-is-a-file", TRAIN + " --data {data} --out {file}", 2, "{file}"),
    ("prepare-out-under-a-file", "prepare --voc-root {devkit} --out {file}/p --workers 1", 2, "{file}"),
    ("make-sample-out-under-a-file", "make-sample {file}/s --images 4", 2, "{file}"),
    ("compare-out-under-a-file", "compare {run} --out {file}/c", 2, "{file}"),
    ("export-out-under-a-file", "export --checkpoint {run}/best.pt --out {file}/m.onnx", 2, "{file}"),
    (
        "evaluate-figure-under-a-file",
        "evaluate --checkpoint {run}/best.pt --data {data} --workers 0 --confusion-png {file}/cm.png",
        2,
        "{file}",
    ),
    # -- checkpoints that are not checkpoints
    ("evaluate-random-bytes", "evaluate --checkpoint {junk} --data {data} --workers 0", 2, "{junk}"),
    ("predict-random-bytes", "predict --checkpoint {junk} {image}", 2, "{junk}"),
    ("export-random-bytes", "export --checkpoint {junk} --out {tmp}/m.onnx", 2, "{junk}"),
    ("evaluate-checkpoint-is-a-folder", "evaluate --checkpoint {tmp} --data {data} --workers 0", 2, "{tmp}"),
    ("predict-checkpoint-missing", "predict --checkpoint {tmp}/nope.pt {image}", 2, "nope.pt"),
    # -- a folder where a file belongs, a file where a folder belongs
    ("predict-image-is-a-folder", "predict --checkpoint {run}/best.pt {tmp}", 2, "{tmp}"),
    ("train-data-is-a-file", TRAIN + " --data {file} --out {tmp}/r", 2, "{file}"),
    ("evaluate-data-is-a-file", "evaluate --checkpoint {run}/best.pt --data {file} --workers 0", 2, "{file}"),
    ("prepare-voc-root-is-a-file", "prepare --voc-root {file} --out {tmp}/p", 2, "{file}"),
    ("compare-run-is-a-file", "compare {file} --out {tmp}/c", 2, "{file}"),
    # -- images that are not images
    ("predict-empty-image", "predict --checkpoint {run}/best.pt {empty_jpg}", 2, "{empty_jpg}"),
    ("predict-decompression-bomb", "predict --checkpoint {run}/best.pt {bomb}", 2, "{bomb}"),
    # -- absurd sizes and values
    ("summary-absurd-classes", "summary --model googlenet_bn --num-classes 10000000000", 2, "--num-classes"),
    ("summary-tiny-image", "summary --model inception_v2 --image-size 8", 2, "75"),
    ("train-zero-batch", TRAIN + " --data {data} --out {tmp}/r --batch-size 0", 2, "batch"),
    ("train-negative-epochs", TRAIN + " --data {data} --out {tmp}/r --epochs -1", 2, "epochs"),
    ("predict-zero-topk", "predict --checkpoint {run}/best.pt {image} --topk 0", 2, "--topk"),
    (
        "export-format-contradicts-suffix",
        "export --model googlenet_bn --format torchscript --out {tmp}/m.onnx",
        2,
        "contradicts",
    ),
    ("export-unknown-model", "export --model resnet50 --out {tmp}/m.onnx", 2, "resnet50"),
    # -- a run that already exists
    ("train-existing-run-without-resume", TRAIN + " --data {data} --out {run}", 2, "--resume"),
]


@pytest.fixture(scope="module")
def paths(tiny_run: Path, prepared_sample: Path, sample_devkit: Path, tmp_path_factory) -> Dict[str, Path]:
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "a-file.txt").write_text("not a folder\n")
    (tmp / "junk.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp / "empty.jpg").write_bytes(b"")
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp / "red.png")
    # a PNG whose header claims 30000 x 30000 pixels (900 M, far above PIL's bomb limit) in a few KB
    Image.new("1", (30000, 30000)).save(tmp / "bomb.png", optimize=True)
    work = tmp / "work"
    work.mkdir()
    return {
        "tmp": work,
        "file": tmp / "a-file.txt",
        "junk": tmp / "junk.pt",
        "empty_jpg": tmp / "empty.jpg",
        "image": tmp / "red.png",
        "bomb": tmp / "bomb.png",
        "run": tiny_run,
        "data": prepared_sample,
        "devkit": sample_devkit,
    }


def _fill(template: str, paths: Dict[str, Path]) -> str:
    return template.format(**{k: str(v) for k, v in paths.items()})


@pytest.mark.parametrize("case_id, argv, status, text", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case_id, argv, status, text, paths, capsys):
    before = _state(paths["run"])
    code = main(_fill(argv, paths).split())
    out, err = capsys.readouterr()
    assert code == status, (code, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err + out
    assert not re.search(r" at 0x[0-9a-f]+", err), err
    assert _fill(text, paths) in err, err
    # the finished run used as an input or refused as an output is untouched
    assert _state(paths["run"]) == before


def _state(folder: Path) -> Dict[str, int]:
    """Every file of ``folder`` (but its lock file, whose holder line changes) and its mtime."""
    return {p.name: p.stat().st_mtime_ns for p in Path(folder).iterdir() if p.name != ".lock"}


def test_status_codes_are_documented():
    text = (Path(errors.__file__)).read_text()
    for status in (
        errors.EXIT_CHECK_FAILED,
        errors.EXIT_USAGE,
        errors.EXIT_LOCKED,
        errors.EXIT_INTERNAL,
        errors.EXIT_INTERRUPTED,
    ):
        assert re.search(rf"^\s*{status}\s", text, re.M)


def test_concurrent_trains_on_one_run_directory(prepared_sample, tmp_path):
    """The second of two trains on the same --out exits at once with status 3, naming the
    holder; the first finishes undisturbed."""
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    argv = [
        sys.executable,
        "-m",
        "inception_v2",
        *TRAIN.split(),
        "--epochs",
        "3",
        "--data",
        str(prepared_sample),
        "--out",
        str(out),
    ]
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = 60.0
        lock = out / ".lock"
        import time

        start = time.monotonic()
        while not (lock.is_file() and lock.read_text().strip()) and time.monotonic() - start < deadline:
            if first.poll() is not None:
                pytest.fail(f"the first train ended early: {first.communicate()}")
            time.sleep(0.1)
        second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == errors.EXIT_LOCKED, second.stderr
        assert second.stderr.startswith("error: ") and second.stderr.count("\n") == 1
        assert f"process {first.pid}" in second.stderr and str(out) in second.stderr
        _, err = first.communicate(timeout=600)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert (out / "summary.json").is_file()


# --------------------------------------------------------------------------- crafted model files
# Each crafted file writes a MARKER* file when a careless loader runs it (tests/deploy/crafted.py).
# Every command and API that opens a model must refuse each one with status 2 / UsageError,
# one line naming the file, and no marker.

CRAFTED = (
    "pt2-sample_inputs",
    "pt2-weights",
    "pt2-constants",
    "pt2-legacy_weights",
    "pt2-aotinductor",
    "torchscript",
    "checkpoint",
    "release",
)


@pytest.fixture(scope="module")
def crafted(tiny_run: Path, tmp_path_factory) -> Dict[str, Path]:
    """name -> crafted file; the markers go to ``files["marks"]``."""
    import json

    from inception_v2 import load_model
    from inception_v2.deploy.export import export_model, pt2_sidecar
    from inception_v2.deploy.release import export_release
    from tests.deploy.crafted import (
        crafted_checkpoint,
        crafted_pt2,
        crafted_release,
        crafted_torchscript,
    )

    d = tmp_path_factory.mktemp("crafted")
    marks = d / "marks"
    marks.mkdir()
    genuine = d / "genuine.pt2"
    export_model(load_model(tiny_run / "best.pt"), genuine, "pt2")
    export_release(tiny_run / "best.pt", d / "genuine-release")
    files = {"marks": marks, "genuine-pt2": genuine}
    for name in CRAFTED:
        if name.startswith("pt2-"):
            plant = name[4:]
            files[name] = crafted_pt2(genuine, d / f"{plant}.pt2", marks / f"MARKER-{plant}", plant)
    meta = json.loads(pt2_sidecar(genuine).read_text())  # genuine metadata: it proves nothing
    files["torchscript"] = crafted_torchscript(d / "model.pt", marks / "MARKER-torchscript", meta)
    files["checkpoint"] = crafted_checkpoint(d / "best.pt", marks / "MARKER-checkpoint")
    files["release"] = crafted_release(d / "release", marks / "MARKER-release", d / "genuine-release")
    return files


def _opening_commands(f: Path, paths: Dict[str, Path], tmp: Path) -> Dict[str, list]:
    return {
        "predict": ["predict", "--checkpoint", str(f), str(paths["image"]), "--device", "cpu"],
        "evaluate": ["evaluate", "--checkpoint", str(f), "--data", str(paths["data"]), "--workers", "0"],
        "export": ["export", "--checkpoint", str(f), "--out", str(tmp / "m.onnx")],
        "export-release": ["export", "--checkpoint", str(f), "--format", "safetensors", "--out", str(tmp / "rel")],
        "train-pretrained": TRAIN.split()
        + ["--data", str(paths["data"]), "--out", str(tmp / "r"), "--pretrained", str(f)],
    }


@pytest.mark.parametrize("name", CRAFTED)
def test_no_command_runs_code_from_a_crafted_model_file(name, crafted, paths, tmp_path, capsys):
    from tests.deploy.crafted import markers

    f = crafted[name]
    for command, argv in _opening_commands(f, paths, tmp_path).items():
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == errors.EXIT_USAGE, (command, code, err)
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, (command, err)
        assert str(f) in err, (command, err)
        assert markers(crafted["marks"]) == [], (command, "code from the file ran")
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "rel").exists()


@pytest.mark.parametrize("name", CRAFTED)
def test_no_api_runs_code_from_a_crafted_model_file(name, crafted, paths):
    from inception_v2 import create_model, load_model
    from inception_v2.deploy.runners import load_classifier
    from inception_v2.errors import UsageError
    from inception_v2.evaluate import evaluate_checkpoint
    from inception_v2.predict import predict
    from tests.deploy.crafted import markers

    f = crafted[name]
    calls = {
        "load_model": lambda: load_model(f),
        "create_model": lambda: create_model("googlenet_bn", num_classes=20, pretrained=f),
        "load_classifier": lambda: load_classifier(f, "cpu"),
        "predict": lambda: predict(f, [paths["image"]], device="cpu"),
        "evaluate_checkpoint": lambda: evaluate_checkpoint(f, paths["data"], workers=0, device="cpu", progress=False),
    }
    for api, call in calls.items():
        with pytest.raises(UsageError) as info:
            call()
        assert str(f) in str(info.value) and "\n" not in str(info.value), (api, info.value)
        assert markers(crafted["marks"]) == [], (api, "code from the file ran")


def test_train_resume_refuses_a_crafted_last_checkpoint(crafted, paths, tiny_run, tmp_path, capsys):
    import shutil

    from tests.deploy.crafted import markers

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns(".lock"))
    for name in ("checkpoint", "torchscript", "pt2-sample_inputs"):
        shutil.copy(crafted[name], run / "last.pt")
        code = main(TRAIN.split() + ["--data", str(paths["data"]), "--out", str(run), "--resume", "--epochs", "3"])
        err = capsys.readouterr().err
        assert code == errors.EXIT_USAGE and err.count("\n") == 1 and str(run / "last.pt") in err, (name, err)
        assert markers(crafted["marks"]) == []


def test_the_crafted_files_are_live(crafted, tmp_path):
    """The files above do run code when loaded the careless way, so the tests above can fail:
    plain ``torch.export.load`` runs each pickle planted in a .pt2, and ``--trust-file`` runs
    the TorchScript file's code."""
    import torch

    from tests.deploy.crafted import crafted_pt2

    for plant in ("sample_inputs", "weights", "constants", "legacy_weights"):
        marker = tmp_path / f"live-{plant}"
        crafted_pt2(crafted["genuine-pt2"], tmp_path / f"{plant}.pt2", marker, plant)
        try:
            torch.export.load(str(tmp_path / f"{plant}.pt2"))
        except Exception:  # noqa: BLE001 - it may fail after the pickle ran
            pass
        assert marker.exists(), plant


def test_trust_file_runs_a_torchscript_file(crafted, paths, tmp_path, capsys):
    import json
    import shutil

    from inception_v2.deploy.export import pt2_sidecar
    from tests.deploy.crafted import crafted_torchscript

    meta = json.loads(pt2_sidecar(crafted["genuine-pt2"]).read_text())
    marker = tmp_path / "trusted"
    f = crafted_torchscript(tmp_path / "m.ts", marker, meta)
    shutil.copy(paths["image"], tmp_path / "x.png")
    assert main(["predict", "--checkpoint", str(f), str(tmp_path / "x.png"), "--device", "cpu", "--trust-file"]) == 0
    assert marker.exists() and Path(str(marker) + ".load").exists()  # its forward and its __setstate__ ran
    capsys.readouterr()


# --------------------------------------------------------------------------- wrong answers from a model file


def _one_line_error(code: int, err: str, status: int, *texts: str) -> None:
    assert code == status, (code, err)
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for text in texts:
        assert text in err, (text, err)


ONNX_CASES = {  # name -> (tiny_onnx keywords, text of the error)
    "more-classes-than-outputs": (dict(classes=["a", "b", "c"], outputs=2), "names 3 classes but its output has 2"),
    "fewer-classes-than-outputs": (dict(classes=["a"], outputs=2), "names 1 classes but its output has 2"),
    "nan-outputs": (dict(classes=["a", "b"], outputs=2, weight=float("nan")), "non-finite"),
    "inf-outputs": (dict(classes=["a", "b"], outputs=2, weight=float("inf")), "non-finite"),
    "image-size-contradicts-graph": (dict(classes=["a", "b"], outputs=2, meta_size=64), "image_size 64"),
}


@pytest.mark.parametrize("case", list(ONNX_CASES))
@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_predict_refuses_an_onnx_file_that_would_give_a_wrong_answer(case, json_flag, paths, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from tests.deploy.crafted import tiny_onnx

    kw, text = ONNX_CASES[case]
    f = tiny_onnx(tmp_path / "m.onnx", **kw)
    code = main(["predict", "--checkpoint", str(f), str(paths["image"]), str(paths["image"]), *json_flag])
    out, err = capsys.readouterr()
    _one_line_error(code, err, 2, str(f), text)
    assert out == "" and "nan" not in out.lower()


def test_evaluate_refuses_nan_outputs(paths, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from inception_v2.data import VOC_CLASSES
    from tests.deploy.crafted import tiny_onnx

    f = tiny_onnx(tmp_path / "m.onnx", classes=list(VOC_CLASSES), outputs=20, weight=float("nan"))
    for extra in ([], ["--json"]):
        code = main(["evaluate", "--checkpoint", str(f), "--data", str(paths["data"]), "--workers", "0", *extra])
        out, err = capsys.readouterr()
        _one_line_error(code, err, 2, str(f), "non-finite")
        assert "nan" not in out.lower()


def test_a_foreign_onnx_file_with_a_fixed_batch_of_one_takes_two_images(paths, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from tests.deploy.crafted import tiny_onnx

    f = tiny_onnx(tmp_path / "m.onnx", classes=["a", "b"], outputs=2, batch=1)
    image = paths["image"]
    assert main(["predict", "--checkpoint", str(f), str(image), str(image), str(image), "--json"]) == 0
    import json

    results = json.loads(capsys.readouterr().out)
    assert len(results) == 3 and all(r["top"][0]["probability"] == pytest.approx(0.5) for r in results)


# --------------------------------------------------------------------------- release config schema

RELEASE_EDITS = {  # name -> (edit of config.json, the key the message names)
    "count-include-pad-string": (lambda c: c["arch_options"].update(count_include_pad="yes"), "count_include_pad"),
    "std-two-values": (lambda c: c["data_config"].update(std=[0.5, 0.5]), "data_config.std"),
    "std-zero": (lambda c: c["data_config"].update(std=[0.5, 0.0, 0.5]), "data_config.std"),
    "mean-nan": (lambda c: c["data_config"].update(mean=[float("nan"), 0.5, 0.5]), "data_config.mean"),
    "num-classes-1e12": (lambda c: c.update(num_classes=1e12), "num_classes"),
    "num-classes-huge-int": (lambda c: c.update(num_classes=10**12), "num_classes"),
    "num-classes-string": (lambda c: c.update(num_classes="20"), "num_classes"),
    "classes-not-a-list": (lambda c: c.update(classes="aeroplane"), "classes"),
    "input-size-zero": (lambda c: c["data_config"].update(input_size=0), "data_config.input_size"),
    "data-config-a-list": (lambda c: c.update(data_config=[1, 2]), "data_config"),
    "aux-logits-string": (lambda c: c.update(aux_logits="no"), "aux_logits"),
    "interpolation-unknown": (lambda c: c["data_config"].update(interpolation="lanczos9"), "interpolation"),
}


@pytest.fixture(scope="module")
def release(tiny_run, tmp_path_factory) -> Path:
    from inception_v2.deploy.release import export_release

    out = tmp_path_factory.mktemp("release") / "r"
    export_release(tiny_run / "best.pt", out)
    return out


@pytest.mark.parametrize("case", list(RELEASE_EDITS))
def test_a_release_config_that_breaks_the_schema_is_refused(case, release, paths, tmp_path, capsys):
    import json
    import shutil

    from inception_v2 import load_model
    from inception_v2.errors import UsageError

    folder = tmp_path / "r"
    shutil.copytree(release, folder, ignore=shutil.ignore_patterns(".lock"))
    config = json.loads((folder / "config.json").read_text())
    edit, key = RELEASE_EDITS[case]
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    code = main(["predict", "--checkpoint", str(folder), str(paths["image"]), "--device", "cpu"])
    _one_line_error(code, capsys.readouterr().err, 2, str(folder / "config.json"), key)
    with pytest.raises(UsageError, match=key):
        load_model(folder)


# --------------------------------------------------------------------------- files that are not files


NOT_FILES = [(w, c) for w in ("fifo-model", "fifo-onnx", "fifo-pt2", "device-model") for c in ("predict", "evaluate")]


@pytest.mark.parametrize("what, command", NOT_FILES + [("fifo-image", "predict")])
def test_a_fifo_or_device_is_refused_instead_of_blocking(what, command, paths, tmp_path, capsys):
    fifo = tmp_path / {"fifo-onnx": "m.onnx", "fifo-pt2": "m.pt2"}.get(what, "m.pt")
    os.mkfifo(fifo)
    model = "/dev/zero" if what == "device-model" else str(fifo)
    image = str(paths["image"])
    if what == "fifo-image":
        model, image = str(paths["run"] / "best.pt"), str(fifo)
    rest = [image] if command == "predict" else ["--data", str(paths["data"]), "--workers", "0"]
    code = main([command, "--checkpoint", model, "--device", "cpu", *rest])
    _one_line_error(code, capsys.readouterr().err, 2, image if what == "fifo-image" else model, "not a regular file")


# --------------------------------------------------------------------------- never delete what is not ours


def test_export_safetensors_refuses_a_folder_that_is_not_a_release(paths, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"mine": true}\n')
    (out / "model.safetensors").write_bytes(b"my bytes")
    argv = ["export", "--checkpoint", str(paths["run"] / "best.pt"), "--format", "safetensors", "--out", str(out)]
    _one_line_error(main(argv), capsys.readouterr().err, 2, str(out), "--force")
    assert (out / "config.json").read_text() == '{"mine": true}\n' and (
        out / "model.safetensors"
    ).read_bytes() == b"my bytes"
    assert main(argv + ["--force"]) == 0  # said so: overwritten
    assert main(argv) == 0  # a release folder now: written over without --force
    capsys.readouterr()
    _one_line_error(
        main(["export", "--model", "googlenet_bn", "--out", str(tmp_path / "m.onnx"), "--force"]),
        capsys.readouterr().err,
        2,
        "--force",
    )


def test_a_killed_exports_temp_file_is_removed_by_the_next_export_and_nothing_else(paths, tmp_path, capsys):
    dead = 2**22 + 1  # above Linux's largest pid: a writer that is gone
    stale = tmp_path / f".m.ts.iv2-{dead}-abcd1234.tmp"
    stale.write_bytes(b"half an export")
    alive = tmp_path / f".m.ts.iv2-{os.getpid()}-abcd1234.tmp"  # a live writer's: kept
    alive.write_bytes(b"being written")
    mine = [tmp_path / ".m.ts.tmp", tmp_path / ".m.ts.abcd1234.tmp", tmp_path / "notes.tmp"]
    for f in mine:
        f.write_text("the user's")
    assert main(["export", "--checkpoint", str(paths["run"] / "best.pt"), "--out", str(tmp_path / "m.ts")]) == 0
    capsys.readouterr()
    assert not stale.exists() and alive.exists() and all(f.read_text() == "the user's" for f in mine)
    assert (tmp_path / "m.ts").is_file()


@pytest.fixture
def image_root(tmp_path) -> Path:
    root = tmp_path / "pictures"
    for cls in ("cat", "work"):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (24, 24), (i * 50, 80, 0)).save(root / cls / f"{i}.png")
    (root / ".notes.tmp").write_text("mine")
    return root


def _tree(root: Path) -> Dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")}


@pytest.mark.parametrize("where", ["root", "inside", "in-a-class"])
def test_prepare_out_inside_the_image_folder_is_refused(where, image_root, capsys):
    out = {"root": image_root, "inside": image_root / "prepared", "in-a-class": image_root / "work" / "p"}[where]
    before = _tree(image_root)
    code = main(["prepare", "--image-folder", str(image_root), "--out", str(out), "--workers", "1"])
    _one_line_error(code, capsys.readouterr().err, 2, "--out", str(image_root))
    assert _tree(image_root) == before


@pytest.mark.parametrize("cache", ["cache-dir", "implicit"])
def test_train_data_cache_inside_the_image_folder_is_refused(cache, image_root, capsys):
    before = _tree(image_root)
    if cache == "cache-dir":
        extra = ["--out", str(image_root.parent / "run"), "--cache-dir", str(image_root / "cache")]
        flag = "--cache-dir"
    else:  # the run directory (and the cache next to it) inside the pictures: refused before either exists
        extra = ["--out", str(image_root / "runs" / "r")]
        flag = "--out"
    code = main(TRAIN.split() + ["--data", str(image_root), *extra])
    _one_line_error(code, capsys.readouterr().err, 2, flag, str(image_root))
    assert _tree(image_root) == before


# --------------------------------------------------------------------------- a full disk


@pytest.fixture
def full_disk(tmp_path):
    """A 256 KiB tmpfs (needs root and a kernel that lets this process mount one)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.decode(errors='replace').strip()})")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_torchscript_export_on_a_full_disk(full_disk, paths, capsys):
    out = full_disk / "m.ts"
    code = main(["export", "--checkpoint", str(paths["run"] / "best.pt"), "--out", str(out)])
    _one_line_error(code, capsys.readouterr().err, 2, str(out), "no space left on device")
    assert list(full_disk.iterdir()) == []  # no temp file left


def test_a_checkpoint_on_a_full_disk(full_disk, paths, capsys):
    out = full_disk / "run"
    code = main(TRAIN.split() + ["--data", str(paths["data"]), "--out", str(out)])
    err = capsys.readouterr().err
    _one_line_error(code, err, 2, "no space left on device", str(out))
    assert not [p for p in out.rglob("*.tmp")]
