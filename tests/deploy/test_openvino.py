"""OpenVINO and the runtime choice (``inception_v2.deploy.openvino``, ``...runtime``, ``...cpu``):
IR export verified against PyTorch and read back with its class names and preprocessing, NNCF
INT8 behind the val gate, every runtime x file combination through ``evaluate`` and ``predict``,
``--runtime auto`` timed once and cached, bf16 refused on a CPU without it, and the extra missing.

The tiny run's googlenet_bn is trained at 32 px, where its ceil-mode pools see a 2 x 2 grid that
OpenVINO cannot take; every file here is exported at 64 px (its data config scaled)."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inception_v2 import load_model
from inception_v2.cli import main
from inception_v2.data import VOC_CLASSES, VOCCrops
from inception_v2.deploy import runtime as rt
from inception_v2.deploy.cpu import CPU_FLAGS_ENV, bf16_support
from inception_v2.deploy.runners import load_classifier
from inception_v2.deploy.runtime import RunOptions
from inception_v2.errors import CheckFailedError, UsageError
from inception_v2.evaluate import evaluate_checkpoint

ov = pytest.importorskip("openvino", reason="needs the openvino extra: pip install 'inception-v2[openvino]'")
pytest.importorskip("nncf", reason="needs the openvino extra: pip install 'inception-v2[openvino]'")
pytest.importorskip("onnxruntime", reason="needs the onnx extra: pip install 'inception-v2[onnx]'")

from inception_v2.deploy import openvino as ovd  # noqa: E402
from inception_v2.deploy.export import export_onnx  # noqa: E402
from inception_v2.deploy.quantize import export_onnx_int8, prepared_batches  # noqa: E402
from inception_v2.deploy.release import write_release  # noqa: E402

SIZE = 64
BF16_FLAGS = "avx2 avx512f avx512_vnni avx512_bf16"  # a CPU with AVX-512 BF16 (simulated)
NO_BF16_FLAGS = "avx2 avx512f avx512_vnni"


@pytest.fixture(scope="module")
def model64(tiny_run):
    model = load_model(tiny_run / "best.pt")
    model.data_config = model.data_config.with_input_size(SIZE)
    return model


@pytest.fixture(scope="module")
def self_labelled_val(model64, prepared_sample):
    """The val split labelled with the float model's own predictions (float32 top-1 is 100%)."""
    batches = list(prepared_batches(prepared_sample, "val", model64.data_config, 32)())
    with torch.inference_mode():
        return [(x, model64(x).argmax(1)) for x, _ in batches]


def calibration_of(prepared, model, scale=1.0):
    train = prepared_batches(prepared, "train", model.data_config, 8, limit=16)
    return lambda: (x * scale for x, _ in train())


@pytest.fixture(scope="module")
def files(model64, tiny_run, prepared_sample, self_labelled_val, tmp_path_factory):
    """Every kind of file, at 64 px: name -> (path, export result or None)."""
    d = tmp_path_factory.mktemp("ov")
    write_release(model64, d / "release", "model", classes=list(model64.classes))
    cal = calibration_of(prepared_sample, model64)
    out = {
        "release": (d / "release", None),
        "ir": (d / "ir", ovd.export_openvino(model64, d / "ir", SIZE)),
        "ir-int8": (
            d / "ir-int8",
            ovd.export_openvino_int8(model64, d / "ir-int8", cal, lambda: self_labelled_val, SIZE, max_drop=10.0),
        ),
        "onnx": (d / "m.onnx", export_onnx(model64, d / "m.onnx", SIZE, exporter="torchscript")),
    }
    export_onnx_int8(
        model64, d / "m-int8.onnx", cal, lambda: self_labelled_val, SIZE, max_drop=100, exporter="torchscript"
    )
    out["onnx-int8"] = (d / "m-int8.onnx", None)
    out["ir.xml"] = (d / "ir" / "model.xml", None)  # the IR named by its .xml rather than its folder
    out["ir-int8.xml"] = (d / "ir-int8" / "model.xml", None)
    out["checkpoint"] = (tiny_run / "best.pt", None)  # at its trained 32 px
    return out


