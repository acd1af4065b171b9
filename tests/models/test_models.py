"""Generic checks, parametrized over every registered model, on tiny inputs: forward and
backward, the auxiliary heads, classifier reset, input channels, features, grad checkpointing."""

import copy

import pytest
import torch

import inception_v2
from inception_v2 import ModelOutput, create_model, get_data_config, list_models
from inception_v2.errors import UsageError
from inception_v2.models import FeatureListNet

from .cache import built

MODELS = list_models()
NUM_AUX = {"inception_v2": 1, "inception_v3": 1, "googlenet_bn": 2, "inception_v3_tv": 1}
NOMINAL = {
    "googlenet_bn": (224, 256),
    "inception_v2": (299, 384),
    "inception_v3": (299, 384),
    "inception_v3_tv": (299, 342),
}
# Grid of each feature map at the nominal size.
GRIDS = {
    "googlenet_bn": [112, 56, 28, 14, 7],
    "inception_v2": [147, 73, 35, 17, 8],
    "inception_v3": [147, 73, 35, 17, 8],
    "inception_v3_tv": [147, 73, 35, 17, 8],
}


def tiny(name):
    """The smallest input the model accepts: fast, and exercises the adaptive aux pooling."""
    return get_data_config(name).min_input_size


def on_meta(name, **kwargs):
    """A model on the meta device: its structure in milliseconds, without any weights."""
    with torch.device("meta"):
        return create_model(name, **kwargs)


def no_dropout(name):
    """Keyword arguments that turn every dropout of ``name`` off."""
    return {"dropout": 0.0, **({} if name == "inception_v3_tv" else {"aux_dropout": 0.0})}


def test_registry_lists_the_four_models():
    assert MODELS == ["googlenet_bn", "inception_v2", "inception_v3", "inception_v3_tv"]
    assert set(NUM_AUX) == set(MODELS) == set(NOMINAL) == set(GRIDS)


@pytest.mark.parametrize("name", MODELS)
def test_forward_shape_and_finite(name):
    torch.manual_seed(0)
    model = built(name).eval()
    s = tiny(name)
    with torch.no_grad():
        logits = model(torch.randn(2, 3, s, s))
    assert logits.shape == (2, 20)
    assert torch.isfinite(logits).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_at_the_nominal_size(name):
    model = built(name).train()
    s = get_data_config(name).input_size
    out = model.forward_with_aux(torch.randn(2, 3, s, s))
    (out.logits.sum() + sum(a.sum() for a in out.aux_logits)).backward()
    assert out.logits.shape == (2, 20) and torch.isfinite(out.logits).all()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=True)


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
    model.eval()


@pytest.mark.parametrize("name", MODELS)
def test_without_aux_heads(name):
    model = on_meta(name, num_classes=7, aux_logits=False).eval()
    assert len(model.aux_heads) == 0 and not model.aux_logits
    s = tiny(name)
    out = model.forward_with_aux(torch.randn(2, 3, s, s, device="meta"))
    assert out.aux_logits == () and out.logits.shape == (2, 7)


