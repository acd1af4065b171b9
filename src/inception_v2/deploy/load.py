"""Loading trained models: checkpoints and release folders, read without ever unpickling
arbitrary objects.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (``torch.save``'s zip
format), so :func:`torch.load` reads it with ``weights_only=True``: a file holding anything else
(a crafted pickle whose ``__reduce__`` would run code, a pickled nn.Module) is refused before any
of it runs. A truncated, corrupt or foreign file, or one whose weights do not fit its model,
raises :class:`~inception_v2.errors.UsageError` with a one-line message naming the file.

Checkpoint keys (format version 2, written by :mod:`inception_v2.train`): ``format``,
``version``, ``model_name``, ``num_classes``, ``classes``, ``aux_logits``, ``data_config``,
``config`` (the run's training configuration as a dict), ``epoch`` (epochs completed),
``history`` (the metrics rows so far), ``best`` (``{"val_acc1", "epoch"}``), ``model`` (the
trained weights, always the raw ones), ``model_ema`` (the exponential moving average of the
weights as a plain state dict, or None), ``ema_updates``, ``selected`` (``"model"`` or
``"ema"``: the weights that were evaluated and selected on), ``optimizer``, ``scheduler``,
``scaler``, ``rng``. Version 1 (before ``model_ema``) kept the EMA as an ``AveragedModel``
state dict under ``ema``; it still loads. Optional keys: ``in_chans`` (default 3) and
``arch_options`` (keyword arguments of ``create_model`` that shape the network, default none).

A release folder (``model.safetensors`` + ``config.json``, :mod:`inception_v2.deploy.release`)
loads the same way: :func:`load_model` takes either.

This module belongs to the deployment layer: it imports neither the training code nor
matplotlib.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
from torch import nn

from inception_v2.deploy.release import RELEASE_CONFIG, RELEASE_WEIGHTS, read_release, read_safetensors
from inception_v2.deploy.release_schema import validate_data_config
from inception_v2.deploy.untrusted import is_torchscript
from inception_v2.errors import UsageError
from inception_v2.models import DataConfig, create_model, list_models, model_options
from inception_v2.models.weights import state_dict_mismatch

FORMAT = "inception_v2.checkpoint"
VERSION = 2
WEIGHTS_CHOICES = ("auto", "model", "ema")

PathLike = Union[str, "os.PathLike[str]"]


def data_config_dict(cfg: DataConfig) -> Dict[str, Any]:
    """A :class:`DataConfig` as the plain dict stored in checkpoints and release files."""
    return {
        "input_size": cfg.input_size,
        "resize_size": cfg.resize_size,
        "min_input_size": cfg.min_input_size,
        "mean": list(cfg.mean),
        "std": list(cfg.std),
        "interpolation": cfg.interpolation,
    }


def data_config_from_dict(d: Any, path: PathLike) -> DataConfig:
    """The inverse of :func:`data_config_dict`, with a one-line error naming ``path``
    (``interpolation`` is optional: bilinear, what files written before it was stored used)."""
    validate_data_config(d, path)
    try:
        return DataConfig(
            input_size=int(d["input_size"]),
            resize_size=int(d["resize_size"]),
            min_input_size=int(d["min_input_size"]),
            mean=tuple(d["mean"]),
            std=tuple(d["std"]),
            interpolation=str(d.get("interpolation", "bilinear")),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"{path} has a bad data_config: {e}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _refuse_torchscript(path: Path) -> None:
    """A TorchScript file is code, never weights (``torch.load`` would hand it to ``torch.jit.load``)."""
    if is_torchscript(path):
        raise UsageError(
            f"{path} is a TorchScript file (a program), not a checkpoint or weights; it is never loaded here"
        )


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Read a checkpoint to CPU with ``weights_only=True``; :class:`UsageError` if it is missing,
    refused (holds arbitrary Python objects), unreadable (truncated, corrupt) or not ours."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"checkpoint {path} is a folder, not a file")
    if not path.is_file():
        raise UsageError(f"checkpoint {path} does not exist" if not path.exists() else f"{path} is not a regular file")
    _refuse_torchscript(path)
    with open(path, "rb") as f:
        head = f.read(2)
    # torch.save writes a zip archive (older PyTorch: a pickle, which starts with 0x80)
    if not zipfile.is_zipfile(path) and not head.startswith(b"\x80"):
        raise UsageError(
            f"{path} is not a PyTorch checkpoint: neither a zip archive nor a pickle (wrong or damaged file)"
        )
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
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, UnicodeDecodeError) as e:
        raise UsageError(f"checkpoint {path} is truncated or corrupt: {_first_line(e)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UsageError(f"{path} is not a checkpoint of inception_v2 (no '{FORMAT}' format field)")
    version = state.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise UsageError(f"checkpoint {path} has format version {version!r}; this code reads up to {VERSION}")
    missing = [k for k in ("model_name", "num_classes", "classes", "data_config", "config", "model") if k not in state]
    if missing:
        raise UsageError(f"checkpoint {path} lacks {', '.join(missing)}")
    return _upgrade(state)


def _upgrade(state: Dict[str, Any]) -> Dict[str, Any]:
    """A version-1 checkpoint in the version-2 layout: the ``AveragedModel`` state under
    ``ema`` becomes the plain ``model_ema`` state dict; ``selected`` is the EMA when there is one
    (version 1 always evaluated the EMA when it kept one)."""
    if state.get("version", 1) >= 2:
        return state
    state = dict(state)
    ema = state.pop("ema", None)
    if ema is not None:
        state["model_ema"] = {k[len("module.") :]: v for k, v in ema.items() if k.startswith("module.")}
        n = ema.get("n_averaged")
        state["ema_updates"] = int(n) if n is not None else 0
    else:
        state["model_ema"] = None
    state["selected"] = "ema" if state["model_ema"] is not None else "model"
    state["version"] = VERSION
    return state


def selected_weights(state: Dict[str, Any], path: PathLike, weights: str = "auto") -> Dict[str, torch.Tensor]:
    """The state dict to deploy from a checkpoint: ``auto`` takes the weights the run selected
    on (``selected``: the EMA under the ``paper`` recipe, else the trained ones); ``model`` and
    ``ema`` choose explicitly."""
    if weights not in WEIGHTS_CHOICES:
        raise UsageError(f"weights must be one of {', '.join(WEIGHTS_CHOICES)}, got {weights!r}")
    ema: Optional[Dict[str, torch.Tensor]] = state.get("model_ema")
    if weights == "auto":
        weights = state.get("selected") or ("ema" if ema is not None else "model")
    if weights == "ema":
        if ema is None:
            raise UsageError(f"checkpoint {path} holds no EMA weights")
        return ema
    return state["model"]


def load_weights(model: nn.Module, weights: Dict[str, torch.Tensor], path: PathLike, what: str) -> None:
    """``model.load_state_dict(weights)`` with a one-line :class:`UsageError` on a mismatch."""
    try:
        model.load_state_dict(weights, strict=True)
    except (RuntimeError, AttributeError, TypeError) as e:
        if not isinstance(weights, dict):
            raise UsageError(f"{path}: the {what} weights are not a state dict") from None
        raise UsageError(
            f"{path}: the {what} weights do not fit {getattr(model, 'name', type(model).__name__)}: "
            + (state_dict_mismatch(model.state_dict(), weights) or _first_line(e))
        ) from None


def _build(
    name: Any, num_classes: Any, in_chans: Any, aux: bool, options: Any, path: PathLike, **extra: Any
) -> nn.Module:
    if name not in list_models():
        raise UsageError(f"{path} holds an unknown model {name!r}; available: {', '.join(list_models())}")
    if not isinstance(options, dict):
        raise UsageError(f"{path} has bad arch_options: not a mapping")
    unknown = sorted(set(options) - set(model_options(name)))
    if unknown:  # options of another model (a mislabelled file), or of a newer version of this code
        raise UsageError(
            f"{path}: its architecture options {', '.join(unknown)} do not fit {name} "
            f"(whose options are {', '.join(model_options(name))})"
        )
    return create_model(name, num_classes=int(num_classes), in_chans=int(in_chans), aux_logits=aux, **extra, **options)


def model_from_checkpoint(state: Dict[str, Any], path: PathLike, weights: str = "auto") -> nn.Module:
    """Build the checkpoint's model and load its weights (eval mode, on CPU).

    ``weights``: see :func:`selected_weights`. The returned model's ``data_config`` is the
    trained input pipeline and ``classes`` lists the class names.
    """
    config = state["config"]
    dropout = config.get("dropout") if isinstance(config, dict) else None
    aux = bool(state.get("aux_logits", True))
    model = _build(
        state["model_name"],
        state["num_classes"],
        state.get("in_chans", 3),
        aux,
        state.get("arch_options") or {},
        path,
        dropout=dropout,
    )
    chosen = selected_weights(state, path, weights)
    load_weights(model, chosen, path, "EMA" if chosen is state.get("model_ema") else "model")
    model.data_config = data_config_from_dict(state["data_config"], path)
    model.classes = list(state["classes"])
    if len(model.classes) != model.num_classes:
        raise UsageError(f"checkpoint {path} names {len(model.classes)} classes for a {model.num_classes}-class model")
    return model.eval()


def model_from_release(folder: PathLike) -> nn.Module:
    """The model of a release folder (eval mode, on CPU), with its ``data_config`` and, when the
    release names them, its ``classes``."""
    config = read_release(folder)
    path = Path(folder) / RELEASE_CONFIG
    model = _build(
        config["model_name"],
        config["num_classes"],
        config.get("in_chans", 3),
        bool(config.get("aux_logits", True)),
        config.get("arch_options") or {},
        path,
    )
    load_weights(model, read_safetensors(Path(folder) / RELEASE_WEIGHTS), Path(folder) / RELEASE_WEIGHTS, "release")
    model.data_config = data_config_from_dict(config["data_config"], path)
    classes = config.get("classes")
    if classes is not None:
        if len(classes) != model.num_classes:
            raise UsageError(f"{path} names {len(classes)} classes for a {model.num_classes}-class model")
        model.classes = list(classes)
    return model.eval()


def load_model(path: PathLike, device: Union[str, torch.device] = "cpu", weights: str = "auto") -> nn.Module:
    """The trained model of a checkpoint or a release folder, in eval mode on ``device``.

    ``model.data_config`` is the input pipeline it was trained with (input and resize size,
    normalization) and ``model.classes`` the class names, index = label. From a checkpoint, the
    weights are those the run selected on (the EMA under the ``paper`` recipe) unless
    ``weights`` says otherwise; a release folder holds one set of weights.
    """
    if weights not in WEIGHTS_CHOICES:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS_CHOICES)}, got {weights!r}")
    if Path(path).is_dir():
        if weights != "auto":
            raise UsageError(f"{path} is a release folder: it holds one set of weights (no weights={weights!r})")
        return model_from_release(path).to(device)
    return model_from_checkpoint(load_checkpoint(path), path, weights).to(device)


# --------------------------------------------------------------------------- weights for create_model


def read_pretrained(source: PathLike) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """The weights of a file or folder for ``create_model(..., pretrained=source)``, and what is
    known about them (``model_name``, ``arch_options``; empty for a bare state dict):

    * a release folder (``model.safetensors`` + ``config.json``);
    * a training checkpoint (``.pt``): the weights the run selected on;
    * a ``.safetensors`` file, or a ``.pt`` / ``.pth`` file holding a plain state dict (ours, or
      a published release's own, which :mod:`inception_v2.models.weights` converts).
    """
    path = Path(source)
    if path.is_dir():
        config = read_release(path)
        meta = {"model_name": config["model_name"], "arch_options": config.get("arch_options") or {}}
        return read_safetensors(path / RELEASE_WEIGHTS), meta
    if not path.exists():
        raise UsageError(f"weights {path} do not exist")
    if path.suffix == ".safetensors":
        return read_safetensors(path), {}
    if not path.is_file():
        raise UsageError(f"weights {path} are not a regular file")
    _refuse_torchscript(path)
    try:
        with open(path, "rb") as f:
            obj = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every failure to read is the same message
        raise UsageError(f"{path} is neither a checkpoint nor a state dict: {_first_line(e)}") from None
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        state = load_checkpoint(path)
        meta = {"model_name": state["model_name"], "arch_options": state.get("arch_options") or {}}
        return selected_weights(state, path), meta
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj, {}
    raise UsageError(f"{path} is neither a checkpoint of inception_v2 nor a state dict of tensors")


def read_state_dict(source: Union[PathLike, Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """The weights of ``source`` as a state dict: a state dict itself, or anything
    :func:`read_pretrained` reads."""
    if isinstance(source, dict):
        return source
    return read_pretrained(source)[0]
