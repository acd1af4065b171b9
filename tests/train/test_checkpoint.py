import os
import pickle
from pathlib import Path

import pytest
import torch

import inception_v2
from inception_v2.errors import UsageError
from inception_v2.train import load_checkpoint, load_model, save_checkpoint


class _RunsCode:
    """A pickle payload whose loading would create a file (it must never be unpickled)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mknod if hasattr(os, "mknod") else open, (str(self.marker),))


@pytest.mark.parametrize("fmt", ["pickle", "torch.save"])
def test_crafted_checkpoint_is_refused_without_running_anything(tmp_path, fmt):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"format": "inception_v2.checkpoint", "version": 1, "model": _RunsCode(marker)}
    if fmt == "pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path)
    with pytest.raises(UsageError, match="refused") as e:
        load_model(path)
    assert not marker.exists()
    assert "\n" not in str(e.value)
    # the payload is live: plain unpickling would have created the file
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(_RunsCode(live)))
    assert live.exists()


def test_truncated_checkpoint_is_a_one_line_error(tiny_run, tmp_path):
    data = (tiny_run / "last.pt").read_bytes()
    for n in (0, 100, len(data) // 2, len(data) - 50):
        bad = tmp_path / f"cut{n}.pt"
        bad.write_bytes(data[:n])
        with pytest.raises(UsageError, match="cut") as e:
            load_model(bad)
        assert "\n" not in str(e.value)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_model(tmp_path / "nope.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(UsageError, match="not a checkpoint of inception_v2"):
        load_model(tmp_path / "foreign.pt")


def test_checkpoint_of_another_model_is_a_clear_error(tiny_run, tmp_path):
    state = load_checkpoint(tiny_run / "last.pt")
    state["model_name"] = "inception_v2"  # googlenet_bn weights, labelled inception_v2
    save_checkpoint(tmp_path / "mixed.pt", {k: v for k, v in state.items() if k not in ("format", "version")})
    with pytest.raises(UsageError, match="do not fit inception_v2") as e:  # its options or its weights
        load_model(tmp_path / "mixed.pt")
    assert "\n" not in str(e.value)


def test_load_model_returns_the_trained_model_in_eval_mode(tiny_run):
    model = inception_v2.load_model(tiny_run / "best.pt")
    assert not model.training
    assert model.name == "googlenet_bn"
    assert model.data_config.input_size == 32
    assert model.classes[:2] == ["aeroplane", "bicycle"] and len(model.classes) == model.num_classes == 20
    with torch.inference_mode():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 20)


def test_checkpoint_holds_the_whole_training_state(tiny_run):
    state = load_checkpoint(tiny_run / "last.pt")
    for key in (
        "model",
        "model_ema",
        "selected",
        "optimizer",
        "scheduler",
        "scaler",
        "epoch",
        "rng",
        "config",
        "history",
        "best",
    ):
        assert key in state
    assert state["model_ema"] is None and state["selected"] == "model"  # the blog recipe keeps no EMA
    assert state["epoch"] == 2 and state["config"]["model"] == "googlenet_bn"
    assert set(state["rng"]) >= {"python", "numpy", "torch"}


def test_a_version_1_checkpoint_with_an_ema_still_loads(tiny_run, tmp_path):
    """Before format 2 the EMA was an AveragedModel state dict under "ema" ("module." keys)."""
    state = load_checkpoint(tiny_run / "last.pt")
    ema = {k: v + 1.0 if v.is_floating_point() else v for k, v in state["model"].items()}
    old = {k: v for k, v in state.items() if k not in ("model_ema", "ema_updates", "selected")}
    old["version"] = 1
    old["ema"] = {"n_averaged": torch.tensor(7), **{f"module.{k}": v for k, v in ema.items()}}
    torch.save(old, tmp_path / "v1.pt")
    upgraded = load_checkpoint(tmp_path / "v1.pt")
    assert upgraded["selected"] == "ema" and upgraded["ema_updates"] == 7
    assert set(upgraded["model_ema"]) == set(state["model"])
    model = load_model(tmp_path / "v1.pt")  # the EMA weights, which version 1 evaluated
    assert torch.equal(model.fc.weight, ema["fc.weight"])
    assert torch.equal(load_model(tmp_path / "v1.pt", weights="model").fc.weight, state["model"]["fc.weight"])
