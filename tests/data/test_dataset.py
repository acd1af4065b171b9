"""VOCCrops, the train/eval transforms and make_loader."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from inception_v2.data import VOC_CLASSES, VOCCrops, eval_transform, make_loader, normalize, train_transform
from inception_v2.errors import UsageError
from inception_v2.models.registry import DataConfig

INCEPTION = DataConfig(input_size=299, resize_size=384, min_input_size=75)  # the source's pipeline
GOOGLENET = DataConfig(input_size=224, resize_size=256, min_input_size=32)
SMALL = DataConfig(input_size=32, resize_size=40, min_input_size=32)  # for fast loader tests


def test_lengths_items_and_classes(prepared_sample):
    counts = json.loads((prepared_sample / "counts.json").read_text())
    for split in ("train", "val", "test"):
        ds = VOCCrops(prepared_sample, split)
        assert len(ds) == counts[split]["total"] > 0
        assert ds.classes == list(VOC_CLASSES)
        present = [VOC_CLASSES.index(c) for c, n in counts[split]["per_class"].items() if n]
        assert sorted(set(ds.targets)) == present
        image, label = ds[len(ds) - 1]
        assert image.dtype == torch.uint8 and image.ndim == 3 and image.shape[0] == 3
        _, height, width, stored_label, nbytes = ds.index[len(ds) - 1]
        assert nbytes == height * width * 3  # the raw store
        assert tuple(image.shape[1:]) == (height, width) and label == stored_label
        assert isinstance(label, int)
    with pytest.raises(IndexError):
        VOCCrops(prepared_sample, "test")[10**6]


def test_bad_split_or_folder(prepared_sample, tmp_path):
    with pytest.raises(UsageError, match="unknown split 'trainval'"):
        VOCCrops(prepared_sample, "trainval")
    with pytest.raises(UsageError, match="no counts.json"):
        VOCCrops(tmp_path, "train")


def test_pickles_without_the_pixels(prepared_sample):
    ds = VOCCrops(prepared_sample, "train")
    first = ds[0][0]
    assert ds._data is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._data is None and len(pickle.dumps(ds)) < 10_000 + ds.index.nbytes
    assert torch.equal(clone[0][0], first)


@pytest.mark.parametrize("cfg", [INCEPTION, GOOGLENET], ids=["inception_v2", "googlenet_bn"])
def test_transforms_give_the_model_input(prepared_sample, cfg):
    ds = VOCCrops(prepared_sample, "test", transform=eval_transform(cfg))
    image, _ = ds[0]
    assert image.shape == (3, cfg.input_size, cfg.input_size) and image.dtype == torch.float32
    assert -1.0 <= image.min() and image.max() <= 1.0  # normalize(0.5, 0.5) of [0, 1]
    assert torch.equal(ds[0][0], image)  # evaluation is deterministic
    train = train_transform(cfg)
    crop = ds.crop(0)
    outs = [train(crop) for _ in range(8)]
    assert all(o.shape == (3, cfg.input_size, cfg.input_size) for o in outs)
    assert any(not torch.equal(outs[0], o) for o in outs[1:])  # random crop / flip


def test_eval_transform_is_resize_then_centre_crop():
    # a 1-pixel-wide white column in the middle of a 10x20 (HxW) image lands in the middle
    image = torch.zeros(3, 10, 20, dtype=torch.uint8)
    image[:, :, 10] = 255
    out = eval_transform(DataConfig(input_size=8, resize_size=10, min_input_size=1))(image)
    assert out.shape == (3, 8, 8)
    assert out[0].mean(0).argmax().item() in (3, 4)  # the column, centred after the 5-pixel crop offset
    assert out.min().item() == -1.0


def test_uint8_pipelines_plus_batch_normalize_give_the_same_values(prepared_sample):
    ds = VOCCrops(prepared_sample, "val")
    crops = [ds.crop(i) for i in range(3)]
    uint8 = eval_transform(GOOGLENET, normalize=False)
    batch = torch.stack([uint8(c) for c in crops])
    assert batch.dtype == torch.uint8 and batch.shape == (3, 3, 224, 224)
    expected = torch.stack([eval_transform(GOOGLENET)(c) for c in crops])
    assert torch.equal(normalize(batch, GOOGLENET), expected)  # bit for bit
    torch.manual_seed(0)
    a = train_transform(SMALL)(crops[0])
    torch.manual_seed(0)
    b = normalize(train_transform(SMALL, normalize=False)(crops[0]), SMALL)
    assert torch.equal(a, b)
    with pytest.raises(TypeError, match="uint8"):
        normalize(expected, GOOGLENET)


def test_tiny_crops_survive_the_transforms():
    one_pixel = torch.full((3, 1, 1), 200, dtype=torch.uint8)
    assert train_transform(INCEPTION)(one_pixel).shape == (3, 299, 299)
    assert eval_transform(GOOGLENET)(torch.full((3, 1, 40), 9, dtype=torch.uint8)).shape == (3, 224, 224)


def test_registered_models_data_configs_follow_spec():
    models = pytest.importorskip("inception_v2.models")
    for name, sizes in (("inception_v2", (299, 384)), ("googlenet_bn", (224, 256))):
        cfg = models.get_data_config(name)
        assert (cfg.input_size, cfg.resize_size) == sizes, name


@pytest.mark.parametrize("workers", [0, 1])
def test_make_loader_batches(prepared_sample, workers):
    ds = VOCCrops(prepared_sample, "train", transform=train_transform(SMALL))
    loader = make_loader(ds, batch_size=16, shuffle=True, workers=workers, drop_last=True, seed=1)
    assert loader.persistent_workers == (workers > 0) and loader.pin_memory == torch.cuda.is_available()
    images, labels = next(iter(loader))
    assert images.shape == (16, 3, 32, 32) and labels.shape == (16,) and labels.dtype == torch.int64
    assert len(loader) == len(ds) // 16


def test_make_loader_seed_fixes_the_order(prepared_sample):
    ds = VOCCrops(prepared_sample, "val")
    orders = []
    for _ in range(2):
        loader = make_loader(ds, batch_size=4, shuffle=True, workers=0, seed=7)
        loader.collate_fn = lambda batch: [label for _, label in batch]
        orders.append([label for batch in loader for label in batch])
    assert orders[0] == orders[1] and sorted(orders[0]) == sorted(ds.targets)
    with pytest.raises(UsageError):
        make_loader(ds, batch_size=4, shuffle=True, workers=0, sampler=torch.utils.data.SequentialSampler(ds))


def test_the_resize_uses_the_data_configs_interpolation():
    from dataclasses import replace

    from torchvision.transforms import v2

    cfg = DataConfig(input_size=32, resize_size=40, min_input_size=32)
    image = torch.randint(0, 256, (3, 50, 60), dtype=torch.uint8)
    bilinear = eval_transform(cfg, normalize=False)(image)
    nearest = eval_transform(replace(cfg, interpolation="nearest"), normalize=False)(image)
    assert not torch.equal(bilinear, nearest)
    expected = v2.CenterCrop(32)(v2.Resize(40, interpolation=v2.InterpolationMode.NEAREST)(image))
    assert torch.equal(nearest, expected)
