"""`inception-v2 predict`: top classes of image files, from a checkpoint or an ONNX export."""

import pytest
from PIL import Image

from inception_v2.cli import main
from inception_v2.data import VOCCrops
from inception_v2.errors import UsageError
from inception_v2.predict import parse_box, predict


@pytest.fixture(scope="module")
def crop_files(prepared_sample, tmp_path_factory):
    """Two test crops as PNG files, and their labels."""
    ds = VOCCrops(prepared_sample, "test")
    d = tmp_path_factory.mktemp("images")
    paths, labels = [], []
    for i in range(2):
        image, label = ds[i]
        path = d / f"crop{i}.png"
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(path)
        paths.append(path)
        labels.append(ds.classes[label])
    return paths, labels


def test_predict_top_classes_with_probabilities(tiny_run, crop_files):
    paths, _ = crop_files
    results = predict(tiny_run / "best.pt", paths, topk=3, device="cpu")
    assert [r["image"] for r in results] == [str(p) for p in paths]
    for r in results:
        probs = [t["probability"] for t in r["top"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_predict_box_and_cli(tiny_run, crop_files, capsys):
    paths, _ = crop_files
    w, h = Image.open(paths[0]).size
    code = main(["predict", "--checkpoint", str(tiny_run / "best.pt"), str(paths[0]),
                 "--box", f"1,1,{w},{h}", "--topk", "2", "--device", "cpu"])  # fmt: skip
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(f"[box 1,1,{w},{h}]") and len(lines) == 3 and lines[1].strip().endswith("%")
    # the whole-image box gives the whole-image prediction
    full = predict(tiny_run / "best.pt", [paths[0]], device="cpu")[0]["top"]
    boxed = predict(tiny_run / "best.pt", [paths[0]], box=(1, 1, w, h), device="cpu")[0]["top"]
    assert full == boxed


def test_predict_bad_inputs(tiny_run, crop_files, tmp_path, capsys):
    paths, _ = crop_files
    with pytest.raises(UsageError, match="four integers"):
        parse_box("1,2,3")
    with pytest.raises(UsageError, match="1-based"):
        parse_box("0,0,5,5")
    with pytest.raises(UsageError, match="outside"):
        predict(tiny_run / "best.pt", [paths[0]], box=(1, 1, 10_000, 10_000), device="cpu")
    (tmp_path / "not-an-image.jpg").write_bytes(b"hello")
    code = main(["predict", "--checkpoint", str(tiny_run / "best.pt"), str(tmp_path / "not-an-image.jpg")])
    assert code == 2 and "cannot read image" in capsys.readouterr().err


def test_predict_onnx(tiny_run, crop_files, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from inception_v2 import load_model
    from inception_v2.deploy.export import export_model

    onnx_path = tmp_path / "model.onnx"
    export_model(load_model(tiny_run / "best.pt"), onnx_path, format="onnx")
    paths, _ = crop_files
    from_onnx = predict(onnx_path, paths, topk=3)
    from_pt = predict(tiny_run / "best.pt", paths, topk=3, device="cpu")
    for a, b in zip(from_onnx, from_pt):
        assert [t["class"] for t in a["top"]][:1] == [t["class"] for t in b["top"]][:1]
        assert a["top"][0]["probability"] == pytest.approx(b["top"][0]["probability"], abs=1e-3)
