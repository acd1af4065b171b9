"""Resuming a run: every decision about continuing from ``RUN_DIR/last.pt`` is taken here.

* :func:`run_config` — the config of ``inception-v2 train``: a new run's is the recipe with the
  given values over it; a resumed run's (``--resume``, or a torchrun restart) is the run's own
  ``config.json`` with the given values over it.
* :func:`resolve_resume` — at the start of ``fit``: a run folder that holds ``last.pt`` needs
  ``resume``; the checkpoint must be of the same model with the same settings (only
  :data:`~inception_v2.train.config.RESUMABLE_CHANGES` may differ) and ``epochs`` may not be
  fewer than the epochs already trained (a finished run is extended by a larger ``--epochs``,
  never shortened, so ``config.json`` always says what was trained).
* :meth:`ResumePoint.check_data` — once the data is resolved: the data set must be the one the
  run trained on (same class names, same :func:`data_fingerprint`); checkpoints written before
  the fingerprint existed are resumed with a logged note.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping, Optional

from inception_v2.errors import UsageError
from inception_v2.formats.checkpoint import Checkpoint, read_checkpoint
from inception_v2.train import distributed as dist_utils
from inception_v2.train.checkpoint import DataIdentity
from inception_v2.train.config import RESUMABLE_CHANGES, TrainConfig, build_config, field_names, flag_name

logger = logging.getLogger(__name__)

FINGERPRINT_FILES = ("counts.json", "manifest.csv")  # what prepare writes that identifies a data set


def data_fingerprint(prepared: Path) -> str:
    """A SHA-256 of a prepared folder's ``counts.json`` (class names, objects per class and
    split) and ``manifest.csv`` (every object, where it went and why): the same data prepared
    the same way gives the same fingerprint wherever the folder lives."""
    h = hashlib.sha256()
    for name in FINGERPRINT_FILES:
        path = Path(prepared) / name
        if not path.is_file():
            continue
        h.update(name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def data_identity(prepared: Path, classes) -> DataIdentity:
    return DataIdentity(folder=str(prepared), fingerprint=data_fingerprint(prepared), classes=list(classes))


# --------------------------------------------------------------------------- the config


def _same_model(saved: str, wanted: str, out: Any) -> None:
    if wanted != saved:
        raise UsageError(
            f"{out} holds a run of {saved}, not {wanted}; resume with the same --model or choose another --out"
        )


def _same_settings(saved: TrainConfig, cfg: TrainConfig, where: Any) -> None:
    """:class:`UsageError` listing the fields outside :data:`RESUMABLE_CHANGES` that differ."""
    changed = [
        f.name
        for f in fields(TrainConfig)
        if f.name not in RESUMABLE_CHANGES and getattr(saved, f.name) != getattr(cfg, f.name)
    ]
    if changed:
        detail = ", ".join(f"{flag_name(k)} {getattr(saved, k)!r} -> {getattr(cfg, k)!r}" for k in changed)
        raise UsageError(
            f"cannot resume {where} with other settings ({detail}); only "
            f"{', '.join(flag_name(k) for k in RESUMABLE_CHANGES)} may change"
        )


def resume_config(saved: TrainConfig, **overrides: Any) -> TrainConfig:
    """The config of a resumed run: ``saved`` with the given overrides (``None`` = not given);
    only :data:`RESUMABLE_CHANGES` may differ from ``saved``."""
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - set(field_names()))
    if unknown:
        raise UsageError(f"unknown training options {unknown}")
    _same_model(saved.model, given.get("model", saved.model), saved.out)
    candidate = replace(saved, **given)  # normalizes and checks the given values
    _same_settings(saved, candidate, saved.out)
    return candidate


def run_config(given: Mapping[str, Any], resume: bool) -> TrainConfig:
    """The config of ``inception-v2 train`` from the given options (a ``--config`` file's and
    the flags, ``recipe`` among them): a new run's, or with ``resume`` (or after a torchrun
    restart) and a run in ``out``, that run's ``config.json`` with the given (resumable) changes."""
    given = dict(given)
    out = given.get("out")
    saved_path = Path(out) / "config.json" if out else None
    resume = resume or dist_utils.restart_count() > 0
    if not (resume and saved_path is not None and saved_path.is_file() and (saved_path.parent / "last.pt").is_file()):
        return build_config(given.pop("recipe", None), given)
    try:
        saved = TrainConfig.from_dict(json.loads(saved_path.read_text()))
    except (OSError, ValueError, TypeError) as e:
        raise UsageError(f"{saved_path} is unreadable: {e}") from None
    recipe = given.pop("recipe", None)
    if recipe is not None and recipe != saved.recipe:
        raise UsageError(f"cannot resume {out} (recipe {saved.recipe}) with --recipe {recipe}")
    return resume_config(saved, **given)


# --------------------------------------------------------------------------- the checkpoint


@dataclass
class ResumePoint:
    """The checkpoint a run continues from (``state``: read once, typed; None once its weights
    are in the model)."""

    path: Path
    state: Optional[Checkpoint]

    def check_data(self, data: DataIdentity) -> None:
        """:class:`UsageError` unless ``data`` is the data set the run trained on."""
        state, path = self.state, self.path
        old_folder = state.data_folder or state.config.get("data", "?")
        if list(state.classes or []) != list(data.classes):
            raise UsageError(
                f"cannot resume {path}: it was trained on the classes of {old_folder}, --data {data.folder} "
                "has other classes; resume with the same data or choose another --out"
            )
        fingerprint = state.data_fingerprint
        if fingerprint is None:
            if dist_utils.env_info().is_main:
                logger.info(
                    "note: %s predates data fingerprints, so only its class names were checked against %s",
                    path,
                    data.folder,
                )
        elif fingerprint != data.fingerprint:
            raise UsageError(
                f"cannot resume {path}: it was trained on {old_folder}, and --data {data.folder} holds a "
                "different data set (other counts or manifest) with the same classes; resume with the same "
                "data or choose another --out"
            )


def resolve_resume(cfg: TrainConfig, resume: bool) -> Optional[ResumePoint]:
    """The checkpoint ``cfg.out`` continues from, checked against ``cfg`` (see the module
    docstring); None for a new run. Read by rank 0 and sent to the others (nodes need not share
    a filesystem)."""
    path = Path(cfg.out) / "last.pt"

    def read() -> Optional[ResumePoint]:
        if not path.is_file():
            if resume:
                logger.info("no %s yet: starting a new run", path)
            return None
        if not resume:
            raise UsageError(
                f"{cfg.out} already holds a run (last.pt); pass --resume to continue it or choose another --out"
            )
        state = read_checkpoint(path)
        _same_model(state.model_name, cfg.model, cfg.out)
        _same_settings(TrainConfig.from_dict(state.config), cfg, path)
        if cfg.epochs < state.epoch:
            raise UsageError(
                f"cannot resume {path} with --epochs {cfg.epochs}: it has trained {state.epoch} epochs "
                f"already; give --epochs {state.epoch} or more (a run is extended, never shortened)"
            )
        return ResumePoint(path, state)

    return dist_utils.run_on_main(read)
