"""The training configuration: one typed dataclass, and the two recipes as data.

* ``seed`` — the source's recipe (SPEC.md section 4): batch 128, Adam at 1e-3, x0.96 every 8
  epochs, 100 epochs, cross-entropy + 0.3 x the auxiliary losses, the model's own input size.
* ``paper`` — Szegedy et al. 2015 (*Rethinking the Inception Architecture*, section 8):
  RMSProp with decay 0.9 and epsilon 1.0 (inside the square root, as TensorFlow), lr 0.045 per 32
  images decayed x0.94 every 2 epochs, gradient-norm clipping at 2.0, label smoothing 0.1, and
  evaluation with an exponential moving average of the weights.

:func:`resolve_config` starts from a recipe and applies overrides (``None`` = keep the recipe's
value); :class:`TrainConfig` checks itself on construction and round-trips through
:meth:`TrainConfig.to_dict` / :meth:`TrainConfig.from_dict` (``config.json``, checkpoints).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Dict, Mapping, Optional

from inception_v2.errors import UsageError
from inception_v2.models import get_data_config, list_models

OPTIMIZERS = ("adam", "rmsprop_tf")
AMP_DTYPES = ("bfloat16", "float16")

# What a resumed run may change: where things are and how fast they run, not what is computed.
RESUMABLE_CHANGES = (
    "data", "out", "cache_dir", "epochs", "workers", "device", "amp", "amp_dtype", "channels_last", "compile",
)  # fmt: skip

# Each recipe lists only what differs from TrainConfig's field defaults (which are `seed`'s).
# `lr_reference_batch`: the recipe's lr is per that many images and scales linearly with the
# batch size, unless --lr is given.
RECIPES: Dict[str, Dict[str, Any]] = {
    "seed": {
        "optimizer": "adam",
        "lr": 1e-3,  # Adam's default; the source's value
        "lr_step_epochs": 8,
        "lr_decay": 0.96,
        "epochs": 100,
        "batch_size": 128,
        "aux_weight": 0.3,  # the source's weight of each auxiliary loss
        "label_smoothing": 0.0,
        "grad_clip_norm": None,
        "ema_decay": None,
    },
    "paper": {
        "optimizer": "rmsprop_tf",  # decay 0.9, epsilon 1.0 inside the sqrt (train/optim.py)
        "lr": 0.045,
        "lr_reference_batch": 32,  # 0.045 for a batch of 32 (one replica of the paper's 50)
        "lr_step_epochs": 2,
        "lr_decay": 0.94,
        "epochs": 100,
        "batch_size": 128,
        "aux_weight": 0.3,
        "label_smoothing": 0.1,  # the paper's epsilon for LSR
        "grad_clip_norm": 2.0,  # "gradient clipping with threshold 2.0"
        "ema_decay": 0.9999,  # per step, with TensorFlow's (1 + n) / (10 + n) warm-up
    },
}


@dataclass
class TrainConfig:
    """Everything a run needs; written to ``RUN_DIR/config.json`` and into every checkpoint."""

    model: str  # a registered model name
    data: str  # a prepared directory (``inception-v2 prepare``'s output)
    out: str  # the run directory
    recipe: str = "seed"
    # optimisation
    optimizer: str = "adam"
    lr: float = 1e-3  # the learning rate actually used (already scaled for the batch size)
    lr_step_epochs: int = 8  # StepLR: multiply the lr by lr_decay every this many epochs
    lr_decay: float = 0.96
    epochs: int = 100
    batch_size: int = 128  # per process; the global batch is batch_size x world size
    aux_weight: float = 0.3  # weight of each auxiliary head's loss
    label_smoothing: float = 0.0  # epsilon of label-smoothing regularization
    grad_clip_norm: Optional[float] = None  # clip the global gradient norm to this
    ema_decay: Optional[float] = None  # evaluate (and select on) an EMA of the weights
    dropout: Optional[float] = None  # None keeps the model's own
    # data
    image_size: Optional[int] = None  # crop side; None = the model's (299 / 224)
    resize_size: Optional[int] = None  # shorter side before the crop; None keeps the ratio
    val_fraction: Optional[float] = None  # None = the prepared directory's own val split
    cache_dir: Optional[str] = None  # where a raw VOC root given as data is prepared
    workers: Optional[int] = None  # data-loading processes per training process; None = auto
    # hardware
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: Optional[bool] = None  # autocast; None = on for CUDA, off for CPU
    amp_dtype: str = "bfloat16"
    channels_last: Optional[bool] = None  # None = on for CUDA
    compile: bool = False  # torch.compile the training forward
    sync_bn: bool = False  # SyncBatchNorm under DDP
    seed: int = 0

    def __post_init__(self) -> None:
        def bad(what: str) -> UsageError:
            return UsageError(f"training config: {what}")

        if self.model not in list_models():
            raise bad(f"unknown model {self.model!r}; available models: {', '.join(list_models())}")
        if self.recipe not in RECIPES:
            raise bad(f"unknown recipe {self.recipe!r}; available: {', '.join(RECIPES)}")
        if self.optimizer not in OPTIMIZERS:
            raise bad(f"unknown optimizer {self.optimizer!r}; available: {', '.join(OPTIMIZERS)}")
        if self.amp_dtype not in AMP_DTYPES:
            raise bad(f"amp_dtype must be one of {', '.join(AMP_DTYPES)}, got {self.amp_dtype!r}")
        if not self.data or not self.out:
            raise bad("data and out must be given")
        if not self.lr > 0:
            raise bad(f"lr must be > 0, got {self.lr}")
        if self.lr_step_epochs < 1:
            raise bad(f"lr_step_epochs must be >= 1, got {self.lr_step_epochs}")
        if not 0 < self.lr_decay <= 1:
            raise bad(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if self.epochs < 1:
            raise bad(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 2:
            raise bad(f"batch_size must be >= 2 (BatchNorm needs two samples), got {self.batch_size}")
        if self.aux_weight < 0:
            raise bad(f"aux_weight must be >= 0, got {self.aux_weight}")
        if not 0 <= self.label_smoothing < 1:
            raise bad(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            raise bad(f"grad_clip_norm must be > 0, got {self.grad_clip_norm}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise bad(f"ema_decay must be in (0, 1), got {self.ema_decay}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise bad(f"dropout must be in [0, 1), got {self.dropout}")
        if self.val_fraction is not None and not 0 < self.val_fraction < 1:
            raise bad(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.workers is not None and self.workers < 0:
            raise bad(f"workers must be >= 0, got {self.workers}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise bad(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        cfg = get_data_config(self.model)
        if self.image_size is not None and self.image_size < cfg.min_input_size:
            raise bad(f"{self.model} needs image_size >= {cfg.min_input_size}, got {self.image_size}")
        if self.resize_size is not None and self.resize_size < (self.image_size or cfg.input_size):
            raise bad(f"resize_size {self.resize_size} is smaller than the crop {self.image_size or cfg.input_size}")

    def data_config(self):
        """The model's :class:`~inception_v2.models.DataConfig` at this run's input size."""
        cfg = get_data_config(self.model)
        if self.image_size is None and self.resize_size is None:
            return cfg
        return cfg.with_input_size(self.image_size or cfg.input_size, self.resize_size)

    def num_workers(self) -> int:
        """``workers``, or with None the CPUs this process may use shared among the training
        processes of this node (``LOCAL_WORLD_SIZE`` under torchrun), at most 8."""
        if self.workers is not None:
            return self.workers
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cpus = os.cpu_count() or 1
        per_process = cpus // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
        return max(1, min(8, per_process - 1))

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UsageError(f"training config: unknown keys {unknown}")
        return cls(**dict(d))


def resolve_config(recipe: str = "seed", **overrides: Any) -> TrainConfig:
    """A recipe with overrides applied; an override of ``None`` keeps the recipe's value.

    ``model``, ``data`` and ``out`` are required. In a recipe with ``lr_reference_batch`` the lr
    scales with the batch size (``lr x batch_size / lr_reference_batch``) unless ``lr`` is given.
    """
    if recipe not in RECIPES:
        raise UsageError(f"unknown recipe {recipe!r}; available: {', '.join(RECIPES)}")
    values = {k: v for k, v in RECIPES[recipe].items() if k != "lr_reference_batch"}
    given = {k: v for k, v in overrides.items() if v is not None and k != "recipe"}
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise UsageError(f"unknown training options {unknown}")
    values.update(given)
    reference = RECIPES[recipe].get("lr_reference_batch")
    if reference and "lr" not in given:
        values["lr"] = RECIPES[recipe]["lr"] * values["batch_size"] / reference
    for name in ("model", "data", "out"):
        if name not in values:
            raise UsageError(f"training config: {name} must be given")
    return TrainConfig(recipe=recipe, **values)


def resume_config(saved: TrainConfig, **overrides: Any) -> TrainConfig:
    """The config of a resumed run: ``saved`` with the given overrides (``None`` = not given).

    Only :data:`RESUMABLE_CHANGES` may differ from ``saved`` (e.g. more ``epochs``, another
    ``device``); changing anything else would make the resumed run a different experiment.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise UsageError(f"unknown training options {unknown}")
    if given.get("model", saved.model) != saved.model:
        raise UsageError(
            f"{saved.out} holds a run of {saved.model}, not {given['model']}; "
            "resume with the same --model or choose another --out"
        )
    changed = [k for k, v in given.items() if k not in RESUMABLE_CHANGES and v != getattr(saved, k)]
    if changed:
        detail = ", ".join(f"{k} {getattr(saved, k)!r} -> {given[k]!r}" for k in changed)
        raise UsageError(
            f"cannot resume {saved.out} with other settings ({detail}); only "
            f"{', '.join(RESUMABLE_CHANGES)} may change"
        )
    return replace(saved, **given)
