"""INT8 ONNX (``inception_v2.deploy.quantize`` and ``export --quantize int8``): the file is
quantized (QDQ, per-channel int8 weights), keeps the class names and the accuracy, and the
accuracy gate refuses a broken calibration without writing anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from inception_v2.cli import main
from inception_v2.data import VOCCrops
from inception_v2.errors import CheckFailedError, UsageError

pytest.importorskip("onnx", reason="INT8 export needs the onnx package: pip install 'inception-v2[onnx]'")
pytest.importorskip("onnxruntime", reason="INT8 export needs ONNX Runtime: pip install 'inception-v2[onnx]'")

import onnx  # noqa: E402

from inception_v2 import load_model  # noqa: E402
from inception_v2.deploy.inference import OnnxClassifier  # noqa: E402
from inception_v2.deploy.quantize import export_onnx_int8, prepared_batches, quantize_int8  # noqa: E402
from tests.deploy.test_fuse import SIZES, calibrated  # noqa: E402

CAL_IMAGES = 16  # a handful: enough for min/max ranges of a tiny model


def files(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def trained(tiny_run):
    """The tiny run's googlenet_bn (32 px, 20 VOC classes)."""
    return load_model(tiny_run / "best.pt")


@pytest.fixture(scope="module")
def self_labelled_val(trained, prepared_sample):
    """The val split labelled with the float model's own predictions: float32 top-1 is 100% by
    construction, so the INT8 top-1 measures only what quantization changed."""
    batches = list(prepared_batches(prepared_sample, "val", trained.data_config, 32)())
    with torch.inference_mode():
        return [(x, trained(x).argmax(1)) for x, _ in batches]


def calibration_of(prepared, model, scale=1.0):
    train = prepared_batches(prepared, "train", model.data_config, 8, limit=CAL_IMAGES)
    return lambda: (x * scale for x, _ in train())


def test_int8_export_is_quantized_keeps_metadata_and_accuracy(trained, prepared_sample, self_labelled_val, tmp_path):
    out = tmp_path / "m.onnx"
    r = export_onnx_int8(
        trained,
        out,
        calibration_of(prepared_sample, trained),
        lambda: self_labelled_val,
        max_drop=10.0,
        exporter="torchscript",
    )
    assert files(tmp_path) == ["m.onnx"]  # no temporary file left
    assert r.calibration_images == CAL_IMAGES and r.val_images == sum(len(y) for _, y in self_labelled_val)
    assert r.float_top1 == 1.0  # the labels are its own predictions
    assert r.int8_top1 >= 0.8 and r.agreement == r.int8_top1  # quantization changed few predictions (1 of 37 here)
    assert r.size_bytes < 0.35 * r.float_size_bytes  # int8 weights: about a quarter of float32

    proto = onnx.load(str(out))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("QuantizeLinear") > 10 and ops.count("DequantizeLinear") > ops.count("Conv") > 10
    int8_weights = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4]
    assert len(int8_weights) == ops.count("Conv")  # every convolution's weights are int8 ...
    weight_dq = [
        n for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in {t.name for t in int8_weights}
    ]
    assert all(a.i == 0 for n in weight_dq for a in n.attribute if a.name == "axis")  # ... per output channel
    scales = {t.name: t for t in proto.graph.initializer}
    assert all(len(scales[n.input[1]].dims) == 1 and scales[n.input[1]].dims[0] > 1 for n in weight_dq)

    clf = OnnxClassifier(out)
    assert clf.quantization == "int8" and clf.kind == "ONNX int8"
    assert clf.classes == trained.classes and clf.image_size == 32 and clf.model_name == "googlenet_bn"
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["calibration_images"]) == CAL_IMAGES
    assert json.loads(meta["val_top1_int8"]) == pytest.approx(r.int8_top1, abs=1e-6)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    assert clf(x).shape == (3, 20) and clf(x[:1]).shape == (1, 20)
    assert_runs_as_integer_operators(out, tmp_path / "optimized.onnx")


