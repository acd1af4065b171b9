"""The classifier head's parts that follow timm's conventions: the global pool choices
(:class:`GlobalPool`), which pool and class count go together (:func:`check_head`), and
timm's feature-index selection (:func:`feature_take_indices`)."""

from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

POOL_TYPES = ("avg", "max", "avgmax", "")


def check_head(num_classes: int, global_pool: str) -> None:
    """``ValueError`` unless ``num_classes`` >= 0 and ``global_pool`` is one of
    :data:`POOL_TYPES`; no pooling (``""``) only without a classifier (``num_classes=0``)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"num_classes must be an integer >= 0 (0: no classifier), got {num_classes!r}")
    if global_pool not in POOL_TYPES:
        raise ValueError(f"global_pool must be one of {', '.join(map(repr, POOL_TYPES))}, got {global_pool!r}")
    if global_pool == "" and num_classes > 0:
        raise ValueError("global_pool='' (no pooling) needs num_classes=0: a classifier needs pooled features")


class GlobalPool(nn.Module):
    """Pooling of the last feature map to one vector per image, as timm's ``global_pool``:
    ``"avg"`` (the papers'), ``"max"``, ``"avgmax"`` (the mean of the two), ``""`` (none: the
    map passes unpooled)."""

    def __init__(self, pool_type: str = "avg") -> None:
        super().__init__()
        if pool_type not in POOL_TYPES:
            raise ValueError(f"global_pool must be one of {', '.join(map(repr, POOL_TYPES))}, got {pool_type!r}")
        self.pool_type = pool_type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_type == "avg":
            return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        if self.pool_type == "max":
            return torch.flatten(F.adaptive_max_pool2d(x, 1), 1)
        if self.pool_type == "avgmax":
            return torch.flatten(0.5 * (F.adaptive_avg_pool2d(x, 1) + F.adaptive_max_pool2d(x, 1)), 1)
        return x

    def extra_repr(self) -> str:
        return f"pool_type={self.pool_type!r}"


def feature_take_indices(
    num_features: int, indices: Optional[Union[int, Sequence[int]]] = None
) -> Tuple[List[int], int]:
    """The feature maps to take, as timm's function of that name: ``None`` all, an int ``n``
    the last ``n``, a sequence those indices (negative from the end). Returns the indices
    (from 0) and the largest; ``ValueError`` when one is out of range."""
    if indices is None:
        indices = num_features
    if isinstance(indices, int):
        if not 0 < indices <= num_features:
            raise ValueError(f"last-n ({indices}) is out of range (1 to {num_features})")
        take = list(range(num_features - indices, num_features))
    else:
        take = []
        for i in indices:
            idx = num_features + i if i < 0 else i
            if not 0 <= idx < num_features:
                raise ValueError(f"feature index {idx} is out of range (0 to {num_features - 1})")
            take.append(idx)
        if not take:
            raise ValueError("no feature index given")
    return take, max(take)
