"""The seed recipe computes what it computed before the training options existed, bit for bit.

The expected values below were recorded with the code of commit 4f8d8c9 (before the optimizer,
schedule, augmentation, accumulation and fine-tuning options; the schedule then was ``StepLR``
stepped per epoch) by running the ``tiny_run`` fixture's training —
``fit(tiny_config(prepared_sample, out))``: googlenet_bn, 32 px, batch 8, 2 epochs, 0 loader
workers, one thread, on the session's generated sample (60 images, seed 0, val fraction 0.2) —
on an x86-64 CPU whose kernels torch reports as AVX512, and reading back ``last.pt``:
the per-epoch losses (as ``float.hex``) and a SHA-256 of the final weights (every tensor of
``state["model"]``, sorted by name: the name's bytes, then the tensor's). To record them again,
run this file as a script with the old code first on the path (e.g. a ``git worktree`` of that
commit): ``PYTHONPATH=OLD/src:. python tests/train/test_reference.py WORK_DIR``.

Other CPU kernels (another capability) round differently, so there the losses are compared
to 1e-3 and the digest is not; a changed sample (the data digest) is a different experiment.
"""

import hashlib

import pytest
import torch

from inception_v2.data import VOCCrops
from inception_v2.train import load_checkpoint

RECORDED_ON = "AVX512"  # torch.backends.cpu.get_cpu_capability() where the values were recorded
DATA_SHA256 = "3d2e9b544af915c3c8548e63ceca65dcdc139fcc70df432dffecd53edbd4f6ff"
TRAIN_LOSS = ["0x1.3f93c70000000p+2", "0x1.1f618be000000p+2"]
VAL_LOSS = ["0x1.73918260dd67dp+1", "0x1.73bb51bacf915p+1"]
VAL_ACC1 = [0.2972972972972973, 0.21621621621621623]
WEIGHTS_SHA256 = "4b689047d6bea2165533cc14c9132181caa3f94fd50b580f7ac649b33ba81c40"


def _data_digest(prepared):
    h = hashlib.sha256()
    for split in ("train", "val", "test"):
        ds = VOCCrops(prepared, split)
        for i in range(len(ds)):
            image, label = ds[i]
            h.update(image.contiguous().numpy().tobytes())
            h.update(bytes([label]))
    return h.hexdigest()


def _weights_digest(state_dict):
    h = hashlib.sha256()
    for k, v in sorted(state_dict.items()):
        h.update(k.encode())
        h.update(v.contiguous().numpy().tobytes())
    return h.hexdigest()


def test_seed_recipe_reproduces_the_recorded_run(tiny_run, prepared_sample):
    assert _data_digest(prepared_sample) == DATA_SHA256, (
        "the generated sample changed since the reference was recorded: record it again (module docstring)"
    )
    state = load_checkpoint(tiny_run / "last.pt")
    history = state["history"]
    assert state["config"]["recipe"] == "seed" and [r["epoch"] for r in history] == [1, 2]
    train_loss = [float.fromhex(v) for v in TRAIN_LOSS]
    val_loss = [float.fromhex(v) for v in VAL_LOSS]
    if torch.backends.cpu.get_cpu_capability() == RECORDED_ON:
        assert [r["train_loss"].hex() for r in history] == TRAIN_LOSS
        assert [r["val_loss"].hex() for r in history] == VAL_LOSS
        assert [r["val_acc1"] for r in history] == VAL_ACC1
        assert _weights_digest(state["model"]) == WEIGHTS_SHA256
    else:
        assert [r["train_loss"] for r in history] == pytest.approx(train_loss, rel=1e-3)
        assert [r["val_loss"] for r in history] == pytest.approx(val_loss, rel=1e-3)


def _record(work) -> None:  # pragma: no cover - the recording procedure of the module docstring
    import json
    from pathlib import Path

    from inception_v2.data import make_sample, prepare
    from inception_v2.train import fit
    from tests.conftest import SAMPLE_IMAGES, SAMPLE_SEED, SAMPLE_VAL_FRACTION
    from tests.train.helpers import quiet, tiny_config

    torch.set_num_threads(1)
    work = Path(work)
    make_sample(work / "voc", images=SAMPLE_IMAGES, seed=SAMPLE_SEED)
    prepare(
        work / "prepared", voc_root=work / "voc", val_fraction=SAMPLE_VAL_FRACTION, workers=1, progress=False, log=quiet
    )
    fit(tiny_config(work / "prepared", work / "run"), progress=False)
    state = load_checkpoint(work / "run" / "last.pt")
    print(
        json.dumps(
            {
                "RECORDED_ON": torch.backends.cpu.get_cpu_capability(),
                "DATA_SHA256": _data_digest(work / "prepared"),
                "TRAIN_LOSS": [r["train_loss"].hex() for r in state["history"]],
                "VAL_LOSS": [r["val_loss"].hex() for r in state["history"]],
                "VAL_ACC1": [r["val_acc1"] for r in state["history"]],
                "WEIGHTS_SHA256": _weights_digest(state["model"]),
            },
            indent=1,
        )
    )


if __name__ == "__main__":  # pragma: no cover
    import sys

    _record(sys.argv[1])
