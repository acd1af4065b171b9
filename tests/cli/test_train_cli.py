"""Bad input to ``inception-v2 train`` is a one-line ``error: ...`` and exit status 2."""

import pytest

from inception_v2.cli import main
from inception_v2.data import prepare

TINY_ARGS = ["--epochs", "1", "--batch-size", "8", "--image-size", "32", "--workers", "0",
             "--device", "cpu", "--no-progress"]  # fmt: skip


def _train(capsys, *args):
    code = main(["train", *args, *TINY_ARGS])
    err = capsys.readouterr().err
    return code, err


def test_missing_data_dir(tmp_path, capsys):
    code, err = _train(capsys, "--model", "googlenet_bn", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r"))
    assert code == 2 and err.startswith("error: ") and "does not exist" in err and len(err.splitlines()) == 1


def test_data_dir_that_is_neither_prepared_nor_voc(tmp_path, capsys):
    (tmp_path / "junk").mkdir()
    code, err = _train(capsys, "--model", "googlenet_bn", "--data", str(tmp_path / "junk"), "--out", str(tmp_path / "r"))
    assert code == 2 and "neither a prepared directory" in err


def test_unknown_model(prepared_sample, tmp_path, capsys):
    code, err = _train(capsys, "--model", "resnet50", "--data", str(prepared_sample), "--out", str(tmp_path / "r"))
    assert code == 2 and "unknown model 'resnet50'" in err and "googlenet_bn" in err


def test_empty_val_split(sample_devkit, tmp_path, capsys):
    prepared = tmp_path / "no-val"
    prepare(prepared, voc_root=sample_devkit, val_fraction=0.0, workers=1, progress=False, log=lambda _: None)
    code, err = _train(capsys, "--model", "googlenet_bn", "--data", str(prepared), "--out", str(tmp_path / "r"))
    assert code == 2 and "val split is empty" in err


def test_val_fraction_must_match_the_prepared_one(prepared_sample, tmp_path, capsys):
    code, err = _train(capsys, "--model", "googlenet_bn", "--data", str(prepared_sample), "--out",
                       str(tmp_path / "r"), "--val-fraction", "0.1")  # fmt: skip
    assert code == 2 and "prepared with --val-fraction 0.2" in err


def test_batch_larger_than_the_train_split(prepared_sample, tmp_path, capsys):
    code = main(["train", "--model", "googlenet_bn", "--data", str(prepared_sample), "--out", str(tmp_path / "r"),
                 "--batch-size", "100000", "--image-size", "32", "--device", "cpu"])  # fmt: skip
    assert code == 2 and "fewer than one batch" in capsys.readouterr().err


def test_image_size_below_the_models_minimum(prepared_sample, tmp_path, capsys):
    code = main(["train", "--model", "inception_v2", "--data", str(prepared_sample), "--out", str(tmp_path / "r"),
                 "--image-size", "32"])  # fmt: skip
    assert code == 2 and "image_size >= 75" in capsys.readouterr().err


def test_resuming_a_run_of_another_model(tiny_run, capsys):
    code = main(["train", "--model", "inception_v2", "--data", str(tiny_run), "--out", str(tiny_run), "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "holds a run of googlenet_bn, not inception_v2" in err


def test_existing_run_without_resume(tiny_run, prepared_sample, capsys):
    code, err = _train(capsys, "--model", "googlenet_bn", "--data", str(prepared_sample), "--out", str(tiny_run))
    assert code == 2 and "--resume" in err


def test_resume_with_another_learning_rate(tiny_run, prepared_sample, capsys):
    code = main(["train", "--model", "googlenet_bn", "--data", str(prepared_sample), "--out", str(tiny_run),
                 "--resume", "--lr", "0.5"])  # fmt: skip
    assert code == 2 and "cannot resume" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_missing_checkpoint(command, prepared_sample, tmp_path, capsys):
    args = ["--checkpoint", str(tmp_path / "nope.pt")]
    args += ["--data", str(prepared_sample)] if command == "evaluate" else [str(tmp_path / "x.jpg")]
    assert main([command, *args]) == 2
    assert "nope.pt does not exist" in capsys.readouterr().err
