"""``inception-v2 summary``: stage shapes, parameters and multiply-adds, text and JSON."""

import json

import pytest

from inception_v2.cli import main
from inception_v2.summary import summarize

from .models.spec_tables import BN_MODULES, V2_MODULES, googlenet_bn_params, v2_params


def test_json_has_stages_params_and_macs(capsys):
    assert main(["summary", "--model", "inception_v2", "--num-classes", "20", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    shapes = {st["name"]: st["shape"] for st in s["stages"]}
    assert shapes["conv1"] == [32, 149, 149] and shapes["pool1"] == [64, 73, 73]
    for name, row in V2_MODULES.items():
        assert shapes[name] == [row[1], row[2], row[2]]
    assert shapes["fc"] == [20]
    assert s["params"] == v2_params(20)
    # multiply-adds: the stages add up to the total, and the classifier is 2048 x 20
    assert sum(st["macs"] for st in s["stages"]) == s["macs"]
    assert s["stages"][-1]["macs"] == 2048 * 20
    assert 5.3e9 < s["macs"] < 5.5e9


def test_googlenet_bn_summary_at_another_size():
    s = summarize("googlenet_bn", image_size=112, num_classes=20)
    shapes = {st["name"]: st["shape"] for st in s["stages"]}
    for name, row in BN_MODULES.items():  # every grid halves with the input, rounding up
        assert shapes[name] == [row[2], (row[3] + 1) // 2, (row[3] + 1) // 2]
    assert s["params"] == googlenet_bn_params(20)
    full = summarize("googlenet_bn", num_classes=20)
    assert full["image_size"] == 224 and full["macs"] == pytest.approx(4 * s["macs"], rel=0.05)


def test_text_output(capsys):
    assert main(["summary", "--model", "googlenet_bn"]) == 0
    out = capsys.readouterr().out
    assert "4e       1056 x 7 x 7" in out
    assert "multiply-adds:" in out and "parameters: 17,683,640" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["summary", "--model", "resnet"], "models: googlenet_bn, inception_v2, inception_v3, inception_v3_tv"),
        (["summary", "--model", "inception_v2", "--num-classes", "1000000001"], "--num-classes must be <= 1,000,000"),
        (["summary", "--model", "inception_v2", "--image-size", "100001"], "--image-size must be <= 100,000"),
        (["summary", "--model", "inception_v2", "--image-size", "74"], ">= 75"),
        (["summary", "--model", "inception_v2", "--num-classes", "0"], "--num-classes"),
    ],
)
def test_errors_are_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_absurd_sizes_are_computed_without_memory(capsys):
    """A 100-million-class head (~300 G parameters, 1.2 TB of float32) and a 5000-pixel input
    are summarized on the meta device: nothing is allocated, and the counts are exact."""
    s = summarize("inception_v2", num_classes=100_000_000)
    assert s["params"] == v2_params(100_000_000)
    assert s["stages"][-1]["macs"] == 2048 * 100_000_000
    big = summarize("googlenet_bn", image_size=5000, num_classes=10)
    shapes = {st["name"]: st["shape"] for st in big["stages"]}
    assert shapes["5b"] == [1024, 157, 157] and big["macs"] > 400 * summarize("googlenet_bn", num_classes=10)["macs"]


def test_inception_v3_tv_summary():
    s = summarize("inception_v3_tv")
    assert s["params"] == 27_161_264
    shapes = {st["name"]: st["shape"] for st in s["stages"]}
    assert shapes["Mixed_6e"] == [768, 17, 17] and shapes["Mixed_7c"] == [2048, 8, 8]
    assert 5.6e9 < s["macs"] < 5.8e9  # torchvision's inception_v3: 5.71 G
