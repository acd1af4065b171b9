"""The schema of a release folder's ``config.json`` and of a stored data config, checked before
anything is built from them.

A config file is input like any other: a wrong type (``"count_include_pad": "yes"``), a
two-element ``std``, a zero ``std`` or ``"num_classes": 1e12`` must be a one-line
:class:`~inception_v2.errors.UsageError` naming the file and the key, not a crash, a division
by zero or an attempt to allocate a terabyte. These functions only check; the readers in
:class:`~inception_v2.formats.release.ReleaseConfig` and
:class:`~inception_v2.formats.data_config.DataConfig` call them when they read a file; the
options of a model's builder are checked by :mod:`inception_v2.deploy.release_schema`.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Mapping

from inception_v2.errors import UsageError
from inception_v2.paths import PathLike

MAX_CLASSES = 1_000_000  # far above any classifier (ImageNet-21k has 21841); a bound, not a taste
MAX_IMAGE_SIZE = 8192
MAX_IN_CHANS = 64
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def bad_value(path: PathLike, key: str, value: Any, want: str) -> UsageError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return UsageError(f"{path}: {key} must be {want}, got {shown}")


def _int_in(config: Mapping[str, Any], key: str, low: int, high: int, path: PathLike, prefix: str = "") -> None:
    value = config.get(key)
    if not _is_int(value) or not low <= value <= high:
        raise bad_value(path, prefix + key, value, f"an integer from {low} to {high}")


def validate_data_config(d: Any, path: PathLike, key: str = "data_config") -> None:
    """``d`` is a data config as stored in checkpoints and release files: positive integer
    sizes (resize at least the crop), three finite ``mean`` values, three finite positive
    ``std`` values, a known ``interpolation`` (optional)."""
    if not isinstance(d, dict):
        raise bad_value(path, key, d, "a JSON object")
    for name in ("input_size", "resize_size", "min_input_size"):
        _int_in(d, name, 1, MAX_IMAGE_SIZE, path, key + ".")
    if d["resize_size"] < d["input_size"]:
        raise bad_value(path, f"{key}.resize_size", d["resize_size"], f"at least input_size ({d['input_size']})")
    validate_normalization(d.get("mean"), d.get("std"), path, key + ".")
    interpolation = d.get("interpolation", "bilinear")
    if interpolation not in INTERPOLATIONS:
        raise bad_value(path, f"{key}.interpolation", interpolation, f"one of {', '.join(INTERPOLATIONS)}")


def validate_normalization(mean: Any, std: Any, path: PathLike, prefix: str = "") -> None:
    """``mean`` is 3 finite numbers, ``std`` 3 finite numbers above 0 (one per RGB channel)."""
    for name, values in (("mean", mean), ("std", std)):
        if not isinstance(values, (list, tuple)) or len(values) != 3 or not all(is_finite_number(v) for v in values):
            raise bad_value(path, prefix + name, values, "a list of 3 finite numbers (one per RGB channel)")
    if not all(v > 0 for v in std):
        raise bad_value(path, prefix + "std", std, "3 numbers above 0 (each divides a channel)")


def validate_release_config(config: Dict[str, Any], path: PathLike) -> None:
    """Every key of a release ``config.json`` has its type and a sane value (see
    :mod:`inception_v2.deploy.release` for the keys); :class:`UsageError` naming ``path`` and
    the key otherwise."""
    if not isinstance(config.get("model_name"), str):
        raise bad_value(path, "model_name", config.get("model_name"), "a model name (a string)")
    _int_in(config, "num_classes", 1, MAX_CLASSES, path)
    classes = config.get("classes")
    if classes is not None:
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise bad_value(path, "classes", classes, "a list of class names (strings) or null")
        if len(classes) != config["num_classes"]:
            raise bad_value(path, "classes", f"{len(classes)} names", f"{config['num_classes']} names (num_classes)")
    if "in_chans" in config:
        _int_in(config, "in_chans", 1, MAX_IN_CHANS, path)
    if "aux_logits" in config and not isinstance(config["aux_logits"], bool):
        raise bad_value(path, "aux_logits", config["aux_logits"], "true or false")
    if config.get("weights") is not None and not isinstance(config["weights"], str):
        raise bad_value(path, "weights", config["weights"], "a string")
    if not isinstance(config.get("arch_options") or {}, dict):
        raise bad_value(path, "arch_options", config.get("arch_options"), "a JSON object")
    validate_data_config(config.get("data_config"), path)
