"""Our models in timm's model registry (timm is optional: ``pip install timm``).

    import inception_v2.integrations.timm as iv2_timm
    iv2_timm.register()  # once per process
    model = timm.create_model("iv2_inception_v2", num_classes=20)

Each model is registered as ``iv2_`` + its name (``iv2_inception_v2``, ``iv2_inception_v3``,
``iv2_inception_v3_tv``, ``iv2_googlenet_bn``: timm has an ``inception_v3`` of its own), with a
``pretrained_cfg`` per published release (``iv2_googlenet_bn.caffe_in1k``,
``iv2_inception_v3_tv.tv_in1k``; ``pretrained=True`` downloads ours as
``create_model(..., pretrained=True)`` does) or one without weights. The configuration is the
model's own (:attr:`StagedClassifier.pretrained_cfg`), so ``timm.data.resolve_data_config`` and
``create_transform`` build its evaluation pipeline. timm's ``train.py``, ``validate.py`` and
``benchmark.py`` take the models after one added line: ``import inception_v2.integrations.timm
as t; t.register()``.

timm's own keywords are handled here: ``device`` and ``dtype`` (the model is built on that
device), ``pretrained_cfg`` (a tag, dict or ``PretrainedCfg``) and ``pretrained_cfg_overlay``;
every other keyword goes to :func:`inception_v2.create_model`.
"""

import contextlib
import logging
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import nn

from inception_v2.models import create_model, list_models
from inception_v2.models.weights import DEFAULT_RELEASES, RELEASES

_logger = logging.getLogger(__name__)

PREFIX = "iv2_"
# timm reads the configurations of the models registered from a module here (filled by register).
default_cfgs: Dict[str, Any] = {}
_registered: Dict[str, Callable[..., nn.Module]] = {}


def timm_name(name: str) -> str:
    """The name of our model ``name`` in timm's registry."""
    return PREFIX + name


def _timm():
    try:
        import timm.models
    except ImportError:
        raise ImportError(
            "inception_v2.integrations.timm needs timm, which is not installed: pip install timm"
        ) from None
    return timm.models


def pretrained_cfgs(name: str) -> Dict[str, Dict[str, Any]]:
    """timm's configurations of our model ``name``, keyed ``arch.tag``: one per published
    release (the default release first), or one untagged without weights."""
    with torch.device("meta"):  # the structure only, in milliseconds
        base = dict(create_model(name).pretrained_cfg)
    arch = timm_name(name)
    base.update(architecture=arch, tag=None)
    releases = sorted(
        (r for r in RELEASES.values() if r.model == name), key=lambda r: r.name != DEFAULT_RELEASES.get(name)
    )
    if not releases:
        return {arch: base}
    return {
        f"{arch}.{r.tag}": {**base, "url": r.url, "license": r.license, "num_classes": r.num_classes} for r in releases
    }


def _tag_of(pretrained_cfg: Any) -> Optional[str]:
    if isinstance(pretrained_cfg, str):
        return pretrained_cfg or None
    if isinstance(pretrained_cfg, dict):
        return pretrained_cfg.get("tag")
    return getattr(pretrained_cfg, "tag", None)


def _entrypoint(name: str) -> Callable[..., nn.Module]:
    arch = timm_name(name)

    def entry(
        pretrained: bool = False,
        pretrained_cfg: Any = None,
        pretrained_cfg_overlay: Optional[Dict[str, Any]] = None,
        cache_dir: Any = None,
        device: Any = None,
        dtype: Optional[torch.dtype] = None,
        **kwargs: Any,
    ) -> nn.Module:
        if cache_dir is not None:
            raise ValueError(f"{arch}: cache_dir is not supported (its weights are cached in torch.hub's folder)")
        tag = _tag_of(pretrained_cfg)
        weights = (f"{name}.{tag}" if tag else True) if pretrained else None
        with torch.device(device) if device is not None else contextlib.nullcontext():
            model = create_model(name, pretrained=weights, **kwargs)
        if dtype is not None:
            model.to(dtype=dtype)
        cfg = dict(model.pretrained_cfg, architecture=arch, tag=tag)
        if isinstance(pretrained_cfg, dict):
            cfg.update(pretrained_cfg)
        cfg.update(pretrained_cfg_overlay or {})
        model.pretrained_cfg = cfg
        model.default_cfg = cfg
        return model

    entry.__name__ = entry.__qualname__ = arch
    entry.__module__ = __name__
    entry.__doc__ = f"Our {name} (inception_v2.create_model), as timm builds it."
    return entry


def register() -> List[str]:
    """Register every model of ours in timm's registry (see the module docstring); returns the
    timm names. Calling it again does nothing. An ``ImportError`` says so when timm is missing."""
    models = _timm()
    for name in list_models():
        arch = timm_name(name)
        if arch in _registered:
            continue
        default_cfgs.update(models.generate_default_cfgs(pretrained_cfgs(name)))
        _registered[arch] = models.register_model(_entrypoint(name))
        _logger.debug("registered %s in timm as %s", name, arch)
    return sorted(_registered)
