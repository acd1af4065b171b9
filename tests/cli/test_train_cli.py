"""Bad input to ``inception-v2 train`` is a one-line ``error: ...`` and exit status 2."""

import argparse

import pytest

from inception_v2.cli import main
from inception_v2.data import prepare

TINY_ARGS = [
    "--epochs",
    "1",
    "--batch-size",
    "8",
    "--image-size",
    "32",
    "--workers",
    "0",
    "--device",
    "cpu",
    "--no-progress",
]


def _train(capsys, *args):
    code = main(["train", *args, *TINY_ARGS])
    err = capsys.readouterr().err
    return code, err


def test_missing_data_dir(tmp_path, capsys):
    code, err = _train(
        capsys, "--model", "googlenet_bn", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")
    )
    assert code == 2 and err.startswith("error: ") and "does not exist" in err and len(err.splitlines()) == 1


def test_data_dir_that_is_neither_prepared_nor_voc(tmp_path, capsys):
    (tmp_path / "junk").mkdir()
    code, err = _train(
        capsys, "--model", "googlenet_bn", "--data", str(tmp_path / "junk"), "--out", str(tmp_path / "r")
    )
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
    code, err = _train(
        capsys,
        "--model",
        "googlenet_bn",
        "--data",
        str(prepared_sample),
        "--out",
        str(tmp_path / "r"),
        "--val-fraction",
        "0.1",
    )
    assert code == 2 and "prepared with --val-fraction 0.2" in err


def test_batch_larger_than_the_train_split(prepared_sample, tmp_path, capsys):
    code = main(
        [
            "train",
            "--model",
            "googlenet_bn",
            "--data",
            str(prepared_sample),
            "--out",
            str(tmp_path / "r"),
            "--batch-size",
            "100000",
            "--image-size",
            "32",
            "--device",
            "cpu",
        ]
    )
    assert code == 2 and "fewer than one batch" in capsys.readouterr().err


def test_image_size_below_the_models_minimum(prepared_sample, tmp_path, capsys):
    code = main(
        [
            "train",
            "--model",
            "inception_v2",
            "--data",
            str(prepared_sample),
            "--out",
            str(tmp_path / "r"),
            "--image-size",
            "32",
        ]
    )
    assert code == 2 and "image_size (--image-size) must be >= 75" in capsys.readouterr().err


