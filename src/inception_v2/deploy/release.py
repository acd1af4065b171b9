"""Release folders: a model's weights as ``model.safetensors`` and what they are as
``config.json`` (``inception-v2 export --format safetensors --out DIR``).

``model.safetensors`` holds the state dict only (no pickled Python, nothing executable): for a
checkpoint, the weights the run was selected with (the EMA ones under the ``paper`` recipe,
:func:`inception_v2.deploy.load.selected_weights`). ``config.json`` holds:

* ``format`` (``"inception_v2.release"``) and ``version`` (1);
* ``model_name``, ``num_classes``, ``classes`` (the class names, index = label, or null for an
  untrained model), ``in_chans``, ``aux_logits`` and ``arch_options`` (the keyword arguments of
  ``create_model`` that shape the network, e.g. the options of a converted release);
* ``data_config``: ``input_size``, ``resize_size``, ``min_input_size``, ``mean``, ``std`` and
  ``interpolation`` of the evaluation preprocessing;
* ``weights``: which weights of the source these are (``model``, ``ema`` or ``untrained``).

``create_model(name, pretrained=DIR)`` and ``load_model(DIR)`` read the folder back. Both files
are written atomically while the folder's lock is held (:func:`inception_v2.locking.exclusive`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import torch
from torch import nn

from inception_v2.atomic import write_bytes, write_json
from inception_v2.deploy.release_schema import validate_release_config
from inception_v2.errors import UsageError
from inception_v2.locking import exclusive

PathLike = Union[str, "os.PathLike[str]"]

RELEASE_FORMAT = "inception_v2.release"
RELEASE_VERSION = 1
RELEASE_WEIGHTS = "model.safetensors"  # a release folder: these weights ...
RELEASE_CONFIG = "config.json"  # ... and what they are (model, classes, data config)


@dataclass(frozen=True)
class ReleaseResult:
    folder: Path
    model_name: str
    num_classes: int
    tensors: int
    size_bytes: int
    weights: str

    def describe(self) -> str:
        return (
            f"wrote {self.folder / RELEASE_WEIGHTS} ({self.size_bytes / 1e6:.1f} MB, {self.tensors} tensors, "
            f"{self.weights} weights) and {self.folder / RELEASE_CONFIG}: {self.model_name}, "
            f"{self.num_classes} classes"
        )


def release_config(model: nn.Module, weights: str, classes: Optional[List[str]] = None) -> Dict[str, Any]:
    """The ``config.json`` of ``model`` (built by ``create_model`` or ``load_model``)."""
    from inception_v2.deploy.load import data_config_dict

    cfg = getattr(model, "data_config", None)
    if cfg is None or not hasattr(model, "arch_options"):
        raise UsageError("only models built by create_model or load_model can be released")
    if classes is None:
        classes = getattr(model, "classes", None)
    if classes is not None and len(classes) != model.num_classes:
        raise UsageError(f"{len(classes)} class names for a {model.num_classes}-class model")
    return {
        "format": RELEASE_FORMAT,
        "version": RELEASE_VERSION,
        "model_name": model.name,
        "num_classes": int(model.num_classes),
        "classes": list(classes) if classes is not None else None,
        "in_chans": int(model.in_chans),
        "aux_logits": bool(model.aux_logits),
        "arch_options": dict(model.arch_options),
        "data_config": data_config_dict(cfg),
        "weights": weights,
    }


def write_release(
    model: nn.Module,
    out: PathLike,
    weights: str = "model",
    state_dict: Optional[Dict[str, torch.Tensor]] = None,
    classes: Optional[List[str]] = None,
) -> ReleaseResult:
    """Write ``out/model.safetensors`` (``state_dict``, default the model's own) and
    ``out/config.json``; the folder is created if needed and locked while it is written."""
    from safetensors.torch import save

    config = release_config(model, weights, classes)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in (state_dict or model.state_dict()).items()}
    own = model.state_dict()
    if set(tensors) != set(own):
        raise UsageError(f"the weights do not fit {model.name}: their keys differ from the model's")
    data = save(tensors, metadata={"format": "pt", "model_name": model.name})
    out = Path(out)
    with exclusive(out, "release folder"):
        write_bytes(out / RELEASE_WEIGHTS, data)
        write_json(out / RELEASE_CONFIG, config)
    return ReleaseResult(out, model.name, config["num_classes"], len(tensors), len(data), weights)


def export_release(source: PathLike, out: PathLike, weights: str = "auto") -> ReleaseResult:
    """The release folder of a training checkpoint: the weights it selected on (``weights``:
    ``auto``, ``model`` or ``ema``, see :func:`inception_v2.deploy.load.selected_weights`)."""
    from inception_v2.deploy.load import load_checkpoint, model_from_checkpoint, selected_weights

    state = load_checkpoint(source)
    chosen = selected_weights(state, source, weights)
    which = "ema" if chosen is state.get("model_ema") else "model"
    model = model_from_checkpoint(state, source, which)
    return write_release(model, out, which, chosen)


def read_release(folder: PathLike) -> Dict[str, Any]:
    """``folder/config.json``, checked; :class:`UsageError` naming the file when it is missing,
    unreadable or not ours."""
    folder = Path(folder)
    path = folder / RELEASE_CONFIG
    if not (folder / RELEASE_WEIGHTS).is_file():
        raise UsageError(f"{folder} is a folder without {RELEASE_WEIGHTS}: not a release folder")
    if not path.is_file():
        raise UsageError(f"release folder {folder} lacks {RELEASE_CONFIG}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UsageError(f"{path} is not readable JSON: {e}") from None
    if not isinstance(config, dict) or config.get("format") != RELEASE_FORMAT:
        raise UsageError(f"{path} is not the config of an inception_v2 release (no {RELEASE_FORMAT!r} format field)")
    if not isinstance(config.get("version"), int) or config["version"] > RELEASE_VERSION:
        version = config.get("version")
        raise UsageError(f"{path} has format version {version!r}; this code reads up to {RELEASE_VERSION}")
    missing = [k for k in ("model_name", "num_classes", "data_config") if k not in config]
    if missing:
        raise UsageError(f"{path} lacks {', '.join(missing)}")
    validate_release_config(config, path)
    return config


def read_safetensors(path: PathLike) -> Dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file, on CPU; :class:`UsageError` for a bad file."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for bad files
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UsageError(f"{path} is not a readable safetensors file: {first}") from None
