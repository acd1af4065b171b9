"""Fine-tuning: which parameters are the classifier head(s), and freezing the rest.

A model of the registry is a feature trunk (``model.features``) followed by heads: the main
classifier (``model.get_classifier()``) and the auxiliary classifiers (``model.aux_heads``),
which read the trunk's intermediate maps. ``--freeze-features`` trains the heads alone (a
linear probe of the main head, plus the auxiliary heads when their loss is used); ``--head-lr``
gives the heads their own learning rate. The initial weights come from
``create_model(..., pretrained=...)``, which re-initializes the classifiers when the class count
differs (docs/training.md, *Fine-tuning*).
"""

from __future__ import annotations

from typing import List

from torch import nn


def head_modules(model: nn.Module) -> List[nn.Module]:
    """The main classifier and every auxiliary head of ``model``."""
    if not hasattr(model, "get_classifier"):
        raise ValueError(f"{type(model).__name__} has no get_classifier(): its head cannot be told from its features")
    heads = [model.get_classifier()]
    heads += list(getattr(model, "aux_heads", {}).values())
    return heads


def head_parameter_ids(model: nn.Module) -> set:
    """``id()`` of every parameter of the heads (see :func:`head_modules`)."""
    return {id(p) for head in head_modules(model) for p in head.parameters()}


def freeze_features(model: nn.Module) -> List[nn.Module]:
    """Stop the gradients of every parameter outside the heads and return the frozen modules
    that hold BatchNorm statistics, which the training loop keeps in eval mode (so the frozen
    features do not drift with the new data's statistics either)."""
    heads = head_parameter_ids(model)
    for p in model.parameters():
        if id(p) not in heads:
            p.requires_grad_(False)
    head_module_ids = {id(m) for head in head_modules(model) for m in head.modules()}
    return [
        m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in head_module_ids
    ]
