"""Loading weights into a freshly built model (``create_model(..., pretrained=...)``).

:func:`load_pretrained` loads a state dict whose class count may differ from the model's: the
classifiers (the main one and each auxiliary head's last layer) are then left freshly
initialized, with a one-line note, and everything else must match exactly.
"""

from __future__ import annotations

import sys
from typing import Callable, Dict, List

import torch
from torch import nn

from inception_v2.errors import UsageError


def _note(msg: str) -> None:
    print(f"note: {msg}", file=sys.stderr)


def classifier_keys(model: nn.Module) -> List[str]:
    """The state-dict keys of the layers that ``reset_classifier`` replaces."""
    keys = [f"fc.{k}" for k in model.fc.state_dict()]
    for name, head in getattr(model, "aux_heads", {}).items():
        keys += [f"aux_heads.{name}.fc2.{k}" for k in head.fc2.state_dict()]
    return keys


def load_pretrained(
    model: nn.Module, weights: Dict[str, torch.Tensor], source: str, note: Callable[[str], None] = _note
) -> None:
    """Load ``weights`` into ``model`` (built with the wanted class count).

    When the classifier shapes differ, the classifier layers keep their fresh initialization
    (``note`` says so); auxiliary heads absent from ``weights`` (a release without them) keep
    theirs too, and a model without auxiliary heads ignores those in ``weights``. Any other missing, unexpected or misshapen key is a :class:`UsageError`.
    """
    own = model.state_dict()
    weights = dict(weights)
    heads = set(classifier_keys(model))
    if any(k in weights and weights[k].shape != own[k].shape for k in heads):
        theirs = weights["fc.weight"].shape[0] if "fc.weight" in weights else "another number of"
        note(f"{source} has {theirs} classes, the model {model.num_classes}: classifier re-initialized")
        for k in heads:
            weights.pop(k, None)
    skip = set(heads) - set(weights)
    aux = [k for k in own if k.startswith("aux_heads.")]
    if not aux:  # a model built without auxiliary heads ignores theirs
        weights = {k: v for k, v in weights.items() if not k.startswith("aux_heads.")}
    if aux and not any(k.startswith("aux_heads.") for k in weights):
        note(f"{source} has no auxiliary heads: they keep their fresh initialization")
        skip |= set(aux)
    missing = [k for k in own if k not in weights and k not in skip]
    unexpected = [k for k in weights if k not in own]
    shapes = [k for k in own if k in weights and weights[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shapes:
            detail.append(f"{len(shapes)} of another shape (e.g. {shapes[0]})")
        raise UsageError(f"{source}: the weights do not fit {getattr(model, 'name', type(model).__name__)}: "
                         + "; ".join(detail))  # fmt: skip
    model.load_state_dict(weights, strict=False)
