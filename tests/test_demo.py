"""The main job: ``inception-v2 demo`` on the built-in sample (about ten minutes on 2 CPU cores)."""

import pytest

from inception_v2.cli import main


@pytest.mark.slow
def test_demo_reaches_its_bar(tmp_path, capsys):
    import json

    assert main(["demo", "--out", str(tmp_path / "demo"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| inception_v2 |" in printed and "| googlenet_bn |" in printed
    for model in ("inception_v2", "googlenet_bn"):
        summary = json.loads((tmp_path / "demo" / "runs" / model / "summary.json").read_text())
        assert summary["test_acc1_at_best_val"] >= 0.60, (model, summary)
    for name in ("comparison.md", "curves-inception_v2.png", "curves-googlenet_bn.png"):
        assert (tmp_path / "demo" / "compare" / name).is_file()
