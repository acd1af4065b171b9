"""Loading trained models: checkpoints and release folders, read without ever unpickling
arbitrary objects.

The formats themselves (their keys, versions and readers) live in :mod:`inception_v2.formats`;
this module builds the model a file describes and loads its weights into it. A truncated,
corrupt or foreign file, or one whose weights do not fit its model, raises
:class:`~inception_v2.errors.UsageError` with a one-line message naming the file.

This module belongs to the deployment layer: it imports neither the training code nor
matplotlib.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Union

import torch
from torch import nn

from inception_v2.deploy.release_schema import validate_arch_options
from inception_v2.errors import UsageError
from inception_v2.formats.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    WEIGHTS_CHOICES,
    Checkpoint,
    read_checkpoint,
    selected_weights,
)
from inception_v2.formats.data_config import data_config_dict, data_config_from_dict  # noqa: F401  (re-exported)
from inception_v2.formats.pretrained import read_pretrained  # noqa: F401  (re-exported)
from inception_v2.formats.release import RELEASE_CONFIG, RELEASE_WEIGHTS, read_release_folder
from inception_v2.formats.state_dict import load_weights
from inception_v2.models import create_model, list_models, model_options
from inception_v2.paths import PathLike

# the names of earlier versions
FORMAT = CHECKPOINT_FORMAT
VERSION = CHECKPOINT_VERSION


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """A checkpoint as the plain dict stored on disk (any version, upgraded to the current one);
    :class:`UsageError` if it is missing, refused, unreadable or not ours. The typed view is
    :func:`inception_v2.formats.read_checkpoint`."""
    return read_checkpoint(path).to_dict()


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
    validate_arch_options(options, name, path)
    return create_model(name, num_classes=int(num_classes), in_chans=int(in_chans), aux_logits=aux, **extra, **options)


def model_from_checkpoint(checkpoint: Checkpoint, path: PathLike, weights: str = "auto") -> nn.Module:
    """Build the checkpoint's model and load its weights (eval mode, on CPU).

    ``weights``: see :func:`~inception_v2.formats.checkpoint.selected_weights`. The returned
    model's ``data_config`` is the trained input pipeline and ``classes`` lists the class names.
    """
    config = checkpoint.config
    dropout = config.get("dropout") if isinstance(config, dict) else None
    model = _build(
        checkpoint.model_name,
        checkpoint.num_classes,
        checkpoint.in_chans,
        bool(checkpoint.aux_logits),
        checkpoint.arch_options,
        path,
        dropout=dropout,
    )
    chosen = selected_weights(checkpoint, path, weights)
    load_weights(model, chosen, path, "EMA" if chosen is checkpoint.model_ema else "model")
    model.data_config = checkpoint.data_config
    model.classes = list(checkpoint.classes)
    if len(model.classes) != model.num_classes:
        raise UsageError(f"checkpoint {path} names {len(model.classes)} classes for a {model.num_classes}-class model")
    return model.eval()


def model_from_release(folder: PathLike) -> nn.Module:
    """The model of a release folder (eval mode, on CPU), with its ``data_config`` and, when the
    release names them, its ``classes``."""
    config, weights = read_release_folder(folder)
    path = Path(folder) / RELEASE_CONFIG
    model = _build(
        config.model_name, config.num_classes, config.in_chans, bool(config.aux_logits), config.arch_options, path
    )
    load_weights(model, weights, Path(folder) / RELEASE_WEIGHTS, "release")
    model.data_config = config.data_config
    if config.classes is not None:
        if len(config.classes) != model.num_classes:
            raise UsageError(f"{path} names {len(config.classes)} classes for a {model.num_classes}-class model")
        model.classes = list(config.classes)
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
    return model_from_checkpoint(read_checkpoint(path), path, weights).to(device)
