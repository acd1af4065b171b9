"""Release folders of models: :func:`write_release` writes a model's (``inception-v2 export
--format safetensors --out DIR``), :func:`export_release` a checkpoint's. The folder's format
(``model.safetensors`` + ``config.json``, its keys and version) is
:mod:`inception_v2.formats.release`.

For a checkpoint, ``model.safetensors`` holds the weights the run was selected with (the EMA
ones under the ``paper`` recipe, :func:`inception_v2.formats.checkpoint.selected_weights`).
``create_model(name, pretrained=DIR)`` and ``load_model(DIR)`` read the folder back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import torch
from torch import nn

from inception_v2.deploy.load import model_from_checkpoint
from inception_v2.errors import UsageError
from inception_v2.formats.checkpoint import read_checkpoint, selected_weights
from inception_v2.formats.release import (  # noqa: F401  (re-exported: the names of earlier versions)
    RELEASE_CONFIG,
    RELEASE_FORMAT,
    RELEASE_VERSION,
    RELEASE_WEIGHTS,
    ReleaseConfig,
    write_release_folder,
)
from inception_v2.formats.state_dict import model_name
from inception_v2.paths import PathLike


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


def release_config(model: nn.Module, weights: str, classes: Optional[List[str]] = None) -> ReleaseConfig:
    """The ``config.json`` of ``model`` (built by ``create_model`` or ``load_model``)."""
    cfg = getattr(model, "data_config", None)
    if cfg is None or not hasattr(model, "arch_options"):
        raise UsageError("only models built by create_model or load_model can be released")
    if classes is None:
        classes = getattr(model, "classes", None)
    if classes is not None and len(classes) != model.num_classes:
        raise UsageError(f"{len(classes)} class names for a {model.num_classes}-class model")
    return ReleaseConfig(
        model_name=model.name,
        num_classes=int(model.num_classes),
        classes=list(classes) if classes is not None else None,
        in_chans=int(model.in_chans),
        aux_logits=bool(model.aux_logits),
        arch_options=dict(model.arch_options),
        data_config=cfg,
        weights=weights,
    )


def write_release(
    model: nn.Module,
    out: PathLike,
    weights: str = "model",
    state_dict: Optional[Dict[str, torch.Tensor]] = None,
    classes: Optional[List[str]] = None,
) -> ReleaseResult:
    """Write ``out/model.safetensors`` (``state_dict``, default the model's own) and
    ``out/config.json``; the folder is created if needed and locked while it is written."""
    config = release_config(model, weights, classes)
    tensors = state_dict or model.state_dict()
    if set(tensors) != set(model.state_dict()):
        raise UsageError(f"the weights do not fit {model_name(model)}: their keys differ from the model's")
    size = write_release_folder(out, config, tensors)
    return ReleaseResult(Path(out), model.name, config.num_classes, len(tensors), size, weights)


def export_release(source: PathLike, out: PathLike, weights: str = "auto") -> ReleaseResult:
    """The release folder of a training checkpoint: the weights it selected on (``weights``:
    ``auto``, ``model`` or ``ema``, see :func:`inception_v2.formats.checkpoint.selected_weights`)."""
    checkpoint = read_checkpoint(source)
    chosen = selected_weights(checkpoint, source, weights)
    which = "ema" if chosen is checkpoint.model_ema else "model"
    model = model_from_checkpoint(checkpoint, source, which)
    return write_release(model, out, which, chosen)
