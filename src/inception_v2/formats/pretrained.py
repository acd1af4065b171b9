"""Reading the weights of any file or folder a user may pass as ``pretrained=``: a release
folder, a training checkpoint, a ``.safetensors`` file or a ``.pt`` / ``.pth`` state dict."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple

import torch

from inception_v2.errors import UsageError, first_line
from inception_v2.formats.checkpoint import is_checkpoint_dict, read_checkpoint, selected_weights
from inception_v2.formats.release import read_release_folder
from inception_v2.formats.state_dict import StateDict, read_safetensors
from inception_v2.formats.untrusted import refuse_torchscript
from inception_v2.paths import PathLike


def read_pretrained(source: PathLike) -> Tuple[StateDict, Dict[str, Any]]:
    """The weights of a file or folder for ``create_model(..., pretrained=source)``, and what is
    known about them (``model_name``, ``arch_options``; empty for a bare state dict):

    * a release folder (``model.safetensors`` + ``config.json``);
    * a training checkpoint (``.pt``): the weights the run selected on;
    * a ``.safetensors`` file, or a ``.pt`` / ``.pth`` file holding a plain state dict (ours, or
      a published release's own, which :mod:`inception_v2.models.weights` converts).
    """
    path = Path(source)
    if path.is_dir():
        config, weights = read_release_folder(path)
        return weights, {"model_name": config.model_name, "arch_options": dict(config.arch_options)}
    if not path.exists():
        raise UsageError(f"weights {path} do not exist")
    if path.suffix == ".safetensors":
        return read_safetensors(path), {}
    if not path.is_file():
        raise UsageError(f"weights {path} are not a regular file")
    refuse_torchscript(path)
    try:
        with open(path, "rb") as f:
            obj = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every failure to read is the same message
        raise UsageError(f"{path} is neither a checkpoint nor a state dict: {first_line(e)}") from None
    if is_checkpoint_dict(obj):
        checkpoint = read_checkpoint(path)
        meta = {"model_name": checkpoint.model_name, "arch_options": dict(checkpoint.arch_options)}
        return selected_weights(checkpoint, path), meta
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj, {}
    raise UsageError(f"{path} is neither a checkpoint of inception_v2 nor a state dict of tensors")
