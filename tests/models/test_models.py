"""Generic checks, parametrized over every registered model, on tiny inputs."""

import pytest
import torch

import inception_v2
from inception_v2 import ModelOutput, create_model, get_data_config, list_models
from inception_v2.errors import UsageError

from .cache import built

MODELS = list_models()
NUM_AUX = {"inception_v2": 1, "inception_v3": 1, "googlenet_bn": 2}


def tiny(name):
    """The smallest input the model accepts: fast, and exercises the adaptive aux pooling."""
    return get_data_config(name).min_input_size


def test_registry_lists_the_three_models():
    assert MODELS == ["googlenet_bn", "inception_v2", "inception_v3"]
    assert set(NUM_AUX) == set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_forward_shape_and_finite(name):
    torch.manual_seed(0)
    model = built(name).eval()
    s = tiny(name)
    with torch.no_grad():
        logits = model(torch.randn(2, 3, s, s))
    assert logits.shape == (2, 20)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", MODELS)
def test_forward_returns_logits_tensor_in_train_and_eval(name):
    model = built(name).train()
    s = tiny(name)
    x = torch.randn(2, 3, s, s)
    for mode in (True, False):
        model.train(mode)
        out = model(x)
        assert type(out) is torch.Tensor and out.shape == (2, 20)
        with_aux = model.forward_with_aux(x)
        assert isinstance(with_aux, ModelOutput)
        assert with_aux.logits.shape == (2, 20)
        assert isinstance(with_aux.aux_logits, tuple)
        assert len(with_aux.aux_logits) == NUM_AUX[name]
        assert all(a.shape == (2, 20) for a in with_aux.aux_logits)


@pytest.mark.parametrize("name", MODELS)
def test_without_aux_heads(name):
    model = create_model(name, num_classes=7, aux_logits=False)
    assert len(model.aux_heads) == 0
    s = tiny(name)
    out = model.forward_with_aux(torch.randn(2, 3, s, s))
    assert out.aux_logits == () and out.logits.shape == (2, 7)


@pytest.mark.parametrize("name", MODELS)
def test_gradient_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=20, dropout=0.0, aux_dropout=0.0).train()
    s = tiny(name)
    out = model.forward_with_aux(torch.randn(4, 3, s, s))
    loss = out.logits.square().mean() + sum(a.square().mean() for a in out.aux_logits)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


@pytest.mark.parametrize("name", MODELS)
def test_features_and_head_compose_to_forward(name):
    model = built(name).eval()
    cfg = get_data_config(name)
    s = cfg.min_input_size + 13
    x = torch.randn(2, 3, s, s)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape[:2] == (2, model.num_features)
        torch.testing.assert_close(model.forward_head(feats), model(x))


@pytest.mark.parametrize("name", MODELS)
def test_input_below_minimum_or_not_rgb_is_a_value_error(name):
    model = built(name).eval()
    m = get_data_config(name).min_input_size
    with pytest.raises(ValueError, match=str(m)):
        model(torch.randn(1, 3, m - 1, m))
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        model(torch.randn(1, 1, m, m))
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        model(torch.randn(3, m, m))


@pytest.mark.parametrize("name", MODELS)
def test_minimum_size_is_the_true_minimum(name):
    """The documented minimum is tight: every stage still has at least one pixel, and one pixel
    less breaks a stage (checked by running the stages without the guard)."""
    model = built(name).eval()
    m = get_data_config(name).min_input_size
    with torch.no_grad():
        model(torch.randn(1, 3, m, m))
        x = torch.randn(1, 3, m - 1, m - 1)
        with pytest.raises(RuntimeError):
            for stage in model.features:
                x = stage(x)
            if x.shape[-1] < 1:
                raise RuntimeError("empty grid")


@pytest.mark.parametrize("name", MODELS)
def test_non_square_input(name):
    model = built(name).eval()
    m = get_data_config(name).min_input_size
    with torch.no_grad():
        assert model(torch.randn(1, 3, m, m + 40)).shape == (1, 20)


@pytest.mark.parametrize("name", MODELS)
def test_data_config(name):
    cfg = built(name).data_config
    assert cfg == get_data_config(name)
    assert cfg.mean == (0.5, 0.5, 0.5) and cfg.std == (0.5, 0.5, 0.5)
    expected = {"googlenet_bn": (224, 256), "inception_v2": (299, 384), "inception_v3": (299, 384)}
    assert (cfg.input_size, cfg.resize_size) == expected[name]
    assert cfg.with_input_size(224, 256).resize_size == 256
    with pytest.raises(ValueError):
        cfg.with_input_size(cfg.min_input_size - 1)


def test_unknown_model_lists_the_models():
    with pytest.raises(UsageError) as info:
        create_model("resnet50")
    for name in MODELS:
        assert name in str(info.value)
    with pytest.raises(ValueError):
        get_data_config("nope")


def test_bad_arguments():
    with pytest.raises(ValueError):
        create_model("inception_v2", num_classes=0)
    with pytest.raises(ValueError):
        create_model("inception_v2", dropout=1.5)


def test_dropout_argument_reaches_the_head():
    assert create_model("inception_v2", dropout=0.2).dropout.p == 0.2
    assert create_model("googlenet_bn").dropout.p == 0.4


def test_every_conv_has_no_bias_and_is_followed_by_batchnorm():
    for name in MODELS:
        modules = list(built(name).modules())
        convs = [m for m in modules if isinstance(m, torch.nn.Conv2d)]
        assert convs and all(c.bias is None for c in convs)
        for i, m in enumerate(modules):
            if isinstance(m, torch.nn.Conv2d):
                assert isinstance(modules[i + 1], torch.nn.BatchNorm2d)
                assert isinstance(modules[i + 2], torch.nn.ReLU)


def test_public_api_names():
    for name in ("create_model", "list_models", "get_data_config", "ModelOutput", "DataConfig"):
        assert hasattr(inception_v2, name)
