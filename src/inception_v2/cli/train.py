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
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from inception_v2.errors import UsageError
from inception_v2.train import distributed as dist_utils
from inception_v2.train.config import (
    RECIPES,
    TrainConfig,
    coerce,
    field_types,
    flag_name,
    load_config_file,
)
from inception_v2.train.engine import TrainHooks, fit
from inception_v2.train.resume import run_config

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
    changes (:func:`~inception_v2.train.resume.run_config`)."""
    given: Dict[str, Any] = load_config_file(args.config) if args.config else {}
    given.update(given_options(args))
    return run_config(given, args.resume)


# A testing hook, outside the library: rank 0 of the first attempt exits hard at this global
# optimizer step, as a crashed worker would (no cleanup, no checkpoint); see docs/training.md.
FAULT_ENV = "INCEPTION_V2_FAULT_AT_STEP"
FAULT_EXIT_STATUS = 75  # EX_TEMPFAIL: a retry may succeed


def fault_hook() -> Optional[Callable[[int], None]]:
    """The ``on_step`` hook that :data:`FAULT_ENV` asks for on this process, if any."""
    value = os.environ.get(FAULT_ENV, "")
    if not value:
        return None
    try:
        at = int(value)
    except ValueError:
        raise UsageError(f"{FAULT_ENV} must be a step number, got {value!r}") from None
    if at < 1:
        raise UsageError(f"{FAULT_ENV} must be >= 1, got {at}")
    if dist_utils.env_info().rank != 0 or dist_utils.restart_count() > 0:
        return None

    def on_step(step: int) -> None:
        if step == at:
            print(f"{FAULT_ENV}={step}: rank 0 exits hard at step {step} (a testing hook)", file=sys.stderr, flush=True)
            os._exit(FAULT_EXIT_STATUS)

    return on_step


def run(args: argparse.Namespace) -> int:
    fit(config_from_args(args), resume=args.resume, progress=args.progress, hooks=TrainHooks(on_step=fault_hook()))
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
