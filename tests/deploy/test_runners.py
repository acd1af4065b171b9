"""Every deployed form of a model is usable (``inception_v2.deploy.runners.load_classifier``):
a checkpoint, an ``.onnx`` file (float, INT8), a ``.pt2`` program, a TorchScript file and a
release folder load with the same class names and preprocessing, and ``evaluate`` and
``predict`` give the same answers on each; broken inputs are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from inception_v2 import load_model
from inception_v2.cli import main
from inception_v2.data import VOC_CLASSES, VOCCrops, eval_transform
from inception_v2.deploy.export import export_model, pt2_sidecar
from inception_v2.deploy.release import export_release
from inception_v2.deploy.runners import load_classifier
from inception_v2.errors import UsageError
from inception_v2.evaluate import evaluate_checkpoint
from inception_v2.predict import predict

FLOAT_FORMATS = ("checkpoint", "onnx", "pt2", "torchscript")
KINDS = {
    "checkpoint": "checkpoint",
    "onnx": "ONNX",
    "onnx-int8": "ONNX int8",
    "pt2": "torch.export",
    "torchscript": "TorchScript",
}


@pytest.fixture(scope="module")
def deployed(tiny_run, prepared_sample, tmp_path_factory):
    """The tiny run's best.pt and its exports: format -> path."""
    pytest.importorskip("onnx", reason="needs the onnx package: pip install 'inception-v2[onnx]'")
    pytest.importorskip("onnxruntime", reason="needs ONNX Runtime: pip install 'inception-v2[onnx]'")
    from inception_v2.deploy.quantize import export_int8_from_prepared

    d = tmp_path_factory.mktemp("deployed")
    model = load_model(tiny_run / "best.pt")
    paths = {
        "checkpoint": tiny_run / "best.pt",
        "onnx": d / "m.onnx",
        "onnx-int8": d / "m-int8.onnx",
        "pt2": d / "m.pt2",
        "torchscript": d / "m.pt",
    }
    # (m.pt: TorchScript is told apart from a checkpoint by its content, not its suffix)
    export_model(model, paths["onnx"], "onnx")  # the dynamo-based exporter
    export_model(model, paths["pt2"], "pt2")
    export_model(model, paths["torchscript"], "torchscript")
    export_int8_from_prepared(
        model, paths["onnx-int8"], prepared_sample, calibration_images=8, max_drop=100, exporter="torchscript"
    )
    return paths


@pytest.fixture(scope="module")
def reference(deployed):
    return load_classifier(deployed["checkpoint"], "cpu")


@pytest.fixture(scope="module")
def crop_files(prepared_sample, tmp_path_factory):
    ds = VOCCrops(prepared_sample, "test")
    d = tmp_path_factory.mktemp("crops")
    paths = []
    for i in (0, 7, 20):
        paths.append(d / f"crop{i}.png")
        Image.fromarray(ds[i][0].permute(1, 2, 0).numpy()).save(paths[-1])
    return paths


@pytest.mark.parametrize("fmt", list(KINDS))
def test_every_format_loads_with_the_same_classes_and_preprocessing(fmt, deployed, reference, prepared_sample):
    clf = load_classifier(deployed[fmt], "cpu", trust_file=True)  # (our own TorchScript file)
    assert clf.kind == KINDS[fmt] and clf.name == "googlenet_bn" and clf.num_classes == 20
    assert clf.classes == reference.classes == list(VOC_CLASSES)
    cfg, ref_cfg = clf.data_config, reference.data_config
    assert (cfg.input_size, cfg.resize_size, cfg.mean, cfg.std) == (32, ref_cfg.resize_size, ref_cfg.mean, ref_cfg.std)
    assert clf.device == torch.device("cpu")
    val = VOCCrops(prepared_sample, "val", eval_transform(ref_cfg))  # real images: INT8 is calibrated on such
    x = torch.stack([val[i][0] for i in range(5)])
    with torch.inference_mode():
        got, want = clf(x), reference(x)
    assert got.dtype == torch.float32 and got.shape == (5, 20)
    if fmt in FLOAT_FORMATS:
        assert float((got - want).abs().max()) <= 1e-3 * max(1.0, float(want.abs().max()))
    else:  # int8: close, not equal
        assert float((got - want).abs().max()) <= 0.25 * float(want.abs().max())
        assert float((got - want).abs().max()) > 1e-5
    if fmt != "checkpoint":
        with pytest.raises(ValueError, match="N x 3 x 32 x 32"):  # an exported graph has a fixed size
            clf(torch.zeros(1, 3, 33, 33))


