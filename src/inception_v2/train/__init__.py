"""Training and evaluation: the config and recipes, the loop, checkpoints, metrics, DDP."""

from inception_v2.train.checkpoint import load_checkpoint, load_model, save_checkpoint
from inception_v2.train.config import RECIPES, TrainConfig, build_config, load_config_file, resolve_config
from inception_v2.train.engine import EvalResult, NonFiniteLossError, evaluate, fit, train_one_epoch
from inception_v2.train.losses import InceptionLoss
from inception_v2.train.optim import RMSpropTF

__all__ = [
    "RECIPES",
    "EvalResult",
    "InceptionLoss",
    "NonFiniteLossError",
    "RMSpropTF",
    "TrainConfig",
    "build_config",
    "evaluate",
    "fit",
    "load_checkpoint",
    "load_config_file",
    "load_model",
    "resolve_config",
    "save_checkpoint",
    "train_one_epoch",
]
