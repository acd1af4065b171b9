"""A run's checkpoints: what goes into one (:func:`checkpoint_state`) and how a run continues
from one (:func:`restore_state`). The format itself, its one reader and one writer, and the
assembly from (and restore into) the training objects live in
:mod:`inception_v2.formats.checkpoint`; this module adds the run's bookkeeping
(:class:`RunRecord`, :class:`DataIdentity`) and keeps the dict-based names earlier versions
exported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Union

from inception_v2.deploy.load import load_checkpoint, load_model  # noqa: F401  (re-exported)
from inception_v2.formats.checkpoint import (  # noqa: F401  (re-exported)
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    Checkpoint,
    RunInfo,
    checkpoint_from_training,
    restore_training,
    rng_state,
    set_rng_state,
    write_checkpoint,
)
from inception_v2.formats.data_config import data_config_dict  # noqa: F401  (re-exported)
from inception_v2.formats.state_dict import load_weights  # noqa: F401  (re-exported)
from inception_v2.paths import PathLike
from inception_v2.train.config import TrainConfig
from inception_v2.train.step import TrainStep

FORMAT, VERSION = CHECKPOINT_FORMAT, CHECKPOINT_VERSION


def save_checkpoint(path: PathLike, state: Union[Checkpoint, Dict[str, Any]]) -> None:
    """Write a checkpoint (a :class:`Checkpoint`, or its plain dict: the keys are its fields,
    with ``data_config`` as a dict) atomically, stamped with the current format and version."""
    if not isinstance(state, Checkpoint):
        state = Checkpoint.from_dict({**state, "format": FORMAT, "version": VERSION}, path)
    write_checkpoint(path, state)


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


def checkpoint_state(cfg: TrainConfig, step: TrainStep, data: DataIdentity, record: RunRecord) -> Checkpoint:
    """The checkpoint of a run after ``record.epoch`` epochs."""
    run = RunInfo(
        model_name=cfg.model,
        num_classes=len(data.classes),
        classes=list(data.classes),
        aux_logits=cfg.aux_weight > 0,
        data_config=cfg.data_config(),
        config=cfg.to_dict(),
        epoch=record.epoch,
        history=record.history,
        best=record.best,
        data_folder=data.folder,
        data_fingerprint=data.fingerprint,
    )
    return checkpoint_from_training(run, step.model, step.optimizer, step.scheduler, step.scaler, step.ema)


def restore_state(checkpoint: Checkpoint, path: PathLike, step: TrainStep) -> RunRecord:
    """The inverse of :func:`checkpoint_state` for the training state (the schedule follows from
    the step count), with a one-line error for a state that does not fit; returns the record."""
    restore_training(checkpoint, path, step.model, step.optimizer, step.scaler, step.ema)
    return RunRecord(int(checkpoint.epoch), list(checkpoint.history), dict(checkpoint.best))
