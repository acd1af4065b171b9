"""The training loss: cross-entropy with label smoothing on the logits, plus a weighted copy of
the same on every auxiliary head.

``nn.CrossEntropyLoss(label_smoothing=eps)`` trains against q'(k) = (1 - eps) * [k = y] + eps / K,
which is the paper's label-smoothing regularization (Szegedy et al. 2015, section 7):
loss = (1 - eps) * CE(p, y) + eps * mean_k(-log p_k). ``tests/train/test_losses.py`` checks the two
agree.

The target is either class indices (``N``) or class probabilities (``N x K``, the soft labels
of MixUp / CutMix); label smoothing applies to both (``CrossEntropyLoss`` mixes a soft target
with the uniform distribution the same way), and every auxiliary head gets the same target.
"""

from __future__ import annotations

import torch
from torch import nn

from inception_v2.models import ModelOutput


class InceptionLoss(nn.Module):
    """``CE_eps(logits, y) + aux_weight * sum_i CE_eps(aux_i, y)`` over a :class:`ModelOutput`;
    ``y`` holds class indices or class probabilities."""

    def __init__(self, label_smoothing: float = 0.0, aux_weight: float = 0.3) -> None:
        super().__init__()
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        if aux_weight < 0:
            raise ValueError(f"aux_weight must be >= 0, got {aux_weight}")
        self.aux_weight = aux_weight
        self.ce = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def forward(self, output: ModelOutput, target: torch.Tensor) -> torch.Tensor:
        loss = self.ce(output.logits.float(), target)
        if self.aux_weight > 0:
            for aux in output.aux_logits:
                loss = loss + self.aux_weight * self.ce(aux.float(), target)
        return loss
