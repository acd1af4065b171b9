"""The fast inference path (``prepare_for_inference``) and ``OnnxClassifier``, including
``inception-v2 predict`` on an exported ``.onnx`` file."""

from __future__ import annotations

import copy
import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from inception_v2.cli import main
from inception_v2.deploy.export import export_onnx
from inception_v2.deploy.inference import InferenceModel, OnnxClassifier, prepare_for_inference
from inception_v2.errors import UsageError
from tests.deploy.test_fuse import batch, calibrated

CLASSES = ["cat", "dog", "person"]


@pytest.fixture
def onnx_runtime():
    pytest.importorskip("onnx", reason="ONNX export needs the onnx package: pip install 'inception-v2[onnx]'")
    return pytest.importorskip("onnxruntime", reason="ONNX tests need ONNX Runtime: pip install 'inception-v2[onnx]'")


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    """googlenet_bn (calibrated, 3 named classes) exported at 64 px; skipped without ONNX."""
    pytest.importorskip("onnx", reason="ONNX export needs the onnx package: pip install 'inception-v2[onnx]'")
    pytest.importorskip("onnxruntime", reason="ONNX tests need ONNX Runtime: pip install 'inception-v2[onnx]'")
    model = copy.deepcopy(calibrated("googlenet_bn"))
    model.classes = CLASSES
    path = tmp_path_factory.mktemp("onnx") / "googlenet_bn.onnx"
    export_onnx(model, path, image_size=64, exporter="torchscript")  # the quicker exporter: these test the runner
    return path, model


# --------------------------------------------------------------------------- prepare_for_inference


@pytest.mark.parametrize("name", ["googlenet_bn", "inception_v3"])
def test_prepared_model_matches_the_model(name):
    model = calibrated(name)
    model.train()  # whatever mode it is in
    try:
        fast = prepare_for_inference(model, "cpu")
    finally:
        model.eval()
    assert isinstance(fast, InferenceModel) and not fast.training
    assert fast.name == name and fast.data_config == model.data_config and fast.num_classes == 3
    x = batch(name, 3)
    with torch.inference_mode():
        ref, got = model(x), fast(x.double())  # any float dtype in, float32 out
    assert got.dtype == torch.float32 and got.shape == (3, 3)
    assert float((got - ref).abs().max()) <= 1e-3 * max(1.0, float(ref.abs().max()))


def test_prepared_copy_is_folded_channels_last_without_aux_heads_and_frozen():
    model = calibrated("inception_v3")
    fast = prepare_for_inference(model, torch.device("cpu"))
    net = fast.model
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) for m in net.modules())
    assert len(net.aux_heads) == 0 and len(model.aux_heads) == 1  # the original keeps its head
    conv = next(m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not any(p.requires_grad for p in net.parameters())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_bf16_autocast_returns_float32_close_to_float32():
    model = calibrated("googlenet_bn")
    fast = prepare_for_inference(model, "cpu", amp=True)  # bf16 autocast (the CUDA default)
    assert fast.amp_dtype == torch.bfloat16
    x = batch("googlenet_bn", 4)
    with torch.inference_mode():
        ref, got = model(x), fast(x)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    diff = float((got - ref).abs().max())
    assert diff > 1e-4  # the convolutions really ran in bfloat16 ...
    assert diff <= 0.5 * max(1.0, float(ref.abs().max()))  # ... which keeps ~3 significant digits per layer


def test_classes_come_along():
    model = copy.deepcopy(calibrated("googlenet_bn"))
    model.classes = CLASSES
    assert prepare_for_inference(model).classes == CLASSES


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_path_is_bf16_and_returns_float32_on_the_device():
    model = calibrated("googlenet_bn")
    fast = prepare_for_inference(model, "cuda")
    assert fast.amp_dtype == torch.bfloat16
    x = batch("googlenet_bn", 4)
    with torch.inference_mode():
        ref, got = model(x), fast(x)  # a CPU batch is moved to the device
    assert got.dtype == torch.float32 and got.device.type == "cuda"
    assert float((got.cpu() - ref).abs().max()) <= 0.5 * max(1.0, float(ref.abs().max()))


@pytest.mark.slow
def test_compiled_path_matches_the_model():
    model = calibrated("googlenet_bn")
    fast = prepare_for_inference(model, "cpu", compile=True)
    x = batch("googlenet_bn", 2)
    with torch.inference_mode():
        ref, got = model(x), fast(x)
    assert float((got - ref).abs().max()) <= 1e-3 * max(1.0, float(ref.abs().max()))


# --------------------------------------------------------------------------- OnnxClassifier


def test_onnx_classifier_reads_its_metadata_and_runs(onnx_file):
    path, model = onnx_file
    clf = OnnxClassifier(path)
    assert (clf.model_name, clf.name, clf.classes, clf.num_classes) == ("googlenet_bn", "googlenet_bn", CLASSES, 3)
    assert (clf.image_size, clf.resize_size) == (64, 73)
    cfg = clf.data_config
    assert (cfg.input_size, cfg.resize_size, cfg.mean, cfg.std) == (64, 73, (0.5,) * 3, (0.5,) * 3)
    x = batch("googlenet_bn", 4)
    with torch.inference_mode():
        ref = model(x)
    for inp in (x, x.numpy().astype(np.float64)):  # torch tensor or numpy array
        got = clf(inp)
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float32 and got.shape == (4, 3)
        assert float((got - ref).abs().max()) <= 1e-3 * max(1.0, float(ref.abs().max()))
    with pytest.raises(ValueError, match="N x 3 x 64 x 64"):
        clf(torch.zeros(1, 3, 65, 65))


def test_image_size_falls_back_to_the_graph_input(onnx_file, tmp_path):
    import onnx

    proto = onnx.load(str(onnx_file[0]))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    clf = OnnxClassifier(tmp_path / "bare.onnx")
    assert clf.image_size == 64 and clf.resize_size == 64 and clf.classes is None and clf.model_name is None
    assert clf(batch("googlenet_bn", 1)).shape == (1, 3)


def test_onnx_classifier_errors(tmp_path, monkeypatch, onnx_runtime):
    with pytest.raises(UsageError, match="not found"):
        OnnxClassifier(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(UsageError, match="cannot load"):
        OnnxClassifier(tmp_path / "junk.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(UsageError, match=r"ONNX Runtime.*pip install 'inception-v2\[onnx\]'"):
        OnnxClassifier(tmp_path / "junk.onnx")


def test_predict_runs_an_onnx_file(onnx_file, tmp_path, capsys):
    from inception_v2.data import eval_transform

    path, model = onnx_file
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(90, 120, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    assert main(["predict", "--checkpoint", str(path), str(tmp_path / "a.png"), "--topk", "3", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    top = result["top"]
    assert [t["class"] for t in top] and set(t["class"] for t in top) == set(CLASSES)
    # the same answer as the PyTorch model on the same preprocessing
    x = eval_transform(model.data_config.with_input_size(64))(torch.from_numpy(image).permute(2, 0, 1))
    with torch.inference_mode():
        probs = torch.softmax(model(x[None]), 1)[0]
    assert top[0]["class"] == CLASSES[int(probs.argmax())]
    assert abs(top[0]["probability"] - float(probs.max())) < 1e-4
