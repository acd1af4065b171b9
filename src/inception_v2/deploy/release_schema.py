"""The architecture options of a stored release or checkpoint, checked against the options of
the model's builder before anything is built from them (the structure of the files themselves
is checked by :mod:`inception_v2.formats.schema` when they are read)."""

from __future__ import annotations

import inspect
from typing import Any, Dict

from inception_v2.formats.schema import bad_value, is_finite_number
from inception_v2.models import registry
from inception_v2.paths import PathLike


def _option_defaults(model_name: str) -> Dict[str, Any]:
    """The default of each architecture option of ``model_name`` (from its builder)."""
    builder = getattr(registry, "_MODELS", {}).get(model_name)
    if builder is None:
        return {}
    return {name: p.default for name, p in inspect.signature(builder).parameters.items() if p.default is not p.empty}


def validate_arch_options(options: Any, model_name: str, path: PathLike) -> None:
    """``arch_options`` is an object whose values have their option's type (a flag is a JSON
    boolean, not ``"yes"``); unknown names are left to the model builder's own message."""
    if not isinstance(options, dict):
        raise bad_value(path, "arch_options", options, "a JSON object")
    defaults = _option_defaults(model_name)
    for name, value in options.items():
        default = defaults.get(name)
        if isinstance(default, bool) and not isinstance(value, bool):
            raise bad_value(path, f"arch_options.{name}", value, "true or false")
        if is_finite_number(default) and not is_finite_number(value):
            raise bad_value(path, f"arch_options.{name}", value, "a finite number")
        if isinstance(default, str) and not isinstance(value, str):
            raise bad_value(path, f"arch_options.{name}", value, "a string")
