"""One registry for every model: ``register_model``, ``list_models``, ``create_model``.

Each model also carries a :class:`~inception_v2.models.config.DataConfig` (input size, resize
size, normalization, smallest accepted input), which the data and training code read instead of
hard-coding sizes.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List, Optional, Sequence

from torch import nn

from inception_v2.errors import UsageError
from inception_v2.models.config import DataConfig
from inception_v2.models.network import FeatureListNet
from inception_v2.models.weights import load_pretrained, resolve_pretrained

__all__ = ["DataConfig", "create_model", "get_data_config", "list_models", "model_options", "register_model"]

ModelBuilder = Callable[..., nn.Module]
_MODELS: Dict[str, ModelBuilder] = {}
_DATA_CONFIGS: Dict[str, DataConfig] = {}

# Arguments create_model itself handles; every builder takes the first two.
_COMMON = ("num_classes", "in_chans")


def register_model(name: str, data_config: DataConfig) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator adding a model builder and its data config to the registry under ``name``.

    The builder takes ``num_classes``, ``in_chans``, ``aux_logits`` and model-specific keywords
    and must return a model whose ``data_config`` attribute is ``data_config``.
    """

    def decorator(builder: ModelBuilder) -> ModelBuilder:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        params = inspect.signature(builder).parameters
        missing = [p for p in _COMMON if p not in params]
        if missing:
            raise TypeError(f"the builder of {name} must take {', '.join(missing)}")
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


def model_options(name: str) -> List[str]:
    """The keyword arguments ``create_model(name, ...)`` accepts beyond ``num_classes``,
    ``in_chans``, ``pretrained`` and ``features_only``: the builder's own (``aux_logits``,
    ``dropout``...) and ``out_indices``."""
    _check_name(name)
    own = [p for p in inspect.signature(_MODELS[name]).parameters if p not in _COMMON]
    return own + ["out_indices"]


def create_model(
    name: str,
    num_classes: int = 1000,
    in_chans: int = 3,
    pretrained: Any = None,
    features_only: bool = False,
    **model_kwargs: Any,
) -> nn.Module:
    """Build a registered model.

    * ``num_classes``: width of the classifier (and of each auxiliary head).
    * ``in_chans``: input channels; the first convolution is built for them (pretrained RGB
      weights are adapted: summed for 1 channel, repeated and rescaled for more).
    * ``pretrained``: initial weights, from a training checkpoint (``.pt``: the weights the run
      selected on), a ``.safetensors`` file, a release folder (``model.safetensors`` +
      ``config.json``, written by ``inception-v2 export --format safetensors``), a state dict
      (ours, or a published release's own), a published release's name or ``True`` (this
      model's default release, downloaded once and checked against its hash; see
      :data:`inception_v2.models.weights.RELEASES`). When its class count differs from
      ``num_classes`` the classifiers are re-initialized, with a one-line note. A release's
      architecture options (e.g. GoogLeNet-BN's Caffe pooling) apply unless given here.
    * ``features_only``: a :class:`~inception_v2.models.network.FeatureListNet` returning the
      feature map at each grid (``out_indices`` selects among ``feature_info``).
    * ``model_kwargs``: the model's own options (``aux_logits``, ``dropout``, ``aux_dropout``...;
      :func:`model_options` lists them; ``dropout=None`` keeps the model's default). An unknown
      keyword is a ``TypeError`` naming the accepted ones.

    An unknown name raises :class:`UsageError` (a ``ValueError``) listing the available models.
    """
    _check_name(name)
    accepted = model_options(name)
    unknown = sorted(set(model_kwargs) - set(accepted))
    if unknown:
        raise TypeError(
            f"create_model() got unexpected keyword argument(s) {', '.join(map(repr, unknown))} for {name}; "
            f"accepted: num_classes, in_chans, pretrained, features_only, {', '.join(accepted)}"
        )
    out_indices: Optional[Sequence[int]] = model_kwargs.pop("out_indices", None)
    if out_indices is not None and not features_only:
        raise ValueError("out_indices applies with features_only=True only")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
        raise ValueError(f"in_chans must be an integer >= 1, got {in_chans!r}")
    if "dropout" in model_kwargs:
        dropout = model_kwargs.pop("dropout")
        if dropout is not None:
            if not 0.0 <= dropout < 1.0:
                raise ValueError(f"dropout must be in [0, 1), got {dropout}")
            model_kwargs["dropout"] = dropout
    source = None
    if pretrained is not None and pretrained is not False:
        source = resolve_pretrained(name, pretrained)
        model_kwargs = {**source.arch_options, **model_kwargs}
    model = _MODELS[name](num_classes=num_classes, in_chans=in_chans, **model_kwargs)
    if source is not None:
        load_pretrained(model, source.state_dict, source.description)
    if features_only:
        model = FeatureListNet(model, out_indices)
    return model


def get_data_config(name: str) -> DataConfig:
    """The data config of a registered model, without building it."""
    _check_name(name)
    return _DATA_CONFIGS[name]
