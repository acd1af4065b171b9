import csv
import json

import pytest
import torch

import inception_v2
from inception_v2.data import VOCCrops, eval_transform, make_loader
from inception_v2.errors import UsageError
from inception_v2.models import create_model
from inception_v2.models.pooling import set_pool_impl
from inception_v2.train import EvalResult, InceptionLoss, NonFiniteLossError, TrainHooks, evaluate, fit, load_checkpoint
from inception_v2.train.metrics import METRICS_COLUMNS
from tests.train.helpers import tiny_config


def test_run_directory_contents(tiny_run):
    assert {p.name for p in tiny_run.iterdir()} >= {"config.json", "metrics.csv", "last.pt", "best.pt", "summary.json"}
    with open(tiny_run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(METRICS_COLUMNS) and [r["epoch"] for r in rows] == ["1", "2"]
    for r in rows:
        for k in ("train_acc1", "val_acc1", "val_acc5", "test_acc1", "test_acc5"):
            assert 0.0 <= float(r[k]) <= 1.0
        assert float(r["val_acc5"]) >= float(r["val_acc1"])
    summary = json.loads((tiny_run / "summary.json").read_text())
    for k in (
        "best_val_acc1",
        "best_epoch",
        "test_acc1_at_best_val",
        "final_test_acc1",
        "best_test_acc1",
        "params",
        "macs",
        "train_time_s",
    ):
        assert k in summary
    assert summary["params"] > 10_000_000 and summary["macs"] > 0
    assert summary["final_test_acc1"] == pytest.approx(float(rows[-1]["test_acc1"]), abs=1e-6)
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["model"] == "googlenet_bn" and config["image_size"] == 32
    assert load_checkpoint(tiny_run / "last.pt")["config"] == config


def test_best_checkpoint_is_selected_on_val_never_on_test(prepared_sample, tmp_path):
    # val peaks at epoch 2, test at epoch 3: best.pt and the honest figures follow val.
    scripted = {"val": iter([0.5, 0.7, 0.6]), "test": iter([0.9, 0.4, 0.95])}

    def fake_evaluate(model, loader, split):
        acc = next(scripted[split])
        return EvalResult(loss=1 - acc, acc1=acc, acc5=1.0, images=10, confusion=torch.zeros(20, 20))

    hooks = TrainHooks(evaluate=fake_evaluate)
    summary = fit(tiny_config(prepared_sample, tmp_path / "run", epochs=3), progress=False, hooks=hooks)
    assert load_checkpoint(tmp_path / "run" / "best.pt")["epoch"] == 2
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 3
    assert summary["best_epoch"] == 2 and summary["best_val_acc1"] == 0.7
    assert summary["test_acc1_at_best_val"] == 0.4
    assert summary["final_test_acc1"] == 0.95 and summary["best_test_acc1"] == 0.95


def _weights(path):
    return load_checkpoint(path)["model"]


@pytest.mark.parametrize("workers", [0, 1])
def test_resume_after_a_kill_ends_with_the_same_weights(prepared_sample, tmp_path, workers):
    fit(tiny_config(prepared_sample, tmp_path / "straight", epochs=3, workers=workers), progress=False)

    steps_per_epoch = len(VOCCrops(prepared_sample, "train")) // 8

    def killed_in_epoch_3(step):
        if step == 2 * steps_per_epoch + 1:
            raise KeyboardInterrupt

    cfg = tiny_config(prepared_sample, tmp_path / "resumed", epochs=3, workers=workers)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, progress=False, hooks=TrainHooks(on_step=killed_in_epoch_3))
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["epoch"] == 2
    fit(cfg, resume=True, progress=False)

    a, b = _weights(tmp_path / "straight" / "last.pt"), _weights(tmp_path / "resumed" / "last.pt")
    assert a.keys() == b.keys()
    for k in a:
        if a[k].is_floating_point():
            assert torch.allclose(a[k], b[k], atol=1e-5, rtol=0), k
        else:
            assert torch.equal(a[k], b[k]), k
    rows_a = load_checkpoint(tmp_path / "straight" / "last.pt")["history"]
    rows_b = load_checkpoint(tmp_path / "resumed" / "last.pt")["history"]
    for ra, rb in zip(rows_a, rows_b):
        assert ra["val_acc1"] == rb["val_acc1"] and ra["train_loss"] == pytest.approx(rb["train_loss"], abs=1e-6)


