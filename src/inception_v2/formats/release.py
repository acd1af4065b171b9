"""Release folders: a model's weights as ``model.safetensors`` and what they are as
``config.json`` (``inception-v2 export --format safetensors --out DIR``):
:class:`ReleaseConfig`, its one reader :func:`read_release_folder` and its one writer
:func:`write_release_folder`.

``model.safetensors`` holds the state dict only (no pickled Python, nothing executable).
``config.json`` holds the fields of :class:`ReleaseConfig` plus ``format``
(``"inception_v2.release"``) and ``version`` (1). Both files are written atomically while the
folder's lock is held (:func:`inception_v2.locking.exclusive`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from inception_v2.atomic import write_bytes, write_json
from inception_v2.errors import UsageError
from inception_v2.formats.data_config import DataConfig
from inception_v2.formats.schema import validate_release_config
from inception_v2.formats.state_dict import StateDict, read_safetensors, safetensors_bytes
from inception_v2.locking import exclusive
from inception_v2.paths import PathLike

RELEASE_FORMAT = "inception_v2.release"
RELEASE_VERSION = 1
RELEASE_WEIGHTS = "model.safetensors"  # a release folder: these weights ...
RELEASE_CONFIG = "config.json"  # ... and what they are (model, classes, data config)
REQUIRED = ("model_name", "num_classes", "data_config")


@dataclass(frozen=True)
class ReleaseConfig:
    """The ``config.json`` of a release folder."""

    model_name: str
    num_classes: int
    data_config: DataConfig  # the evaluation preprocessing
    classes: Optional[List[str]] = None  # the class names, index = label (None: an untrained model)
    in_chans: int = 3
    aux_logits: bool = True
    arch_options: Dict[str, Any] = field(default_factory=dict)  # create_model options that shape the network
    weights: str = "model"  # which weights of the checkpoint these are: model, ema or untrained

    def to_dict(self) -> Dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["data_config"] = self.data_config.to_dict()
        return {
            "format": RELEASE_FORMAT,
            "version": RELEASE_VERSION,
            "model_name": d.pop("model_name"),
            "num_classes": d.pop("num_classes"),
            "classes": d.pop("classes"),
            **d,
        }

    @classmethod
    def from_dict(cls, d: Any, path: PathLike) -> "ReleaseConfig":
        """The config of a ``config.json`` (any version); :class:`UsageError` naming ``path`` when
        it is not ours, is newer than this code or lacks a required key."""
        if not isinstance(d, dict) or d.get("format") != RELEASE_FORMAT:
            raise UsageError(
                f"{path} is not the config of an inception_v2 release (no {RELEASE_FORMAT!r} format field)"
            )
        if not isinstance(d.get("version"), int) or d["version"] > RELEASE_VERSION:
            raise UsageError(f"{path} has format version {d.get('version')!r}; this code reads up to {RELEASE_VERSION}")
        missing = [k for k in REQUIRED if k not in d]
        if missing:
            raise UsageError(f"{path} lacks {', '.join(missing)}")
        validate_release_config(d, path)
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known and (k in REQUIRED or k == "classes" or v is not None)}
        values["data_config"] = DataConfig.from_dict(d["data_config"], path)
        return cls(**values)


def read_release_config(folder: PathLike) -> ReleaseConfig:
    """``folder/config.json``, checked; :class:`UsageError` naming the file when it is missing,
    unreadable or not ours (or when the folder has no weights file)."""
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
    return ReleaseConfig.from_dict(config, path)


def read_release_folder(folder: PathLike) -> Tuple[ReleaseConfig, StateDict]:
    """A release folder's config and weights (on CPU)."""
    config = read_release_config(folder)
    return config, read_safetensors(Path(folder) / RELEASE_WEIGHTS)


def write_release_folder(folder: PathLike, config: ReleaseConfig, weights: StateDict) -> int:
    """Write ``folder/model.safetensors`` (``weights``) and ``folder/config.json``; the folder is
    created if needed and locked while it is written. Returns the weights file's size in bytes."""
    data = safetensors_bytes(weights, metadata={"format": "pt", "model_name": config.model_name})
    folder = Path(folder)
    with exclusive(folder, "release folder"):
        write_bytes(folder / RELEASE_WEIGHTS, data)
        write_json(folder / RELEASE_CONFIG, config.to_dict())
    return len(data)