def test_evaluate_gives_the_same_answer_on_every_format(deployed, prepared_sample):
    results = {
        fmt: evaluate_checkpoint(
            path, prepared_sample, split="test", workers=0, device="cpu", progress=False, trust_file=True
        )
        for fmt, path in deployed.items()
    }
    ref = results["checkpoint"]
    for fmt, r in results.items():
        assert r["format"] == KINDS[fmt] and r["images"] == ref["images"] and r["image_size"] == 32
        assert list(r["per_class"]) == list(ref["per_class"])  # the same class names, in order
        if fmt in FLOAT_FORMATS:
            assert r["acc1"] == ref["acc1"] and r["confusion"] == ref["confusion"]
            assert r["loss"] == pytest.approx(ref["loss"], rel=1e-4)
        else:
            assert abs(r["acc1"] - ref["acc1"]) <= 0.1 and r["loss"] == pytest.approx(ref["loss"], rel=0.1)


def test_predict_gives_the_same_answer_on_every_format(deployed, crop_files):
    ref = predict(deployed["checkpoint"], crop_files, topk=20, device="cpu")
    for fmt, path in deployed.items():
        results = predict(path, crop_files, topk=20, device="cpu", trust_file=True)
        for r, want in zip(results, ref):
            names = [t["class"] for t in r["top"]]
            assert sorted(names) == sorted(VOC_CLASSES)  # every class, named the same
            probs = [t["probability"] for t in r["top"]]
            assert sum(probs) == pytest.approx(1.0, abs=1e-5) and probs == sorted(probs, reverse=True)
            if fmt in FLOAT_FORMATS:
                assert names[0] == want["top"][0]["class"]
                assert probs[0] == pytest.approx(want["top"][0]["probability"], abs=1e-4)


def test_a_pt2_program_without_its_sidecar_uses_the_embedded_metadata(deployed, tmp_path):
    import shutil

    shutil.copy(deployed["pt2"], tmp_path / "alone.pt2")
    assert pt2_sidecar(deployed["pt2"]).is_file() and not pt2_sidecar(tmp_path / "alone.pt2").exists()
    clf = load_classifier(tmp_path / "alone.pt2", "cpu")
    assert clf.classes == list(VOC_CLASSES) and clf.data_config.input_size == 32


def test_a_release_folder_is_usable(tiny_run, deployed, reference, prepared_sample, tmp_path):
    export_release(tiny_run / "best.pt", tmp_path / "release")
    clf = load_classifier(tmp_path / "release", "cpu")
    assert clf.kind == "release folder" and clf.classes == reference.classes
    assert clf.data_config == reference.data_config
    r = evaluate_checkpoint(tmp_path / "release", prepared_sample, workers=0, device="cpu", progress=False)
    ref = evaluate_checkpoint(deployed["checkpoint"], prepared_sample, workers=0, device="cpu", progress=False)
    assert r["acc1"] == ref["acc1"] and r["confusion"] == ref["confusion"]


# --------------------------------------------------------------------------- bad files


def test_a_file_without_class_names_is_refused(deployed, tmp_path):
    import json
    import shutil

    shutil.copy(deployed["pt2"], tmp_path / "m.pt2")
    meta = json.loads(pt2_sidecar(deployed["pt2"]).read_text())
    pt2_sidecar(tmp_path / "m.pt2").write_text(json.dumps(dict(meta, classes=None)))  # as an untrained model's
    with pytest.raises(UsageError, match="does not name its classes"):
        load_classifier(tmp_path / "m.pt2", "cpu")


