"""The training configuration: one typed dataclass, the one source of every ``train`` flag, and
the two recipes as data.

Every field of :class:`TrainConfig` carries its help text, flag group and choices in its
``metadata``; ``inception-v2 train`` generates one flag per field from them (``--batch-size`` for
``batch_size``, ``--x/--no-x`` for booleans), so the flags and the config cannot drift apart.

* ``blog`` — the source's recipe (the blog post this project started from, docs/source.md;
  called ``seed`` before, a name still accepted): batch 128, Adam at 1e-3, x0.96 every 8
  epochs, 100 epochs, cross-entropy + 0.3 x the auxiliary losses, the model's own input size.
  The field defaults are this recipe.
* ``paper`` — Szegedy et al. 2015 (*Rethinking the Inception Architecture*, section 8) as
  TensorFlow's Inception training code ran it (``tensorflow/models``,
  ``inception/inception/inception_train.py`` and ``inception_model.py``): RMSProp with decay
  0.9, momentum 0.9 and epsilon 1.0 (inside the square root), weight decay 4e-5 on the
  convolution and linear weights, lr 0.045 per 32 images decayed x0.94 every 2 epochs,
  gradient-norm clipping at 2.0, label smoothing 0.1, and evaluation with an exponential moving
  average of the weights.

:func:`build_config` layers explicit values (a ``--config`` file, then flags) over a recipe;
:func:`resolve_config` is the same with ``None`` meaning "keep the recipe's value".
:class:`TrainConfig` checks itself on construction (types included: a wrong type in a config
file is a one-line error naming the key) and round-trips through :meth:`TrainConfig.to_dict` /
:meth:`TrainConfig.from_dict` (``config.json``, checkpoints), which also reads the
``config.json`` of runs made before a field existed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import reprlib
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

import torch

from inception_v2.errors import UsageError
from inception_v2.models import get_data_config, list_models
from inception_v2.models.pooling import DEFAULT_POOL_IMPL, POOL_IMPLS
from inception_v2.procs import usable_cpus

MAX_SEED = 2**32 - 1  # the range every generator a run seeds accepts (NumPy's legacy seed is 32-bit)
MAX_CONFIG_BYTES = 1 << 20  # a config file is a few hundred bytes; anything near this is not one
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop-tf")
LR_SCHEDULES = ("step", "exponential", "cosine")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
AUTO_AUGMENTS = ("none", "randaugment", "trivialaugment", "autoaugment")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# Spellings written by earlier versions, still read (config.json files, checkpoints).
ALIASES: Dict[str, Dict[str, str]] = {
    "optimizer": {"rmsprop_tf": "rmsprop-tf"},
    "amp_dtype": {"bfloat16": "bf16", "float16": "fp16"},
    "recipe": {"seed": "blog"},  # the blog post's recipe was first named after the project's seed text
}

# What a resumed run may change: where things are, how fast they run and what is logged, not
# what is computed.
RESUMABLE_CHANGES = (
    "data", "out", "cache_dir", "pretrained", "epochs", "workers", "device", "amp", "amp_dtype",
    "channels_last", "compile", "compile_backend", "tensorboard", "log_every",
    "pool_impl", "device_augment", "fused_optimizer", "compile_mode",
)  # fmt: skip

# Each recipe lists where it differs from TrainConfig's field defaults (which are the blog recipe).
# `lr_reference_batch`: the recipe's lr is per that many images and scales linearly with the
# batch (batch_size x grad_accum_steps), unless lr is given.
RECIPES: Dict[str, Dict[str, Any]] = {
    "blog": {},  # the source's recipe is TrainConfig's field defaults
    "paper": {
        "optimizer": "rmsprop-tf",  # decay 0.9, epsilon 1.0 inside the sqrt (train/optim.py)
        "momentum": 0.9,  # RMSPROP_MOMENTUM of TensorFlow's inception_train.py; without it short runs stay at chance
        "weight_decay": 4e-5,  # inception_model.py: on conv and fc weights only
        "lr": 0.045,
        "lr_reference_batch": 32,  # 0.045 for a batch of 32 (one replica of the paper's 50)
        "lr_step_epochs": 2,
        "lr_decay": 0.94,
        "label_smoothing": 0.1,  # the paper's epsilon for LSR
        "grad_clip_norm": 2.0,  # "gradient clipping with threshold 2.0"
        "ema_decay": 0.9999,  # per step, with TensorFlow's (1 + n) / (10 + n) warm-up
    },
}


def _opt(default: Any, group: str, help: str, choices: Optional[Tuple[str, ...]] = None, metavar: str = "") -> Any:
    """A field with its flag's help text, group and choices (read by ``inception-v2 train``)."""
    meta = {"help": help, "group": group, "choices": choices, "metavar": metavar}
    if default is MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything a run needs; written to ``RUN_DIR/config.json`` and into every checkpoint."""

    # run
    model: str = _opt(MISSING, "run", "the model to train (`inception-v2 summary --help` lists them)", metavar="NAME")
    data: str = _opt(
        MISSING,
        "run",
        "a prepared directory (inception-v2 prepare), or a VOC root, prepared first into a cache",
        metavar="DIR",
    )
    out: str = _opt(MISSING, "run", "the run directory", metavar="RUN_DIR")
    recipe: str = _opt(
        "blog",
        "run",
        "named preset of the options below: blog (the source's Adam recipe, docs/source.md; "
        "seed is its earlier name) or paper "
        "(RMSProp with momentum, weight decay, LSR, clipping, EMA); every option overrides it",
        choices=tuple(RECIPES),
    )
    epochs: int = _opt(100, "run", "epochs to train")
    batch_size: int = _opt(
        128, "run", "images per process and forward pass; the global batch is this x grad_accum_steps x processes"
    )
    seed: int = _opt(0, "run", "random seed (initial weights, shuffling, augmentation, dropout)")
    # optimisation
    optimizer: str = _opt(
        "adam",
        "optimization",
        "adam, adamw (decoupled weight decay), sgd or rmsprop-tf "
        "(RMSProp as TensorFlow: epsilon inside the square root)",
        choices=OPTIMIZERS,
    )
    lr: float = _opt(
        1e-3,
        "optimization",
        "learning rate; the paper recipe's is per 32 images and scales with the batch unless given",
    )
    momentum: float = _opt(0.9, "optimization", "momentum of sgd and rmsprop-tf; beta1 of adam and adamw")
    nesterov: bool = _opt(False, "optimization", "Nesterov momentum (sgd)")
    weight_decay: float = _opt(
        0.0,
        "optimization",
        "L2 penalty on convolution and linear weights, never on BatchNorm parameters or biases (adamw: decoupled)",
    )
    grad_clip_norm: Optional[float] = _opt(None, "optimization", "clip the global gradient norm to this")
    grad_accum_steps: int = _opt(
        1,
        "optimization",
        "accumulate the gradients of this many batches per step: the "
        "result of a batch this many times larger (up to BatchNorm statistics)",
    )
    ema_decay: Optional[float] = _opt(
        None,
        "optimization",
        "evaluate, select and deploy an exponential moving average of the weights with this decay per step",
    )
    # schedule
    lr_schedule: str = _opt(
        "step",
        "schedule",
        "step: x lr_decay every lr_step_epochs epochs; exponential: the "
        "same rate, smoothly per step; cosine: down to min_lr at the last step",
        choices=LR_SCHEDULES,
    )
    lr_step_epochs: int = _opt(8, "schedule", "epochs per lr_decay (step and exponential schedules)")
    lr_decay: float = _opt(0.96, "schedule", "lr factor per lr_step_epochs, in (0, 1]")
    warmup_epochs: float = _opt(0.0, "schedule", "linear warm-up from lr/steps to lr over this many epochs, per step")
    min_lr: float = _opt(0.0, "schedule", "the lr never goes below this (cosine: its final value)")
    # loss and regularization
    label_smoothing: float = _opt(0.0, "loss", "epsilon of label-smoothing regularization")
    aux_weight: float = _opt(0.3, "loss", "weight of each auxiliary head's loss (0 trains without the heads)")
    dropout: Optional[float] = _opt(None, "loss", "dropout before the classifier (default: the model's)")
    # augmentation (torchvision.transforms.v2)
    auto_augment: str = _opt(
        "none", "augmentation", "automatic augmentation policy after the random crop and flip", choices=AUTO_AUGMENTS
    )
    random_erasing: float = _opt(
        0.0,
        "augmentation",
        "probability of erasing a random rectangle of each training image (filled with the mean colour)",
    )
    mixup: float = _opt(0.0, "augmentation", "MixUp alpha (0 = off): blend pairs of images of a batch and their labels")
    cutmix: float = _opt(
        0.0,
        "augmentation",
        "CutMix alpha (0 = off): paste a box of another image of the batch; with mixup, one of the two per batch",
    )
    # fine-tuning
    pretrained: Optional[str] = _opt(
        None,
        "fine-tuning",
        "initialize from these weights (a checkpoint, a "
        ".safetensors file, a release folder or name); the classifiers are "
        "re-initialized for the data's classes",
        metavar="PATH",
    )
    freeze_features: bool = _opt(
        False,
        "fine-tuning",
        "train only the classifier head(s): the feature layers keep their weights and BatchNorm statistics",
    )
    head_lr: Optional[float] = _opt(None, "fine-tuning", "learning rate of the classifier head(s) (default: lr)")
    # data
    image_size: Optional[int] = _opt(None, "data", "crop side (default: the model's, 299 or 224)")
    resize_size: Optional[int] = _opt(None, "data", "shorter side before the crop (default keeps the model's ratio)")
    val_fraction: Optional[float] = _opt(
        None,
        "data",
        "must match the prepared directory's; with a VOC root, the share of trainval held out as val (0.05)",
    )
    cache_dir: Optional[str] = _opt(None, "data", "where a VOC root given as data is prepared", metavar="DIR")
    workers: Optional[int] = _opt(
        None, "data", "data-loading processes per training process (default: the CPUs per process - 1, at most 8)"
    )
    # hardware
    device: str = _opt("auto", "hardware", "auto (CUDA when available), cpu, cuda or cuda:N")
    amp: Optional[bool] = _opt(None, "hardware", "autocast (default: on for CUDA, off for CPU)")
    amp_dtype: str = _opt("bf16", "hardware", "autocast type; fp16 uses a gradient scaler", choices=tuple(AMP_DTYPES))
    channels_last: Optional[bool] = _opt(None, "hardware", "channels_last memory format (default: on for CUDA)")
    compile: bool = _opt(False, "hardware", "torch.compile the training forward")
    compile_backend: str = _opt(
        "inductor",
        "hardware",
        "torch.compile backend (inductor; aot_eager compiles fast and checks the graph capture only)",
    )
    compile_mode: str = _opt(
        "default",
        "hardware",
        "torch.compile mode (max-autotune-no-cudagraphs tunes kernels without CUDA graphs)",
        choices=COMPILE_MODES,
    )
    pool_impl: str = _opt(
        "auto",
        "hardware",
        "how the pool branches are computed (the same network and weights; docs/training.md, GPU); auto: "
        f"native on the CPU (the recorded runs bit for bit), {DEFAULT_POOL_IMPL} on CUDA",
        choices=("auto",) + POOL_IMPLS,
    )
    fused_optimizer: bool = _opt(False, "hardware", "fused optimizer kernels (adam, adamw, sgd; CUDA)")
    device_augment: bool = _opt(
        False,
        "hardware",
        "resize, crop, flip and normalize the training images on the device in batches (JPEGs decoded there)",
    )
    sync_bn: bool = _opt(False, "hardware", "SyncBatchNorm under DDP (CUDA)")
    # logging
    tensorboard: bool = _opt(
        False,
        "logging",
        "write TensorBoard event files in the run directory (needs the "
        "tensorboard package: pip install 'inception-v2[tensorboard]')",
    )
    log_every: int = _opt(20, "logging", "steps between loss checks, progress-bar updates and TensorBoard points")

    def __post_init__(self) -> None:
        for f in fields(self):
            setattr(self, f.name, coerce(f.name, getattr(self, f.name)))
        for name, aliases in ALIASES.items():
            setattr(self, name, aliases.get(getattr(self, name), getattr(self, name)))
        self._check()

    def _check(self) -> None:  # noqa: C901 - one flat list of checks
        def bad(name: str, what: str) -> UsageError:
            return UsageError(f"training config: {describe(name)} {what}")

        def must(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise bad(name, f"{what}, got {getattr(self, name)!r}")

        if self.model not in list_models():
            raise UsageError(
                f"training config: unknown model {self.model!r} (--model); available models: {', '.join(list_models())}"
            )
        for f in fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise bad(f.name, f"must be one of {', '.join(choices)}, got {getattr(self, f.name)!r}")
        for name in ("data", "out"):
            must(bool(getattr(self, name)), name, "must be given")
        must(self.epochs >= 1, "epochs", "must be >= 1")
        must(0 <= self.seed <= MAX_SEED, "seed", f"must be an integer in [0, {MAX_SEED}]")
        if (self.mixup > 0 or self.cutmix > 0) and self.batch_size < 2:
            raise bad(
                "batch_size",
                f"must be >= 2 with mixup or cutmix (they mix the images of a batch), got {self.batch_size}",
            )
        must(self.batch_size >= 2, "batch_size", "must be >= 2 (BatchNorm needs two samples)")
        must(self.lr > 0, "lr", "must be > 0")
        must(0 <= self.momentum < 1, "momentum", "must be in [0, 1)")
        if self.nesterov and not (self.optimizer == "sgd" and self.momentum > 0):
            raise bad("nesterov", f"needs optimizer sgd with momentum > 0 (optimizer is {self.optimizer})")
        must(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        must(self.grad_clip_norm is None or self.grad_clip_norm > 0, "grad_clip_norm", "must be > 0")
        must(self.grad_accum_steps >= 1, "grad_accum_steps", "must be >= 1")
        must(self.ema_decay is None or 0 < self.ema_decay < 1, "ema_decay", "must be in (0, 1)")
        must(self.lr_step_epochs >= 1, "lr_step_epochs", "must be >= 1")
        must(0 < self.lr_decay <= 1, "lr_decay", "must be in (0, 1]")
        must(self.warmup_epochs >= 0, "warmup_epochs", "must be >= 0")
        if self.warmup_epochs >= self.epochs:
            raise bad("warmup_epochs", f"must be less than epochs ({self.epochs}), got {self.warmup_epochs}")
        must(0 <= self.min_lr < self.lr, "min_lr", f"must be in [0, lr = {self.lr})")
        must(0 <= self.label_smoothing < 1, "label_smoothing", "must be in [0, 1)")
        must(self.aux_weight >= 0, "aux_weight", "must be >= 0")
        must(self.dropout is None or 0 <= self.dropout < 1, "dropout", "must be in [0, 1)")
        must(0 <= self.random_erasing <= 1, "random_erasing", "must be in [0, 1]")
        must(self.mixup >= 0, "mixup", "must be >= 0")
        must(self.cutmix >= 0, "cutmix", "must be >= 0")
        must(self.head_lr is None or self.head_lr > 0, "head_lr", "must be > 0")
        must(self.val_fraction is None or 0 < self.val_fraction < 1, "val_fraction", "must be in (0, 1)")
        must(self.workers is None or self.workers >= 0, "workers", "must be >= 0")
        must(
            self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
            "device",
            "must be auto, cpu, cuda or cuda:N",
        )
        must(bool(self.compile_backend), "compile_backend", "must be given")
        if self.fused_optimizer and self.optimizer == "rmsprop-tf":
            raise bad("fused_optimizer", "applies to adam, adamw and sgd (rmsprop-tf runs as foreach kernels)")
        if self.device_augment and (self.auto_augment != "none" or self.random_erasing > 0):
            raise bad("device_augment", "does not run auto_augment or random_erasing: turn those off, or the option")
        must(self.log_every >= 1, "log_every", "must be >= 1")
        cfg = get_data_config(self.model)
        if self.image_size is not None and self.image_size < cfg.min_input_size:
            raise bad("image_size", f"must be >= {cfg.min_input_size} for {self.model}, got {self.image_size}")
        if self.resize_size is not None and self.resize_size < (self.image_size or cfg.input_size):
            raise bad("resize_size", f"{self.resize_size} is smaller than the crop {self.image_size or cfg.input_size}")

    def data_config(self):
        """The model's :class:`~inception_v2.models.DataConfig` at this run's input size."""
        cfg = get_data_config(self.model)
        if self.image_size is None and self.resize_size is None:
            return cfg
        return cfg.with_input_size(self.image_size or cfg.input_size, self.resize_size)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """A config from :meth:`to_dict`'s output, also an older version's (see :func:`upgrade_dict`)."""
        return cls(**upgrade_dict(d))


# --------------------------------------------------------------------------- fields and values


def field_names() -> Tuple[str, ...]:
    return tuple(f.name for f in fields(TrainConfig))


def flag_name(name: str) -> str:
    """The command-line flag of a field: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def describe(name: str) -> str:
    """How messages name a field: its key and its flag, e.g. ``lr_decay (--lr-decay)``."""
    return f"{name} ({flag_name(name)})"


