"""Release folders (``model.safetensors`` + ``config.json``) and ``load_model``: the round trip
for every model, a checkpoint's selected weights, the CLI, bad files, and the deployment layer's
import isolation (loading and running a model imports neither the training code nor matplotlib)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from inception_v2 import create_model, list_models, load_model
from inception_v2.cli import main
from inception_v2.deploy.load import FORMAT, VERSION, data_config_dict
from inception_v2.deploy.release import RELEASE_CONFIG, RELEASE_WEIGHTS, export_release, write_release
from inception_v2.errors import UsageError
from tests.models.cache import built

CLASSES = ["cat", "dog", "person"]


def on_meta(name, **kwargs):
    with torch.device("meta"):
        return create_model(name, **kwargs)


def checkpoint(tmp_path: Path, name: str = "googlenet_bn", **extra) -> Path:
    """A checkpoint as training writes one (only the fields loading reads): trained weights and
    EMA weights that differ, the EMA selected."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=len(CLASSES), aux_logits=False, **extra.pop("model_kwargs", {}))
    ema = {k: (v + 0.01 if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    state = {
        "format": FORMAT,
        "version": VERSION,
        "model_name": name,
        "num_classes": len(CLASSES),
        "classes": CLASSES,
        "aux_logits": False,
        "data_config": data_config_dict(model.data_config.with_input_size(96)),
        "config": {"dropout": 0.2},
        "model": model.state_dict(),
        "model_ema": ema,
        "selected": "ema",
        **extra,
    }
    path = tmp_path / "best.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize("name", list_models())
def test_release_round_trip(name, tmp_path):
    model = built(name).eval()  # shared: not modified
    result = write_release(model, tmp_path / "rel", "model", classes=CLASSES[:1] * model.num_classes)
    assert sorted(p.name for p in (tmp_path / "rel").iterdir()) == [".lock", RELEASE_CONFIG, RELEASE_WEIGHTS]
    assert result.tensors == len(model.state_dict())
    loaded = load_model(tmp_path / "rel")
    assert loaded.classes == ["cat"] * 20 and loaded.data_config == model.data_config and not loaded.training
    assert list(loaded.state_dict()) == list(model.state_dict())
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k


def test_release_keeps_the_architecture_options_and_input_channels(tmp_path):
    model = create_model("googlenet_bn", num_classes=3, in_chans=1, bn_eps=1e-5, count_include_pad=True).eval()
    write_release(model, tmp_path, "model", classes=CLASSES)
    config = json.loads((tmp_path / RELEASE_CONFIG).read_text())
    assert config["arch_options"] == {"bn_eps": 1e-5, "count_include_pad": True, "input_space": None}
    assert config["in_chans"] == 1 and config["classes"] == CLASSES
    assert config["data_config"]["interpolation"] == "bilinear" and config["data_config"]["mean"] == [0.5] * 3
    loaded = load_model(tmp_path)
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)  # eps and pooling came back too
    rebuilt = create_model("googlenet_bn", num_classes=3, in_chans=1, pretrained=tmp_path)
    assert rebuilt.arch_options == model.arch_options


def test_a_checkpoints_release_holds_the_selected_weights(tmp_path):
    path = checkpoint(tmp_path)
    state = torch.load(path, weights_only=True)
    result = export_release(path, tmp_path / "rel")
    assert result.weights == "ema"
    loaded = load_model(tmp_path / "rel")
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, state["model_ema"][k]), k
    assert loaded.classes == CLASSES and loaded.data_config.input_size == 96
    from_checkpoint = load_model(path)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), from_checkpoint(x), rtol=0, atol=0)


def test_a_checkpoint_with_architecture_options_is_rebuilt_with_them(tmp_path):
    path = checkpoint(tmp_path, model_kwargs={"bn_eps": 1e-5}, arch_options={"bn_eps": 1e-5})
    model = load_model(path, weights="model")
    assert model.arch_options["bn_eps"] == 1e-5 and model.features.conv1[1].eps == 1e-5
    assert create_model("googlenet_bn", num_classes=3, pretrained=path).features.conv1[1].eps == 1e-5


def test_cli_export_safetensors(tmp_path, capsys):
    path = checkpoint(tmp_path)
    assert main(["export", "--checkpoint", str(path), "--format", "safetensors", "--out", str(tmp_path / "r")]) == 0
    assert "model.safetensors" in capsys.readouterr().out
    assert load_model(tmp_path / "r").classes == CLASSES
    out = tmp_path / "untrained"
    assert (
        main(["export", "--model", "inception_v2", "--num-classes", "5", "--format", "safetensors", "--out", str(out)])
        == 0
    )
    config = json.loads((out / RELEASE_CONFIG).read_text())
    assert config["weights"] == "untrained" and config["classes"] is None and config["num_classes"] == 5
    assert load_model(out).num_classes == 5
    assert (
        main(["export", "--model", "inception_v2", "--format", "safetensors", "--out", str(out), "--image-size", "224"])
        == 2
    )
    assert "does not apply" in capsys.readouterr().err


def test_bad_release_folders_are_one_line_errors(tmp_path):
    with pytest.raises(UsageError, match="without model.safetensors"):
        load_model(tmp_path)
    model = on_meta("googlenet_bn", num_classes=3)
    (tmp_path / RELEASE_WEIGHTS).write_bytes(b"not safetensors")
    with pytest.raises(UsageError, match="lacks config.json"):
        load_model(tmp_path)
    (tmp_path / RELEASE_CONFIG).write_text(json.dumps({"format": "something else"}))
    with pytest.raises(UsageError, match="not the config of an inception_v2 release"):
        load_model(tmp_path)
    good = create_model("googlenet_bn", num_classes=3)
    write_release(good, tmp_path, "model")
    (tmp_path / RELEASE_WEIGHTS).write_bytes(b"\x00" * 16)
    with pytest.raises(UsageError, match="not a readable safetensors file"):
        load_model(tmp_path)
    write_release(good, tmp_path, "model")
    with pytest.raises(UsageError, match="holds googlenet_bn weights, not inception_v2 weights"):
        create_model("inception_v2", pretrained=tmp_path)
    with pytest.raises(UsageError, match="one set of weights"):
        load_model(tmp_path, weights="ema")
    with pytest.raises(UsageError, match="class names"):
        write_release(model, tmp_path / "x", "model", classes=["a"])


def test_loading_and_running_a_model_imports_no_training_code(tmp_path):
    """The deployment layer stands alone: ``import inception_v2``, ``load_model`` (a release
    folder and a checkpoint) and a forward pass leave ``inception_v2.train``, the CLI and
    matplotlib unimported."""
    write_release(create_model("googlenet_bn", num_classes=3), tmp_path / "rel", "model", classes=CLASSES)
    ckpt = checkpoint(tmp_path)
    code = (
        "import sys, torch, inception_v2\n"
        f"for path in ({str(tmp_path / 'rel')!r}, {str(ckpt)!r}):\n"
        "    model = inception_v2.load_model(path)\n"
        "    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 3)\n"
        "heavy = ('inception_v2.train', 'inception_v2.cli', 'inception_v2.report', 'matplotlib')\n"
        "print('LOADED', [m for m in heavy if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout


def test_random_bytes_are_not_mistaken_for_a_crafted_pickle(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(bytes(range(7, 256)) * 16)
    with pytest.raises(UsageError, match="not a PyTorch checkpoint: neither a zip archive nor a pickle") as e:
        load_model(junk)
    assert "Python objects" not in str(e.value) and str(junk) in str(e.value)
