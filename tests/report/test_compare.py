import json
import shutil

import pytest

from inception_v2.cli import main
from inception_v2.errors import UsageError
from inception_v2.report.compare import compare

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _light_copy(run, dest):
    """A run directory without its checkpoints (compare reads only the small files)."""
    dest.mkdir()
    for name in ("config.json", "metrics.csv", "summary.json"):
        shutil.copy(run / name, dest / name)
    return dest


def test_compare_writes_the_table_and_one_figure_per_run(tiny_run, tmp_path, capsys):
    other = _light_copy(tiny_run, tmp_path / "again")
    code = main(["compare", str(tiny_run), str(other), "--out", str(tmp_path / "cmp")])
    assert code == 0
    printed = capsys.readouterr().out
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    for column in (
        "model",
        "best val top-1",
        "test top-1 at best val",
        "final test top-1",
        "best test top-1 (source-style)",
        "train time",
        "params",
        "mult-adds",
    ):
        assert column in md and column in printed
    assert printed.count("| googlenet_bn |") == 2 and "308 min" in md  # + the source's own results
    for name in ("curves-tiny.png", "curves-again.png", "test-acc1.png"):
        assert (tmp_path / "cmp" / name).read_bytes().startswith(PNG_MAGIC)
    rows = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["runs"]
    assert all(0 <= r["test_acc1_at_best_val"] <= 1 for r in rows)


def test_compare_refuses_an_unfinished_run(tiny_run, tmp_path):
    unfinished = _light_copy(tiny_run, tmp_path / "unfinished")
    (unfinished / "summary.json").unlink()
    with pytest.raises(UsageError, match="has not finished"):
        compare([unfinished], tmp_path / "cmp")
    with pytest.raises(UsageError, match="does not exist"):
        compare([tmp_path / "nope"], tmp_path / "cmp")
