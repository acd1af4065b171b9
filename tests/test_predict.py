"""`inception-v2 predict`: top classes of image files, from a checkpoint (other deployed formats:
tests/deploy/test_runners.py), and its errors."""

import pytest
import torch
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
    from inception_v2 import load_model
    from inception_v2.data import eval_transform
    from inception_v2.predict import read_image

    paths, _ = crop_files
    results = predict(tiny_run / "best.pt", paths, topk=3, device="cpu")
    everything = predict(tiny_run / "best.pt", paths, topk=100, device="cpu")  # capped at the 20 classes
    assert [r["image"] for r in results] == [str(p) for p in paths]
    model = load_model(tiny_run / "best.pt")
    for r, full, path in zip(results, everything, paths):
        probs = [t["probability"] for t in full["top"]]
        assert len(probs) == 20 and sum(probs) == pytest.approx(1.0, abs=1e-5)  # a distribution over all classes
        assert probs == sorted(probs, reverse=True) and r["top"] == full["top"][:3]
        # the same numbers as the model itself on the eval transform of the file
        with torch.inference_mode():
            want = torch.softmax(model(eval_transform(model.data_config)(read_image(path))[None]), 1)[0]
        by_class = {t["class"]: t["probability"] for t in full["top"]}
        assert torch.allclose(torch.tensor([by_class[c] for c in model.classes]), want, atol=1e-4)


def test_predict_box_and_cli(tiny_run, crop_files, capsys):
    paths, _ = crop_files
    w, h = Image.open(paths[0]).size
    code = main(
        [
            "predict",
            "--checkpoint",
            str(tiny_run / "best.pt"),
            str(paths[0]),
            "--box",
            f"1,1,{w},{h}",
            "--topk",
            "2",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    runtime, *lines = capsys.readouterr().out.splitlines()
    assert runtime == "runtime: torch fp32 (auto: torch, the one runtime for this file here)"
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


def test_predict_refuses_a_decompression_bomb_in_one_line(tiny_run, tmp_path, monkeypatch, capsys):
    # PIL warns above MAX_IMAGE_PIXELS and raises above twice that; both are refused, naming the
    # image, before anything is decoded. A low limit stands in for a 100-megapixel file.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for side, name in ((40, "warned.png"), (60, "raised.png")):  # 1,600 and 3,600 pixels
        Image.new("RGB", (side, side)).save(tmp_path / name)
        code = main(["predict", "--checkpoint", str(tiny_run / "best.pt"), str(tmp_path / name), "--device", "cpu"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1
        assert f"image {tmp_path / name} refused as a possible decompression bomb" in err
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    assert (
        main(["predict", "--checkpoint", str(tiny_run / "best.pt"), str(tmp_path / "raised.png"), "--device", "cpu"])
        == 0
    )


def test_predict_a_folder_as_an_image_is_one_line(tiny_run, tmp_path, capsys):
    assert main(["predict", "--checkpoint", str(tiny_run / "best.pt"), str(tmp_path), "--device", "cpu"]) == 2
    assert f"image {tmp_path} is a folder" in capsys.readouterr().err