def listing(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- export


def test_ir_export_is_verified_and_carries_classes_and_preprocessing(files, model64):
    path, result = files["ir"]
    assert listing(path) == ["model.bin", "model.xml"] and not [p for p in listing(path.parent) if p.startswith(".")]
    assert set(result.max_abs_diff) == {1, 3} and max(result.max_abs_diff.values()) <= result.tolerance
    raw = ovd.ov_core().read_model(str(path / "model.xml"))  # read back with OpenVINO's own API
    meta = {k: json.loads(raw.get_rt_info(["inception_v2", k]).astype(str)) for k in ovd.METADATA_KEYS}
    cfg = model64.data_config
    assert meta["classes"] == list(VOC_CLASSES) and meta["model_name"] == "googlenet_bn"
    assert (meta["image_size"], meta["resize_size"], meta["mean"], meta["std"]) == (
        SIZE,
        cfg.resize_size,
        list(cfg.mean),
        list(cfg.std),
    )
    assert raw.input(0).get_any_name() == "images" and raw.output(0).get_any_name() == "logits"
    clf = ovd.OpenVinoClassifier(path)
    assert clf.classes == list(VOC_CLASSES)
    assert clf.data_config == cfg.__class__(**{**vars(cfg), "min_input_size": SIZE})
    x = torch.rand(2, 3, SIZE, SIZE) * 2 - 1  # neither verification batch size
    with torch.inference_mode():
        assert float((clf(x) - model64(x)).abs().max()) <= 1e-3 * max(1.0, float(model64(x).abs().max()))


def test_an_export_that_disagrees_with_pytorch_writes_nothing(model64, tmp_path, monkeypatch):
    (tmp_path / "ir").mkdir()
    (tmp_path / "ir" / "model.xml").write_text("previous")
    real = ovd._reference

    def shifted(model, size):
        ref = real(model, size)
        return ref._replace(logits={b: v + 1.0 for b, v in ref.logits.items()})

    monkeypatch.setattr(ovd, "_reference", shifted)
    with pytest.raises(CheckFailedError, match="disagrees with PyTorch"):
        ovd.export_openvino(model64, tmp_path / "ir", SIZE)
    assert listing(tmp_path) == ["ir"] and listing(tmp_path / "ir") == ["model.xml"]
    assert (tmp_path / "ir" / "model.xml").read_text() == "previous"


def test_a_folder_with_other_files_is_refused(model64, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="holds other files"):
        ovd.export_openvino(model64, tmp_path, SIZE)
    assert listing(tmp_path) == ["notes.txt"]


def test_nncf_int8_passes_the_gate_and_is_integer(files):
    path, r = files["ir-int8"]
    assert r.float_top1 == 1.0 and r.int8_top1 >= 0.9 and r.calibration_images == 16
    assert r.size_bytes < 0.4 * files["ir"][1].size_bytes  # 8-bit weights
    clf = ovd.OpenVinoClassifier(path)
    assert clf.quantization == "int8" and clf.precision == "int8" and clf.kind == "OpenVINO IR int8"
    ops = [op.get_type_name() for op in ovd.ov_core().read_model(str(path / "model.xml")).get_ops()]
    assert ops.count("FakeQuantize") > 20 and clf.classes == list(VOC_CLASSES)


def test_nncf_activation_ranges_span_every_calibration_image(files):
    """The input's quantizer covers the largest value of any calibration image (MINMAX, as the
    ONNX INT8 path), not the mean of each image's own largest value (NNCF's default)."""
    model = ovd.ov_core().read_model(str(files["ir"][0] / "model.xml"))
    g = torch.Generator().manual_seed(0)
    batches = [torch.rand(4, 3, SIZE, SIZE, generator=g) * 2 - 1 for _ in range(2)]
    batches[1][2, 0, 5, 5] = 8.0  # one pixel of one image of eight
    quantized, n = ovd.nncf_quantize(model, batches)
    (fq,) = [op for op in quantized.get_ops() if op.get_type_name() == "FakeQuantize"
             and op.input_value(0).get_node().get_type_name() == "Parameter"]  # fmt: skip
    high = float(np.max(fq.input_value(2).get_node().get_data()))
    assert n == 8 and high == pytest.approx(8.0, rel=0.02)  # the mean of the maxima would be under 2


def test_a_broken_calibration_is_refused_and_leaves_nothing(model64, prepared_sample, self_labelled_val, tmp_path):
    broken = calibration_of(prepared_sample, model64, scale=0.01)  # ranges 100x too narrow: saturation
    with pytest.raises(CheckFailedError, match=r"INT8 val top-1 .* points below float32 100\.00%.*not written"):
        ovd.export_openvino_int8(model64, tmp_path / "ir", broken, lambda: self_labelled_val, SIZE, max_drop=10.0)
    assert listing(tmp_path) == []


def test_cli_export_openvino_and_its_int8_gate(tiny_run, prepared_sample, tmp_path, monkeypatch, capsys):
    ckpt = str(tiny_run / "best.pt")
    args = ["export", "--checkpoint", ckpt, "--format", "openvino", "--image-size", str(SIZE)]
    assert main([*args, "--out", str(tmp_path / "ir")]) == 0
    out = capsys.readouterr().out
    assert "OpenVINO IR, float32" in out and "verified with OpenVINO against PyTorch" in out
    assert listing(tmp_path / "ir") == ["model.bin", "model.xml"]
    seen = {}

    def gate_fails(model, out, calibration, validation, image_size, max_drop, progress):
        seen.update(images=sum(len(x) for x in calibration()), size=image_size, max_drop=max_drop)
        raise CheckFailedError(f"INT8 val top-1 40.00% is 10.00 points below float32 50.00%; {out} was not written")

    monkeypatch.setattr(ovd, "export_openvino_int8", gate_fails)
    q = ["--quantize", "int8", "--calibration-data", str(prepared_sample), "--calibration-images", "12"]
    assert main([*args, *q, "--max-drop", "0.5", "--out", str(tmp_path / "q")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "10.00 points below" in err
    assert seen == {"images": 12, "size": SIZE, "max_drop": 0.5}
    assert listing(tmp_path) == ["ir"]
    assert main([*args, "--opset", "18", "--out", str(tmp_path / "x")]) == 2
    assert "--opset applies to ONNX export only" in capsys.readouterr().err


# --------------------------------------------------------------------------- running


COMBOS = [  # file, runtime, precision asked, precision that runs
    ("release", "torch", None, "fp32"),
    ("release", "torch", "bf16", "bf16"),
    ("release", "openvino", None, "fp32"),
    pytest.param("release", "openvino", "bf16", "bf16", marks=pytest.mark.slow),  # converts in memory twice
    ("onnx", "onnxruntime", None, "fp32"),
    ("onnx", "openvino", "fp32", "fp32"),
    ("onnx", "openvino", "bf16", "bf16"),
    ("onnx-int8", "onnxruntime", "int8", "int8"),
    ("onnx-int8", "openvino", None, "int8"),
    ("ir", "openvino", None, "fp32"),
    ("ir", "openvino", "bf16", "bf16"),
    ("ir-int8", "openvino", "int8", "int8"),
    ("ir.xml", "openvino", "fp32", "fp32"),
    ("ir-int8.xml", "openvino", None, "int8"),
    ("checkpoint", "torch", None, "fp32"),  # the training checkpoint itself
]


@pytest.fixture(scope="module")
def crop_file(prepared_sample, tmp_path_factory):
    path = tmp_path_factory.mktemp("crop") / "crop.png"
    Image.fromarray(VOCCrops(prepared_sample, "test")[3][0].permute(1, 2, 0).numpy()).save(path)
    return path


@pytest.fixture(scope="module")
def reference(files, prepared_sample):
    return evaluate_checkpoint(files["release"][0], prepared_sample, workers=0, device="cpu", progress=False)


@pytest.mark.parametrize("name, runtime, precision, runs_at", COMBOS)
def test_every_runtime_and_file_through_evaluate_and_predict(
    name, runtime, precision, runs_at, files, reference, prepared_sample, crop_file, monkeypatch, capsys
):
    monkeypatch.setenv(CPU_FLAGS_ENV, BF16_FLAGS)
    path = files[name][0]
    r = evaluate_checkpoint(
        path, prepared_sample, workers=0, device="cpu", progress=False, run=RunOptions(runtime, precision)
    )
    assert (r["runtime"], r["precision"], r["runtime_choice"]) == (runtime, runs_at, f"--runtime {runtime}")
    assert r["images"] == reference["images"] and list(r["per_class"]) == list(VOC_CLASSES)
    exact = runs_at == "fp32"  # float32 everywhere: the same predictions, to an image or two
    if name != "checkpoint":  # the others are all the 64 px model
        assert abs(r["acc1"] - reference["acc1"]) * r["images"] <= (2 if exact else 0.1 * r["images"])
    argv = ["predict", "--checkpoint", str(path), "--device", "cpu", "--runtime", runtime, str(crop_file)]
    assert main(argv + (["--precision", precision] if precision else [])) == 0
    out = capsys.readouterr().out
    assert f"runtime: {runtime} {runs_at} (--runtime {runtime})" in out and str(crop_file) in out


@pytest.mark.parametrize(
    "name, argv, message",
    [
        ("ir", ["--precision", "int8"], "inception-v2 export --checkpoint F --quantize int8"),
        ("onnx", ["--precision", "int8"], "inception-v2 export --checkpoint F --quantize int8"),
        ("release", ["--precision", "int8"], "inception-v2 export --checkpoint F --quantize int8"),
        ("ir-int8", ["--precision", "fp32"], "is an INT8 file: it runs at --precision int8"),
        ("ir", ["--runtime", "onnxruntime"], "cannot run"),
        ("onnx", ["--runtime", "onnxruntime", "--precision", "bf16"], "bf16 needs --runtime openvino"),
    ],
)
def test_impossible_requests_are_one_line_errors(name, argv, message, files, crop_file, capsys):
    assert main(["predict", "--checkpoint", str(files[name][0]), "--device", "cpu", *argv, str(crop_file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err


@pytest.mark.parametrize("name, runtime", [("release", "torch"), ("ir", "openvino"), ("onnx", "auto")])
def test_bf16_is_refused_on_a_cpu_without_it(name, runtime, files, crop_file, monkeypatch, capsys):
    monkeypatch.setenv(CPU_FLAGS_ENV, NO_BF16_FLAGS)
    assert bf16_support() is None
    argv = ["--runtime", runtime, "--precision", "bf16", str(crop_file)]
    assert main(["predict", "--checkpoint", str(files[name][0]), "--device", "cpu", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs a CPU with bfloat16 instructions (AMX or AVX-512 BF16)" in err
    monkeypatch.setenv(CPU_FLAGS_ENV, "avx512_bf16 amx_bf16")
    assert bf16_support() == "AMX"


def test_auto_times_once_then_reuses_its_cached_choice(files, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = files["onnx"][0]
    timed = []
    real = rt.time_runners
    monkeypatch.setattr(rt, "time_runners", lambda runners, size: timed.append(real(runners, size, 0.2)) or timed[-1])
    first = load_classifier(path, "cpu")
    assert len(timed) == 1 and set(timed[0]) == {"onnxruntime", "openvino"} and min(timed[0].values()) > 0
    assert first.runtime == max(timed[0], key=timed[0].get) and "the fastest here" in first.runtime_choice
    cache = json.loads(rt.cache_path().read_text())
    assert rt.cache_path() == tmp_path / "cache" / "inception-v2" / "runtime-choice.json"
    (entry,) = cache["entries"].values()
    assert entry["runtime"] == first.runtime and entry["file"] == str(path)
    second = load_classifier(path, "cpu")
    assert len(timed) == 1 and second.runtime == first.runtime and "when timed" in second.runtime_choice
    # the choice is per file content: another file is timed afresh; a corrupt cache is ignored
    rt.cache_path().write_text("{not json")
    third = load_classifier(path, "cpu")
    assert len(timed) == 2 and third.runtime in timed[1] and json.loads(rt.cache_path().read_text())["entries"]


def test_auto_on_an_ir_or_a_checkpoint_needs_no_timing(files, monkeypatch):
    monkeypatch.setattr(rt, "time_runners", lambda *a: pytest.fail("timed"))
    assert load_classifier(files["ir"][0], "cpu").runtime == "openvino"
    assert load_classifier(files["release"][0], "cpu").runtime == "torch"


# --------------------------------------------------------------------------- runner checks


def test_the_openvino_runner_checks_class_count_and_finite_logits(files, tmp_path):
    raw = ovd.ov_core().read_model(str(files["ir"][0] / "model.xml"))
    ovd.set_metadata(raw, {"classes": ["a", "b", "c"]})
    ov.save_model(raw, str(tmp_path / "bad" / "model.xml"), compress_to_fp16=False)
    with pytest.raises(UsageError, match=r"names 3 classes but its output has 20"):
        ovd.OpenVinoClassifier(tmp_path / "bad")
    clf = ovd.OpenVinoClassifier(files["ir"][0])
    clf.compiled = lambda x: [np.full((len(x), 20), np.nan, np.float32)]
    with pytest.raises(UsageError, match=f"{files['ir'][0]}: OpenVINO returned non-finite logits"):
        clf(torch.zeros(1, 3, SIZE, SIZE))


def test_other_tools_onnx_metadata_is_left_alone(files, tmp_path):
    import onnx

    m = onnx.load(str(files["onnx-int8"][0]))
    m.metadata_props.add(key="onnx.infer", value="onnxruntime.quant")  # ONNX Runtime's quantizer writes this
    onnx.save(m, str(tmp_path / "q.onnx"))
    clf = ovd.OpenVinoClassifier(tmp_path / "q.onnx")
    assert clf.classes == list(VOC_CLASSES) and clf.precision == "int8" and clf.kind == "ONNX int8"


@pytest.mark.slow  # a whole torch.export of the model, to see it refused
def test_a_model_openvino_cannot_take_is_a_one_line_error(tiny_run, crop_file, capsys):
    argv = ["predict", "--checkpoint", str(tiny_run / "best.pt"), "--runtime", "openvino", str(crop_file)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "OpenVINO cannot convert googlenet_bn at 32x32" in err


def test_without_the_extra_one_line_names_it(files, model64, crop_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "nncf", None)
    for name in ("ir", "ir-int8"):
        assert main(["predict", "--checkpoint", str(files[name][0]), str(crop_file)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "pip install 'inception-v2[openvino]'" in err
    with pytest.raises(UsageError, match=r"openvino extra.*inception-v2\[openvino\]"):
        ovd.export_openvino(copy.deepcopy(model64), tmp_path / "ir", SIZE)
    assert load_classifier(files["onnx"][0], "cpu").runtime == "onnxruntime"  # auto: what is installed
    assert listing(tmp_path) == []


def test_the_cache_key_follows_the_file_the_cpu_and_the_runtimes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    f = tmp_path / "m.onnx"
    f.write_bytes(b"one")
    key = rt.cache_key(f, None)
    assert rt.cache_key(f, None) == key and rt.cache_key(f, "bf16") != key
    f.write_bytes(b"two")
    assert rt.cache_key(f, None) != key
    key = rt.cache_key(f, None)
    monkeypatch.setattr(rt, "cpu_model", lambda: "Another CPU")
    assert rt.cache_key(f, None) != key
    key = rt.cache_key(f, None)
    monkeypatch.setattr(rt, "versions", lambda: {"torch": "0", "onnxruntime": "0", "openvino": "0"})
    assert rt.cache_key(f, None) != key
    rt.remember("k", {"runtime": "openvino"})  # written atomically: the file alone, no temporary left
    assert listing(tmp_path / "cache" / "inception-v2") == ["runtime-choice.json"]
    assert rt.read_cache() == {"k": {"runtime": "openvino"}}
    monkeypatch.setenv("XDG_CACHE_HOME", str(f))  # a cache that cannot be written is only logged
    rt.remember("k", {"runtime": "openvino"})
    assert rt.read_cache() == {}
