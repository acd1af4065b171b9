"""CUDA paths: bf16 autocast, channels_last, torch.compile, evaluation through the deployment
path. Run with ``pytest -m gpu`` on a machine with a GPU."""

import pytest
import torch

from inception_v2.evaluate import evaluate_checkpoint
from inception_v2.train import fit, load_checkpoint
from tests.train.helpers import tiny_config

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


# The compiled variant takes minutes (an inductor compile of the training step): slow-marked, so
# benchmarks/gpu_check.sh, which trains with --compile at 299 itself, leaves it out.
@pytest.mark.parametrize("compile", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_cuda_bf16_channels_last_run(prepared_sample, tmp_path, compile):
    out = tmp_path / "cuda"
    cfg = tiny_config(prepared_sample, out, device="cuda", epochs=2, compile=compile, recipe="paper")
    summary = fit(cfg, progress=False)
    state = load_checkpoint(out / "last.pt")
    assert state["epoch"] == 2 and state["config"]["device"] == "cuda"
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert 0.0 <= summary["test_acc1_at_best_val"] <= 1.0
    r = evaluate_checkpoint(
        out / "best.pt", prepared_sample, workers=0, device="cuda", confusion_png=tmp_path / "cm.png", progress=False
    )
    assert 0.0 <= r["acc1"] <= r["acc5"] <= 1.0


def test_cuda_resume_continues(prepared_sample, tmp_path):
    out = tmp_path / "cuda"
    fit(tiny_config(prepared_sample, out, device="cuda", epochs=1), progress=False)
    fit(tiny_config(prepared_sample, out, device="cuda", epochs=2), resume=True, progress=False)
    assert load_checkpoint(out / "last.pt")["epoch"] == 2


def test_cuda_fp16_grad_scaler_accumulation_mixup(prepared_sample, tmp_path):
    """fp16 autocast with the gradient scaler, two batches per step, MixUp/CutMix soft targets
    and a warm-up + cosine schedule, on CUDA."""
    out = tmp_path / "fp16"
    cfg = tiny_config(
        prepared_sample,
        out,
        device="cuda",
        epochs=2,
        amp_dtype="fp16",
        grad_accum_steps=2,
        mixup=0.2,
        cutmix=1.0,
        lr_schedule="cosine",
        warmup_epochs=1,
        optimizer="adamw",
        weight_decay=0.05,
        grad_clip_norm=1.0,
    )
    fit(cfg, progress=False)
    state = load_checkpoint(out / "last.pt")
    assert state["scaler"]["scale"] > 0  # an enabled scaler's state
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_cuda_fine_tuning_frozen_features(tiny_run, prepared_sample, tmp_path):
    out = tmp_path / "ft"
    cfg = tiny_config(
        prepared_sample,
        out,
        device="cuda",
        epochs=1,
        pretrained=str(tiny_run / "best.pt"),
        freeze_features=True,
        head_lr=0.01,
    )
    fit(cfg, progress=False)
    before, after = load_checkpoint(tiny_run / "best.pt")["model"], load_checkpoint(out / "last.pt")["model"]
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("features."))
    assert not torch.equal(before["fc.weight"], after["fc.weight"])
