import pytest

from inception_v2.errors import UsageError
from inception_v2.train import RECIPES, TrainConfig, resolve_config
from inception_v2.train.config import resume_config

BASE = dict(model="inception_v2", data="prepared", out="runs/x")


def test_seed_recipe_is_the_sources():
    cfg = resolve_config("seed", **BASE)
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs) == ("adam", 1e-3, 128, 100)
    assert (cfg.lr_step_epochs, cfg.lr_decay, cfg.aux_weight) == (8, 0.96, 0.3)
    assert cfg.label_smoothing == 0 and cfg.grad_clip_norm is None and cfg.ema_decay is None
    assert cfg.data_config().input_size == 299 and cfg.data_config().resize_size == 384


def test_paper_recipe_scales_lr_with_batch_unless_given():
    cfg = resolve_config("paper", **BASE)
    assert cfg.optimizer == "rmsprop_tf"
    assert cfg.lr == pytest.approx(0.045 * 128 / 32)
    assert (cfg.lr_step_epochs, cfg.lr_decay, cfg.grad_clip_norm, cfg.label_smoothing) == (2, 0.94, 2.0, 0.1)
    assert cfg.ema_decay is not None
    assert resolve_config("paper", batch_size=64, **BASE).lr == pytest.approx(0.09)
    assert resolve_config("paper", batch_size=64, lr=0.01, **BASE).lr == 0.01


def test_overrides_and_none_keeps_recipe():
    cfg = resolve_config("seed", epochs=3, lr=None, image_size=96, **BASE)
    assert cfg.epochs == 3 and cfg.lr == 1e-3
    assert cfg.data_config().input_size == 96 and cfg.data_config().resize_size == round(96 * 384 / 299)


@pytest.mark.parametrize(
    "bad, words",
    [
        (dict(model="resnet50"), "unknown model"),
        (dict(epochs=0), "epochs"),
        (dict(batch_size=1), "batch_size"),
        (dict(label_smoothing=1.0), "label_smoothing"),
        (dict(image_size=64), "image_size >= 75"),
        (dict(lr=-1.0), "lr"),
        (dict(device="tpu"), "device"),
        (dict(val_fraction=1.5), "val_fraction"),
    ],
)
def test_bad_values_are_usage_errors(bad, words):
    with pytest.raises(UsageError, match=words):
        resolve_config("seed", **{**BASE, **bad})


def test_unknown_recipe_and_option():
    with pytest.raises(UsageError, match="unknown recipe"):
        resolve_config("fast", **BASE)
    with pytest.raises(UsageError, match="unknown training options"):
        resolve_config("seed", momentum=0.9, **BASE)


def test_dict_round_trip():
    cfg = resolve_config("paper", image_size=80, **BASE)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(UsageError, match="unknown keys"):
        TrainConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_resume_may_change_epochs_and_device_not_the_experiment():
    saved = resolve_config("seed", epochs=5, **BASE)
    assert resume_config(saved, epochs=10, device="cpu", lr=None).epochs == 10
    with pytest.raises(UsageError, match="lr"):
        resume_config(saved, lr=0.1)


def test_recipes_are_plain_data():
    assert set(RECIPES) == {"seed", "paper"}
    for recipe in RECIPES.values():
        assert all(isinstance(v, (int, float, str, type(None))) for v in recipe.values())