def test_nan_loss_stops_with_the_last_good_checkpoint_intact(prepared_sample, tmp_path, monkeypatch):
    steps_per_epoch = len(VOCCrops(prepared_sample, "train")) // 8
    calls = []
    real_forward = InceptionLoss.forward

    def nan_in_epoch_2(self, output, target):
        calls.append(1)
        loss = real_forward(self, output, target)
        return loss * float("nan") if len(calls) > steps_per_epoch + 1 else loss

    monkeypatch.setattr(InceptionLoss, "forward", nan_in_epoch_2)
    out = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match="NaN or infinite in epoch 2"):
        fit(tiny_config(prepared_sample, out, epochs=3), progress=False)
    state = load_checkpoint(out / "last.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert len((out / "metrics.csv").read_text().splitlines()) == 2  # header + epoch 1
    assert not (out / "summary.json").exists()


def test_existing_run_needs_resume(tiny_run, prepared_sample):
    with pytest.raises(UsageError, match="pass --resume"):
        fit(tiny_config(prepared_sample, tiny_run), progress=False)


def test_resume_of_a_finished_run_trains_nothing_and_can_extend(prepared_sample, tmp_path):
    out = tmp_path / "run"
    fit(tiny_config(prepared_sample, out, epochs=1), progress=False)
    before = _weights(out / "last.pt")
    fit(tiny_config(prepared_sample, out, epochs=1), resume=True, progress=False)
    after = _weights(out / "last.pt")
    assert all(torch.equal(before[k], after[k]) for k in before)
    summary = fit(tiny_config(prepared_sample, out, epochs=2), resume=True, progress=False)
    assert summary["epochs"] == 2 and load_checkpoint(out / "last.pt")["epoch"] == 2


def test_paper_recipe_runs_with_ema_momentum_weight_decay_and_clipping(prepared_sample, tmp_path):
    out = tmp_path / "paper"
    summary = fit(tiny_config(prepared_sample, out, recipe="paper", epochs=1), progress=False)
    state = load_checkpoint(out / "last.pt")
    assert state["config"]["optimizer"] == "rmsprop-tf" and state["selected"] == "ema"
    groups = {g["name"]: g for g in state["optimizer"]["param_groups"]}
    assert groups["decay"]["weight_decay"] == 4e-5 and groups["no_decay"]["weight_decay"] == 0.0
    assert all(g["momentum"] == 0.9 for g in groups.values())
    assert all("momentum_buffer" in s for s in state["optimizer"]["state"].values())
    assert set(state["model_ema"]) == set(state["model"])  # a plain state dict, no "module." prefix
    assert state["ema_updates"] > 0
    assert not torch.equal(state["model_ema"]["fc.weight"], state["model"]["fc.weight"])
    best = load_checkpoint(out / "best.pt")
    evaluated = inception_v2.load_model(out / "best.pt")  # the EMA weights: what val selected on
    assert torch.equal(evaluated.fc.weight, best["model_ema"]["fc.weight"])
    assert state["config"]["lr"] == pytest.approx(0.045 * 8 / 32)
    assert 0.0 <= summary["best_val_acc1"] <= 1.0

    # The recorded val figures are those of the EMA weights, not of the raw ones.
    val = VOCCrops(prepared_sample, "val", eval_transform(evaluated.data_config))
    loader = make_loader(val, 8, shuffle=False, workers=0)
    kw = dict(device=torch.device("cpu"), num_classes=20, progress=False)
    # as training computed them on the CPU (--pool-impl auto: native); other formulations agree
    # only to float rounding
    ema_result = evaluate(set_pool_impl(inception_v2.load_model(out / "last.pt"), "native"), loader, **kw)
    raw_result = evaluate(
        set_pool_impl(inception_v2.load_model(out / "last.pt", weights="model"), "native"), loader, **kw
    )
    row = state["history"][-1]
    assert (ema_result.loss, ema_result.acc1) == (pytest.approx(row["val_loss"], rel=1e-9), row["val_acc1"])
    assert abs(raw_result.loss - row["val_loss"]) > 1e-6  # the same evaluation of the raw weights differs


def test_a_voc_root_is_prepared_into_a_cache_first(sample_devkit, tmp_path):
    out = tmp_path / "runs" / "from-voc"
    summary = fit(tiny_config(sample_devkit, out, epochs=1, val_fraction=0.2), progress=False)
    caches = list((tmp_path / "runs").glob(".prepared-*"))
    assert len(caches) == 1 and (caches[0] / "counts.json").is_file()
    assert summary["epochs"] == 1


def test_cuda_defaults_on_the_cpu_bf16_channels_last_compiled(prepared_sample, tmp_path, monkeypatch):
    """The CUDA defaults (bf16 autocast, channels_last) and --compile also run on the CPU.
    The aot_eager backend captures the forward and backward graphs as inductor would, without
    its minutes of C++ compilation (the slow test below runs inductor)."""
    compiled, real_compile = [], torch.compile

    def spy(module, **kwargs):
        compiled.append(kwargs)
        return real_compile(module, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    out = tmp_path / "amp"
    cfg = tiny_config(
        prepared_sample, out, epochs=1, amp=True, channels_last=True, compile=True, compile_backend="aot_eager"
    )
    summary = fit(cfg, progress=False)
    assert compiled == [{"backend": "aot_eager"}]
    assert 0.0 <= summary["test_acc1_at_best_val"] <= 1.0
    state = load_checkpoint(out / "last.pt")
    assert all(v.dtype != torch.bfloat16 for v in state["model"].values())  # weights stay float32
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    want = create_model("googlenet_bn", num_classes=20, aux_logits=True).state_dict()  # aux weight > 0
    assert set(state["model"]) == set(want)  # the raw module's keys, no "_orig_mod." prefix


@pytest.mark.slow
def test_compile_with_inductor_on_the_cpu(prepared_sample, tmp_path):
    """--compile with its default backend, inductor, on the CPU: minutes of C++ compilation
    (about 4 on two shared cores), hence slow."""
    out = tmp_path / "inductor"
    fit(
        tiny_config(prepared_sample, out, epochs=1, amp=True, channels_last=True, compile=True),
        progress=False,
    )
    state = load_checkpoint(out / "last.pt")
    assert state["config"]["compile_backend"] == "inductor"
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
