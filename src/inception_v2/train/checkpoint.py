"""Checkpoints: written atomically, read without ever unpickling arbitrary objects.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (``torch.save``'s zip
format), so :func:`torch.load` reads it with ``weights_only=True``: a file holding anything else
(a crafted pickle whose ``__reduce__`` would run code, a pickled nn.Module) is refused before any
of it runs. A truncated, corrupt or foreign file, or one whose weights do not fit its model,
raises :class:`~inception_v2.errors.UsageError` with a one-line message naming the file.

Keys: ``format``, ``version``, ``model_name``, ``num_classes``, ``classes``, ``data_config``,
``config`` (the run's :class:`TrainConfig` as a dict), ``epoch`` (epochs completed), ``history``
(the metrics rows so far), ``best`` (``{"val_acc1", "epoch"}``), ``model``, ``ema`` (or None),
``optimizer``, ``scheduler``, ``scaler``, ``rng``.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np
import torch
from torch import nn

from inception_v2.atomic import atomic_open
from inception_v2.errors import UsageError
from inception_v2.models import DataConfig, create_model, list_models

FORMAT = "inception_v2.checkpoint"
VERSION = 1

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


# --------------------------------------------------------------------------- save / load


def data_config_dict(cfg: DataConfig) -> Dict[str, Any]:
    return {
        "input_size": cfg.input_size,
        "resize_size": cfg.resize_size,
        "min_input_size": cfg.min_input_size,
        "mean": list(cfg.mean),
        "std": list(cfg.std),
    }


def save_checkpoint(path: PathLike, state: Dict[str, Any]) -> None:
    """Write ``state`` (see the module docstring) atomically, stamped with format and version."""
    with atomic_open(path, "wb") as f:
        torch.save({"format": FORMAT, "version": VERSION, **state}, f)


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Read a checkpoint to CPU with ``weights_only=True``; :class:`UsageError` if it is missing,
    refused (holds arbitrary Python objects), unreadable (truncated, corrupt) or not ours."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint {path} does not exist")
    try:
        with open(path, "rb") as f:
            state = torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Weights only" in str(e):
            raise UsageError(
                f"refused to load {path}: it holds Python objects other than tensors and plain "
                "containers, which are never unpickled (not a checkpoint of this project, or crafted)"
            ) from None
        raise UsageError(f"checkpoint {path} is corrupt: {_first_line(e)}") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as e:
        raise UsageError(f"checkpoint {path} is truncated or corrupt: {_first_line(e)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UsageError(f"{path} is not a checkpoint of inception_v2 (no '{FORMAT}' format field)")
    version = state.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise UsageError(f"checkpoint {path} has format version {version!r}; this code reads up to {VERSION}")
    missing = [k for k in ("model_name", "num_classes", "classes", "data_config", "config", "model") if k not in state]
    if missing:
        raise UsageError(f"checkpoint {path} lacks {', '.join(missing)}")
    return state


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# --------------------------------------------------------------------------- models


def ema_module_state(ema_state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The wrapped model's state dict out of an ``AveragedModel`` state dict."""
    return {k[len("module."):]: v for k, v in ema_state.items() if k.startswith("module.")}


def load_weights(model: nn.Module, weights: Dict[str, torch.Tensor], path: PathLike, what: str) -> None:
    """``model.load_state_dict(weights)`` with a one-line :class:`UsageError` on a mismatch."""
    try:
        model.load_state_dict(weights, strict=True)
    except (RuntimeError, AttributeError, TypeError) as e:
        own = model.state_dict()
        if not isinstance(weights, dict):
            raise UsageError(f"checkpoint {path}: the {what} weights are not a state dict") from None
        missing = [k for k in own if k not in weights]
        unexpected = [k for k in weights if k not in own]
        shapes = [k for k in own if k in weights and getattr(weights[k], "shape", None) != own[k].shape]
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shapes:
            detail.append(f"{len(shapes)} of another shape (e.g. {shapes[0]})")
        raise UsageError(
            f"checkpoint {path}: the {what} weights do not fit {getattr(model, 'name', type(model).__name__)}: "
            + ("; ".join(detail) or _first_line(e))
        ) from None


def model_from_checkpoint(state: Dict[str, Any], path: PathLike, weights: str = "auto") -> nn.Module:
    """Build the checkpoint's model and load its weights (eval mode, on CPU).

    ``weights``: ``"auto"`` takes the EMA weights when the run kept an EMA (they are what was
    evaluated and selected), else the trained ones; ``"model"`` / ``"ema"`` choose explicitly.
    The returned model's ``data_config`` is the trained input pipeline and ``classes`` lists
    the class names.
    """
    name = state["model_name"]
    if name not in list_models():
        raise UsageError(f"checkpoint {path} is of unknown model {name!r}; available: {', '.join(list_models())}")
    config = state["config"]
    dropout = config.get("dropout") if isinstance(config, dict) else None
    aux = bool(state.get("aux_logits", True))
    model = create_model(name, num_classes=int(state["num_classes"]), aux_logits=aux, dropout=dropout)
    ema: Optional[Dict[str, torch.Tensor]] = state.get("ema")
    if weights == "ema" and ema is None:
        raise UsageError(f"checkpoint {path} holds no EMA weights")
    if ema is not None and weights in ("auto", "ema"):
        load_weights(model, ema_module_state(ema), path, "EMA")
    else:
        load_weights(model, state["model"], path, "model")
    try:
        d = state["data_config"]
        model.data_config = DataConfig(
            input_size=int(d["input_size"]), resize_size=int(d["resize_size"]),
            min_input_size=int(d["min_input_size"]), mean=tuple(d["mean"]), std=tuple(d["std"]),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"checkpoint {path} has a bad data_config: {e}") from None
    model.classes = list(state["classes"])
    if len(model.classes) != model.num_classes:
        raise UsageError(f"checkpoint {path} names {len(model.classes)} classes for a {model.num_classes}-class model")
    return model.eval()


def load_model(path: PathLike, device: Union[str, torch.device] = "cpu", weights: str = "auto") -> nn.Module:
    """The trained model of a checkpoint, in eval mode on ``device``.

    ``model.data_config`` is the input pipeline it was trained with (input and resize size,
    normalization) and ``model.classes`` the class names, index = label. With an EMA (the
    ``paper`` recipe) the EMA weights are returned unless ``weights="model"``.
    """
    if weights not in ("auto", "model", "ema"):
        raise ValueError(f"weights must be auto, model or ema, got {weights!r}")
    return model_from_checkpoint(load_checkpoint(path), path, weights).to(device)
