"""Writing checkpoints, and the random-number-generator state they carry.

The format (its keys, and how a checkpoint is read back without unpickling arbitrary objects)
is defined by :mod:`inception_v2.deploy.load`, which reads it; this module writes it
(atomically, stamped with that module's ``FORMAT`` and ``VERSION``).
"""

from __future__ import annotations

import io
import os
import random
from typing import Any, Dict, Union

import numpy as np
import torch

from inception_v2.atomic import atomic_open
from inception_v2.deploy.load import (  # noqa: F401  (re-exported: the training side's view)
    FORMAT,
    VERSION,
    data_config_dict,
    load_checkpoint,
    load_model,
    load_weights,
)

PathLike = Union[str, "os.PathLike[str]"]


# --------------------------------------------------------------------------- RNG states


def rng_state() -> Dict[str, Any]:
    """Python, NumPy, torch (and CUDA) generator states, as tensors and plain values."""
    np_state = np.random.get_state()
    return {
        "python": _to_lists(random.getstate()),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
        # only the current device's: touching every GPU would create a context on each
        "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() and torch.cuda.is_initialized() else None,
    }


def set_rng_state(state: Dict[str, Any]) -> None:
    random.setstate(_to_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _to_lists(x: Any) -> Any:
    return [_to_lists(v) for v in x] if isinstance(x, (tuple, list)) else x


def _to_tuples(x: Any) -> Any:
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x


# --------------------------------------------------------------------------- save


def save_checkpoint(path: PathLike, state: Dict[str, Any]) -> None:
    """Write ``state`` (the keys: :mod:`inception_v2.deploy.load`) atomically, stamped with the
    format and version. The archive is built in memory first: torch's own writer reports a
    full disk as an opaque ``RuntimeError``, Python's as ``OSError`` naming ``path``."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **state}, buffer)
    with atomic_open(path, "wb") as f:
        f.write(buffer.getbuffer())
