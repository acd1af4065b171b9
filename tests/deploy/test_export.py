"""``inception_v2.deploy.export`` and ``inception-v2 export``: parity of the written file with PyTorch
for every registered model, its metadata, atomic writing, and the CLI's errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from inception_v2 import create_model, list_models
from inception_v2.cli import main
from inception_v2.errors import UsageError
from inception_v2.deploy.export import (
    INPUT_NAME,
    OUTPUT_NAME,
    ParityError,
    export_model,
    export_onnx,
    export_torchscript,
    read_torchscript,
)
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
    assert sorted(result.max_abs_diff) == [1, 3]
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
def test_torchscript_export_matches_pytorch(name, tmp_path):
    model, size = trained(name), SIZES[name]
    result = export_torchscript(model, tmp_path / "m.pt", image_size=size)
    assert result.format == "torchscript" and sorted(result.max_abs_diff) == [1, 3]
    assert no_leftovers(tmp_path, "m.pt")
    module, meta = read_torchscript(tmp_path / "m.pt")
    assert meta["model_name"] == name and meta["classes"] == CLASSES and meta["image_size"] == size
    x = batch(name, 2, seed=7)
    with torch.inference_mode():
        ref, got = model(x), module(x)
    assert float((got - ref).abs().max()) <= result.tolerance


def test_metadata_follows_the_export_size(tmp_path, onnx_runtime):
    from inception_v2.deploy.inference import OnnxClassifier

    model = trained("googlenet_bn")  # trained at 224 -> 256 by its data config
    export_onnx(model, tmp_path / "g.onnx", image_size=96)
    clf = OnnxClassifier(tmp_path / "g.onnx")
    assert (clf.image_size, clf.resize_size) == (96, round(96 * 256 / 224))
    assert clf.mean == [0.5, 0.5, 0.5] and clf.std == [0.5, 0.5, 0.5]
    assert clf.model_name == "googlenet_bn" and clf.classes == CLASSES and clf.num_classes == 3


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
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
    out = tmp_path / f"m.{'onnx' if fmt == 'onnx' else 'pt'}"
    out.write_bytes(b"previous export")
    with pytest.raises(ParityError, match="disagrees with PyTorch"):
        export_model(trained("googlenet_bn"), out, fmt, image_size=SIZES["googlenet_bn"])
    assert out.read_bytes() == b"previous export"  # untouched, and no temporary file left
    assert no_leftovers(tmp_path, out.name)


def test_missing_onnx_runtime_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    with pytest.raises(UsageError, match=r"pip install 'inception-v2\[onnx\]'"):
        export_onnx(trained("googlenet_bn"), tmp_path / "m.onnx", image_size=64)
    assert no_leftovers(tmp_path, "")


# --------------------------------------------------------------------------- CLI


def test_cli_exports_an_untrained_model(tmp_path, capsys, onnx_runtime):
    out = tmp_path / "sub" / "g.onnx"  # the folder is created
    assert main(["export", "--model", "googlenet_bn", "--num-classes", "4", "--image-size", "64",
                 "--out", str(out)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "untrained" in text and "verified with ONNX Runtime" in text and "N x 4" in text
    assert out.is_file()


def test_cli_exports_a_checkpoint_as_torchscript(tmp_path, capsys):
    from inception_v2.train.checkpoint import data_config_dict, save_checkpoint

    model = create_model("googlenet_bn", num_classes=3)
    save_checkpoint(tmp_path / "best.pt", {
        "model_name": "googlenet_bn", "num_classes": 3, "classes": CLASSES, "aux_logits": True,
        "data_config": data_config_dict(model.data_config.with_input_size(64)), "config": {},
        "model": model.state_dict(), "ema": None,
    })  # fmt: skip
    out = tmp_path / "g.ts"  # format from the suffix; size from the checkpoint's data config
    assert main(["export", "--checkpoint", str(tmp_path / "best.pt"), "--out", str(out)]) == 0
    assert "TorchScript" in capsys.readouterr().out
    _, meta = read_torchscript(out)
    assert meta["classes"] == CLASSES and meta["image_size"] == 64 and meta["resize_size"] == 73


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
])  # fmt: skip
def test_cli_errors_are_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["export", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert no_leftovers(tmp_path, "")
