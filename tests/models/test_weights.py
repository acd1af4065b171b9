"""Published weights: the BN-Inception (pretrainedmodels) and torchvision Inception-v3 state dicts
converted into ``googlenet_bn`` / ``inception_v3_tv`` give the reference networks' outputs.

Nothing is downloaded: the references are built with random weights and randomized BatchNorm
statistics, their state dicts saved as the releases are, and loaded through
``create_model(..., pretrained=...)``. Downloading itself is replaced by a stand-in."""

import urllib.error

import pytest
import torch
import torchvision

from inception_v2 import create_model
from inception_v2.errors import UsageError
from inception_v2.models import weights as weights_module
from inception_v2.models.weights import RELEASES, convert_bninception

CAFFE_MEAN = torch.tensor([104.0, 117.0, 128.0]).view(1, 3, 1, 1)


def randomize(model: torch.nn.Module, seed: int, calibration: torch.Tensor) -> torch.nn.Module:
    """A stand-in for trained weights: random weights and biases, BatchNorm statistics measured
    on ``calibration`` (so that the logits stay of order 1), then rescaled so that epsilon
    matters: each variance x 0.01 and each scale x 0.1 leave the function alone with a tiny
    epsilon but move it by several percent per layer with an epsilon of 1e-3."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / m.weight[0].numel()) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # the running statistics become the calibration batch's
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
        model.train()(calibration)
        for m in bns:
            m.momentum = 0.1
            m.running_var.mul_(0.01)
            m.weight.mul_(0.1)
    return model.eval()


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """RGB images in [0, 1]."""
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def ours(rgb: torch.Tensor, model) -> torch.Tensor:
    """Our standard input: RGB in [0, 1] normalized with the model's data_config."""
    cfg = model.data_config
    return (rgb - torch.tensor(cfg.mean).view(1, 3, 1, 1)) / torch.tensor(cfg.std).view(1, 3, 1, 1)


def assert_same_logits(got: torch.Tensor, expected: torch.Tensor) -> None:
    scale = expected.abs().max().item()
    assert scale > 0.5  # a meaningful comparison, not two vectors of zeros
    assert (got - expected).abs().max().item() <= 1e-3 * scale


@pytest.fixture(scope="module")
def bninception():
    pytest.importorskip("pretrainedmodels", reason="the reference BN-Inception needs pretrainedmodels (dev dependency)")
    from pretrainedmodels.models.bninception import BNInception

    return randomize(BNInception(num_classes=1000), 1, images(4, 224, seed=10).flip(1) * 255 - CAFFE_MEAN)


@pytest.fixture(scope="module")
def tv_inception_v3():
    reference = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    return randomize(reference, 2, images(4, 299, seed=11) * 2 - 1)


def test_bninception_release_reproduces_the_caffe_network(bninception, tmp_path):
    path = tmp_path / "bn_inception-52deb4733.pth"
    torch.save(bninception.state_dict(), path)
    model = create_model("googlenet_bn", pretrained=str(path)).eval()
    assert model.arch_options == RELEASES["googlenet_bn.caffe_in1k"].arch_options
    rgb = images(2, 224)
    with torch.no_grad():
        expected = bninception(rgb.flip(1) * 255 - CAFFE_MEAN)  # BGR, 0-255, mean subtracted
        assert_same_logits(model(ours(rgb, model)), expected)
        # the options are needed: the paper's defaults on the same weights give other logits
        default = create_model("googlenet_bn", aux_logits=False).eval()
        default.load_state_dict(convert_bninception(bninception.state_dict()))
        assert (default(ours(rgb, model)) - expected).abs().max() > 0.05 * expected.abs().max()


def test_a_release_file_without_batch_counters_loads(bninception):
    """Files saved before PyTorch 0.4.1 (the BN-Inception port) have no num_batches_tracked."""
    old = {k: v for k, v in bninception.state_dict().items() if not k.endswith("num_batches_tracked")}
    model = create_model("googlenet_bn", num_classes=10, pretrained=old, aux_logits=False)
    torch.testing.assert_close(model.features.conv1[0].weight, bninception.conv1_7x7_s2.weight)


