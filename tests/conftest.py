"""Shared pytest fixtures, grouped by the part of the package they serve."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One compute thread for every test module: the inputs are tiny, and on a shared CPU two
    busy-waiting OpenMP threads can be ten times slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """``XDG_CACHE_HOME`` in a temporary folder: ``--runtime auto`` remembers its timed choices
    there (``inception_v2.deploy.runtime``), never in the user's own cache."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


# --------------------------------------------------------------------------- data
# A tiny synthetic VOC devkit (`inception-v2 make-sample`) and its prepared crop stores, built
# once per test session; training tests reuse them.

SAMPLE_IMAGES = 60  # ~170 objects, ~20 per class in trainval: builds in about a second
SAMPLE_SEED = 0
SAMPLE_VAL_FRACTION = 0.2
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def real_voc_sample() -> Path:
    """The real PASCAL VOC sample: ``shared/voc-sample`` next to the repository folder, or
    ``$INCEPTION_V2_VOC_SAMPLE``. Skips the test when it is not there."""
    override = os.environ.get("INCEPTION_V2_VOC_SAMPLE")
    path = Path(override) if override else REPO_ROOT / ".." / "shared" / "voc-sample"
    if not (path / "VOCdevkit").is_dir() or not (path / "COUNTS.json").is_file():
        pytest.skip(
            f"real VOC sample not found at {path.resolve()} (expected VOCdevkit/ and COUNTS.json; "
            "put shared/voc-sample next to the repository or set INCEPTION_V2_VOC_SAMPLE)"
        )
    return path.resolve()


@pytest.fixture(scope="session")
def sample_devkit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``VOCdevkit/`` (VOC2007 trainval/test, VOC2012 trainval) and the
    independently computed ``COUNTS.json``."""
    from inception_v2.data import make_sample

    out = tmp_path_factory.mktemp("voc-sample")
    make_sample(out, images=SAMPLE_IMAGES, seed=SAMPLE_SEED)
    return out


@pytest.fixture(scope="session")
def prepared_sample(sample_devkit: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sample_devkit`` prepared with ``--workers 1 --val-fraction 0.2``: a folder for
    :class:`inception_v2.data.VOCCrops` (splits train / val / test)."""
    from inception_v2.data import prepare

    out = tmp_path_factory.mktemp("prepared") / "sample"
    prepare(
        out, voc_root=sample_devkit, val_fraction=SAMPLE_VAL_FRACTION, workers=1, progress=False, log=lambda _: None
    )
    return out


# --------------------------------------------------------------------------- training
# One tiny finished run shared by the evaluate / compare / predict / load_model tests
# (configs from ``tests/train/helpers.tiny_config``): GoogLeNet-BN at 32 px, batch 8, two epochs.


@pytest.fixture(scope="session")
def tiny_run(prepared_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-epoch run directory (googlenet_bn, 32 px)."""
    from inception_v2.train import fit
    from tests.train.helpers import tiny_config

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("runs") / "tiny"
        fit(tiny_config(prepared_sample, out), progress=False)
    finally:
        torch.set_num_threads(before)
    return out
