"""``hubconf.py``: ``torch.hub.load(REPO, NAME, source="local", ...)`` for every model."""

import importlib.util
from pathlib import Path

import pytest
import torch

from inception_v2 import list_models

REPO = Path(__file__).resolve().parents[2]


def hubconf():
    spec = importlib.util.spec_from_file_location("hubconf_under_test", REPO / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_entry_per_model_with_its_docstring():
    module = hubconf()
    assert set(module.dependencies) == {"torch", "torchvision"}
    for name in list_models():
        entry = getattr(module, name)
        assert callable(entry) and entry.__name__ == name
        assert "create_model" in entry.__doc__


@pytest.mark.parametrize("name", list_models())
def test_torch_hub_load_local(name):
    with torch.device("meta"):  # the structure only: building on meta takes milliseconds
        model = torch.hub.load(str(REPO), name, source="local", num_classes=20, aux_logits=False)
    assert model.name == name and model.num_classes == 20 and not model.aux_logits
    assert model.get_classifier().out_features == 20


def test_torch_hub_load_builds_a_working_model():
    model = torch.hub.load(str(REPO), "inception_v2", source="local", num_classes=20).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 75, 75)).shape == (1, 20)