def test_torchvision_inception_v3_release_gives_torchvisions_outputs(tv_inception_v3, tmp_path):
    path = tmp_path / "inception_v3_google-0cc3c7bd.pth"
    torch.save(tv_inception_v3.state_dict(), path)
    model = create_model("inception_v3_tv", pretrained=path, aux_logits=True).eval()
    rgb = images(2, 299)
    with torch.no_grad():
        assert_same_logits(model(ours(rgb, model)), tv_inception_v3(ours(rgb, model)))
    # training mode: the auxiliary head too (BatchNorm on batch statistics, the same dropout mask)
    model.train(), tv_inception_v3.train()
    try:
        torch.manual_seed(0)
        theirs = tv_inception_v3(ours(rgb, model))
        torch.manual_seed(0)
        mine = model.forward_with_aux(ours(rgb, model))
    finally:
        tv_inception_v3.eval()
    assert_same_logits(mine.logits, theirs.logits)
    assert_same_logits(mine.aux_logits[0], theirs.aux_logits)


def test_torchvisions_transform_input_is_our_normalization(tv_inception_v3):
    """torchvision's weights take ImageNet-normalized input with ``transform_input=True``, which
    maps it to mean = std = 0.5: our data_config, so our model needs no transform."""
    reference = torchvision.models.inception_v3(
        weights=None, aux_logits=False, init_weights=False, transform_input=True
    )
    reference.load_state_dict(tv_inception_v3.state_dict(), strict=False)
    reference.eval()
    model = create_model("inception_v3_tv", aux_logits=False, pretrained=tv_inception_v3.state_dict()).eval()
    rgb = images(2, 107)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    imagenet = (rgb - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    with torch.no_grad():
        assert_same_logits(model(ours(rgb, model)), reference(imagenet))


def test_a_release_for_another_model_is_refused(tv_inception_v3):
    with pytest.raises(UsageError, match="load into inception_v3_tv, not inception_v3"):
        create_model("inception_v3", pretrained=tv_inception_v3.state_dict())


def test_fewer_classes_and_one_input_channel(tv_inception_v3, caplog):
    model = create_model("inception_v3_tv", num_classes=20, in_chans=1, pretrained=tv_inception_v3.state_dict())
    assert "has 1000 classes, the model 20: classifier re-initialized" in caplog.text
    model.eval()
    rgb_model = create_model("inception_v3_tv", num_classes=20, pretrained=tv_inception_v3.state_dict()).eval()
    rgb_model.load_state_dict({**rgb_model.state_dict(), "fc.weight": model.fc.weight, "fc.bias": model.fc.bias})
    grey = torch.rand(1, 1, 80, 80) * 2 - 1
    with torch.no_grad():  # one grey channel = the same grey in R, G and B
        torch.testing.assert_close(model(grey), rgb_model(grey.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-4)


def test_auxiliary_heads_in_one_and_not_the_other_are_noted(tv_inception_v3, caplog):
    """Auxiliary heads are opt-in: weights with heads load into a model without them (dropped)
    and weights without heads into a model with them (left initialized), each with a note."""
    theirs = tv_inception_v3.state_dict()
    plain = create_model("inception_v3_tv", pretrained=theirs)
    notes = caplog.messages
    assert "has auxiliary heads (after Mixed_6e), the model none (aux_logits=False): their weights dropped" in notes[0]
    assert len(notes) == 1 and not plain.aux_logits
    caplog.clear()
    with_aux = create_model("inception_v3_tv", pretrained=plain.state_dict(), aux_logits=True)
    assert "has no auxiliary heads: they keep their fresh initialization" in caplog.text
    torch.testing.assert_close(with_aux.fc.weight, plain.fc.weight)
    pooled = create_model("inception_v3_tv", pretrained=plain.state_dict(), num_classes=0)
    assert "has a classifier, the model none (num_classes=0): fc dropped" in caplog.text
    torch.testing.assert_close(pooled.features.Mixed_7c.branch1x1[0].weight, theirs["Mixed_7c.branch1x1.conv.weight"])


# --------------------------------------------------------------------------- pretrained=True


def test_pretrained_true_downloads_with_the_hash_checked(bninception, monkeypatch):
    calls = []

    def fake_download(url, **kwargs):
        calls.append((url, kwargs))
        return bninception.state_dict()

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    model = create_model("googlenet_bn", pretrained=True, aux_logits=False).eval()
    ((url, kwargs),) = calls
    assert url == RELEASES["googlenet_bn.caffe_in1k"].url and kwargs["check_hash"] is True
    assert kwargs["weights_only"] is True
    assert model.arch_options["input_space"] == "caffe_bgr"
    cfg = model.pretrained_cfg  # timm's view names the release
    assert cfg["tag"] == "caffe_in1k" and cfg["url"] == RELEASES["googlenet_bn.caffe_in1k"].url
    assert create_model("googlenet_bn", aux_logits=False).pretrained_cfg["url"] == ""
    create_model("googlenet_bn", pretrained="caffe_in1k", aux_logits=False)  # the release's tag
    assert len(calls) == 2


def test_offline_is_a_one_line_error_naming_the_file(monkeypatch, tmp_path):
    def offline(url, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    url = RELEASES["inception_v3_tv.tv_in1k"].url
    with pytest.raises(UsageError) as info:
        create_model("inception_v3_tv", pretrained=True)
    message = str(info.value)
    assert "\n" not in message and url in message and "pretrained='PATH'" in message
    assert "Temporary failure in name resolution" in message


def test_a_bad_hash_is_a_failed_check(monkeypatch):
    from inception_v2.errors import CheckFailedError

    def corrupt(url, **kwargs):
        raise RuntimeError('invalid hash value (expected "52deb4733", got "0123abcd")')

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", corrupt)
    with pytest.raises(CheckFailedError, match="do not match the hash"):
        create_model("googlenet_bn", pretrained=True)


def test_pretrained_names_that_do_not_exist():
    with pytest.raises(
        UsageError,
        match="no published weights for inception_v2; models with published weights: googlenet_bn, inception_v3_tv",
    ):
        create_model("inception_v2", pretrained=True)
    with pytest.raises(
        UsageError, match="neither a file nor a published release of googlenet_bn .releases: googlenet_bn.caffe_in1k"
    ):
        create_model("googlenet_bn", pretrained="imagenet21k")
    with pytest.raises(UsageError, match="do not exist"):
        create_model("googlenet_bn", pretrained="missing/weights.pt")
    with pytest.raises(UsageError, match="pretrained must be"):
        create_model("googlenet_bn", pretrained=3)
    assert weights_module.list_releases("inception_v3") == []


# --------------------------------------------------------------------------- aux_logits in files


def test_a_release_folder_without_the_aux_logits_key_loads_with_its_heads(tmp_path):
    """Files written before the heads became opt-in have no ``aux_logits`` key: they were
    written with heads, and load with them."""
    import json

    from inception_v2 import load_model
    from inception_v2.deploy.release import RELEASE_CONFIG, write_release

    model = create_model("googlenet_bn", num_classes=3, aux_logits=True).eval()
    write_release(model, tmp_path / "rel", "model")
    config = json.loads((tmp_path / "rel" / RELEASE_CONFIG).read_text())
    assert config.pop("aux_logits") is True  # recorded
    (tmp_path / "rel" / RELEASE_CONFIG).write_text(json.dumps(config))
    loaded = load_model(tmp_path / "rel")
    assert loaded.aux_logits and list(loaded.aux_heads) == ["4a", "4d"]
    assert list(loaded.state_dict()) == list(model.state_dict())
