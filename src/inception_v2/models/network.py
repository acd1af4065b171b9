"""The frame every model shares: named stages, auxiliary heads attached after named stages,
global pool -> dropout -> one linear layer, and the forward API.

* ``forward(x)`` always returns the logits, in train and eval mode alike.
* ``forward_with_aux(x)`` returns :class:`ModelOutput` (``logits``, ``aux_logits``).
* ``forward_features(x)`` returns the last feature map; ``forward_head(features)`` the logits.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Tuple

import torch
from torch import nn

from inception_v2.models.layers import AuxHead, ModelOutput, check_input, init_weights
from inception_v2.models.registry import DataConfig


class StagedClassifier(nn.Module):
    def __init__(
        self,
        name: str,
        stages: "OrderedDict[str, nn.Module]",
        num_features: int,
        num_classes: int,
        dropout: float,
        aux_heads: Dict[str, AuxHead],
        data_config: DataConfig,
    ) -> None:
        super().__init__()
        unknown = set(aux_heads) - set(stages)
        if unknown:
            raise ValueError(f"auxiliary heads attached to unknown stages {sorted(unknown)}")
        self.name = name
        self.data_config = data_config
        self.num_classes = num_classes
        self.num_features = num_features
        self.features = nn.Sequential(stages)
        # Keyed by the stage whose output feeds the head; kept in network order.
        self.aux_heads = nn.ModuleDict((k, aux_heads[k]) for k in stages if k in aux_heads)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(num_features, num_classes)
        init_weights(self)

    @property
    def aux_logits(self) -> bool:
        return len(self.aux_heads) > 0

    def get_classifier(self) -> nn.Linear:
        """The main classifier (the last linear layer)."""
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the main classifier *and* every auxiliary head's last layer by freshly
        initialized ones with ``num_classes`` outputs (fine-tuning on another label set)."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.fc = nn.Linear(self.num_features, num_classes)
        init_weights(self.fc)
        for head in self.aux_heads.values():
            head.reset_classifier(num_classes)
        self.num_classes = num_classes

    def stage_names(self) -> List[str]:
        return [name for name, _ in self.features.named_children()]

    def _run_stages(self, x: torch.Tensor, with_aux: bool) -> Tuple[torch.Tensor, Tuple[torch.Tensor, ...]]:
        check_input(x, self.data_config.min_input_size, self.name)
        aux: List[torch.Tensor] = []
        for name, stage in self.features.named_children():
            x = stage(x)
            if with_aux and name in self.aux_heads:
                aux.append(self.aux_heads[name](x))
        return x, tuple(aux)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._run_stages(x, with_aux=False)[0]

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(features), 1)  # N x num_features
        return self.fc(self.dropout(x))  # N x num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_with_aux(self, x: torch.Tensor) -> ModelOutput:
        """Logits and every auxiliary head's logits (in network order), in any mode."""
        features, aux = self._run_stages(x, with_aux=True)
        return ModelOutput(self.forward_head(features), aux)