@pytest.mark.parametrize("name", MODELS)
def test_by_default_forward_reaches_every_parameter(name):
    """No auxiliary heads unless asked for: a plain loss on ``forward`` gives every parameter a
    gradient (what DDP without ``find_unused_parameters`` needs)."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=20, dropout=0.0).train()
    assert not model.aux_logits and len(model.aux_heads) == 0
    s = tiny(name)
    model(torch.randn(4, 3, s, s)).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


@pytest.mark.parametrize("name", MODELS)
def test_gradient_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=20, aux_logits=True, **no_dropout(name)).train()
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
def test_input_below_minimum_or_wrong_channels_is_a_value_error(name):
    model = built(name).eval()
    m = get_data_config(name).min_input_size
    with pytest.raises(ValueError, match=str(m)):
        model(torch.randn(1, 3, m - 1, m))
    with pytest.raises(ValueError, match="N x 3 x H x W, got 1 x 1 x"):
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
    assert cfg.mean == (0.5, 0.5, 0.5) and cfg.std == (0.5, 0.5, 0.5) and cfg.interpolation == "bilinear"
    assert (cfg.input_size, cfg.resize_size) == NOMINAL[name]
    assert cfg.with_input_size(224, 256).resize_size == 256
    with pytest.raises(ValueError):
        cfg.with_input_size(cfg.min_input_size - 1)


# --------------------------------------------------------------------------- classifier and heads


@pytest.mark.parametrize("name", MODELS)
def test_reset_classifier_replaces_main_and_aux_heads(name):
    model = create_model(name, num_classes=20, aux_logits=True)
    before = {n: p.clone() for n, p in model.named_parameters()}
    model.reset_classifier(5)
    assert model.num_classes == 5 and model.get_classifier() is model.fc
    assert model.get_classifier().out_features == 5
    assert all(h.get_classifier().out_features == 5 for h in model.aux_heads.values())
    s = tiny(name)
    out = model.eval().forward_with_aux(torch.randn(1, 3, s, s))
    assert out.logits.shape == (1, 5) and all(a.shape == (1, 5) for a in out.aux_logits)
    # everything but the classifiers is untouched
    changed = [
        n
        for n, p in model.named_parameters()
        if n in before and p.shape == before[n].shape and not torch.equal(p, before[n])
    ]
    assert changed == []
    with pytest.raises(ValueError, match="num_classes"):
        model.reset_classifier(-1)
    model.reset_classifier(0)  # timm's way to pooled features: no classifier, no auxiliary heads
    assert model.num_classes == 0 and not model.aux_logits
    assert model(torch.randn(1, 3, s, s)).shape == (1, model.num_features)


@pytest.mark.parametrize("name", MODELS)
def test_in_chans_adapts_the_first_convolution(name):
    model = create_model(name, num_classes=4, in_chans=1).eval()
    first = dict(model.named_modules())[model.first_conv]
    assert first.in_channels == 1 and model.in_chans == 1
    s = tiny(name)
    with torch.no_grad():
        assert model(torch.randn(2, 1, s, s)).shape == (2, 4)
    with pytest.raises(ValueError, match="N x 1 x H x W"):
        model(torch.randn(2, 3, s, s))


@pytest.mark.parametrize("name", MODELS)
def test_grad_checkpointing_gives_the_same_gradients_and_statistics(name):
    torch.manual_seed(0)
    plain = create_model(name, num_classes=5, aux_logits=True).train()
    ckpt = copy.deepcopy(plain)
    ckpt.set_grad_checkpointing()
    s = tiny(name)
    x = torch.randn(2, 3, s, s)
    grads = []
    for model in (plain, ckpt):
        torch.manual_seed(1)  # the same dropout masks
        out = model.forward_with_aux(x)
        (out.logits.square().sum() + sum(a.square().sum() for a in out.aux_logits)).backward()
        grads.append([p.grad for p in model.parameters()])
    for g0, g1 in zip(*grads):
        torch.testing.assert_close(g0, g1, rtol=1e-5, atol=1e-6)
    # the recomputation does not update BatchNorm a second time
    for b0, b1 in zip(plain.buffers(), ckpt.buffers()):
        torch.testing.assert_close(b0, b1, rtol=0, atol=0)
    ckpt.set_grad_checkpointing(False)
    assert not ckpt.grad_checkpointing


# --------------------------------------------------------------------------- features_only


@pytest.mark.parametrize("name", MODELS)
def test_feature_info_matches_the_maps_at_the_nominal_size(name):
    """Every feature map's channels and grid against ``feature_info``, on the meta device (the
    shapes at the nominal size without computing anything)."""
    with torch.device("meta"):
        model = create_model(name, features_only=True).eval()
    s = get_data_config(name).input_size
    maps = model(torch.zeros(2, 3, s, s, device="meta"))
    info = model.feature_info
    assert [m.shape[1] for m in maps] == info.channels()
    assert [m.shape[-1] for m in maps] == GRIDS[name]
    assert info.reduction() == [2, 4, 8, 16, 32]
    for m, r in zip(maps, info.reduction()):  # the nominal reduction: the ratio, rounded down
        assert r <= s / m.shape[-1] < 1.2 * r
    assert info.module_name() == [f["module"] for f in built(name).feature_info]


@pytest.mark.parametrize("name", MODELS)
def test_features_only_maps_are_the_stage_outputs(name):
    full = built(name).eval()
    built_alone = on_meta(name, features_only=True, out_indices=(1, -1))
    assert set(built_alone.state_dict()) < set(full.state_dict())  # the classifier's names, heads left out
    assert len(built_alone.feature_info) == 2 and built_alone.out_indices == [1, 4]
    feats = FeatureListNet(full, out_indices=(1, -1))
    s = tiny(name)
    x = torch.randn(1, 3, s, s)
    outputs = {}
    hooks = [
        dict(full.named_modules())[f["module"]].register_forward_hook(
            lambda m, i, o, key=f["module"]: outputs.__setitem__(key, o)
        )
        for f in feats.feature_info
    ]
    with torch.no_grad():
        maps = feats(x)
        full(x)
    for h in hooks:
        h.remove()
    for m, f in zip(maps, feats.feature_info):
        assert m.shape[1] == f["num_chs"]
        torch.testing.assert_close(m, outputs[f["module"]])


def test_out_indices_errors():
    with pytest.raises(ValueError, match="out of range"):
        on_meta("inception_v2", features_only=True, out_indices=(5,))
    with pytest.raises(ValueError, match="repeats"):
        on_meta("inception_v2", features_only=True, out_indices=(0, -5))
    with pytest.raises(ValueError, match="features_only"):
        on_meta("inception_v2", out_indices=(0,))


# --------------------------------------------------------------------------- create_model


def test_unknown_model_lists_the_models():
    with pytest.raises(UsageError) as info:
        create_model("resnet50")
    for name in MODELS:
        assert name in str(info.value)
    with pytest.raises(ValueError):
        get_data_config("nope")


def test_unknown_keyword_is_a_type_error_naming_the_accepted_ones():
    with pytest.raises(TypeError) as info:
        create_model("inception_v2", num_clases=3)
    message = str(info.value)
    assert "'num_clases'" in message
    for accepted in ("num_classes", "in_chans", "pretrained", "features_only", "aux_logits", "dropout", "out_indices"):
        assert accepted in message
    with pytest.raises(TypeError, match="'bn_eps'"):  # an option of googlenet_bn only
        create_model("inception_v2", bn_eps=1e-5)
    model = on_meta("googlenet_bn", bn_eps=1e-5, count_include_pad=True)
    assert {m.eps for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {1e-5}
    assert model.features[5].branch_pool[0].count_include_pad
    assert model.arch_options == {"bn_eps": 1e-5, "count_include_pad": True, "input_space": None}
    assert not on_meta("googlenet_bn").features[5].branch_pool[0].count_include_pad


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        create_model("inception_v2", num_classes=-1)
    with pytest.raises(ValueError, match="aux_logits=True needs num_classes >= 1"):
        create_model("inception_v2", num_classes=0, aux_logits=True)
    with pytest.raises(ValueError, match="needs num_classes=0"):
        create_model("inception_v2", global_pool="")
    with pytest.raises(ValueError, match="global_pool"):
        create_model("inception_v2", global_pool="catavgmax")
    with pytest.raises(ValueError, match="disagree"):
        create_model("inception_v2", dropout=0.2, drop_rate=0.3)
    with pytest.raises(ValueError, match="in_chans"):
        create_model("inception_v2", in_chans=0)
    with pytest.raises(ValueError, match="dropout"):
        create_model("inception_v2", dropout=1.5)
    with pytest.raises(ValueError, match="in_chans=3"):
        on_meta("googlenet_bn", in_chans=1, input_space="caffe_bgr")


def test_dropout_argument_reaches_the_head():
    assert on_meta("inception_v2", dropout=0.2).dropout.p == 0.2
    assert on_meta("googlenet_bn").dropout.p == 0.4
    assert on_meta("googlenet_bn", dropout=None).dropout.p == 0.4
    assert on_meta("googlenet_bn", drop_rate=0.1).dropout.p == 0.1  # timm's name


def test_every_conv_has_no_bias_and_is_followed_by_batchnorm():
    for name in MODELS:
        modules = list(built(name).modules())
        convs = [m for m in modules if isinstance(m, torch.nn.Conv2d)]
        assert convs and all(c.bias is None for c in convs)
        for i, m in enumerate(modules):
            if isinstance(m, torch.nn.Conv2d):
                assert isinstance(modules[i + 1], torch.nn.BatchNorm2d)
                assert isinstance(modules[i + 2], torch.nn.ReLU)


def test_public_api_builds_a_model_by_name():
    for name in ("create_model", "list_models", "get_data_config", "load_model", "list_releases"):
        assert callable(getattr(inception_v2, name))
    assert inception_v2.list_models() == MODELS
    assert inception_v2.list_releases() == ["googlenet_bn.caffe_in1k", "inception_v3_tv.tv_in1k"]
