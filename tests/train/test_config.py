import json

import pytest

from inception_v2.errors import UsageError
from inception_v2.train import RECIPES, TrainConfig, build_config, load_config_file, resolve_config
from inception_v2.train.config import coerce
from inception_v2.train.resume import resume_config

BASE = dict(model="inception_v2", data="prepared", out="runs/x")


def test_blog_recipe_is_the_sources():
    cfg = resolve_config("blog", **BASE)
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs) == ("adam", 1e-3, 128, 100)
    assert (cfg.lr_step_epochs, cfg.lr_decay, cfg.aux_weight) == (8, 0.96, 0.3)
    assert cfg.label_smoothing == 0 and cfg.grad_clip_norm is None and cfg.ema_decay is None
    assert cfg.weight_decay == 0 and cfg.lr_schedule == "step" and cfg.warmup_epochs == 0 and cfg.grad_accum_steps == 1
    assert cfg.data_config().input_size == 299 and cfg.data_config().resize_size == 384


def test_paper_recipe_is_tensorflows_and_scales_lr_with_the_batch_unless_given():
    cfg = resolve_config("paper", **BASE)
    # tensorflow/models inception_train.py: RMSProp decay 0.9, momentum 0.9, epsilon 1.0; weight decay 4e-5
    assert (cfg.optimizer, cfg.momentum, cfg.weight_decay) == ("rmsprop-tf", 0.9, 4e-5)
    assert cfg.lr == pytest.approx(0.045 * 128 / 32)
    assert (cfg.lr_step_epochs, cfg.lr_decay, cfg.grad_clip_norm, cfg.label_smoothing) == (2, 0.94, 2.0, 0.1)
    assert cfg.ema_decay == 0.9999
    assert resolve_config("paper", batch_size=64, **BASE).lr == pytest.approx(0.09)
    assert resolve_config("paper", batch_size=32, grad_accum_steps=4, **BASE).lr == pytest.approx(0.18)
    assert resolve_config("paper", batch_size=64, lr=0.01, **BASE).lr == 0.01


def test_overrides_and_none_keeps_recipe_but_build_config_sets_none():
    cfg = resolve_config("blog", epochs=3, lr=None, image_size=96, **BASE)
    assert cfg.epochs == 3 and cfg.lr == 1e-3
    assert cfg.data_config().input_size == 96 and cfg.data_config().resize_size == round(96 * 384 / 299)
    assert resolve_config("paper", ema_decay=None, **BASE).ema_decay == 0.9999
    assert build_config("paper", dict(BASE, ema_decay=None)).ema_decay is None


@pytest.mark.parametrize(
    "bad, key",
    [
        (dict(model="resnet50"), "--model"),
        (dict(epochs=0), "epochs"),
        (dict(batch_size=1), "batch_size"),
        (dict(label_smoothing=1.0), "label_smoothing"),
        (dict(image_size=64), "image_size"),
        (dict(lr=-1.0), "lr"),
        (dict(device="tpu"), "device"),
        (dict(val_fraction=1.5), "val_fraction"),
        (dict(lr_decay=-0.5), "lr_decay"),
        (dict(weight_decay=-1e-4), "weight_decay"),
        (dict(ema_decay=1.5), "ema_decay"),
        (dict(warmup_epochs=5, epochs=5), "warmup_epochs"),
        (dict(mixup=0.2, batch_size=1), "batch_size"),
        (dict(cutmix=1.0, batch_size=1), "batch_size"),
        (dict(optimizer="lbfgs"), "optimizer"),
        (dict(lr_schedule="linear"), "lr_schedule"),
        (dict(amp_dtype="int8"), "amp_dtype"),
        (dict(auto_augment="augmix"), "auto_augment"),
        (dict(nesterov=True), "nesterov"),  # Adam has no Nesterov momentum
        (dict(momentum=1.0), "momentum"),
        (dict(min_lr=0.01), "min_lr"),  # above lr
        (dict(grad_accum_steps=0), "grad_accum_steps"),
        (dict(random_erasing=2.0), "random_erasing"),
        (dict(mixup=-1.0), "mixup"),
        (dict(head_lr=0.0), "head_lr"),
        (dict(log_every=0), "log_every"),
    ],
)
def test_bad_values_are_one_line_usage_errors_naming_key_and_flag(bad, key):
    with pytest.raises(UsageError) as e:
        resolve_config("blog", **{**BASE, **bad})
    msg = str(e.value)
    assert "\n" not in msg
    if key.startswith("--"):
        assert key in msg
    else:
        assert key in msg and "--" + key.replace("_", "-") in msg, msg


def test_mixup_with_a_batch_of_one_says_why():
    with pytest.raises(UsageError, match="with mixup or cutmix"):
        resolve_config("blog", mixup=0.2, batch_size=1, **BASE)


