"""Inception-v2/v3 and GoogLeNet-BN in PyTorch, with the PASCAL VOC 07+12 object-crop experiment.

``create_model`` / ``list_models`` build the networks (:mod:`inception_v2.models`);
``load_model`` reads a trained one back from a checkpoint or a release folder
(:mod:`inception_v2.deploy`). Importing the package loads neither the training code nor
matplotlib.
"""

from inception_v2.deploy.load import load_model
from inception_v2.models import (
    DataConfig,
    ModelOutput,
    create_model,
    get_data_config,
    list_models,
    list_releases,
    register_model,
)
from inception_v2.version import __version__

__all__ = [
    "DataConfig",
    "ModelOutput",
    "create_model",
    "get_data_config",
    "list_models",
    "list_releases",
    "load_model",
    "register_model",
    "__version__",
]
