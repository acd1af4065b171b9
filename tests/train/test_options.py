"""Training options end to end (tiny runs): fine-tuning, TensorBoard, augmentation and the
schedule wired into ``fit``, and resuming a run made before the options existed."""

import json
import sys

import pytest
import torch
from torchvision.transforms import v2

from inception_v2.errors import UsageError
from inception_v2.models import create_model
from inception_v2.train import TrainHooks, fit, load_checkpoint
from inception_v2.train.config import TrainConfig
from inception_v2.train.optim import LRSchedule
from tests.train.helpers import tiny_config


def test_fine_tuning_from_other_weights_with_frozen_features(prepared_sample, tmp_path):
    torch.manual_seed(1)
    source = create_model("googlenet_bn", num_classes=7, aux_logits=True)  # another label set: a new classifier
    torch.save(source.state_dict(), tmp_path / "pretrained.pt")
    out = tmp_path / "ft"
    cfg = tiny_config(
        prepared_sample, out, epochs=1, pretrained=str(tmp_path / "pretrained.pt"), freeze_features=True, head_lr=0.05
    )
    fit(cfg, progress=False)
    state = load_checkpoint(out / "last.pt")
    weights, theirs = state["model"], source.state_dict()
    assert weights["fc.weight"].shape == (20, 1024)
    for k, v in theirs.items():
        if k.startswith("features."):
            assert torch.equal(weights[k], v), k  # frozen: the pretrained weights and statistics
    assert not torch.equal(weights["aux_heads.4a.fc1.weight"], theirs["aux_heads.4a.fc1.weight"])  # trained
    groups = state["optimizer"]["param_groups"]
    assert [g["name"] for g in groups] == ["head"] and groups[0]["initial_lr"] == 0.05
    # resuming does not read the pretrained file again
    (tmp_path / "pretrained.pt").unlink()
    fit(
        tiny_config(
            prepared_sample,
            out,
            epochs=2,
            pretrained=str(tmp_path / "pretrained.pt"),
            freeze_features=True,
            head_lr=0.05,
        ),
        resume=True,
        progress=False,
    )
    assert load_checkpoint(out / "last.pt")["epoch"] == 2


def test_tensorboard_with_warmup_cosine_accumulation_and_augmentation(prepared_sample, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    built = {}
    out = tmp_path / "tb"
    cfg = tiny_config(
        prepared_sample,
        out,
        epochs=2,
        tensorboard=True,
        log_every=1,
        lr=0.01,
        lr_schedule="cosine",
        warmup_epochs=1,
        min_lr=1e-4,
        optimizer="adamw",
        weight_decay=0.05,
        grad_accum_steps=2,
        mixup=0.2,
        cutmix=1.0,
        auto_augment="trivialaugment",
        random_erasing=0.5,
        label_smoothing=0.1,
    )
    fit(cfg, progress=False, hooks=TrainHooks(on_setup=lambda run: built.update(data=run.data)))

    steps = len(built["data"].train_loader) // 2  # per epoch, two batches per step
    kinds = [type(t) for t in built["data"].train.transform.transforms]
    assert v2.TrivialAugmentWide in kinds and v2.RandomErasing in kinds

    events = EventAccumulator(str(out))
    events.Reload()
    lr = [(e.step, e.value) for e in events.Scalars("train/lr")]
    schedule = LRSchedule(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01), cfg, steps)
    assert [s for s, _ in lr] == list(range(1, 2 * steps + 1))
    assert [v for _, v in lr] == pytest.approx([schedule.lr_at(s - 1, 0.01) for s, _ in lr], rel=1e-6)
    assert lr[steps - 1][1] == pytest.approx(0.01, rel=1e-6) and lr[-1][1] == pytest.approx(1e-4, rel=1e-6)
    assert len(events.Scalars("train/loss")) == 2 * steps
    val = events.Scalars("epoch/val_acc1")
    history = load_checkpoint(out / "last.pt")["history"]
    assert [(e.step, e.value) for e in val] == [
        (steps, pytest.approx(history[0]["val_acc1"])),
        (2 * steps, pytest.approx(history[1]["val_acc1"])),
    ]
    groups = {g["name"]: g["weight_decay"] for g in load_checkpoint(out / "last.pt")["optimizer"]["param_groups"]}
    assert groups == {"decay": 0.05, "no_decay": 0.0}


def test_tensorboard_missing_is_a_clear_error(prepared_sample, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(UsageError, match=r"pip install 'inception-v2\[tensorboard\]'"):
        fit(tiny_config(prepared_sample, tmp_path / "r", epochs=1, tensorboard=True), progress=False)


def test_a_run_from_before_the_options_resumes(tiny_run, prepared_sample, tmp_path):
    """A run directory written by the previous version (StepLR state, old config spellings,
    none of the new keys) continues with --resume."""
    state = load_checkpoint(tiny_run / "last.pt")
    new_keys = set(TrainConfig.__dataclass_fields__) - {
        "model",
        "data",
        "out",
        "recipe",
        "optimizer",
        "lr",
        "lr_step_epochs",
        "lr_decay",
        "epochs",
        "batch_size",
        "aux_weight",
        "label_smoothing",
        "grad_clip_norm",
        "ema_decay",
        "dropout",
        "image_size",
        "resize_size",
        "val_fraction",
        "cache_dir",
        "workers",
        "device",
        "amp",
        "amp_dtype",
        "channels_last",
        "compile",
        "sync_bn",
        "seed",
    }
    old_config = {k: v for k, v in state["config"].items() if k not in new_keys}
    old_config.update(amp_dtype="bfloat16", out=str(tmp_path / "old"))
    state["config"] = old_config
    state["scheduler"] = {"step_size": 8, "gamma": 0.96, "base_lrs": [1e-3], "last_epoch": 2, "_last_lr": [1e-3]}
    (tmp_path / "old").mkdir()
    torch.save(state, tmp_path / "old" / "last.pt")
    (tmp_path / "old" / "config.json").write_text(json.dumps(old_config))
    cfg = TrainConfig.from_dict({**old_config, "epochs": 3})
    summary = fit(cfg, resume=True, progress=False)
    assert summary["epochs"] == 3
    assert load_checkpoint(tmp_path / "old" / "last.pt")["history"][2]["lr"] == 1e-3