def test_unknown_recipe_and_option():
    with pytest.raises(UsageError, match="unknown recipe"):
        resolve_config("fast", **BASE)
    with pytest.raises(UsageError, match="unknown training options"):
        resolve_config("blog", momentun=0.9, **BASE)
    with pytest.raises(UsageError, match=r"model \(--model\) must be given"):
        resolve_config("blog", data="d", out="o")


def test_dict_round_trip_and_unknown_key():
    cfg = resolve_config("paper", image_size=80, mixup=0.2, pretrained="w.pt", **BASE)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(UsageError, match="unknown keys"):
        TrainConfig.from_dict({**cfg.to_dict(), "bogus": 1})


@pytest.mark.parametrize(
    "key, value, words",
    [("epochs", "ten", "an integer"), ("epochs", 2.5, "an integer"), ("amp", "yes", "true or false"),
     ("lr", "fast", "a number"), ("lr", True, "a number"), ("model", 3, "a string"),
     ("epochs", None, "cannot be none")],
)  # fmt: skip
def test_wrong_types_are_errors_naming_the_key(key, value, words):
    with pytest.raises(UsageError, match=words) as e:
        TrainConfig.from_dict({**BASE, key: value})
    assert f"{key} (--{key.replace('_', '-')})" in str(e.value)


def test_coercion_of_flag_strings_and_yaml_numbers():
    assert coerce("lr", "1e-3") == 1e-3 and coerce("lr", 1) == 1.0 and isinstance(coerce("lr", 1), float)
    assert coerce("epochs", "7") == 7
    assert coerce("ema_decay", "none") is None and coerce("image_size", "None") is None
    from pathlib import Path

    assert resolve_config("blog", model="googlenet_bn", data=Path("d"), out=Path("runs") / "x").out == str(
        Path("runs/x")
    )


def test_a_config_written_before_the_new_options_reads_as_it_ran():
    old_paper = {
        **BASE,
        "recipe": "paper",
        "optimizer": "rmsprop_tf",
        "lr": 0.18,
        "amp_dtype": "bfloat16",
        "lr_step_epochs": 2,
        "lr_decay": 0.94,
        "label_smoothing": 0.1,
        "grad_clip_norm": 2.0,
        "ema_decay": 0.9999,
    }
    cfg = TrainConfig.from_dict(old_paper)
    assert (cfg.optimizer, cfg.amp_dtype) == ("rmsprop-tf", "bf16")
    assert cfg.momentum == 0.0 and cfg.weight_decay == 0.0  # the old RMSProp ran without them


def test_config_files_json_and_yaml(tmp_path):
    (tmp_path / "a.yaml").write_text("model: googlenet_bn\nlr: 1e-3\nepochs: 3\nmixup: 0.2\nema_decay: null\n")
    assert load_config_file(tmp_path / "a.yaml") == {
        "model": "googlenet_bn",
        "lr": 1e-3,
        "epochs": 3,
        "mixup": 0.2,
        "ema_decay": None,
    }
    (tmp_path / "b.json").write_text(json.dumps({"optimizer": "sgd", "nesterov": True}))
    assert load_config_file(tmp_path / "b.json") == {"optimizer": "sgd", "nesterov": True}


@pytest.mark.parametrize(
    "text, words",
    [("epochs: ten\n", "epochs (--epochs) must be an integer"), ("epoch: 3\n", "unknown keys ['epoch']"),
     ("- 1\n- 2\n", "must hold a mapping"), ("lr: [1\n", "not valid YAML")],
)  # fmt: skip
def test_bad_config_files_are_one_line_errors_naming_file_and_key(tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as e:
        load_config_file(path)
    assert words in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UsageError, match="does not exist"):
        load_config_file(tmp_path / "nope.yaml")


def test_resume_may_change_epochs_and_device_not_the_experiment():
    saved = resolve_config("blog", epochs=5, **BASE)
    assert resume_config(saved, epochs=10, device="cpu", lr=None, tensorboard=True).epochs == 10
    with pytest.raises(UsageError, match="--lr"):
        resume_config(saved, lr=0.1)
    with pytest.raises(UsageError, match="--weight-decay"):
        resume_config(saved, weight_decay=1e-4)
    # the old spelling of an unchanged value is no change
    paper = resolve_config("paper", **BASE)
    assert resume_config(paper, optimizer="rmsprop_tf", amp_dtype="bfloat16").optimizer == "rmsprop-tf"


def test_recipes_are_plain_data_over_the_fields():
    assert set(RECIPES) == {"blog", "paper"}
    fields = set(TrainConfig.__dataclass_fields__)
    for recipe in RECIPES.values():
        assert all(isinstance(v, (int, float, str, type(None))) for v in recipe.values())
        assert set(recipe) - {"lr_reference_batch"} <= fields
    defaults = {k: v.default for k, v in TrainConfig.__dataclass_fields__.items()}
    assert all(defaults[k] == v for k, v in RECIPES["blog"].items())  # the defaults are the blog recipe
