"""Inception-v2/v3 and GoogLeNet-BN in PyTorch, with the PASCAL VOC 07+12 object-crop experiment."""

from inception_v2.models import (
    DataConfig,
    ModelOutput,
    create_model,
    get_data_config,
    list_models,
    register_model,
)
from inception_v2.train.checkpoint import load_model

__version__ = "0.1.0"

__all__ = [
    "DataConfig",
    "ModelOutput",
    "create_model",
    "get_data_config",
    "list_models",
    "load_model",
    "register_model",
]
