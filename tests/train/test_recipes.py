"""The paper recipe learns: cheaply on one batch in the default run, and on the built-in sample
with the command of docs/training.md in the slow run."""

import json

import pytest
import torch

from inception_v2.cli import main
from inception_v2.models import create_model
from inception_v2.train import EpochLog, InceptionLoss, StepOptions, TrainStep, resolve_config, train_one_epoch
from inception_v2.train.config import DeviceSettings
from inception_v2.train.optim import build_optimizer


def _fit_one_batch(momentum, steps=30):
    torch.manual_seed(0)
    model = create_model("googlenet_bn", num_classes=4)
    cfg = resolve_config("paper", model="googlenet_bn", data="d", out="o", batch_size=8, momentum=momentum)
    optimizer = build_optimizer(model, cfg)
    g = torch.Generator().manual_seed(0)
    batch = [(torch.randn(8, 3, 32, 32, generator=g), torch.tensor([0, 1, 2, 3] * 2))]
    loss_fn = InceptionLoss(cfg.label_smoothing, cfg.aux_weight)
    losses = []
    options = StepOptions(grad_clip_norm=cfg.grad_clip_norm)
    step = TrainStep(model, optimizer, loss_fn, settings=DeviceSettings(torch.device("cpu")), options=options)
    for _ in range(steps):
        r = train_one_epoch(step, batch, EpochLog(progress=False))
        losses.append(r["loss"])
    return losses


def test_paper_recipe_fits_a_batch():
    """30 steps of the paper's optimizer (RMSProp with momentum 0.9, weight decay, clipping,
    smoothing, lr 0.045 x 8/32) bring the loss of one batch below 65% of its start; without
    the momentum it stays above 70% (measured: 58% and 72%)."""
    losses = _fit_one_batch(momentum=0.9)
    assert losses[-1] < 0.65 * losses[0], losses


@pytest.mark.slow
def test_paper_recipe_learns_on_the_built_in_sample(tmp_path, capsys):
    """The command of docs/training.md (*The paper recipe*): Inception-v3 with the paper recipe,
    4 epochs at 75 px, batch 32, on the built-in sample. Measured: test top-1 61% at best val
    (chance: 5%); without momentum and weight decay it stayed at 4-14%. About 3 minutes on two
    CPU cores."""
    assert main(["make-sample", str(tmp_path / "sample")]) == 0
    code = main(
        [
            "train",
            "--model",
            "inception_v3",
            "--recipe",
            "paper",
            "--epochs",
            "4",
            "--image-size",
            "75",
            "--batch-size",
            "32",
            "--data",
            str(tmp_path / "sample"),
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    assert code == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test_acc1_at_best_val"] >= 0.3, summary
