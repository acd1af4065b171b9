"""``inception-v2 summary``: every stage's output shape, parameters and multiply-adds.

Multiply-adds come from :class:`torch.utils.flop_counter.FlopCounterMode` (which counts the
convolutions and matrix products, 2 FLOPs per multiply-add) on one eval-mode forward pass.

:func:`summarize` builds the model and runs that pass on PyTorch's ``meta`` device: tensors with
shapes and no data, so no size of model or input allocates memory or takes time. The one bound is
arithmetic: ``num_classes`` and the image side are refused above :data:`MAX_NUM_CLASSES` and
:data:`MAX_IMAGE_SIZE` (beyond them the counts overflow 64-bit integers).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch
from torch.utils.flop_counter import FlopCounterMode

from inception_v2.errors import UsageError
from inception_v2.models import create_model, get_data_config

MAX_NUM_CLASSES = 1_000_000_000  # 2048 x 1e9 weights: counts stay far below 2**63
MAX_IMAGE_SIZE = 100_000  # multiply-adds grow with its square


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_macs(model: torch.nn.Module, image_size: int) -> int:
    """Multiply-adds of one eval-mode forward pass on a 1 x C x S x S input (C: the model's
    ``in_chans``)."""
    was_training = model.training
    model.eval()
    channels = getattr(model, "in_chans", 3)
    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            model(torch.zeros(1, channels, image_size, image_size, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def summarize(name: str, image_size: Optional[int] = None, num_classes: int = 1000) -> Dict[str, Any]:
    """Stage shapes (C, H, W), per-stage parameters and multiply-adds, and totals.

    ``params`` counts every parameter of the model as built (auxiliary heads included);
    ``params_without_aux`` the deployed network; ``macs`` is the eval-mode forward pass.
    Everything is computed on the ``meta`` device (shapes only, no memory).
    """
    cfg = get_data_config(name)
    size = cfg.input_size if image_size is None else image_size  # 0 is a value, not "the default"
    if size < cfg.min_input_size:
        raise UsageError(f"{name} needs --image-size >= {cfg.min_input_size}, got {size}")
    if size > MAX_IMAGE_SIZE:
        raise UsageError(f"--image-size must be <= {MAX_IMAGE_SIZE:,}, got {size:,}")
    if num_classes < 1:
        raise UsageError(f"--num-classes must be >= 1, got {num_classes}")
    if num_classes > MAX_NUM_CLASSES:
        raise UsageError(f"--num-classes must be <= {MAX_NUM_CLASSES:,}, got {num_classes:,}")
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes, aux_logits=True).eval()  # the heads counted too
    stages: List[Dict[str, Any]] = []

    def record(stage_name: str, stage: torch.nn.Module):
        def hook(_module, _inputs, output):
            stages.append({"name": stage_name, "shape": list(output.shape[1:]), "params": count_params(stage)})

        return stage.register_forward_hook(hook)

    hooks = [record(n, st) for n, st in model.features.named_children()]
    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            logits = model(torch.zeros(1, 3, size, size, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    flops = counter.get_flop_counts()
    for stage in stages:
        ops = flops.get(f"{type(model).__name__}.features.{stage['name']}", {})
        stage["macs"] = int(sum(ops.values())) // 2
    head_macs = int(sum(flops.get(f"{type(model).__name__}.fc", {}).values())) // 2
    stages.append({"name": "avgpool", "shape": [model.num_features, 1, 1], "params": 0, "macs": 0})
    stages.append({"name": "fc", "shape": [logits.shape[1]], "params": count_params(model.fc), "macs": head_macs})
    params = count_params(model)
    return {
        "model": name,
        "image_size": size,
        "num_classes": num_classes,
        "stages": stages,
        "params": params,
        "params_without_aux": params - count_params(model.aux_heads),
        "macs": counter.get_total_flops() // 2,
    }


def format_summary(s: Dict[str, Any]) -> str:
    def shape(v: List[int]) -> str:
        return " x ".join(str(d) for d in v)

    lines = [f"{s['model']} at {s['image_size']}x{s['image_size']}, {s['num_classes']} classes", ""]
    lines.append(f"{'stage':<8} {'output (C x H x W)':<20} {'params':>12} {'mult-adds':>15}")
    for st in s["stages"]:
        lines.append(f"{st['name']:<8} {shape(st['shape']):<20} {st['params']:>12,} {st['macs']:>15,}")
    lines += [
        "",
        f"parameters: {s['params']:,} ({s['params_without_aux']:,} without auxiliary heads)",
        f"multiply-adds: {s['macs']:,} ({s['macs'] / 1e9:.2f} G) per image",
    ]
    return "\n".join(lines)
