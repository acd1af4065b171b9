"""Inception-v2/v3 and GoogLeNet-BN in PyTorch, with the PASCAL VOC 07+12 object-crop experiment."""

from inception_v2.models import (
    DataConfig,
    ModelOutput,
    create_model,
    get_data_config,
    list_models,
    register_model,
)

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


def __getattr__(name: str):
    # ``load_model`` lives with the training code (inception_v2.train.checkpoint); imported on
    # first use so that ``import inception_v2`` stays as light as the models.
    if name == "load_model":
        from inception_v2.train.checkpoint import load_model

        return load_model
    raise AttributeError(f"module 'inception_v2' has no attribute {name!r}")