@functools.lru_cache(maxsize=None)
def field_types() -> Dict[str, Tuple[type, bool]]:
    """Each field's base type (bool, int, float or str) and whether it may be None."""
    hints = typing.get_type_hints(TrainConfig)
    out = {}
    for name, hint in hints.items():
        args = typing.get_args(hint)
        optional = type(None) in args
        base = next(a for a in args if a is not type(None)) if optional else hint
        out[name] = (base, optional)
    return out


def coerce(name: str, value: Any) -> Any:
    """``value`` as field ``name``'s type: an int is a float where a float is wanted, a string is
    parsed where a number is (flags and YAML's ``1e-3``), ``"none"`` is None where None is allowed;
    anything else of the wrong type is a :class:`UsageError` naming the field."""
    base, optional = field_types()[name]
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in ("none", "null")):
        if optional:
            return None
        raise UsageError(f"training config: {describe(name)} must be given (it cannot be none)")
    kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[base]
    wrong = UsageError(f"training config: {describe(name)} must be {kind}, got {shown(value)}")
    if base is bool:
        if isinstance(value, bool):
            return value
        raise wrong
    if base is str:
        if isinstance(value, (str, os.PathLike)):
            return os.fspath(value)  # a Path where a path is wanted
        raise wrong
    if isinstance(value, bool):
        raise wrong
    if isinstance(value, str):
        try:
            value = int(value) if base is int else float(value)
        except ValueError:
            raise wrong from None
    if base is int:
        if isinstance(value, int):
            return value
        raise wrong
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    raise wrong


