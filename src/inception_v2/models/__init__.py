"""Model definitions. Importing this package registers every model."""

from inception_v2.models import googlenet_bn, inception_v2  # noqa: F401  (registration)
from inception_v2.models.layers import ModelOutput
from inception_v2.models.network import StagedClassifier
from inception_v2.models.registry import (
    DataConfig,
    create_model,
    get_data_config,
    list_models,
    register_model,
)

__all__ = [
    "DataConfig",
    "ModelOutput",
    "StagedClassifier",
    "create_model",
    "get_data_config",
    "list_models",
    "register_model",
]
