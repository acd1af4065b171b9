"""What a model wants of its input: :class:`DataConfig`, defined with the on-disk formats that
store it (:mod:`inception_v2.formats.data_config`) and importable from here as before."""

from inception_v2.formats.data_config import INTERPOLATIONS, DataConfig

__all__ = ["INTERPOLATIONS", "DataConfig"]