_SHOWN = reprlib.Repr()  # (keyword arguments only from Python 3.12)
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 2, 60, 60, 40
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = 4


def shown(value: Any) -> str:
    """A bounded ``repr`` for messages: a huge or deeply nested value (a YAML alias bomb
    shares one list a billion times) is shown by its first few items, in constant time."""
    if isinstance(value, (list, tuple, dict, set)):
        return f"a {type(value).__name__} ({_SHOWN.repr(value)})"
    return _SHOWN.repr(value)


def upgrade_dict(d: Mapping[str, Any]) -> Dict[str, Any]:
    """A config dict as this version reads it; :class:`UsageError` for an unknown key.

    Fields an older ``config.json`` lacks take their defaults, which are what the older code did,
    with one exception: before ``momentum`` existed, ``rmsprop_tf`` ran without momentum.
    """
    if not isinstance(d, Mapping):
        raise UsageError("training config: expected a mapping of option names to values")
    unknown = sorted((k for k in d if k not in field_names()), key=str)
    if unknown:
        options = ", ".join(field_names())
        raise UsageError(f"training config: unknown keys {_SHOWN.repr(unknown)}; the options are {options}")
    d = dict(d)
    if "momentum" not in d and d.get("optimizer") == "rmsprop_tf":
        d["momentum"] = 0.0
    return d


