"""The batched on-device training transform against the per-image CPU transform, on the CPU
device, with the same random draws; the packing workers; both stores."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from inception_v2.data import PreparedDataset
from inception_v2.models import DataConfig
from inception_v2.train.device_augment import (
    CropParams,
    PackedSource,
    augment_batch,
    augment_one,
    collate,
    draw_params,
    levels,
    resampling_difference,
    resized_size,
)

CFG = DataConfig(input_size=24, resize_size=31, min_input_size=7)

# The resampling difference between the two paths: torchvision's uint8 antialiased resize on
# the CPU (fixed-point weights) against float interpolate rounded to uint8. Measured on random
# images and on the sample's crops: at most 1 level of 255, on 11-15% of the values (a value
# halfway between two levels rounds either way).
MAX_LEVELS = 1
MAX_SHARE = 0.25


@pytest.fixture(scope="module")
def prepared_sample_jpeg(sample_devkit, tmp_path_factory):
    """The session's sample prepared into the jpeg store."""
    from inception_v2.data import prepare

    out = tmp_path_factory.mktemp("prepared-jpeg") / "sample"
    prepare(out, voc_root=sample_devkit, val_fraction=0.2, workers=1, store="jpeg", progress=False, log=lambda _: None)
    return out


def _images(sizes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, h, w), generator=gen, dtype=torch.uint8) for h, w in sizes]


def _pack(images, params):
    samples = []
    for image, p in zip(images, params):
        payload = image.permute(1, 2, 0).contiguous().view(-1)  # raw store: H x W x 3 bytes
        meta = [0, payload.numel(), image.shape[1], image.shape[2], 0, p.top, p.left, int(p.flip)]
        samples.append((payload, meta, 0))
    return collate(samples)[0]


def test_resized_size_follows_torchvision_resize():
    for h, w in [(40, 55), (55, 40), (31, 31), (17, 200)]:
        image = torch.zeros(3, h, w, dtype=torch.uint8)
        from torchvision.transforms import v2

        assert tuple(v2.Resize(CFG.resize_size, antialias=True)(image).shape[1:]) == resized_size(h, w, 31)


def test_batched_device_path_gives_the_per_image_crops():
    sizes = [(40, 55), (40, 55), (55, 40), (31, 31), (90, 33), (33, 90), (40, 55), (128, 77)]
    images = _images(sizes)
    gen = torch.Generator().manual_seed(5)
    params = [draw_params(h, w, CFG, gen) for h, w in sizes]
    assert {p.flip for p in params} == {True, False}
    expected = torch.stack([augment_one(im, p, CFG) for im, p in zip(images, params)])
    got = levels(augment_batch(_pack(images, params), CFG, torch.device("cpu")), CFG)
    worst, share = resampling_difference(got, expected)
    print(f"largest difference {worst} levels, {share:.2%} of values differ")
    assert worst <= MAX_LEVELS and share <= MAX_SHARE


def test_a_wrong_draw_is_caught():
    """The comparison is sharp enough to see a crop one pixel off."""
    sizes = [(40, 55)] * 4
    images = _images(sizes, seed=1)
    params = [draw_params(h, w, CFG, torch.Generator().manual_seed(i)) for i, (h, w) in enumerate(sizes)]
    expected = torch.stack([augment_one(im, p, CFG) for im, p in zip(images, params)])
    shifted = [p._replace(left=p.left + 1 if p.left == 0 else p.left - 1) for p in params]
    got = levels(augment_batch(_pack(images, shifted), CFG, torch.device("cpu")), CFG)
    assert resampling_difference(got, expected)[1] > 0.5


def test_normalization_and_layout():
    images = _images([(40, 55)] * 2)
    params = [draw_params(40, 55, CFG, torch.Generator().manual_seed(0))] * 2
    x = augment_batch(_pack(images, params), CFG, torch.device("cpu"), channels_last=True)
    assert x.dtype == torch.float32 and x.shape == (2, 3, 24, 24)
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert -1.01 <= float(x.min()) and float(x.max()) <= 1.01  # mean = std = 0.5 by default