def test_resuming_a_run_of_another_model(tiny_run, capsys):
    code = main(["train", "--model", "inception_v2", "--data", str(tiny_run), "--out", str(tiny_run), "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "holds a run of googlenet_bn, not inception_v2" in err


def test_existing_run_without_resume(tiny_run, prepared_sample, capsys):
    code, err = _train(capsys, "--model", "googlenet_bn", "--data", str(prepared_sample), "--out", str(tiny_run))
    assert code == 2 and "--resume" in err


def test_resume_with_another_learning_rate(tiny_run, prepared_sample, capsys):
    code = main(
        [
            "train",
            "--model",
            "googlenet_bn",
            "--data",
            str(prepared_sample),
            "--out",
            str(tiny_run),
            "--resume",
            "--lr",
            "0.5",
        ]
    )
    assert code == 2 and "cannot resume" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_missing_checkpoint(command, prepared_sample, tmp_path, capsys):
    args = ["--checkpoint", str(tmp_path / "nope.pt")]
    args += ["--data", str(prepared_sample)] if command == "evaluate" else [str(tmp_path / "x.jpg")]
    assert main([command, *args]) == 2
    assert "nope.pt does not exist" in capsys.readouterr().err


# --------------------------------------------------------------------------- flags from TrainConfig


def _train_parser():
    from inception_v2.cli import build_parser

    parser = build_parser("train")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def test_every_config_field_is_a_flag_and_every_flag_a_field():
    from dataclasses import fields

    from inception_v2.cli.train import CLI_ONLY
    from inception_v2.train import TrainConfig
    from inception_v2.train.config import field_types

    actions = {a.dest: a for a in _train_parser()._actions if a.dest not in ("help", "debug")}
    names = {f.name for f in fields(TrainConfig)}
    assert set(actions) == names | set(CLI_ONLY)
    for f in fields(TrainConfig):
        action = actions[f.name]
        assert action.option_strings[0] == "--" + f.name.replace("_", "-")
        assert action.help and f.metadata["help"] in action.help
        if field_types()[f.name][0] is bool:  # --x / --no-x
            assert action.option_strings == ["--" + f.name.replace("_", "-"), "--no-" + f.name.replace("_", "-")]
        if f.metadata.get("choices"):
            assert all(c in action.metavar for c in f.metadata["choices"])


def test_flags_config_file_and_recipe_layer(tmp_path):
    from inception_v2.cli.train import config_from_args

    (tmp_path / "c.yaml").write_text("recipe: paper\nmodel: googlenet_bn\ndata: d\nout: o\nepochs: 7\nmixup: 0.2\n")
    parse = _train_parser().parse_args
    cfg = config_from_args(
        parse(
            [
                "--config",
                str(tmp_path / "c.yaml"),
                "--epochs",
                "3",
                "--no-amp",
                "--ema-decay",
                "none",
                "--optimizer",
                "sgd",
                "--nesterov",
            ]
        )
    )
    assert (cfg.recipe, cfg.model, cfg.epochs, cfg.mixup, cfg.amp) == ("paper", "googlenet_bn", 3, 0.2, False)
    assert (cfg.optimizer, cfg.nesterov, cfg.ema_decay, cfg.label_smoothing) == ("sgd", True, None, 0.1)
    assert cfg.lr == pytest.approx(0.045 * 128 / 32)  # the paper recipe's, scaled


def test_a_runs_config_json_is_a_valid_config(tiny_run, tmp_path):
    import json

    from inception_v2.cli.train import config_from_args
    from inception_v2.train import TrainConfig

    args = _train_parser().parse_args(["--config", str(tiny_run / "config.json"), "--out", str(tmp_path / "again")])
    cfg = config_from_args(args)
    saved = TrainConfig.from_dict(json.loads((tiny_run / "config.json").read_text()))
    assert cfg.out == str(tmp_path / "again")
    assert {**cfg.to_dict(), "out": None} == {**saved.to_dict(), "out": None}


@pytest.mark.parametrize(
    "args, words",
    [
        (["--lr-decay", "-0.5"], "lr_decay (--lr-decay) must be in (0, 1]"),
        (["--warmup-epochs", "2", "--epochs", "2"], "warmup_epochs (--warmup-epochs) must be less than epochs"),
        (["--mixup", "0.2", "--batch-size", "1"], "batch_size (--batch-size) must be >= 2 with mixup"),
        (["--optimizer", "lbfgs"], "optimizer (--optimizer) must be one of adam, adamw, sgd, rmsprop-tf"),
        (["--lr", "fast"], "lr (--lr) must be a number, got 'fast'"),
        (["--weight-decay", "-1"], "weight_decay (--weight-decay) must be >= 0"),
    ],
)
def test_bad_flag_values_are_one_line_errors_naming_the_flag(prepared_sample, tmp_path, capsys, args, words):
    code = main(
        [
            "train",
            "--model",
            "googlenet_bn",
            "--data",
            str(prepared_sample),
            "--out",
            str(tmp_path / "r"),
            "--device",
            "cpu",
            *args,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1 and words in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "text, words",
    [("model: googlenet_bn\nepochs: ten\n", "epochs (--epochs) must be an integer"),
     ("model: googlenet_bn\nlearning_rate: 0.1\n", "unknown keys ['learning_rate']")],
)  # fmt: skip
def test_bad_config_files_are_one_line_errors(prepared_sample, tmp_path, capsys, text, words):
    (tmp_path / "c.yaml").write_text(text)
    code = main(
        ["train", "--config", str(tmp_path / "c.yaml"), "--data", str(prepared_sample), "--out", str(tmp_path / "r")]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and words in err and "c.yaml" in err, err


def test_model_is_required_here_or_in_the_config(tmp_path, capsys):
    assert main(["train", "--data", "d", "--out", str(tmp_path / "r")]) == 2
    assert "model (--model) must be given" in capsys.readouterr().err
