"""Construction order decides the initial weights: after ``torch.manual_seed(0)``,
``create_model`` gives the same state dict (and leaves the random generator in the same state)
as the code that wrote ``data/construction_hashes.json``. The demo's figures and every run
started from a seed depend on it.

Regenerate the file only on purpose (a deliberate change of the initial weights):
``python -m tests.models.test_construction --write``.
"""

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch

from inception_v2 import create_model

HASHES = Path(__file__).parent / "data" / "construction_hashes.json"

# Every model at the demo's class count and at the default, heads on and off, and the options
# that change what is built (input channels, the released GoogLeNet-BN's Caffe options).
CASES = {
    f"{name}/{classes}/aux={aux}": (name, {"num_classes": classes, "aux_logits": aux})
    for name in ("googlenet_bn", "inception_v2", "inception_v3", "inception_v3_tv")
    for classes in (20, 1000)
    for aux in (True, False)
}
CASES.update(
    {
        f"{name}/20/in_chans=1": (name, {"num_classes": 20, "aux_logits": True, "in_chans": 1})
        for name in ("googlenet_bn", "inception_v2", "inception_v3", "inception_v3_tv")
    }
)
CASES["googlenet_bn/20/caffe"] = (
    "googlenet_bn",
    {"num_classes": 20, "aux_logits": True, "bn_eps": 1e-5, "count_include_pad": True, "input_space": "caffe_bgr"},
)


def fingerprint(name, kwargs):
    """sha256 of the state dict (every key, dtype, shape and byte, in order) and of the random
    generator's state after building."""
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    h = hashlib.sha256()
    for key, value in model.state_dict().items():
        h.update(f"{key}|{value.dtype}|{tuple(value.shape)}|".encode())
        h.update(value.detach().contiguous().cpu().numpy().tobytes())
    rng = hashlib.sha256(torch.random.get_rng_state().numpy().tobytes()).hexdigest()
    bn_eps = sorted({m.eps for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)})
    out = {"state_dict": h.hexdigest(), "rng_after": rng, "bn_eps": bn_eps}
    if kwargs["num_classes"] == 20:  # what the network computes (pool padding, input space...)
        size = model.data_config.min_input_size + 8
        x = torch.linspace(-1, 1, kwargs.get("in_chans", 3) * size * size).view(1, -1, size, size)
        with torch.no_grad():
            y = model.eval().forward_with_aux(x)
        out["logits"] = [round(v, 7) for t in (y.logits, *y.aux_logits) for v in t.flatten().tolist()]
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_create_model_builds_the_same_initial_weights(case):
    name, kwargs = CASES[case]
    expected = json.loads(HASHES.read_text())[case]
    got = fingerprint(name, kwargs)
    assert got.pop("logits", None) == pytest.approx(expected.pop("logits", None), abs=1e-6)
    assert got == expected


@pytest.mark.parametrize("name", ["googlenet_bn", "inception_v2", "inception_v3", "inception_v3_tv"])
def test_the_default_is_the_network_without_auxiliary_heads(name):
    """Auxiliary heads are opt-in: ``create_model(name)`` builds what ``aux_logits=False`` did."""
    expected = json.loads(HASHES.read_text())[f"{name}/20/aux=False"]
    got = fingerprint(name, {"num_classes": 20})
    assert got.pop("logits") == pytest.approx(expected.pop("logits"), abs=1e-6)
    assert got == expected


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.models.test_construction --write")
    torch.set_num_threads(1)
    HASHES.write_text(json.dumps({k: fingerprint(*CASES[k]) for k in sorted(CASES)}, indent=1) + "\n")
