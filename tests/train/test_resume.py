"""Resuming decides once (``resolve_resume``): the same data set (fingerprint and classes), never
fewer epochs than were trained; checkpoints without a fingerprint still resume. Device
settings are settled once and global flags restored."""

import json
import logging
import shutil

import pytest
import torch

from inception_v2.cli import main
from inception_v2.data import prepare
from inception_v2.errors import UsageError
from inception_v2.train import fit, load_checkpoint, save_checkpoint
from inception_v2.train.config import DeviceSettings, device_settings
from inception_v2.train.resume import data_fingerprint
from tests.conftest import SAMPLE_VAL_FRACTION
from tests.train.helpers import tiny_config


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A copy of the finished two-epoch run (the session's own stays untouched)."""
    return shutil.copytree(tiny_run, tmp_path / "run")


def test_the_checkpoint_names_its_data(tiny_run, prepared_sample):
    state = load_checkpoint(tiny_run / "last.pt")
    assert state["data_folder"] == str(prepared_sample)
    assert state["data_fingerprint"] == data_fingerprint(prepared_sample)


def test_another_data_set_with_the_same_classes_is_refused(run_copy, prepared_sample, sample_devkit, tmp_path):
    other = tmp_path / "other"
    prepare(other, voc_root=sample_devkit, val_fraction=SAMPLE_VAL_FRACTION + 0.1, workers=1, progress=False)
    assert data_fingerprint(other) != data_fingerprint(prepared_sample)
    before = (run_copy / "last.pt").read_bytes()
    with pytest.raises(UsageError) as e:
        fit(tiny_config(other, run_copy), resume=True, progress=False)
    message = str(e.value)
    assert "different data set" in message and str(other) in message and str(prepared_sample) in message
    assert (run_copy / "last.pt").read_bytes() == before


def test_the_same_data_in_another_folder_resumes(run_copy, prepared_sample, tmp_path):
    moved = shutil.copytree(prepared_sample, tmp_path / "moved")
    assert data_fingerprint(moved) == data_fingerprint(prepared_sample)
    torch.backends.cudnn.benchmark = True  # a caller's setting survives the run
    try:
        summary = fit(tiny_config(moved, run_copy), resume=True, progress=False)
        assert torch.backends.cudnn.benchmark is True
    finally:
        torch.backends.cudnn.benchmark = False
    assert summary["epochs"] == 2


def test_a_checkpoint_without_a_fingerprint_resumes_with_a_note(run_copy, prepared_sample, caplog):
    state = load_checkpoint(run_copy / "last.pt")
    for key in ("data_fingerprint", "data_folder", "format", "version"):
        state.pop(key)
    save_checkpoint(run_copy / "last.pt", state)
    with caplog.at_level(logging.INFO, logger="inception_v2"):
        summary = fit(tiny_config(prepared_sample, run_copy), resume=True, progress=False)
    assert summary["epochs"] == 2
    assert any("predates data fingerprints" in m for m in caplog.messages)


def test_resume_with_fewer_epochs_than_trained_is_refused(run_copy, prepared_sample, capsys):
    config_before = (run_copy / "config.json").read_text()
    code = main(
        ["train", "--model", "googlenet_bn", "--data", str(prepared_sample), "--out", str(run_copy)]
        + ["--resume", "--epochs", "1", "--no-progress"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--epochs 1" in err and "trained 2 epochs" in err
    assert (run_copy / "config.json").read_text() == config_before
    assert json.loads(config_before)["epochs"] == 2


def test_device_settings_are_settled_once_and_flags_restored(monkeypatch):
    cfg = tiny_config("d", "o", workers=None)
    monkeypatch.setattr("inception_v2.train.config.usable_cpus", lambda: 16)
    cpu = device_settings(cfg, torch.device("cpu"), local_world_size=2)
    assert (cpu.amp_dtype, cpu.channels_last, cpu.workers, cpu.cudnn_benchmark) == (None, False, 7, False)
    cuda = device_settings(tiny_config("d", "o", amp_dtype="fp16", workers=3), torch.device("cuda"))
    assert (cuda.amp_dtype, cuda.channels_last, cuda.workers, cuda.cudnn_benchmark) == (torch.float16, True, 3, True)

    assert torch.backends.cudnn.benchmark is False
    with pytest.raises(RuntimeError):
        with DeviceSettings(torch.device("cpu"), cudnn_benchmark=True).applied():
            assert torch.backends.cudnn.benchmark is True
            raise RuntimeError("the run failed")
    assert torch.backends.cudnn.benchmark is False
