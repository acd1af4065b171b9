"""What a model wants of its input: :class:`DataConfig` (input and resize size, normalization,
interpolation, smallest accepted input). The data and training code read it instead of
hard-coding sizes; every checkpoint and release folder stores it (:meth:`DataConfig.to_dict`).
("The source" is the blog post this project reproduces, docs/source.md.)"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Tuple

from inception_v2.errors import UsageError
from inception_v2.formats.schema import validate_data_config
from inception_v2.paths import PathLike

INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


@dataclass(frozen=True)
class DataConfig:
    """How a model wants its images: the source's pipeline resizes the shorter side
    to ``resize_size`` (with ``interpolation``) and crops ``input_size`` (random in training,
    centre in evaluation), then normalizes RGB in [0, 1] with ``mean`` and ``std``."""

    input_size: int  # side of the square crop the network sees
    resize_size: int  # shorter side after resizing, before the crop
    min_input_size: int  # smallest side the network accepts (every stage keeps >= 1 pixel)
    mean: Tuple[float, float, float] = (0.5, 0.5, 0.5)  # the source normalizes to [-1, 1]
    std: Tuple[float, float, float] = (0.5, 0.5, 0.5)
    interpolation: str = "bilinear"  # of the resize (torchvision.transforms.InterpolationMode)

    def __post_init__(self) -> None:
        if self.input_size < self.min_input_size:
            raise ValueError(f"input size {self.input_size} is below this model's minimum {self.min_input_size}")
        if self.resize_size < self.input_size:
            raise ValueError(f"resize size {self.resize_size} is smaller than the crop {self.input_size}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")

    def with_input_size(self, input_size: int, resize_size: Optional[int] = None) -> "DataConfig":
        """The same pipeline at another crop size; the resize keeps its ratio to the crop
        unless given (e.g. 299 -> 384 becomes 224 -> 288; pass 256 for the source's 256 -> 224)."""
        if resize_size is None:
            resize_size = round(input_size * self.resize_size / self.input_size)
        return replace(self, input_size=input_size, resize_size=resize_size)

    def to_dict(self) -> Dict[str, Any]:
        """The plain dict stored in checkpoints and release folders."""
        return {
            "input_size": self.input_size,
            "resize_size": self.resize_size,
            "min_input_size": self.min_input_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
        }

    @classmethod
    def from_dict(cls, d: Any, path: PathLike) -> "DataConfig":
        """The inverse of :meth:`to_dict`, with a one-line :class:`UsageError` naming ``path``
        (``interpolation`` is optional: bilinear, what files written before it was stored used)."""
        validate_data_config(d, path)
        try:
            return cls(
                input_size=int(d["input_size"]),
                resize_size=int(d["resize_size"]),
                min_input_size=int(d["min_input_size"]),
                mean=tuple(d["mean"]),
                std=tuple(d["std"]),
                interpolation=str(d.get("interpolation", "bilinear")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UsageError(f"{path} has a bad data_config: {e}") from None


def data_config_dict(cfg: DataConfig) -> Dict[str, Any]:
    """``cfg.to_dict()`` (the name earlier versions exported)."""
    return cfg.to_dict()


def data_config_from_dict(d: Any, path: PathLike) -> DataConfig:
    """``DataConfig.from_dict(d, path)`` (the name earlier versions exported)."""
    return DataConfig.from_dict(d, path)