@pytest.mark.parametrize("name", ["random.pt", "random.onnx", "random.pt2", "random.ts", "random.safetensors"])
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_file_of_random_bytes_is_a_one_line_error(name, command, prepared_sample, crop_files, tmp_path, capsys):
    bad = tmp_path / name
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    rest = ["--data", str(prepared_sample), "--workers", "0"] if command == "evaluate" else [str(crop_files[0])]
    assert main([command, "--checkpoint", str(bad), "--device", "cpu", *rest]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and str(bad) in err and " at 0x" not in err


@pytest.mark.parametrize("case", ["folder-as-file", "missing", "file-as-data-folder", "file-as-out-folder"])
def test_a_folder_for_a_file_and_a_file_for_a_folder_are_one_line_errors(
    case, deployed, prepared_sample, tmp_path, capsys
):
    checkpoint, data, extra = str(deployed["onnx"]), str(prepared_sample), []
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    if case == "folder-as-file":
        checkpoint = str(tmp_path)  # a plain folder (no model.safetensors): not a release folder
    elif case == "missing":
        checkpoint = str(tmp_path / "missing.pt")
    elif case == "file-as-data-folder":
        data = str(a_file)
    else:
        extra = ["--out", str(a_file)]
    assert main(["evaluate", "--checkpoint", checkpoint, "--data", data, "--workers", "0", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert (str(a_file) if case.startswith("file") else checkpoint) in err
    assert a_file.read_text() == "x"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_pt2_torchscript_and_checkpoint_run_on_cuda(deployed, reference, prepared_sample):
    val = VOCCrops(prepared_sample, "val", eval_transform(reference.data_config))
    x = torch.stack([val[i][0] for i in range(4)])
    with torch.inference_mode():
        want = reference(x)
    for fmt in ("checkpoint", "pt2", "torchscript"):
        clf = load_classifier(deployed[fmt], "cuda", trust_file=True)
        assert clf.device.type == "cuda" and clf.classes == reference.classes
        with torch.inference_mode():
            got = clf(x)  # a CPU batch is moved to the device
        assert got.device.type == "cuda" and got.dtype == torch.float32
        # the checkpoint runs under bf16 autocast on CUDA; the exported programs in float32
        tolerance = 0.5 if fmt == "checkpoint" else 1e-2
        assert float((got.cpu() - want).abs().max()) <= tolerance * max(1.0, float(want.abs().max()))
    r = evaluate_checkpoint(deployed["pt2"], prepared_sample, workers=0, device="cuda", progress=False)
    ref = evaluate_checkpoint(deployed["pt2"], prepared_sample, workers=0, device="cpu", progress=False)
    assert abs(r["acc1"] - ref["acc1"]) <= 0.02


def test_auto_times_every_batch_after_an_untimed_pause(monkeypatch):
    """ONNX Runtime's idle threads spin after a run: ``auto`` rests before each timed batch, so
    the runtime timed next does not share the cores with them, and the pause is not timed."""
    from inception_v2.deploy import runtime as rt

    events, clock = [], [0.0]
    monkeypatch.setattr(rt.time, "sleep", lambda s: events.append(("pause", s)))
    monkeypatch.setattr(rt.time, "perf_counter", lambda: clock[0])

    def runner(name, seconds):
        def run(x):
            events.append((name, tuple(x.shape)))
            clock[0] += seconds

        return run

    rates = rt.time_runners({"slow": runner("slow", 0.8), "fast": runner("fast", 0.2)}, 16, seconds=0.0)
    b = rt.TIMING_BATCH
    warm_up, timed = events[:2], events[2:]
    assert warm_up == [("slow", (b, 3, 16, 16)), ("fast", (b, 3, 16, 16))]
    pause = ("pause", rt.SETTLE_SECONDS)
    assert rt.SETTLE_SECONDS >= 0.1 and timed == [pause, warm_up[0], pause, warm_up[1]] * rt.TIMING_ROUNDS[0]
    assert rates == pytest.approx({"slow": b / 0.8, "fast": b / 0.2})