def load_config_file(path: "os.PathLike[str] | str") -> Dict[str, Any]:
    """The options of a JSON or YAML file (``.json``, ``.yaml``, ``.yml``; a run's own
    ``config.json`` is one), checked: an unknown key or a value of the wrong type is a one-line
    :class:`UsageError` naming the file and the key."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_CONFIG_BYTES:
            size = path.stat().st_size
            raise UsageError(f"--config {path} is {size:,} bytes, more than a config file can be (1 MiB)")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--config {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"--config {path} is unreadable: {e}") from None
    try:
        if path.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text)
    except ValueError as e:  # json.JSONDecodeError
        raise UsageError(f"--config {path} is not valid JSON: {e}") from None
    except RecursionError:
        raise UsageError(f"--config {path} is nested too deeply to be a config file") from None
    except Exception as e:  # noqa: BLE001 - yaml.YAMLError and its subclasses
        first = str(e).strip().splitlines()
        raise UsageError(f"--config {path} is not valid YAML: {first[0] if first else type(e).__name__}") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise UsageError(f"--config {path} must hold a mapping of option names to values")
    try:
        values = upgrade_dict(values)
        return {k: coerce(k, v) for k, v in values.items()}
    except UsageError as e:
        raise UsageError(f"--config {path}: {str(e).replace('training config: ', '')}") from None


# --------------------------------------------------------------------------- recipes


def build_config(recipe: Optional[str], given: Mapping[str, Any]) -> TrainConfig:
    """``recipe`` (default ``blog``; ``seed`` is its earlier name) with the ``given`` values over
    it (a value of None sets None). ``model``, ``data`` and ``out`` must be given. In a recipe with
    ``lr_reference_batch`` the lr scales with ``batch_size x grad_accum_steps`` unless ``lr`` is
    given."""
    recipe = ALIASES["recipe"].get(recipe or "blog", recipe or "blog")
    if recipe not in RECIPES:
        raise UsageError(f"unknown recipe {recipe!r}; available: {', '.join(RECIPES)}")
    given = dict(given)
    given.pop("recipe", None)
    unknown = sorted(set(given) - set(field_names()))
    if unknown:
        raise UsageError(f"unknown training options {unknown}")
    values = {k: v for k, v in RECIPES[recipe].items() if k != "lr_reference_batch"}
    values.update(given)
    reference = RECIPES[recipe].get("lr_reference_batch")
    if reference and "lr" not in given:
        accum = coerce("grad_accum_steps", values.get("grad_accum_steps", 1))
        batch = coerce("batch_size", values.get("batch_size", _default("batch_size"))) * accum
        values["lr"] = RECIPES[recipe]["lr"] * batch / reference
    for name in ("model", "data", "out"):
        if values.get(name) is None:
            raise UsageError(f"training config: {describe(name)} must be given")
    return TrainConfig(recipe=recipe, **values)


def _default(name: str) -> Any:
    return TrainConfig.__dataclass_fields__[name].default


def resolve_config(recipe: str = "blog", **overrides: Any) -> TrainConfig:
    """A recipe with overrides applied; an override of ``None`` keeps the recipe's value."""
    return build_config(recipe, {k: v for k, v in overrides.items() if v is not None and k != "recipe"})


