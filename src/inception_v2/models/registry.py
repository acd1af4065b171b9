"""One registry for every model: ``register_model``, ``list_models``, ``create_model``.

Each model also carries a :class:`DataConfig` (input size, resize size, normalization,
smallest accepted input), which the data and training code read instead of hard-coding sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Optional, Tuple

from torch import nn

from inception_v2.errors import UsageError


@dataclass(frozen=True)
class DataConfig:
    """How a model wants its images: the source's pipeline resizes the shorter side to
    ``resize_size`` and crops ``input_size`` (random in training, centre in evaluation)."""

    input_size: int  # side of the square crop the network sees
    resize_size: int  # shorter side after resizing, before the crop
    min_input_size: int  # smallest side the network accepts (every stage keeps >= 1 pixel)
    mean: Tuple[float, float, float] = (0.5, 0.5, 0.5)  # the source normalizes to [-1, 1]
    std: Tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        if self.input_size < self.min_input_size:
            raise ValueError(
                f"input size {self.input_size} is below this model's minimum {self.min_input_size}"
            )
        if self.resize_size < self.input_size:
            raise ValueError(
                f"resize size {self.resize_size} is smaller than the crop {self.input_size}"
            )

    def with_input_size(self, input_size: int, resize_size: Optional[int] = None) -> "DataConfig":
        """The same pipeline at another crop size; the resize keeps its ratio to the crop
        unless given (e.g. 299 -> 384 becomes 224 -> 288; pass 256 for the source's 256 -> 224)."""
        if resize_size is None:
            resize_size = round(input_size * self.resize_size / self.input_size)
        return replace(self, input_size=input_size, resize_size=resize_size)


ModelBuilder = Callable[..., nn.Module]
_MODELS: Dict[str, ModelBuilder] = {}
_DATA_CONFIGS: Dict[str, DataConfig] = {}


def register_model(name: str, data_config: DataConfig) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator adding a model builder and its data config to the registry under ``name``.

    The builder takes ``num_classes``, ``aux_logits`` and model-specific keywords and must
    return a model whose ``data_config`` attribute is ``data_config``.
    """

    def decorator(builder: ModelBuilder) -> ModelBuilder:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = builder
        _DATA_CONFIGS[name] = data_config
        return builder

    return decorator


def _check_name(name: str) -> None:
    if name not in _MODELS:
        raise UsageError(f"unknown model {name!r}; available models: {', '.join(list_models())}")


def list_models() -> List[str]:
    """Names of every registered model, sorted."""
    return sorted(_MODELS)


def create_model(
    name: str,
    num_classes: int = 1000,
    aux_logits: bool = True,
    dropout: Optional[float] = None,
    pretrained: Any = None,
    **kwargs,
) -> nn.Module:
    """Build a registered model. ``dropout=None`` keeps the model's own default.

    ``pretrained`` initializes the weights from a training checkpoint (``.pt``), a
    ``.safetensors`` file, a release folder or a state dict; when its class count differs from
    ``num_classes`` the classifiers are re-initialized (with a one-line note).
    An unknown name raises :class:`UsageError` (a ``ValueError``) listing the available models.
    """
    _check_name(name)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if dropout is not None:
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        kwargs["dropout"] = dropout
    model = _MODELS[name](num_classes=num_classes, aux_logits=aux_logits, **kwargs)
    if pretrained is not None:
        # deploy.load reads checkpoints and release files; it imports this package, hence here.
        from inception_v2.deploy.load import read_state_dict
        from inception_v2.models.weights import load_pretrained

        source = "the given state dict" if isinstance(pretrained, dict) else str(pretrained)
        load_pretrained(model, read_state_dict(pretrained), source)
    return model


def get_data_config(name: str) -> DataConfig:
    """The data config of a registered model, without building it."""
    _check_name(name)
    return _DATA_CONFIGS[name]
