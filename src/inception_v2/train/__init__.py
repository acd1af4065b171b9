"""Training and evaluation: the config and recipes, the loop, checkpoints, metrics, DDP."""

from inception_v2.evaluation import EvalResult, Evaluator, evaluate
from inception_v2.train.checkpoint import load_checkpoint, load_model, save_checkpoint
from inception_v2.train.config import RECIPES, TrainConfig, build_config, load_config_file, resolve_config
from inception_v2.train.engine import Run, TrainHooks, fit
from inception_v2.train.losses import InceptionLoss
from inception_v2.train.optim import RMSpropTF
from inception_v2.train.resume import resolve_resume
from inception_v2.train.step import EpochLog, NonFiniteLossError, StepOptions, TrainStep, train_one_epoch

__all__ = [
    "RECIPES",
    "EpochLog",
    "EvalResult",
    "Evaluator",
    "InceptionLoss",
    "NonFiniteLossError",
    "RMSpropTF",
    "Run",
    "StepOptions",
    "TrainConfig",
    "TrainHooks",
    "TrainStep",
    "build_config",
    "evaluate",
    "fit",
    "load_checkpoint",
    "load_config_file",
    "load_model",
    "resolve_config",
    "resolve_resume",
    "save_checkpoint",
    "train_one_epoch",
]
