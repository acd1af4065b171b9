"""The training checkpoint (``last.pt``, ``best.pt``): :class:`Checkpoint`, its one reader
:func:`read_checkpoint` and its one writer :func:`write_checkpoint`.

On disk a checkpoint is a plain dict of tensors, numbers, strings, lists and dicts
(``torch.save``'s zip format), so :func:`torch.load` reads it with ``weights_only=True``: a file
holding anything else (a crafted pickle whose ``__reduce__`` would run code, a pickled
nn.Module) is refused before any of it runs. A truncated, corrupt or foreign file raises
:class:`~inception_v2.errors.UsageError` with a one-line message naming the file.

The keys (format version 2) are the fields of :class:`Checkpoint` plus ``format``
(``"inception_v2.checkpoint"``) and ``version``. Version 1 (before ``model_ema``) kept the EMA
as an ``AveragedModel`` state dict under ``ema``; :func:`upgrade_checkpoint`, the one place
older layouts are read, turns it into version 2.

:func:`checkpoint_from_training` assembles a checkpoint from the objects of a running training
(model, optimizer, schedule, scaler, EMA, random generators) and :func:`restore_training` puts
them back. This module imports no other part of the package but the bottom layer.
"""

from __future__ import annotations

import io
import pickle
import random
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from torch import nn

from inception_v2.atomic import atomic_open
from inception_v2.errors import UsageError, first_line
from inception_v2.formats.data_config import DataConfig
from inception_v2.formats.state_dict import StateDict, load_weights
from inception_v2.formats.untrusted import refuse_torchscript
from inception_v2.paths import PathLike

CHECKPOINT_FORMAT = "inception_v2.checkpoint"
CHECKPOINT_VERSION = 2
WEIGHTS_CHOICES = ("auto", "model", "ema")
REQUIRED = ("model_name", "num_classes", "classes", "data_config", "config", "model")


@dataclass
class Checkpoint:
    """Everything a training run saves after an epoch; also what deployment reads back."""

    model_name: str
    num_classes: int
    classes: List[str]  # the class names, index = label
    data_config: DataConfig  # the input pipeline the model was trained with
    config: Dict[str, Any]  # the run's training configuration (``TrainConfig.to_dict()``)
    model: StateDict  # the trained weights, always the raw ones
    aux_logits: bool = True
    in_chans: int = 3
    arch_options: Dict[str, Any] = field(default_factory=dict)  # create_model options that shape the network
    epoch: int = 0  # epochs completed
    history: List[Dict[str, float]] = field(default_factory=list)  # the metrics rows so far
    best: Dict[str, Any] = field(default_factory=lambda: {"val_acc1": -1.0, "epoch": 0})
    model_ema: Optional[StateDict] = None  # the moving average of the weights, a plain state dict
    ema_updates: int = 0
    selected: str = "model"  # the weights evaluated and selected on: "model" or "ema"
    optimizer: Optional[Dict[str, Any]] = None
    scheduler: Optional[Dict[str, Any]] = None  # for the record: resuming recomputes it from the step
    scaler: Optional[Dict[str, Any]] = None
    rng: Optional[Dict[str, Any]] = None  # see rng_state()
    data_folder: Optional[str] = None  # the prepared folder the run trained on (absent before it was kept)
    data_fingerprint: Optional[str] = None  # a hash of that folder's counts and manifest (resume compares it)

    def to_dict(self) -> Dict[str, Any]:
        """The dict stored on disk (current version, ``data_config`` as a plain dict)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["data_config"] = self.data_config.to_dict()
        return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **d}

    @classmethod
    def from_dict(cls, d: Dict[str, Any], path: PathLike) -> "Checkpoint":
        """A checkpoint from its stored dict, any version (upgraded); :class:`UsageError` naming
        ``path`` when it is not ours, is newer than this code, or lacks a required key. Keys
        this version does not know are ignored."""
        if not isinstance(d, dict) or d.get("format") != CHECKPOINT_FORMAT:
            raise UsageError(f"{path} is not a checkpoint of inception_v2 (no '{CHECKPOINT_FORMAT}' format field)")
        version = d.get("version")
        if not isinstance(version, int) or version > CHECKPOINT_VERSION:
            raise UsageError(
                f"checkpoint {path} has format version {version!r}; this code reads up to {CHECKPOINT_VERSION}"
            )
        missing = [k for k in REQUIRED if k not in d]
        if missing:
            raise UsageError(f"checkpoint {path} lacks {', '.join(missing)}")
        d = upgrade_checkpoint(d)
        known = {f.name for f in fields(cls)}
        # an optional key stored as None takes its default (model_ema's is None)
        values = {k: v for k, v in d.items() if k in known and (k in REQUIRED or v is not None)}
        values["data_config"] = DataConfig.from_dict(d["data_config"], path)
        return cls(**values)


def upgrade_checkpoint(d: Dict[str, Any]) -> Dict[str, Any]:
    """A stored checkpoint dict of any version in the current layout (the one place older
    versions are read). Version 1 -> 2: the ``AveragedModel`` state under ``ema`` becomes the
    plain ``model_ema`` state dict; ``selected`` is the EMA when there is one (version 1 always
    evaluated the EMA when it kept one)."""
    if d.get("version", 1) >= 2:
        return d
    d = dict(d)
    ema = d.pop("ema", None)
    if ema is not None:
        d["model_ema"] = {k[len("module.") :]: v for k, v in ema.items() if k.startswith("module.")}
        n = ema.get("n_averaged")
        d["ema_updates"] = int(n) if n is not None else 0
    else:
        d["model_ema"] = None
    d["selected"] = "ema" if d["model_ema"] is not None else "model"
    d["version"] = CHECKPOINT_VERSION
    return d


def _load_dict(path: Path) -> Any:
    if path.is_dir():
        raise UsageError(f"checkpoint {path} is a folder, not a file")
    if not path.is_file():
        raise UsageError(f"checkpoint {path} does not exist" if not path.exists() else f"{path} is not a regular file")
    refuse_torchscript(path)
    with open(path, "rb") as f:
        head = f.read(2)
    # torch.save writes a zip archive (older PyTorch: a pickle, which starts with 0x80)
    if not zipfile.is_zipfile(path) and not head.startswith(b"\x80"):
        raise UsageError(
            f"{path} is not a PyTorch checkpoint: neither a zip archive nor a pickle (wrong or damaged file)"
        )
    try:
        with open(path, "rb") as f:
            return torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Weights only" in str(e):
            raise UsageError(
                f"refused to load {path}: it holds Python objects other than tensors and plain "
                "containers, which are never unpickled (not a checkpoint of this project, or crafted)"
            ) from None
        raise UsageError(f"checkpoint {path} is corrupt: {first_line(e)}") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, UnicodeDecodeError) as e:
        raise UsageError(f"checkpoint {path} is truncated or corrupt: {first_line(e)}") from None


def read_checkpoint(path: PathLike) -> Checkpoint:
    """Read a checkpoint to CPU with ``weights_only=True``; :class:`UsageError` if it is missing,
    refused (holds arbitrary Python objects), unreadable (truncated, corrupt) or not ours."""
    return Checkpoint.from_dict(_load_dict(Path(path)), path)


def write_checkpoint(path: PathLike, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically (a reader sees the old file or the new one).
    The archive is built in memory first: torch's own writer reports a full disk as an opaque
    ``RuntimeError``, Python's as ``OSError`` naming ``path``."""
    buffer = io.BytesIO()
    torch.save(checkpoint.to_dict(), buffer)
    with atomic_open(path, "wb") as f:
        f.write(buffer.getbuffer())


