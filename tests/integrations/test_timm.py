"""``inception_v2.integrations.timm``: our models in timm's registry, timm's view of their
preprocessing (``resolve_data_config`` + ``create_transform``) equal to ours on a real image,
and the timm head API. timm's own generic model tests run in ``test_timm_models.py``."""

import glob
import sys

import pytest
import torch

timm = pytest.importorskip("timm")

import inception_v2.integrations.timm as iv2_timm  # noqa: E402  (after the skip)
from inception_v2 import create_model, get_data_config, list_models  # noqa: E402
from inception_v2.data import eval_transform  # noqa: E402
from inception_v2.models.weights import RELEASES  # noqa: E402

NAMES = iv2_timm.register()


def test_every_model_is_registered_under_its_documented_name():
    assert NAMES == ["iv2_" + n for n in list_models()] == timm.list_models("iv2_*")
    assert iv2_timm.register() == NAMES  # a second call changes nothing
    assert timm.list_pretrained("iv2_*") == ["iv2_googlenet_bn.caffe_in1k", "iv2_inception_v3_tv.tv_in1k"]
    cfg = timm.models.get_pretrained_cfg("iv2_inception_v3_tv")
    assert cfg.tag == "tv_in1k" and cfg.url == RELEASES["inception_v3_tv.tv_in1k"].url
    assert timm.models.get_pretrained_cfg("iv2_inception_v2").url == ""  # no published weights


def test_without_timm_register_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)
    monkeypatch.setitem(sys.modules, "timm.models", None)
    with pytest.raises(ImportError, match="pip install timm"):
        iv2_timm.register()


@pytest.fixture(scope="module")
def voc_image(real_voc_sample):
    from PIL import Image

    path = sorted(glob.glob(str(real_voc_sample / "VOCdevkit" / "VOC2007" / "JPEGImages" / "*.jpg")))[0]
    with Image.open(path) as image:
        return image.convert("RGB")


@pytest.mark.parametrize("name", list_models())
def test_timms_preprocessing_is_ours_on_a_real_image(name, voc_image):
    """resolve_data_config + create_transform: the same resize, crop, interpolation and
    normalization as our eval pipeline. The two resize a PIL image with different code (PIL's
    and torch's antialiased uint8 resize), which differ by one grey level in a few pixels."""
    model = timm.create_model("iv2_" + name, num_classes=20).eval()
    ours = get_data_config(name)
    cfg = timm.data.resolve_data_config({}, model=model)
    assert cfg["input_size"] == (3, ours.input_size, ours.input_size)
    assert cfg["interpolation"] == ours.interpolation and cfg["crop_mode"] == "center"
    assert cfg["mean"] == ours.mean and cfg["std"] == ours.std
    transform = timm.data.create_transform(**cfg)
    resize, crop = transform.transforms[:2]
    assert resize.size == ours.resize_size and resize.interpolation.value == ours.interpolation
    assert tuple(crop.size) == (ours.input_size, ours.input_size)
    theirs, mine = transform(voc_image), eval_transform(ours)(voc_image)
    assert theirs.shape == mine.shape == (3, ours.input_size, ours.input_size)
    diff = (theirs - mine).abs()
    one_level = 1 / 255 / min(ours.std)
    assert float(diff.max()) <= one_level + 1e-6 and float((diff > 1e-6).float().mean()) < 1e-3
    with torch.no_grad():
        torch.testing.assert_close(model(theirs[None]), model(mine[None]), rtol=0, atol=1e-5)


def test_pretrained_through_timm_loads_our_release(monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    reference = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda url, **kwargs: reference.state_dict())
    model = timm.create_model("iv2_inception_v3_tv.tv_in1k", pretrained=True, num_classes=0)
    assert model.num_classes == 0 and model.pretrained_cfg["tag"] == "tv_in1k"
    assert model.pretrained_cfg["architecture"] == "iv2_inception_v3_tv"
    torch.testing.assert_close(model.features.Conv2d_1a_3x3[0].weight, reference.Conv2d_1a_3x3.conv.weight)


