"""timm's ``pretrained_cfg`` of a model, derived from its :class:`DataConfig`, so that
``timm.data.resolve_data_config({}, model=model)`` and ``timm.data.create_transform`` build the
model's own evaluation pipeline (resize the shorter side to ``resize_size``, centre crop
``input_size``, normalize with ``mean``/``std``)."""

import math
from typing import Any, Dict, Optional, Tuple

from inception_v2.models.config import DataConfig

# What every configuration says about the networks themselves.
PAPERS = {
    "googlenet_bn": ("Batch Normalization: Accelerating Deep Network Training", "arXiv:1502.03167"),
    "inception_v2": ("Rethinking the Inception Architecture for Computer Vision", "arXiv:1512.00567"),
    "inception_v3": ("Rethinking the Inception Architecture for Computer Vision", "arXiv:1512.00567"),
    "inception_v3_tv": ("Rethinking the Inception Architecture for Computer Vision", "arXiv:1512.00567"),
}
CODE_LICENSE = "mit"  # of this package: the license of weights trained with it is their owner's call


def crop_pct(cfg: DataConfig) -> float:
    """timm's ``crop_pct`` for ``cfg``: ``input_size / resize_size``, nudged down where floating
    point would make timm's ``floor(input_size / crop_pct)`` one short of ``resize_size``."""
    pct = cfg.input_size / cfg.resize_size
    while math.floor(cfg.input_size / pct) < cfg.resize_size:
        pct = math.nextafter(pct, 0.0)
    return pct


def timm_cfg(
    architecture: str,
    data_config: DataConfig,
    in_chans: int,
    num_classes: int,
    layers: Tuple[str, str, int],
    release: Optional[Dict[str, str]] = None,
) -> Dict[str, Any]:
    """The fields of timm's ``PretrainedCfg``. ``layers``: the first convolution's and the
    classifier's module names and the side of the last feature map at ``input_size`` (timm's
    ``first_conv``, ``classifier``, ``pool_size``). ``release``: ``tag``, ``url``, ``license``
    of published weights the model holds (none for a model trained here or untrained)."""
    first_conv, classifier, grid = layers
    release = release or {}
    paper_name, paper_id = PAPERS.get(architecture, ("", ""))
    size, smallest = data_config.input_size, data_config.min_input_size
    return {
        "url": release.get("url", ""),
        "hf_hub_id": None,
        "architecture": architecture,
        "tag": release.get("tag"),
        "custom_load": False,
        "input_size": (in_chans, size, size),
        "test_input_size": None,
        "min_input_size": (in_chans, smallest, smallest),
        "fixed_input_size": False,
        "interpolation": data_config.interpolation,
        "crop_pct": crop_pct(data_config),
        "test_crop_pct": None,
        "crop_mode": "center",
        "mean": tuple(data_config.mean),
        "std": tuple(data_config.std),
        "num_classes": num_classes,
        "label_offset": None,
        "pool_size": (grid, grid),
        "test_pool_size": None,
        "first_conv": first_conv,
        "classifier": classifier,
        "license": release.get("license", CODE_LICENSE),
        "paper_name": paper_name,
        "paper_ids": paper_id,
    }