def assert_runs_as_integer_operators(path: Path, optimized: Path) -> None:
    """ONNX Runtime fuses the QDQ pairs: every convolution runs as ``QLinearConv``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(optimized)  # the graph ONNX Runtime runs
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(optimized)).graph.node]
    assert ops.count("QLinearConv") >= 50 and "Conv" not in ops


def test_a_broken_calibration_is_refused_and_leaves_nothing(trained, prepared_sample, self_labelled_val, tmp_path):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"previous export")
    # Calibrated on images scaled down 100x: every activation range is ~100x too narrow, so
    # real images saturate the uint8 activations and the predictions collapse (24% top-1 here).
    broken = calibration_of(prepared_sample, trained, scale=0.01)
    with pytest.raises(CheckFailedError, match=r"INT8 val top-1 .* points below float32 100\.00%.*not written"):
        export_onnx_int8(trained, out, broken, lambda: self_labelled_val, max_drop=10.0, exporter="torchscript")
    assert out.read_bytes() == b"previous export" and files(tmp_path) == ["m.onnx"]


@pytest.mark.parametrize("name", list(SIZES))
def test_every_model_quantizes(name, tmp_path):
    """Each registered model's float ONNX becomes a QDQ graph that ONNX Runtime runs as integer
    operators (``QLinearConv``), with a dynamic batch. (Its accuracy is checked on a trained
    model above: these weights are random.)"""
    from inception_v2.deploy.export import export_onnx

    model, size = calibrated(name), SIZES[name]
    model.classes = None
    export_onnx(model, tmp_path / "f.onnx", image_size=size, exporter="torchscript")
    g = torch.Generator().manual_seed(0)
    batches = [torch.rand(2, 3, size, size, generator=g) * 2 - 1 for _ in range(2)]
    assert quantize_int8(tmp_path / "f.onnx", tmp_path / "q.onnx", batches) == 4

    assert_runs_as_integer_operators(tmp_path / "q.onnx", tmp_path / "opt.onnx")
    q = OnnxClassifier(tmp_path / "q.onnx")
    for n in (1, 3):
        logits = q(torch.rand(n, 3, size, size) * 2 - 1)
        assert logits.shape == (n, 3) and torch.isfinite(logits).all()


def test_max_drop_is_checked_before_anything_runs(trained, tmp_path):
    with pytest.raises(UsageError, match="--max-drop must be >= 0"):
        export_onnx_int8(trained, tmp_path / "m.onnx", lambda: [], lambda: [], max_drop=-1)
    with pytest.raises(UsageError, match="--max-drop must be >= 0"):
        export_onnx_int8(trained, tmp_path / "m.onnx", lambda: [], lambda: [], max_drop=float("nan"))
    assert files(tmp_path) == []


# --------------------------------------------------------------------------- CLI


def test_cli_int8_export_prints_both_accuracies(tiny_run, prepared_sample, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    code = main(
        [
            "export",
            "--checkpoint",
            str(tiny_run / "best.pt"),
            "--quantize",
            "int8",
            "--calibration-data",
            str(prepared_sample),
            "--calibration-images",
            "8",
            "--max-drop",
            "100",
            "--exporter",
            "torchscript",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "calibrated on 8 train images" in text and "float32 " in text and "int8 " in text
    assert f"wrote {out}" in text and OnnxClassifier(out).quantization == "int8"


def test_cli_refuses_when_the_gate_fails(tiny_run, prepared_sample, tmp_path, monkeypatch, capsys):
    """The CLI's side of the gate (the gate itself: test_a_broken_calibration_is_refused...)."""
    import inception_v2.deploy.quantize as quantize

    seen = {}

    def gate_fails(model, path, calibration, validation, **kwargs):
        seen.update(kwargs, calibration=sum(len(x) for x in calibration()))
        seen["validation"] = sum(len(y) for _, y in validation())
        raise CheckFailedError(f"INT8 val top-1 40.00% is 10.00 points below float32 50.00%; {path} was not written")

    monkeypatch.setattr(quantize, "export_onnx_int8", gate_fails)
    code = main(
        [
            "export",
            "--checkpoint",
            str(tiny_run / "best.pt"),
            "--quantize",
            "int8",
            "--calibration-data",
            str(prepared_sample),
            "--calibration-images",
            "20",
            "--max-drop",
            "0.5",
            "--out",
            str(tmp_path / "m.onnx"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "10.00 points below float32" in err
    assert seen["max_drop"] == 0.5 and seen["image_size"] == 32 and seen["exporter"] == "auto"
    assert seen["calibration"] == 20 and seen["validation"] == len(VOCCrops(prepared_sample, "val"))
    assert files(tmp_path) == []


@pytest.mark.parametrize("argv, message", [
    (["--quantize", "int8", "--out", "m.pt2"], "writes ONNX or OpenVINO, not pt2"),
    (["--quantize", "int8", "--out", "m.onnx"], "needs --calibration-data"),
    (["--calibration-data", "d", "--out", "m.onnx"], "--calibration-data applies to --quantize int8 only"),
    (["--max-drop", "2", "--out", "m.onnx"], "--max-drop applies to --quantize int8 only"),
    (["--quantize", "int8", "--calibration-data", "d", "--max-drop", "-1", "--out", "m.onnx"], "--max-drop must be"),
    (["--quantize", "int8", "--calibration-data", "d", "--calibration-images", "0", "--out", "m.onnx"],
     "--calibration-images must be >= 1"),
])  # fmt: skip
def test_cli_quantize_usage_errors(argv, message, tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--checkpoint", str(tiny_run / "best.pt"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert files(tmp_path) == []


def test_cli_quantize_needs_a_checkpoint_and_a_prepared_folder(tiny_run, tmp_path, capsys):
    assert (
        main(
            [
                "export",
                "--model",
                "googlenet_bn",
                "--quantize",
                "int8",
                "--calibration-data",
                str(tmp_path),
                "--out",
                str(tmp_path / "m.onnx"),
            ]
        )
        == 2
    )
    assert "needs a trained model (--checkpoint)" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    cases = (
        (tmp_path / "file", "is a file, not a prepared folder"),
        (tmp_path / "missing", "does not exist"),
        (tmp_path, "not a finished prepared data set"),
    )
    for data, message in cases:
        assert (
            main(
                [
                    "export",
                    "--checkpoint",
                    str(tiny_run / "best.pt"),
                    "--quantize",
                    "int8",
                    "--calibration-data",
                    str(data),
                    "--exporter",
                    "torchscript",
                    "--out",
                    str(tmp_path / "m.onnx"),
                ]
            )
            == 2
        )
        assert message in capsys.readouterr().err
    assert files(tmp_path) == ["file"]
