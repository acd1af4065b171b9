"""Model definitions. Importing this package registers every model."""

from inception_v2.models import googlenet_bn, inception_v2, inception_v3_tv  # noqa: F401  (registration)
from inception_v2.models.config import DataConfig
from inception_v2.models.layers import ModelOutput
from inception_v2.models.network import FeatureInfo, FeatureListNet, StagedClassifier
from inception_v2.models.registry import (
    create_model,
    get_data_config,
    list_models,
    model_options,
    register_model,
)
from inception_v2.models.weights import list_releases

__all__ = [
    "DataConfig",
    "FeatureInfo",
    "FeatureListNet",
    "ModelOutput",
    "StagedClassifier",
    "create_model",
    "get_data_config",
    "list_models",
    "list_releases",
    "model_options",
    "register_model",
]
