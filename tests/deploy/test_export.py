"""``inception_v2.deploy.export`` and ``inception-v2 export``: parity of the written file (ONNX from
either exporter, ``torch.export`` .pt2, TorchScript) with PyTorch for every registered model, its
metadata, atomic writing, and the CLI's errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from inception_v2 import create_model, list_models
from inception_v2.cli import main
from inception_v2.deploy.export import (
    INPUT_NAME,
    OUTPUT_NAME,
    ParityError,
    dynamo_exporter_available,
    export_model,
    export_onnx,
    export_pt2,
    export_torchscript,
    pt2_sidecar,
    read_pt2,
    read_torchscript,
)
from inception_v2.errors import CheckFailedError, UsageError
from tests.deploy.test_fuse import SIZES, batch, calibrated

CLASSES = ["cat", "dog", "person"]


@pytest.fixture
def onnx_runtime():
    pytest.importorskip("onnx", reason="ONNX export tests need the onnx package: pip install 'inception-v2[onnx]'")
    return pytest.importorskip("onnxruntime", reason="ONNX tests need ONNX Runtime: pip install 'inception-v2[onnx]'")


def trained(name: str) -> nn.Module:
    """The shared calibrated model, as ``load_model`` returns one: with class names."""
    model = calibrated(name)
    model.classes = CLASSES
    return model


def no_leftovers(folder: Path, keep: str) -> bool:
    return sorted(p.name for p in folder.iterdir()) == ([keep] if keep else [])


@pytest.mark.parametrize("name", list_models())
def test_onnx_export_matches_pytorch(name, tmp_path, onnx_runtime):
    import onnx

    from inception_v2.deploy.inference import OnnxClassifier

    model, size = trained(name), SIZES[name]
    result = export_onnx(model, tmp_path / "m.onnx", image_size=size)
    assert result.exporter == ("dynamo" if dynamo_exporter_available() else "torchscript")
    assert result.opset == 18 and sorted(result.max_abs_diff) == [1, 3]
    assert all(d <= result.tolerance for d in result.max_abs_diff.values())
    assert result.tolerance <= 1e-3  # logits of order 1: the bound stays tight
    assert no_leftovers(tmp_path, "m.onnx")

    # the graph: one input, one output, named as documented, dynamic batch, no auxiliary head
    proto = onnx.load(str(tmp_path / "m.onnx"))
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == INPUT_NAME and out.name == OUTPUT_NAME
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and dims[1:] == [3, size, size]
    assert not any(node.op_type == "BatchNormalization" for node in proto.graph.node)  # folded
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["model_name"] == name and json.loads(meta["classes"]) == CLASSES

    # an independent check at batch sizes the export did not verify
    clf = OnnxClassifier(tmp_path / "m.onnx")
    for n in (2, 5):
        x = batch(name, n, seed=10 + n)
        with torch.inference_mode():
            ref = model(x)
        got = clf(x)
        assert got.dtype == torch.float32 and got.shape == (n, 3)
        assert float((got - ref).abs().max()) <= result.tolerance


@pytest.mark.parametrize("name", list_models())
def test_pt2_export_matches_pytorch_at_two_batch_sizes(name, tmp_path):
    model, size = trained(name), SIZES[name]
    result = export_pt2(model, tmp_path / "m.pt2", image_size=size)
    assert result.format == "pt2" and sorted(result.max_abs_diff) == [1, 3]
    assert all(d <= result.tolerance for d in result.max_abs_diff.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt2", "m.pt2.json"]
    sidecar = json.loads(pt2_sidecar(tmp_path / "m.pt2").read_text())
    assert sidecar["model_name"] == name and sidecar["classes"] == CLASSES and sidecar["image_size"] == size
    program, meta = read_pt2(tmp_path / "m.pt2")
    assert meta == sidecar and isinstance(program, torch.export.ExportedProgram)
    module = program.module()
    for n in (2, 5):  # batch sizes the export did not verify: the batch is dynamic
        x = batch(name, n, seed=20 + n)
        with torch.inference_mode():
            ref, got = model(x), module(x)
        assert got.shape == (n, 3) and float((got - ref).abs().max()) <= result.tolerance
    assert not any(
        node.target == torch.ops.aten._native_batch_norm_legit_no_training.default for node in program.graph.nodes
    )  # folded


def test_torch_export_failure_is_a_clear_error(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("data-dependent control flow\nmore detail")

    monkeypatch.setattr(torch.export, "export", fail)
    expected = r"googlenet_bn cannot be captured by torch\.export at 64x64 \(RuntimeError: data-dependent control "
    with pytest.raises(UsageError, match=expected + r"flow\); export it as ONNX"):
        export_pt2(trained("googlenet_bn"), tmp_path / "m.pt2", image_size=64)
    assert no_leftovers(tmp_path, "")


def test_onnx_falls_back_to_the_torchscript_exporter_and_says_why(tmp_path, monkeypatch, onnx_runtime):
    import inception_v2.deploy.export as export

    model = trained("googlenet_bn")
    r = export_onnx(model, tmp_path / "old.onnx", image_size=64, opset=17)  # older than the dynamo exporter's 18
    assert r.exporter == "torchscript" and r.opset == 17 and "opset 17 is older" in r.notes[0]
    assert "note: used the TorchScript-based ONNX exporter" in r.describe()
    monkeypatch.setattr(export, "dynamo_exporter_available", lambda: False)  # as without onnxscript
    r = export_onnx(model, tmp_path / "m.onnx", image_size=64)
    assert r.exporter == "torchscript" and "onnxscript is not installed" in r.notes[0]
    with pytest.raises(UsageError, match="dynamo-based ONNX exporter needs onnxscript"):
        export_onnx(model, tmp_path / "x.onnx", image_size=64, exporter="dynamo")
    monkeypatch.undo()

    real = export._onnx_bytes

    def dynamo_fails(deploy, size, opset, exporter):
        if exporter == "dynamo":
            raise RuntimeError("unsupported operator")
        return real(deploy, size, opset, exporter)

    monkeypatch.setattr(export, "_onnx_bytes", dynamo_fails)
    r = export_onnx(model, tmp_path / "m.onnx", image_size=64)
    assert r.exporter == "torchscript" and "dynamo-based one failed (RuntimeError: unsupported operator)" in r.notes[0]
    with pytest.raises(UsageError, match="cannot be exported to ONNX by the dynamo-based exporter"):
        export_onnx(model, tmp_path / "x.onnx", image_size=64, exporter="dynamo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "old.onnx"]


@pytest.mark.parametrize("name", list_models())
def test_torchscript_export_matches_pytorch(name, tmp_path):
    model, size = trained(name), SIZES[name]
    result = export_torchscript(model, tmp_path / "m.pt", image_size=size)
    assert result.format == "torchscript" and sorted(result.max_abs_diff) == [1, 3]
    assert no_leftovers(tmp_path, "m.pt")
    module, meta = read_torchscript(tmp_path / "m.pt", trust_file=True)
    assert meta["model_name"] == name and meta["classes"] == CLASSES and meta["image_size"] == size
    x = batch(name, 2, seed=7)
    with torch.inference_mode():
        ref, got = model(x), module(x)
    assert float((got - ref).abs().max()) <= result.tolerance


def test_metadata_follows_the_export_size(tmp_path, onnx_runtime):
    from inception_v2.deploy.inference import OnnxClassifier

    model = trained("googlenet_bn")  # trained at 224 -> 256 by its data config
    export_onnx(model, tmp_path / "g.onnx", image_size=96, exporter="torchscript")
    clf = OnnxClassifier(tmp_path / "g.onnx")
    assert (clf.image_size, clf.resize_size) == (96, round(96 * 256 / 224))
    assert clf.mean == [0.5, 0.5, 0.5] and clf.std == [0.5, 0.5, 0.5]
    assert clf.model_name == "googlenet_bn" and clf.classes == CLASSES and clf.num_classes == 3


@pytest.mark.parametrize("fmt", ["onnx", "pt2", "torchscript"])
def test_a_mismatch_is_an_error_and_leaves_nothing_behind(fmt, tmp_path, monkeypatch, request):
    if fmt == "onnx":
        request.getfixturevalue("onnx_runtime")
    import inception_v2.deploy.export as export

    real = export.deploy_copy

    def broken(model):  # a deployment copy whose classifier bias is off by 0.1
        copy = real(model)
        with torch.no_grad():
            copy.fc.bias += 0.1
        return copy

    monkeypatch.setattr(export, "deploy_copy", broken)
    out = tmp_path / f"m.{ {'onnx': 'onnx', 'pt2': 'pt2'}.get(fmt, 'pt') }"
    out.write_bytes(b"previous export")
    with pytest.raises(ParityError, match="disagrees with PyTorch") as e:
        export_model(
            trained("googlenet_bn"),
            out,
            fmt,
            image_size=SIZES["googlenet_bn"],
            exporter="torchscript" if fmt == "onnx" else None,
        )
    assert isinstance(e.value, CheckFailedError)  # exit status 1
    assert out.read_bytes() == b"previous export"  # untouched, and no temporary file (or sidecar) left
    assert no_leftovers(tmp_path, out.name)


def test_missing_onnx_runtime_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    with pytest.raises(UsageError, match=r"pip install 'inception-v2\[onnx\]'"):
        export_onnx(trained("googlenet_bn"), tmp_path / "m.onnx", image_size=64)
    assert no_leftovers(tmp_path, "")


# --------------------------------------------------------------------------- CLI


def test_cli_exports_an_untrained_model(tmp_path, capsys, onnx_runtime):
    out = tmp_path / "sub" / "g.onnx"  # the folder is created
    assert (
        main(["export", "--model", "googlenet_bn", "--num-classes", "4", "--image-size", "64", "--out", str(out)]) == 0
    )
    text = capsys.readouterr().out
    assert "untrained" in text and "verified with ONNX Runtime" in text and "N x 4" in text
    assert ("dynamo-based exporter" if dynamo_exporter_available() else "torchscript-based exporter") in text
    assert out.is_file()


def test_cli_exports_a_checkpoint_as_torchscript(tmp_path, capsys):
    from inception_v2.train.checkpoint import data_config_dict, save_checkpoint

    model = create_model("googlenet_bn", num_classes=3, aux_logits=True)
    save_checkpoint(
        tmp_path / "best.pt",
        {
            "model_name": "googlenet_bn",
            "num_classes": 3,
            "classes": CLASSES,
            "aux_logits": True,
            "data_config": data_config_dict(model.data_config.with_input_size(64)),
            "config": {},
            "model": model.state_dict(),
            "ema": None,
        },
    )
    out = tmp_path / "g.ts"  # format from the suffix; size from the checkpoint's data config
    assert main(["export", "--checkpoint", str(tmp_path / "best.pt"), "--out", str(out)]) == 0
    assert "TorchScript" in capsys.readouterr().out
    _, meta = read_torchscript(out, trust_file=True)
    assert meta["classes"] == CLASSES and meta["image_size"] == 64 and meta["resize_size"] == 73

    out = tmp_path / "g.pt2"  # .pt2: a torch.export program and its sidecar
    assert main(["export", "--checkpoint", str(tmp_path / "best.pt"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "torch.export program" in text and f"class names and preprocessing: {pt2_sidecar(out)}" in text
    assert read_pt2(out)[1]["classes"] == CLASSES


@pytest.mark.parametrize("argv, message", [
    (["--model", "googlenet_bn", "--out", "x.bin"], "cannot tell the format"),
    (["--model", "googlenet_bn", "--out", "x.pt", "--opset", "17"], "--opset applies to ONNX"),
    (["--model", "googlenet_bn", "--out", "x.onnx", "--opset", "5"], "--opset must be between"),
    (["--model", "googlenet_bn", "--out", "x.pt", "--image-size", "4"], "needs an image size >="),
    (["--model", "googlenet_bn", "--out", "x.pt", "--num-classes", "0"], "--num-classes must be >= 1"),
    (["--model", "nope", "--out", "x.pt"], "unknown model"),
    (["--checkpoint", "missing.pt", "--out", "x.pt"], "does not exist"),
    (["--checkpoint", "missing.pt", "--num-classes", "3", "--out", "x.pt"], "--num-classes applies to --model"),
    (["--checkpoint", "best.pt", "--out", "./best.pt"], "is the checkpoint itself"),
    (["--model", "googlenet_bn", "--format", "onnx", "--out", "x.pt2"], "--format onnx contradicts the suffix"),
    (["--model", "googlenet_bn", "--format", "pt2", "--out", "x.ts"], "--format pt2 contradicts the suffix"),
    (["--model", "googlenet_bn", "--exporter", "dynamo", "--opset", "17", "--out", "x.onnx"], "opset 18 or newer"),
    (["--model", "googlenet_bn", "--exporter", "torchscript", "--opset", "21", "--out", "x.onnx"], "opset 20 or older"),
    (["--model", "googlenet_bn", "--exporter", "dynamo", "--out", "x.pt2"], "--exporter applies to ONNX export only"),
    (["--model", "googlenet_bn", "--out", "."], "is a folder; give a file name"),
    (["--model", "googlenet_bn", "--out", "a-file/x.onnx"], "a-file is a file, not a folder"),
    (["--checkpoint", "random.pt", "--out", "x.onnx"], "random.pt"),
])  # fmt: skip
def test_cli_errors_are_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = {"a-file": b"x", "random.pt": np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8).tobytes()}
    for name, data in before.items():
        (tmp_path / name).write_bytes(data)
    assert main(["export", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)
