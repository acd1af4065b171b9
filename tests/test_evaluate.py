"""`inception-v2 evaluate`: the metrics of a checkpoint match training's, and `--out` writes the
JSON and the figures (confusion heatmap, per-class accuracy, most confident mistakes). Other
deployed formats: tests/deploy/test_runners.py."""

import json

import pytest

from inception_v2.cli import main
from inception_v2.data import VOC_CLASSES, VOCCrops
from inception_v2.evaluate import evaluate_checkpoint
from inception_v2.train.metrics import read_metrics_csv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_evaluate_matches_the_training_metrics_and_writes_nothing(tiny_run, prepared_sample):
    before = sorted(p.name for p in tiny_run.iterdir())
    r = evaluate_checkpoint(
        tiny_run / "last.pt", prepared_sample, split="test", workers=0, device="cpu", progress=False
    )
    last = read_metrics_csv(tiny_run / "metrics.csv")[-1]
    # Same weights, same deterministic preprocessing; only BatchNorm folding differs.
    assert r["acc1"] == pytest.approx(last["test_acc1"], abs=1e-5)
    assert r["loss"] == pytest.approx(last["test_loss"], rel=1e-3)
    assert 0 <= r["acc1"] <= r["acc5"] <= 1
    assert len(r["per_class"]) == 20 and sum(map(sum, r["confusion"])) == r["images"]
    assert r["format"] == "checkpoint" and r["files"] == {}
    assert sorted(p.name for p in tiny_run.iterdir()) == before  # no figure dropped next to the checkpoint


def test_evaluate_out_writes_the_json_and_the_figures(tiny_run, prepared_sample, tmp_path):
    out = tmp_path / "eval"
    r = evaluate_checkpoint(
        tiny_run / "best.pt", prepared_sample, split="val", workers=0, device="cpu", progress=False, out=out, mistakes=5
    )
    names = ["confusion-val.png", "evaluation-val.json", "mistakes-val.png", "per-class-val.png"]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == names
    for name in names[:1] + names[2:]:
        assert (out / name).read_bytes().startswith(PNG_MAGIC) and (out / name).stat().st_size > 5000
    saved = json.loads((out / "evaluation-val.json").read_text())
    assert saved["acc1"] == r["acc1"] and saved["per_class"] == r["per_class"] and saved["split"] == "val"
    assert set(r["files"]) == {"confusion", "per_class", "mistakes", "json"}

    # the mistakes: wrong, the most confident first, at most 5, and every one listed when fewer
    labels = VOCCrops(prepared_sample, "val").targets
    wrong = r["images"] - round(r["acc1"] * r["images"])
    m = r["mistakes"]
    assert len(m) == min(5, wrong)
    assert all(x["true"] != x["predicted"] and VOC_CLASSES[labels[x["index"]]] == x["true"] for x in m)
    assert [x["confidence"] for x in m] == sorted((x["confidence"] for x in m), reverse=True)
    assert all(1 / 20 <= x["confidence"] <= 1 for x in m)


def test_evaluate_cli_json_and_flip_tta(tiny_run, prepared_sample, tmp_path, capsys):
    png = tmp_path / "val.png"
    code = main(
        [
            "evaluate",
            "--checkpoint",
            str(tiny_run / "best.pt"),
            "--data",
            str(prepared_sample),
            "--split",
            "val",
            "--tta",
            "flip",
            "--workers",
            "0",
            "--device",
            "cpu",
            "--confusion-png",
            str(png),
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert {"acc1", "acc5", "loss", "per_class", "mistakes"} <= set(out)
    assert out["split"] == "val" and out["tta"] == "flip"
    assert set(out["per_class"]) >= {"aeroplane", "tvmonitor"}
    assert png.read_bytes().startswith(PNG_MAGIC) and out["files"] == {"confusion_png": str(png)}


def test_evaluate_cli_text(tiny_run, prepared_sample, tmp_path, capsys):
    code = main(
        [
            "evaluate",
            "--checkpoint",
            str(tiny_run / "best.pt"),
            "--data",
            str(prepared_sample),
            "--workers",
            "0",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "e"),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "top-1" in text and "top-5" in text and "loss" in text and "tvmonitor" in text
    assert "most confident mistakes" in text and f"mistakes: {tmp_path / 'e' / 'mistakes-test.png'}" in text


def test_evaluate_out_folder_in_use_is_exit_3(tiny_run, prepared_sample, tmp_path, capsys):
    from inception_v2.locking import exclusive

    with exclusive(tmp_path / "e", "another evaluation"):
        code = main(
            [
                "evaluate",
                "--checkpoint",
                str(tiny_run / "best.pt"),
                "--data",
                str(prepared_sample),
                "--workers",
                "0",
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "e"),
            ]
        )
    assert code == 3 and "in use" in capsys.readouterr().err
    assert not (tmp_path / "e" / "evaluation-test.json").exists()
