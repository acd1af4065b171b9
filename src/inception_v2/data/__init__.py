"""PASCAL VOC 07+12 object crops (SPEC.md section 4): sample, preparation, loading.

Data flows one way: ``voc`` (devkit / tar files -> object records) -> ``crops`` (one image ->
manifest rows and crops) -> ``prepare`` (process pool, ``counts``, ``store`` files, manifest) ->
``dataset`` (``VOCCrops``, loaders) with ``transforms``. ``sample`` writes the synthetic devkit
the project uses by default. See ``docs/data.md``.
"""

from inception_v2.data.dataset import VOCCrops, make_loader
from inception_v2.data.prepare import prepare
from inception_v2.data.sample import make_sample
from inception_v2.data.transforms import eval_transform, normalize, train_transform
from inception_v2.data.voc import VOC_CLASSES

__all__ = [
    "VOCCrops",
    "VOC_CLASSES",
    "eval_transform",
    "make_loader",
    "make_sample",
    "normalize",
    "prepare",
    "train_transform",
]
