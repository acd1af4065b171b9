"""A run's checkpoints: what goes into one (:func:`checkpoint_state`), how a run continues from
one (:func:`restore_state`), writing them, and the random-number-generator state they carry.

The format (its keys, and how a checkpoint is read back without unpickling arbitrary objects)
is defined by :mod:`inception_v2.deploy.load`, which reads it; this module writes it
(atomically, stamped with that module's ``FORMAT`` and ``VERSION``). Besides the keys listed
there, a checkpoint names the data it was trained on: ``data_folder`` (the prepared folder)
and ``data_fingerprint`` (:func:`inception_v2.train.resume.data_fingerprint`); checkpoints
written before these keys existed lack them.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Union

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
from inception_v2.errors import UsageError
from inception_v2.train.config import TrainConfig
from inception_v2.train.step import TrainStep

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
    format and version."""
    with atomic_open(path, "wb") as f:
        torch.save({"format": FORMAT, "version": VERSION, **state}, f)


# --------------------------------------------------------------------------- a run's state


@dataclass
class RunRecord:
    """Where a run stands: epochs done, the metrics rows so far, the best val top-1 and its epoch."""

    epoch: int = 0
    history: List[Dict[str, float]] = field(default_factory=list)
    best: Dict[str, float] = field(default_factory=lambda: {"val_acc1": -1.0, "epoch": 0})


@dataclass(frozen=True)
class DataIdentity:
    """The data set a run trains on: its prepared folder, fingerprint and class names."""

    folder: str
    fingerprint: str
    classes: List[str]


def checkpoint_state(cfg: TrainConfig, step: TrainStep, data: DataIdentity, record: RunRecord) -> Dict[str, Any]:
    """The checkpoint of a run after ``record.epoch`` epochs (the keys: :mod:`inception_v2.deploy.load`)."""
    model, ema = step.model, step.ema
    return {
        "model_name": cfg.model,
        "num_classes": len(data.classes),
        "classes": list(data.classes),
        "aux_logits": cfg.aux_weight > 0,
        "data_config": data_config_dict(cfg.data_config()),
        "config": cfg.to_dict(),
        # what rebuilds this very network (a release's options, e.g. Caffe pooling)
        "in_chans": model.in_chans,
        "arch_options": dict(model.arch_options),
        "data_folder": data.folder,
        "data_fingerprint": data.fingerprint,
        "epoch": record.epoch,
        "history": record.history,
        "best": record.best,
        "model": model.state_dict(),  # always the raw trained weights
        "model_ema": ema.module.state_dict() if ema is not None else None,  # plain, no "module."
        "ema_updates": int(ema.n_averaged) if ema is not None else 0,
        "selected": "ema" if ema is not None else "model",  # what val evaluated and selected on
        "optimizer": step.optimizer.state_dict(),
        "scheduler": step.scheduler.state_dict() if step.scheduler is not None else None,  # for the record
        "scaler": step.scaler.state_dict(),
        "rng": rng_state(),
    }


def restore_state(state: Dict[str, Any], path: PathLike, step: TrainStep) -> RunRecord:
    """The inverse of :func:`checkpoint_state` for the training state (the schedule follows from
    the step count), with a one-line error for a state that does not fit; returns the record."""
    load_weights(step.model, state["model"], path, "model")
    ema = step.ema
    if ema is not None:
        if state.get("model_ema") is None:
            raise UsageError(f"{path}: the run keeps an EMA but the checkpoint holds none")
        load_weights(ema.module, state["model_ema"], path, "EMA")
    try:
        step.optimizer.load_state_dict(state["optimizer"])
        step.scaler.load_state_dict(state["scaler"])
        if ema is not None:
            ema.n_averaged.fill_(int(state.get("ema_updates", 0)))
        set_rng_state(state["rng"])
        return RunRecord(int(state["epoch"]), list(state["history"]), dict(state["best"]))
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as e:
        raise UsageError(f"{Path(path)}: cannot restore the training state: {e}") from None
