"""One registry for every model: ``register_model``, ``list_models``, ``create_model``.

Each model also carries a :class:`~inception_v2.models.config.DataConfig` (input size, resize
size, normalization, smallest accepted input), which the data and training code read instead of
hard-coding sizes.
"""

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
    ``dropout``, ``global_pool``...), ``drop_rate`` (timm's name of ``dropout``) and
    ``out_indices``."""
    _check_name(name)
    own = [p for p in inspect.signature(_MODELS[name]).parameters if p not in _COMMON]
    return own + ["drop_rate", "out_indices"]


def create_model(
    name: str,
    num_classes: int = 1000,
    in_chans: int = 3,
    pretrained: Any = None,
    features_only: bool = False,
    **model_kwargs: Any,
) -> nn.Module:
    """Build a registered model.

    * ``num_classes``: width of the classifier (and of each auxiliary head); 0 builds none:
      ``forward`` returns the pooled features (``num_features`` wide), as timm.
    * ``in_chans``: input channels; the first convolution is built for them (pretrained RGB
      weights are adapted: summed for 1 channel, repeated and rescaled for more).
    * ``pretrained``: initial weights, from a training checkpoint (``.pt``: the weights the run
      selected on), a ``.safetensors`` file, a release folder (``model.safetensors`` +
      ``config.json``, written by ``inception-v2 export --format safetensors``), a state dict
      (ours, or a published release's own), a published release's name or ``True`` (this
      model's default release, downloaded once and checked against its hash; see
      :data:`inception_v2.models.weights.RELEASES`). When its class count differs from
      ``num_classes`` the classifiers are re-initialized, and auxiliary heads it has and the
      model has not (or the reverse) are dropped (left initialized), each with a one-line note.
      A release's architecture options (e.g. GoogLeNet-BN's Caffe pooling) apply unless given.
    * ``features_only``: a :class:`~inception_v2.models.network.FeatureListNet` returning the
      feature map at each grid (``out_indices`` selects among ``feature_info``).
    * ``model_kwargs``: the model's own options (:func:`model_options` lists them):
      ``aux_logits=True`` adds the auxiliary heads (``forward_with_aux`` returns their logits;
      off by default, so that ``forward`` reaches every parameter), ``dropout`` (or timm's
      ``drop_rate``; None keeps the model's default), ``global_pool`` (``"avg"``, ``"max"``,
      ``"avgmax"``, or ``""`` with ``num_classes=0``)... An unknown keyword is a ``TypeError``
      naming the accepted ones.

    An unknown name raises :class:`UsageError` (a ``ValueError``) listing the available models.
    """
    _check_name(name)
    model_kwargs = _checked_options(name, num_classes, in_chans, features_only, model_kwargs)
    out_indices: Optional[Sequence[int]] = model_kwargs.pop("out_indices", None)
    source = None
    if pretrained is not None and pretrained is not False:
        source = resolve_pretrained(name, pretrained)
        model_kwargs = {**source.arch_options, **model_kwargs}
    model = _MODELS[name](num_classes=num_classes, in_chans=in_chans, **model_kwargs)
    if source is not None:
        load_pretrained(model, source.state_dict, source.description)
        if source.release is not None:
            model.release = {"tag": source.release.tag, "url": source.release.url, "license": source.release.license}
    if features_only:
        model = FeatureListNet(model, out_indices)
    return model


def _checked_options(
    name: str, num_classes: Any, in_chans: Any, features_only: bool, model_kwargs: Dict[str, Any]
) -> Dict[str, Any]:
    """``model_kwargs`` checked against the model's options, ``drop_rate`` as ``dropout``,
    ``dropout=None`` left out (the model's default)."""
    accepted = model_options(name)
    unknown = sorted(set(model_kwargs) - set(accepted))
    if unknown:
        raise TypeError(
            f"create_model() got unexpected keyword argument(s) {', '.join(map(repr, unknown))} for {name}; "
            f"accepted: num_classes, in_chans, pretrained, features_only, {', '.join(accepted)}"
        )
    kwargs = dict(model_kwargs)
    if model_kwargs.get("out_indices") is not None and not features_only:
        raise ValueError("out_indices applies with features_only=True only")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"num_classes must be an integer >= 0 (0: no classifier), got {num_classes!r}")
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
        raise ValueError(f"in_chans must be an integer >= 1, got {in_chans!r}")
    if num_classes == 0 and kwargs.get("aux_logits"):
        raise ValueError("aux_logits=True needs num_classes >= 1: the auxiliary heads are classifiers")
    drop_rate = kwargs.pop("drop_rate", None)
    dropout = kwargs.pop("dropout", None)
    if drop_rate is not None and dropout is not None and drop_rate != dropout:
        raise ValueError(f"dropout={dropout} and drop_rate={drop_rate} disagree (drop_rate is timm's name of dropout)")
    dropout = dropout if dropout is not None else drop_rate
    if dropout is not None:
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        kwargs["dropout"] = dropout
    return kwargs


def get_data_config(name: str) -> DataConfig:
    """The data config of a registered model, without building it."""
    _check_name(name)
    return _DATA_CONFIGS[name]
