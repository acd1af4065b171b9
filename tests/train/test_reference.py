"""The blog recipe (named `seed` before) computes what it computed before the training options existed, bit for bit.

The expected values below were recorded with the code of commit 4f8d8c9 (before the optimizer,
schedule, augmentation, accumulation and fine-tuning options; the schedule then was ``StepLR``
stepped per epoch) by running the ``tiny_run`` fixture's training —
``fit(tiny_config(prepared_sample, out))``: googlenet_bn, 32 px, batch 8, 2 epochs, 0 loader
workers, one thread, on the session's generated sample (60 images, seed 0, val fraction 0.2) —
on the CPU and PyTorch build of :data:`RECORDED_ON`, and reading back ``last.pt``:
the per-epoch losses (as ``float.hex``) and a SHA-256 of the final weights (every tensor of
``state["model"]``, sorted by name: the name's bytes, then the tensor's). To record them again,
run this file as a script with the old code first on the path (e.g. a ``git worktree`` of that
commit): ``PYTHONPATH=OLD/src:. python tests/train/test_reference.py WORK_DIR``.

The bits depend on which kernels run, and torch's reported capability does not say: oneDNN
and MKL pick their own code paths from the CPU's instruction sets (an Intel Xeon with AMX runs
AMX kernels where an AMD EPYC with AVX-512 runs AVX-512 ones, both reporting "AVX512"), and
from their own versions. So the losses are compared bit for bit only where :func:`cpu_kernels`
(vendor, model name, the instruction sets these libraries dispatch on, the torch, oneDNN and
MKL versions) equals :data:`RECORDED_ON`; elsewhere to 1e-3, and the digest is not compared.
A changed sample (the data digest) is a different experiment.
"""

import hashlib
import platform
import re
from pathlib import Path
from typing import Dict, Optional

import pytest
import torch

from inception_v2.data import VOCCrops
from inception_v2.train import load_checkpoint

# cpu_kernels() of the machine where the values were recorded.
RECORDED_ON = {
    "machine": "x86_64",
    "vendor": "AuthenticAMD",
    "model": "AMD EPYC",
    "isa": "avx2 avx512_bf16 avx512_vnni avx512bw avx512f fma",
    "capability": "AVX512",
    "torch": "2.14.1",
    "onednn": "3.12.0",
    "mkl": "2024.2",
}
# The instruction sets whose presence changes which kernels oneDNN and MKL run (and so the
# rounding): AVX2/FMA, AVX-512 and its VNNI / BF16 / FP16 extensions, AVX-VNNI, AMX.
KERNEL_ISA = (
    "fma", "avx2", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni",
    "amx_tile", "amx_bf16", "amx_int8", "amx_fp16",
)  # fmt: skip
DATA_SHA256 = "3d2e9b544af915c3c8548e63ceca65dcdc139fcc70df432dffecd53edbd4f6ff"
TRAIN_LOSS = ["0x1.3f93c70000000p+2", "0x1.1f618be000000p+2"]
VAL_LOSS = ["0x1.73918260dd67dp+1", "0x1.73bb51bacf915p+1"]
VAL_ACC1 = [0.2972972972972973, 0.21621621621621623]
WEIGHTS_SHA256 = "4b689047d6bea2165533cc14c9132181caa3f94fd50b580f7ac649b33ba81c40"


def cpu_kernels(cpuinfo: Optional[str] = None) -> Dict[str, str]:
    """What decides the rounding of a CPU training run: the CPU (vendor, model name and the
    :data:`KERNEL_ISA` flags of Linux's ``/proc/cpuinfo``, or of the text ``cpuinfo``) and the
    torch, oneDNN and MKL builds. Empty strings where the system does not say (not Linux)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    info = {}
    for key, field in (("vendor", "vendor_id"), ("model", "model name"), ("flags", "flags")):
        m = re.search(rf"^{field}\s*:\s*(.*)$", cpuinfo, re.M)
        info[key] = m.group(1).strip() if m else ""
    config = torch.__config__.show()
    onednn = re.search(r"MKL-DNN v([\d.]+)", config)
    mkl = re.search(r"Math Kernel Library Version ([\d.]+)", config)
    return {
        "machine": platform.machine(),
        "vendor": info["vendor"],
        "model": info["model"],
        "isa": " ".join(sorted(set(info["flags"].split()) & set(KERNEL_ISA))),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__.split("+")[0],
        "onednn": onednn.group(1) if onednn else "",
        "mkl": mkl.group(1) if mkl else "",
    }


AVX512_FLAGS = "fpu sse2 ssse3 sse4_2 fma avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni avx512_bf16"
EPYC = f"vendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t\t: {AVX512_FLAGS} avx512_vbmi2\n"
XEON = (
    "vendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
    f"flags\t\t: {AVX512_FLAGS} avx512_fp16 avx_vnni amx_bf16 amx_tile amx_int8\n"
)


def test_cpu_kernels_tells_an_amx_xeon_from_the_recording_cpu():
    epyc, xeon = cpu_kernels(EPYC), cpu_kernels(XEON)
    assert epyc["capability"] == xeon["capability"]  # what torch reports cannot tell them apart
    assert {k: epyc[k] for k in ("vendor", "model", "isa")} == {k: RECORDED_ON[k] for k in ("vendor", "model", "isa")}
    assert "amx_tile" in xeon["isa"] and xeon != epyc and xeon != RECORDED_ON  # compared with a tolerance there


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


def test_blog_recipe_reproduces_the_recorded_run(tiny_run, prepared_sample):
    assert _data_digest(prepared_sample) == DATA_SHA256, (
        "the generated sample changed since the reference was recorded: record it again (module docstring)"
    )
    state = load_checkpoint(tiny_run / "last.pt")
    history = state["history"]
    assert state["config"]["recipe"] == "blog" and [r["epoch"] for r in history] == [1, 2]
    train_loss = [float.fromhex(v) for v in TRAIN_LOSS]
    val_loss = [float.fromhex(v) for v in VAL_LOSS]
    if cpu_kernels() == RECORDED_ON:
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
                "RECORDED_ON": cpu_kernels(),
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