def is_checkpoint_dict(obj: Any) -> bool:
    """Whether a loaded object is one of our checkpoints (by its ``format`` field)."""
    return isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT


def selected_weights(checkpoint: Checkpoint, path: PathLike, weights: str = "auto") -> StateDict:
    """The state dict to deploy from a checkpoint: ``auto`` takes the weights the run selected
    on (``selected``: the EMA under the ``paper`` recipe, else the trained ones); ``model`` and
    ``ema`` choose explicitly."""
    if weights not in WEIGHTS_CHOICES:
        raise UsageError(f"weights must be one of {', '.join(WEIGHTS_CHOICES)}, got {weights!r}")
    if weights == "auto":
        weights = checkpoint.selected or ("ema" if checkpoint.model_ema is not None else "model")
    if weights == "ema":
        if checkpoint.model_ema is None:
            raise UsageError(f"checkpoint {path} holds no EMA weights")
        return checkpoint.model_ema
    return checkpoint.model


# --------------------------------------------------------------------------- from and to a training run


@dataclass(frozen=True)
class RunInfo:
    """What a checkpoint says about its run besides the training objects' states."""

    model_name: str
    num_classes: int
    classes: List[str]
    aux_logits: bool
    data_config: DataConfig
    config: Dict[str, Any]  # TrainConfig.to_dict()
    epoch: int  # epochs completed
    history: List[Dict[str, float]]
    best: Dict[str, Any]  # {"val_acc1", "epoch"}
    data_folder: Optional[str] = None
    data_fingerprint: Optional[str] = None


def checkpoint_from_training(
    run: RunInfo,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    ema: Optional[Any],
) -> Checkpoint:
    """The checkpoint of a training run after an epoch: ``run`` and the states of the model (its
    raw weights), the optimizer, the schedule, the gradient scaler, the EMA (an
    ``AveragedModel`` or None: the weights evaluated then) and the random generators."""
    return Checkpoint(
        **{f.name: getattr(run, f.name) for f in fields(run)},
        # what rebuilds this very network (a release's options, e.g. Caffe pooling)
        in_chans=int(getattr(model, "in_chans", 3)),
        arch_options=dict(getattr(model, "arch_options", {})),
        model=model.state_dict(),
        model_ema=ema.module.state_dict() if ema is not None else None,  # plain, no "module."
        ema_updates=int(ema.n_averaged) if ema is not None else 0,
        selected="ema" if ema is not None else "model",
        optimizer=optimizer.state_dict(),
        scheduler=scheduler.state_dict() if scheduler is not None else None,
        scaler=scaler.state_dict(),
        rng=rng_state(),
    )


def restore_training(
    checkpoint: Checkpoint, path: PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: Any, ema: Any
) -> None:
    """The inverse of :func:`checkpoint_from_training` (the schedule follows from the epoch),
    with a one-line :class:`UsageError` for a state that does not fit."""
    load_weights(model, checkpoint.model, path, "model")
    if ema is not None:
        if checkpoint.model_ema is None:
            raise UsageError(f"{path}: the run keeps an EMA but the checkpoint holds none")
        load_weights(ema.module, checkpoint.model_ema, path, "EMA")
    try:
        optimizer.load_state_dict(checkpoint.optimizer)
        scaler.load_state_dict(checkpoint.scaler)
        if ema is not None:
            ema.n_averaged.fill_(int(checkpoint.ema_updates))
        set_rng_state(checkpoint.rng)
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as e:
        raise UsageError(f"{path}: cannot restore the training state: {e}") from None


# --------------------------------------------------------------------------- random generators


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
    """The inverse of :func:`rng_state`."""
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
