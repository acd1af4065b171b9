"""Helpers of the training tests (tiny configs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inception_v2.train import TrainConfig, resolve_config

TINY = dict(model="googlenet_bn", image_size=32, batch_size=8, epochs=2, workers=0, device="cpu")


def tiny_config(data: Path, out: Path, **overrides: Any) -> TrainConfig:
    options = dict(TINY, **overrides)
    recipe = options.pop("recipe", "blog")
    return resolve_config(recipe, data=str(data), out=str(out), **options)


def quiet(_msg: str) -> None:
    pass