def test_timm_keywords_reach_the_model():
    with torch.device("meta"):
        model = timm.create_model("iv2_googlenet_bn", drop_rate=0.1, global_pool="avgmax", aux_logits=True)
    assert model.dropout.p == 0.1 and model.global_pool.pool_type == "avgmax" and model.aux_logits
    model = timm.create_model(
        "iv2_inception_v2", device="meta", dtype=torch.bfloat16, pretrained_cfg_overlay={"crop_pct": 1.0}
    )
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.pretrained_cfg["crop_pct"] == 1.0
    with pytest.raises(TypeError, match="not_a_model_arg"):
        timm.create_model("iv2_inception_v2", not_a_model_arg=1)


# --------------------------------------------------------------------------- the head API


@pytest.mark.parametrize("name", list_models())
def test_pooled_features_and_pools(name):
    s = get_data_config(name).min_input_size + 16
    x = torch.randn(2, 3, s, s)
    torch.manual_seed(0)
    model = create_model(name, num_classes=0).eval()
    with torch.no_grad():
        pooled = model(x)
        features = model.forward_features(x)
        assert pooled.shape == (2, model.num_features) == (2, model.head_hidden_size)
        torch.testing.assert_close(pooled, features.mean((2, 3)))
        torch.testing.assert_close(model.forward_head(features, pre_logits=True), pooled)
        model.reset_classifier(0, "max")
        torch.testing.assert_close(model(x), features.amax((2, 3)))
        model.reset_classifier(0, "avgmax")
        torch.testing.assert_close(model(x), 0.5 * (features.mean((2, 3)) + features.amax((2, 3))))
        model.reset_classifier(0, "")
        torch.testing.assert_close(model(x), features)


def test_reset_classifier_keeps_the_pool_unless_told_and_needs_one_with_classes():
    model = create_model("googlenet_bn", num_classes=3, global_pool="max")
    model.eval().reset_classifier(5)
    assert model.global_pool.pool_type == "max" and model.fc.out_features == 5
    assert not any(m.training for m in model.modules())  # new parts in the model's mode
    with pytest.raises(ValueError, match="needs num_classes=0"):
        model.reset_classifier(5, "")
    model.reset_classifier(0, "")
    model.reset_classifier(5)  # a classifier after no pooling: the papers' average pool
    assert model.global_pool.pool_type == "avg"


@pytest.mark.parametrize("name", list_models())
def test_forward_intermediates_are_the_feature_maps(name):
    model = create_model(name, num_classes=5).eval()
    s = get_data_config(name).min_input_size + 16
    x = torch.randn(1, 3, s, s)
    with torch.no_grad():
        expected = create_model(name, features_only=True)  # other weights: compare shapes
        final, maps = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x), rtol=0, atol=0)
        assert [m.shape[1] for m in maps] == expected.feature_info.channels() == model.feature_info.channels()
        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert [m.shape for m in last_two] == [m.shape for m in maps[-2:]]
        early, picked = model.forward_intermediates(x, indices=[1, -5], stop_early=True)
        assert len(picked) == 2 and early.shape == maps[1].shape
        torch.testing.assert_close(picked[1], maps[1], rtol=0, atol=0)
        with pytest.raises(ValueError, match="out of range"):
            model.forward_intermediates(x, indices=[5])
        with pytest.raises(ValueError, match="NCHW"):
            model.forward_intermediates(x, output_fmt="NHWC")


@pytest.mark.parametrize("name", list_models())
def test_prune_intermediate_layers(name):
    model = create_model(name, num_classes=5, aux_logits=True).eval()
    s = get_data_config(name).min_input_size + 16
    x = torch.randn(1, 3, s, s)
    with torch.no_grad():
        maps = model.forward_intermediates(x, intermediates_only=True)
        assert model.prune_intermediate_layers([4], prune_head=False) == [4]
        assert model.num_classes == 5 and model(x).shape == (1, 5)  # nothing to remove
        assert model.prune_intermediate_layers([2]) == [2]
        assert model.num_classes == 0 and not model.aux_logits
        assert model.num_features == model.feature_info[2]["num_chs"]
        torch.testing.assert_close(model(x), maps[2], rtol=0, atol=0)
        torch.testing.assert_close(model.forward_intermediates(x, indices=[2])[1][0], maps[2], rtol=0, atol=0)
        with pytest.raises(ValueError, match="pruned"):
            model.forward_intermediates(x, indices=[3])