# --------------------------------------------------------------------------- device settings

MAX_DEFAULT_WORKERS = 8  # more loader processes than this rarely speed up a 299-px pipeline


@dataclass(frozen=True)
class DeviceSettings:
    """What the config's hardware options mean on this machine, settled once per run by
    :func:`device_settings` (the config keeps ``None`` for "the device's default")."""

    device: torch.device
    amp_dtype: Optional[torch.dtype] = None  # autocast type; None runs in float32
    channels_last: bool = False
    workers: int = 0  # loader processes per training process
    cudnn_benchmark: bool = False  # cuDNN picks the fastest kernels for the run's fixed input size
    pool_impl: str = "native"  # how the pool branches are computed (inception_v2.models.pooling)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The global backend flags these settings call for, restored on exit."""
        before = torch.backends.cudnn.benchmark
        if self.cudnn_benchmark:
            torch.backends.cudnn.benchmark = True
        try:
            yield
        finally:
            torch.backends.cudnn.benchmark = before


def device_settings(cfg: TrainConfig, device: torch.device, local_world_size: int = 1) -> DeviceSettings:
    """Autocast (default: on for CUDA, in ``cfg.amp_dtype``), channels_last (default: on for
    CUDA) and the loader workers: ``cfg.workers``, or the CPUs this process may use shared among
    the ``local_world_size`` training processes of this node, less one, at most
    :data:`MAX_DEFAULT_WORKERS`."""
    cuda = device.type == "cuda"
    amp = cfg.amp if cfg.amp is not None else cuda
    workers = cfg.workers
    if workers is None:
        per_process = usable_cpus() // max(1, local_world_size)
        workers = max(1, min(MAX_DEFAULT_WORKERS, per_process - 1))
    return DeviceSettings(
        device=device,
        amp_dtype=AMP_DTYPES[cfg.amp_dtype] if amp else None,
        channels_last=cfg.channels_last if cfg.channels_last is not None else cuda,
        workers=workers,
        cudnn_benchmark=cuda,
        # on the CPU the paper's order with PyTorch's kernels (correct there, and what the recorded
        # runs used); on CUDA a formulation that never runs the channels-last avg_pool2d backward,
        # which some builds get wrong
        pool_impl=cfg.pool_impl if cfg.pool_impl != "auto" else (DEFAULT_POOL_IMPL if cuda else "native"),
    )
