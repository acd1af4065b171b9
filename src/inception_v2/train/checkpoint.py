"""The training side's view of checkpoints. The format, its reader and writer and the assembly
from (and restore into) a running training live in :mod:`inception_v2.formats.checkpoint`;
this module keeps the dict-based names earlier versions exported."""

from __future__ import annotations

from typing import Any, Dict

from inception_v2.deploy.load import load_checkpoint, load_model  # noqa: F401  (re-exported)
from inception_v2.formats.checkpoint import (  # noqa: F401  (re-exported)
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    Checkpoint,
    rng_state,
    set_rng_state,
    write_checkpoint,
)
from inception_v2.formats.data_config import data_config_dict  # noqa: F401  (re-exported)
from inception_v2.formats.state_dict import load_weights  # noqa: F401  (re-exported)
from inception_v2.paths import PathLike

FORMAT, VERSION = CHECKPOINT_FORMAT, CHECKPOINT_VERSION


def save_checkpoint(path: PathLike, state: Dict[str, Any]) -> None:
    """Write a checkpoint given as its plain dict (the keys: :class:`Checkpoint`'s fields, with
    ``data_config`` as a dict) atomically, stamped with the current format and version."""
    write_checkpoint(path, Checkpoint.from_dict({**state, "format": FORMAT, "version": VERSION}, path))
