"""Files written by earlier versions of the package still load: ``tests/fixtures/old_formats/``
holds a version-1 and a version-2 checkpoint, a release folder and a prepared folder written
by the code before the on-disk formats moved into :mod:`inception_v2.formats`
(``tests/fixtures/make_old_formats.py`` says how). Their weights are patterns (each tensor one
value), so the tests can tell exactly which weights were read."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import torch

import inception_v2
from inception_v2.data import PreparedDataset
from inception_v2.formats import (
    CHECKPOINT_VERSION,
    Checkpoint,
    DataConfig,
    read_checkpoint,
    read_pretrained,
    read_release_folder,
    write_checkpoint,
)
from inception_v2.train.config import TrainConfig

OLD = Path(__file__).resolve().parents[1] / "fixtures" / "old_formats"
CLASSES = ["cat", "dog"]


def unzip(name: str, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(OLD / name, "rb") as f, open(out, "wb") as g:
        shutil.copyfileobj(f, g)
    return out


def is_pattern(state, offset: float) -> bool:
    """Whether ``state`` is the fixtures' pattern: the i-th tensor of the model's state dict
    (floating) all ``offset + i / 1000``."""
    with torch.device("meta"):
        order = list(inception_v2.create_model("googlenet_bn", num_classes=2, aux_logits=True).state_dict())
    assert sorted(state) == sorted(order)
    return all(
        torch.equal(state[k], torch.full_like(state[k], offset + i / 1000))
        for i, k in enumerate(order)
        if state[k].is_floating_point()
    )


@pytest.fixture(scope="module")
def old(tmp_path_factory) -> Path:
    """The fixtures, unpacked: ``checkpoint-v1.pt``, ``checkpoint-v2.pt``, ``release/``."""
    out = tmp_path_factory.mktemp("old")
    unzip("checkpoint-v1.pt.gz", out / "checkpoint-v1.pt")
    unzip("checkpoint-v2.pt.gz", out / "checkpoint-v2.pt")
    shutil.copy(OLD / "release" / "config.json", (out / "release").mkdir() or out / "release" / "config.json")
    unzip("release/model.safetensors.gz", out / "release" / "model.safetensors")
    return out


def test_a_version_2_checkpoint_reads_into_its_dataclass(old):
    ckpt = read_checkpoint(old / "checkpoint-v2.pt")
    assert isinstance(ckpt, Checkpoint)
    assert (ckpt.model_name, ckpt.num_classes, ckpt.classes, ckpt.epoch) == ("googlenet_bn", 2, CLASSES, 2)
    assert ckpt.data_config == DataConfig(32, 37, 7)
    assert ckpt.selected == "ema" and ckpt.ema_updates == 6
    assert is_pattern(ckpt.model, 0.25) and is_pattern(ckpt.model_ema, 0.5)
    assert ckpt.best == {"val_acc1": 0.7, "epoch": 2} and len(ckpt.history) == 2
    assert set(ckpt.rng) >= {"python", "numpy", "torch"} and ckpt.optimizer["state"]
    assert TrainConfig.from_dict(ckpt.config).ema_decay == 0.999


def test_a_version_1_checkpoint_is_upgraded(old):
    ckpt = read_checkpoint(old / "checkpoint-v1.pt")
    assert ckpt.selected == "ema" and ckpt.ema_updates == 4
    assert set(ckpt.model_ema) == set(ckpt.model)
    assert is_pattern(ckpt.model_ema, 0.75) and is_pattern(ckpt.model, 0.25)
    assert ckpt.in_chans == 3 and ckpt.arch_options == {}


@pytest.mark.parametrize("name, ema", [("checkpoint-v2.pt", 0.5), ("checkpoint-v1.pt", 0.75)])
def test_old_checkpoints_load_as_models(old, name, ema):
    model = inception_v2.load_model(old / name)
    assert not model.training and model.classes == CLASSES and model.data_config.input_size == 32
    assert is_pattern(model.state_dict(), ema)  # the EMA, which the run selected on
    assert is_pattern(inception_v2.load_model(old / name, weights="model").state_dict(), 0.25)


def test_an_old_checkpoint_survives_a_round_trip(old, tmp_path):
    ckpt = read_checkpoint(old / "checkpoint-v1.pt")
    write_checkpoint(tmp_path / "again.pt", ckpt)
    again = read_checkpoint(tmp_path / "again.pt")
    assert torch.load(tmp_path / "again.pt", weights_only=True)["version"] == CHECKPOINT_VERSION
    assert again.to_dict().keys() == ckpt.to_dict().keys()
    assert is_pattern(again.model_ema, 0.75) and again.history == ckpt.history and again.config == ckpt.config


def test_an_old_release_folder_loads(old):
    config, weights = read_release_folder(old / "release")
    assert (config.model_name, config.classes, config.weights) == ("googlenet_bn", CLASSES, "ema")
    assert config.arch_options == {"bn_eps": 0.001, "count_include_pad": False, "input_space": None}
    assert is_pattern(weights, 0.5)
    model = inception_v2.load_model(old / "release")
    assert model.classes == CLASSES and model.data_config == DataConfig(32, 37, 7)
    assert is_pattern(model.state_dict(), 0.5)


@pytest.mark.parametrize("source", ["release", "checkpoint-v2.pt", "checkpoint-v1.pt"])
def test_old_files_are_pretrained_weights(old, source):
    weights, meta = read_pretrained(old / source)
    assert meta["model_name"] == "googlenet_bn"
    model = inception_v2.create_model("googlenet_bn", num_classes=2, aux_logits=True, pretrained=old / source)
    assert is_pattern(model.state_dict(), 0.75 if source.endswith("v1.pt") else 0.5)


def test_an_old_prepared_folder_loads(tmp_path):
    folder = tmp_path / "prepared"
    shutil.copytree(OLD / "prepared", folder)
    for split in ("train", "val", "test"):
        data = PreparedDataset(folder, split)
        assert data.classes == CLASSES and len(data) == 2 and sorted(data.targets) == [0, 1]
        image, label = data[0]
        assert image.shape[0] == 3 and label in (0, 1)