@pytest.mark.parametrize("store", ["raw", "jpeg"])
def test_packed_loader_over_a_prepared_store(store, request):
    """Workers hand packed bytes and draws; the device path decodes (JPEG in one call) and gives
    the same crops as the per-image path on the decoded images with those draws."""
    folder = request.getfixturevalue("prepared_sample" if store == "raw" else "prepared_sample_jpeg")
    base = PreparedDataset(folder, "train")
    torch.manual_seed(3)
    loader = DataLoader(PackedSource(base, CFG), batch_size=6, shuffle=False, collate_fn=collate)
    packed, labels = next(iter(loader))
    assert labels.tolist() == base.targets[:6]
    assert packed.meta[:, 4].tolist() == [int(store == "jpeg")] * 6
    x = augment_batch(packed, CFG, torch.device("cpu"))
    meta = packed.meta.tolist()
    expected = torch.stack(
        [augment_one(base.image(i), CropParams(m[5], m[6], bool(m[7])), CFG) for i, m in enumerate(meta)]
    )
    worst, share = resampling_difference(levels(x, CFG), expected)
    assert worst <= MAX_LEVELS and share <= MAX_SHARE


def test_training_with_device_augment_and_the_speed_options(prepared_sample, tmp_path):
    """A run with the whole training transform on the device (the CPU here), a fused
    optimizer and another pool formulation trains and records the options."""
    from inception_v2.train import fit, load_checkpoint
    from tests.train.helpers import tiny_config

    out = tmp_path / "run"
    cfg = tiny_config(
        prepared_sample, out, epochs=1, device_augment=True, fused_optimizer=True, pool_impl="project_first+contiguous"
    )
    fit(cfg, progress=False)
    state = load_checkpoint(out / "last.pt")
    assert state["config"]["device_augment"] is True and state["config"]["pool_impl"] == "project_first+contiguous"
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"device_augment": True, "random_erasing": 0.5}, "device_augment"),
        ({"device_augment": True, "auto_augment": "randaugment"}, "device_augment"),
        ({"fused_optimizer": True, "optimizer": "rmsprop-tf"}, "fused_optimizer"),
        ({"pool_impl": "fast"}, "pool_impl"),
        ({"compile_mode": "turbo"}, "compile_mode"),
    ],
)
def test_speed_options_are_checked(overrides, message, tmp_path):
    from inception_v2.errors import UsageError
    from inception_v2.train.config import TrainConfig

    with pytest.raises(UsageError, match=message):
        TrainConfig(model="googlenet_bn", data=str(tmp_path), out=str(tmp_path / "o"), **overrides)


def test_fused_optimizer_option_builds_fused_kernels():
    from torch import nn

    from inception_v2.train.config import TrainConfig
    from inception_v2.train.optim import build_optimizer

    for optimizer in ("adam", "adamw", "sgd"):
        cfg = TrainConfig(model="googlenet_bn", data="d", out="o", optimizer=optimizer, fused_optimizer=True)
        assert build_optimizer(nn.Linear(3, 2), cfg).defaults["fused"] is True


def test_compile_mode_reaches_torch_compile(prepared_sample, tmp_path, monkeypatch):
    from inception_v2.train import fit
    from tests.train.helpers import tiny_config

    seen = []

    def spy(module, **kwargs):
        seen.append(kwargs)
        return module  # not compiled: only the arguments matter here

    monkeypatch.setattr(torch, "compile", spy)
    mode = "max-autotune-no-cudagraphs"
    cfg = tiny_config(prepared_sample, tmp_path / "run", epochs=1, compile=True, compile_mode=mode)
    fit(cfg, progress=False)
    assert seen == [{"backend": "inductor", "mode": mode}]


def test_pool_impl_auto_is_native_on_the_cpu_and_avoids_the_broken_kernel_on_cuda():
    """``--pool-impl auto``: the CPU keeps PyTorch's kernels (the recorded runs bit for bit);
    CUDA gets a formulation that never runs the channels-last ``avg_pool2d`` backward."""
    from inception_v2.models.pooling import DEFAULT_POOL_IMPL
    from inception_v2.train.config import device_settings, resolve_config

    cfg = resolve_config(model="googlenet_bn", data="d", out="o", workers=0)
    assert cfg.pool_impl == "auto"
    assert device_settings(cfg, torch.device("cpu")).pool_impl == "native"
    assert device_settings(cfg, torch.device("cuda")).pool_impl == DEFAULT_POOL_IMPL != "native"
    chosen = resolve_config(model="googlenet_bn", data="d", out="o", workers=0, pool_impl="contiguous")
    assert device_settings(chosen, torch.device("cpu")).pool_impl == "contiguous"
