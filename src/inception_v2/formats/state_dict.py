"""State dicts (a model's weights by name) and the safetensors files that hold them: reading
one safely, checking that one fits a model, loading it with a one-line error."""

from __future__ import annotations

from typing import Any, Dict, Iterable

import torch
from torch import nn

from inception_v2.errors import UsageError, first_line
from inception_v2.paths import PathLike

StateDict = Dict[str, torch.Tensor]


def model_name(model: nn.Module) -> str:
    """How messages name a model: its registry name, else its class's name."""
    return getattr(model, "name", type(model).__name__)


def state_dict_mismatch(own: Dict[str, torch.Tensor], weights: Dict[str, Any], skip: Iterable[str] = ()) -> str:
    """How ``weights`` fail to fit a model whose state dict is ``own``: the count and an example
    of the missing keys (but ``skip``), the unexpected ones and those of another shape; empty
    when they fit."""
    skip = set(skip)
    missing = [k for k in own if k not in weights and k not in skip]
    unexpected = [k for k in weights if k not in own]
    shapes = [k for k in own if k in weights and getattr(weights[k], "shape", None) != own[k].shape]
    detail = []
    if missing:
        detail.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        detail.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if shapes:
        detail.append(f"{len(shapes)} of another shape (e.g. {shapes[0]})")
    return "; ".join(detail)


def load_weights(model: nn.Module, weights: StateDict, path: PathLike, what: str) -> None:
    """``model.load_state_dict(weights)`` with a one-line :class:`UsageError` on a mismatch."""
    try:
        model.load_state_dict(weights, strict=True)
    except (RuntimeError, AttributeError, TypeError) as e:
        if not isinstance(weights, dict):
            raise UsageError(f"{path}: the {what} weights are not a state dict") from None
        raise UsageError(
            f"{path}: the {what} weights do not fit {model_name(model)}: "
            + (state_dict_mismatch(model.state_dict(), weights) or first_line(e))
        ) from None


def read_safetensors(path: PathLike) -> StateDict:
    """The tensors of a ``.safetensors`` file, on CPU; :class:`UsageError` for a bad file."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for bad files
        raise UsageError(f"{path} is not a readable safetensors file: {first_line(e)}") from None


def safetensors_bytes(tensors: StateDict, metadata: Dict[str, str]) -> bytes:
    """``tensors`` (moved to the CPU, made contiguous) as the bytes of a ``.safetensors`` file."""
    from safetensors.torch import save

    return save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, metadata=metadata)
