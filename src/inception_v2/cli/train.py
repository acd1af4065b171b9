"""``inception-v2 train``: a thin layer over :func:`~inception_v2.train.config.build_config` and
:func:`~inception_v2.train.fit`.

Every flag but ``--config``, ``--resume`` and ``--no-progress`` is generated from a field of
:class:`~inception_v2.train.TrainConfig` (its type, help text and choices), so the two cannot
drift apart. Values layer as: the recipe, then ``--config FILE``, then the flags.

One process: ``inception-v2 train --model inception_v2 --data DIR --out RUN_DIR``.
Data parallel: ``torchrun --nproc_per_node=N -m inception_v2 train ...`` (see docs/training.md).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path
from typing import Any, Dict

from inception_v2.errors import UsageError
from inception_v2.train import distributed as dist_utils
from inception_v2.train.config import (
    RECIPES,
    TrainConfig,
    build_config,
    coerce,
    field_types,
    flag_name,
    load_config_file,
    resume_config,
)
from inception_v2.train.engine import fit

# The flags that are not fields of TrainConfig: how to run, not what.
CLI_ONLY = ("config", "resume", "progress")

GROUPS = {
    "run": "run",
    "optimization": "optimization",
    "schedule": "learning-rate schedule (stepped after every optimizer step)",
    "loss": "loss and regularization",
    "augmentation": "augmentation (torchvision.transforms.v2)",
    "fine-tuning": "fine-tuning",
    "data": "data",
    "hardware": "hardware",
    "logging": "logging",
}


def given_options(args: argparse.Namespace) -> Dict[str, Any]:
    """The config fields given as flags, typed (a flag's value is a string until here, so a bad
    one is the one-line error of :func:`~inception_v2.train.config.coerce`)."""
    return {f.name: coerce(f.name, getattr(args, f.name)) for f in fields(TrainConfig) if hasattr(args, f.name)}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run's config: the recipe, then ``--config``, then the flags; or, when resuming a run
    directory that holds ``config.json`` and ``last.pt``, that config with the given (resumable)
    changes."""
    given: Dict[str, Any] = load_config_file(args.config) if args.config else {}
    given.update(given_options(args))
    out = given.get("out")
    resume = args.resume or dist_utils.restart_count() > 0
    saved_path = Path(out) / "config.json" if out else None
    if resume and saved_path is not None and saved_path.is_file() and (saved_path.parent / "last.pt").is_file():
        try:
            saved = TrainConfig.from_dict(json.loads(saved_path.read_text()))
        except (OSError, ValueError, TypeError) as e:
            raise UsageError(f"{saved_path} is unreadable: {e}") from None
        recipe = given.pop("recipe", None)
        if recipe is not None and recipe != saved.recipe:
            raise UsageError(f"cannot resume {out} (recipe {saved.recipe}) with --recipe {recipe}")
        return resume_config(saved, **given)
    return build_config(given.pop("recipe", None), given)


def run(args: argparse.Namespace) -> int:
    fit(config_from_args(args), resume=args.resume, progress=args.progress)
    return 0


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Train a model on a prepared data set. Defaults are the source's recipe (`blog`, docs/source.md); "
        "--recipe paper switches to the paper's, --config FILE (JSON or YAML, e.g. a run's own config.json) sets "
        "any option, and every flag overrides both. "
        "Writes RUN_DIR/{config.json,metrics.csv,last.pt,best.pt,summary.json}. "
        "Data parallel: torchrun --nproc_per_node=N -m inception_v2 train ... (docs/training.md)"
    )
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="options from a JSON or YAML file (keys: the option names with underscores); flags override it",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from RUN_DIR/last.pt (a new run if there is none; automatic after a torchrun restart)",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="progress bar (--no-progress: one line per epoch only)",
    )
    add_config_flags(p)


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per :class:`TrainConfig` field, in its group. A flag not given is absent from
    the parsed namespace (so that a config file's value or the recipe's stays); numbers are
    parsed by the config (a one-line error naming the flag), ``none`` clears an optional value."""
    groups = {key: p.add_argument_group(title) for key, title in GROUPS.items()}
    types = field_types()
    for f in fields(TrainConfig):
        meta = f.metadata
        base, optional = types[f.name]
        kw: Dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": _help(f, optional)}
        if base is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            choices = meta.get("choices")
            kw["metavar"] = "{" + ",".join(choices) + "}" if choices else (meta.get("metavar") or base.__name__.upper())
        groups[meta["group"]].add_argument(flag_name(f.name), **kw)


def _help(f, optional: bool) -> str:
    text = f.metadata["help"] + ("; none to unset" if optional else "")
    if f.name in ("model", "data", "out"):
        return f"{text} (required, here or in --config)"
    if any(f.name in recipe for recipe in RECIPES.values()):
        shown = ", ".join(f"{name}: {_shown(recipe.get(f.name, f.default))}" for name, recipe in RECIPES.items())
        return f"{text} ({shown})"
    return text if f.default is None else f"{text} (default: {_shown(f.default)})"


def _shown(value: Any) -> str:
    return "none" if value is None else json.dumps(value) if isinstance(value, bool) else str(value)
