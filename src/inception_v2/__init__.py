"""Inception-v2/v3 and GoogLeNet-BN in PyTorch, with the PASCAL VOC 07+12 object-crop experiment.

``create_model`` / ``list_models`` build the networks (:mod:`inception_v2.models`);
``load_model`` reads a trained one back from a checkpoint or a release folder
(:mod:`inception_v2.deploy`). Importing the package loads neither the training code nor
matplotlib.

Throughout the package, "the source" means the blog post this project reproduces and its code
(*[GoogLeNet]Inception_v2* by zjZSTU, with https://github.com/zjZSTU/GoogLeNet): see
docs/source.md. Where the layers of the package are and what each owns: docs/architecture.md,
"Where things live".
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
