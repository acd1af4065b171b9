"""Fixtures of the training tests: one tiny finished run shared by the evaluate / compare /
predict / load_model tests (configs from ``helpers.tiny_config``).

Everything is tiny: GoogLeNet-BN at 32 px, batch 8, one or two epochs over the
session's ``prepared_sample`` (tests/conftest.py), one compute thread.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inception_v2.train import fit
from tests.train.helpers import quiet, tiny_config


@pytest.fixture(scope="session")
def tiny_run(prepared_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-epoch run directory (googlenet_bn, 32 px)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("runs") / "tiny"
        fit(tiny_config(prepared_sample, out), log=quiet, progress=False)
    finally:
        torch.set_num_threads(before)
    return out
