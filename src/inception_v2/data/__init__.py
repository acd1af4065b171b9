"""Data: PASCAL VOC 07+12 object crops (docs/data.md) or your own image folders; sample,
preparation, loading.

Data flows one way: sources (``voc``: devkit / tar files -> object records, ``crops`` one VOC
image -> its crops; ``folder``: class folders -> files; both decode through ``images``) ->
``prepare`` (process pool, ``counts``, ``store`` files raw or JPEG, manifest) -> ``dataset``
(``PreparedDataset``, loaders) with ``transforms``. ``sample`` writes the synthetic data the
project uses by default. See ``docs/data.md``.
"""

from inception_v2.data.dataset import PreparedDataset, VOCCrops, make_loader
from inception_v2.data.prepare import prepare
from inception_v2.data.sample import make_folder_sample, make_sample
from inception_v2.data.transforms import eval_transform, normalize, train_transform
from inception_v2.data.voc import VOC_CLASSES

__all__ = [
    "PreparedDataset",
    "VOCCrops",
    "VOC_CLASSES",
    "eval_transform",
    "make_folder_sample",
    "make_loader",
    "make_sample",
    "normalize",
    "prepare",
    "train_transform",
]
