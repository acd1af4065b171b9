"""Every on-disk format a run produces or reads, in one place at the bottom of the package:

* :mod:`~inception_v2.formats.checkpoint`: the training checkpoint (:class:`Checkpoint`,
  :func:`read_checkpoint`, :func:`write_checkpoint`; the upgrade of older versions in
  :func:`upgrade_checkpoint`);
* :mod:`~inception_v2.formats.release`: the release folder (:class:`ReleaseConfig`,
  :func:`read_release_folder`, :func:`write_release_folder`);
* :mod:`~inception_v2.formats.data_config`: :class:`DataConfig`, the input pipeline every one
  of those files stores;
* :mod:`~inception_v2.formats.state_dict`: state dicts and safetensors files;
* :mod:`~inception_v2.formats.pretrained`: the weights of any file given as ``pretrained=``.

Each format is a typed dataclass with one reader and one writer and a version number. This
package imports only the bottom layer (``errors``, ``atomic``, ``locking``, ``paths``): models,
data, deployment and training import down into it (docs/architecture.md, "Where things live").
"""

from inception_v2.formats.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    Checkpoint,
    RunInfo,
    checkpoint_from_training,
    read_checkpoint,
    restore_training,
    selected_weights,
    upgrade_checkpoint,
    write_checkpoint,
)
from inception_v2.formats.data_config import DataConfig
from inception_v2.formats.pretrained import read_pretrained
from inception_v2.formats.release import (
    RELEASE_CONFIG,
    RELEASE_FORMAT,
    RELEASE_VERSION,
    RELEASE_WEIGHTS,
    ReleaseConfig,
    read_release_config,
    read_release_folder,
    write_release_folder,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "RELEASE_CONFIG",
    "RELEASE_FORMAT",
    "RELEASE_VERSION",
    "RELEASE_WEIGHTS",
    "Checkpoint",
    "DataConfig",
    "ReleaseConfig",
    "RunInfo",
    "checkpoint_from_training",
    "read_checkpoint",
    "read_pretrained",
    "read_release_config",
    "read_release_folder",
    "restore_training",
    "selected_weights",
    "upgrade_checkpoint",
    "write_checkpoint",
    "write_release_folder",
]
