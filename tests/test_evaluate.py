import json

import pytest

from inception_v2.cli import main
from inception_v2.evaluate import evaluate_checkpoint
from inception_v2.train.metrics import read_metrics_csv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_evaluate_matches_the_training_metrics(tiny_run, prepared_sample, tmp_path):
    png = tmp_path / "cm.png"
    r = evaluate_checkpoint(tiny_run / "last.pt", prepared_sample, split="test", workers=0,
                            device="cpu", confusion_png=png, progress=False)  # fmt: skip
    last = read_metrics_csv(tiny_run / "metrics.csv")[-1]
    # Same weights, same deterministic preprocessing; only BatchNorm folding differs.
    assert r["acc1"] == pytest.approx(last["test_acc1"], abs=1e-5)
    assert r["loss"] == pytest.approx(last["test_loss"], rel=1e-3)
    assert 0 <= r["acc1"] <= r["acc5"] <= 1
    assert len(r["per_class"]) == 20 and sum(map(sum, r["confusion"])) == r["images"]
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_evaluate_cli_json_and_flip_tta(tiny_run, prepared_sample, tmp_path, capsys):
    png = tmp_path / "val.png"
    code = main(["evaluate", "--checkpoint", str(tiny_run / "best.pt"), "--data", str(prepared_sample),
                 "--split", "val", "--tta", "flip", "--workers", "0", "--device", "cpu",
                 "--confusion-png", str(png), "--json"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert {"acc1", "acc5", "loss", "per_class"} <= set(out)
    assert out["split"] == "val" and out["tta"] == "flip"
    assert set(out["per_class"]) >= {"aeroplane", "tvmonitor"}
    assert png.is_file()


def test_evaluate_cli_text(tiny_run, prepared_sample, tmp_path, capsys):
    code = main(["evaluate", "--checkpoint", str(tiny_run / "best.pt"), "--data", str(prepared_sample),
                 "--workers", "0", "--device", "cpu", "--confusion-png", str(tmp_path / "cm.png")])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "top-1" in text and "top-5" in text and "loss" in text and "tvmonitor" in text
