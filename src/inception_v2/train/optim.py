"""Optimizers and their parameter groups, the learning-rate schedule and the weight EMA.

* ``adam`` — :class:`torch.optim.Adam` (the source's optimizer); ``adamw`` —
  :class:`torch.optim.AdamW`; ``sgd`` — :class:`torch.optim.SGD` (optionally Nesterov).
* ``rmsprop-tf`` — :class:`RMSpropTF`, RMSProp as TensorFlow 1 computes it, which the paper
  used ("RMSProp with decay of 0.9 and epsilon = 1.0", Szegedy et al. 2015, section 8; momentum
  0.9 in TensorFlow's Inception training code, ``tensorflow/models``
  ``inception/inception/inception_train.py``). :class:`torch.optim.RMSprop` differs in two ways
  that matter with so large an epsilon: it adds epsilon *outside* the square root
  (``g / (sqrt(ms) + eps)``; TensorFlow: ``g / sqrt(ms + eps)``) and starts the mean square at 0
  (TensorFlow: at 1).
* Weight decay goes to the weights of convolutions and linear layers only (separate parameter
  groups, :func:`param_groups`).
* The schedule (:class:`LRSchedule`) is stepped after every optimizer step: warm-up, then step,
  exponential or cosine decay.
* The EMA is :class:`torch.optim.swa_utils.AveragedModel` over parameters *and* buffers (so the
  BatchNorm statistics are averaged too, as TensorFlow's Inception training averaged its moving
  statistics), updated after every optimizer step.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Optional

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from torch.optim.swa_utils import AveragedModel

from inception_v2.train.config import TrainConfig
from inception_v2.train.finetune import head_parameter_ids

# Normalization layers: their scale and shift are never weight-decayed.
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)


class RMSpropTF(torch.optim.Optimizer):
    """RMSProp as ``tf.compat.v1.train.RMSPropOptimizer``::

        g   <- g + weight_decay * p                     # TensorFlow's L2 regularization loss
        ms  <- decay * ms + (1 - decay) * g**2          # ms starts at 1, as in TensorFlow
        mom <- momentum * mom + lr * g / sqrt(ms + eps)  # eps inside the square root
        p   <- p - mom

    With ``eps = 1.0`` the denominator is at least 1, so a step is never larger than ``lr * g``.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float,
        decay: float = 0.9,
        eps: float = 1.0,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        super().__init__(params, dict(lr=lr, decay=decay, eps=eps, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params: List[torch.Tensor] = []
            grads: List[torch.Tensor] = []
            square_avgs: List[torch.Tensor] = []
            bufs: List[torch.Tensor] = []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("RMSpropTF does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["square_avg"] = torch.ones_like(p, memory_format=torch.preserve_format)
                    if group["momentum"] > 0:
                        state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                params.append(p)
                grads.append(p.grad)
                square_avgs.append(state["square_avg"])
                if group["momentum"] > 0:
                    bufs.append(state["momentum_buffer"])
            if not params:
                continue
            decay, eps, lr, momentum = group["decay"], group["eps"], group["lr"], group["momentum"]
            if group.get("weight_decay", 0.0) > 0:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            torch._foreach_mul_(square_avgs, decay)
            torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - decay)
            denom = torch._foreach_add(square_avgs, eps)
            torch._foreach_sqrt_(denom)
            if momentum > 0:
                torch._foreach_mul_(bufs, momentum)
                torch._foreach_addcdiv_(bufs, grads, denom, value=lr)
                torch._foreach_sub_(params, bufs)
            else:
                torch._foreach_addcdiv_(params, grads, denom, value=-lr)
        return loss


def param_groups(model: nn.Module, cfg: TrainConfig) -> List[Dict[str, Any]]:
    """The trainable parameters in optimizer groups.

    One group when there is neither weight decay nor a head lr (the blog recipe, as before).
    With weight decay, ``decay`` and ``no_decay``: weight decay only on the weights of
    convolutions and linear layers, never on BatchNorm parameters or biases (as TensorFlow's
    Inception code regularized only conv and fc weights). With ``head_lr``, each of those is split
    into ``features/...`` and ``head/...``, the latter at ``head_lr`` (the classifier head(s),
    :mod:`inception_v2.train.finetune`). Each group's ``name`` says which it is.
    """
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameters")
    if cfg.weight_decay == 0 and cfg.head_lr is None:
        return [{"params": [p for _, p in trainable]}]
    no_decay = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if name == "bias" or isinstance(module, _NORMS):
                no_decay.add(id(p))
    heads = head_parameter_ids(model) if cfg.head_lr is not None else set()
    groups: Dict[str, Dict[str, Any]] = {}
    for _, p in trainable:
        part = "head" if id(p) in heads else "features"
        decay = "no_decay" if id(p) in no_decay else "decay"
        name = "/".join(([part] if cfg.head_lr is not None else []) + ([decay] if cfg.weight_decay > 0 else []))
        if name not in groups:
            groups[name] = {
                "name": name,
                "params": [],
                "lr": cfg.head_lr if part == "head" else cfg.lr,
                "weight_decay": cfg.weight_decay if decay == "decay" else 0.0,
            }
        groups[name]["params"].append(p)
    return list(groups.values())


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """``cfg.optimizer`` over :func:`param_groups` (``momentum`` is Adam's beta1)."""
    groups = param_groups(model, cfg)
    wd = cfg.weight_decay
    # fused: one kernel for the whole update (``fused_optimizer``); None keeps torch's choice
    fused = True if getattr(cfg, "fused_optimizer", False) else None
    if cfg.optimizer == "adam":  # weight decay added to the gradient (L2)
        return torch.optim.Adam(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999), weight_decay=wd, fused=fused)
    if cfg.optimizer == "adamw":  # decoupled weight decay
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999), weight_decay=wd, fused=fused)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=wd, fused=fused
        )
    if cfg.optimizer == "rmsprop-tf":
        return RMSpropTF(groups, lr=cfg.lr, decay=0.9, eps=1.0, momentum=cfg.momentum, weight_decay=wd)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")  # TrainConfig rejects it first


class LRSchedule(LRScheduler):
    """The learning rate of every optimizer step (``.step()`` after each one), per group
    relative to the group's initial lr:

    * a linear warm-up over the first ``warmup_epochs`` (per step: lr x (s + 1) / warm-up steps);
    * then ``step``: x ``lr_decay`` every ``lr_step_epochs`` epochs (computed by repeated
      multiplication, as :class:`torch.optim.lr_scheduler.StepLR` does, so a seed run matches one
      stepped per epoch bit for bit); ``exponential``: the same rate, smoothly per step;
      ``cosine``: half a cosine from lr down to ``min_lr`` at the last step;
    * never below ``min_lr``.

    The lr is a function of the step alone: :meth:`set_step` puts a resumed run in place.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> None:
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        self.kind = cfg.lr_schedule
        self.steps_per_epoch = steps_per_epoch
        self.step_epochs = cfg.lr_step_epochs
        self.decay = cfg.lr_decay
        self.min_lr = cfg.min_lr
        self.warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
        self.total_steps = cfg.epochs * steps_per_epoch
        super().__init__(optimizer)

    def lr_at(self, step: int, base: float) -> float:
        """The lr of optimizer step ``step`` (from 0) for a group whose initial lr is ``base``."""
        if step < self.warmup_steps:
            return base * (step + 1) / self.warmup_steps
        floor = min(self.min_lr, base)
        if self.kind == "cosine":
            t = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - 1 - self.warmup_steps))
            return floor + (base - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
        if self.kind == "exponential":
            return max(floor, base * self.decay ** (step / (self.step_epochs * self.steps_per_epoch)))
        lr = base
        for _ in range((step // self.steps_per_epoch) // self.step_epochs):
            lr *= self.decay
        return max(floor, lr)

    def get_lr(self) -> List[float]:  # type: ignore[override]
        return [self.lr_at(self.last_epoch, base) for base in self.base_lrs]

    def set_step(self, step: int) -> None:
        """Set the lr of every group to that of optimizer step ``step`` (resuming a run)."""
        self.last_epoch = step
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> LRSchedule:
    """:class:`LRSchedule` of ``cfg``; call ``.step()`` after every optimizer step."""
    return LRSchedule(optimizer, cfg, steps_per_epoch)


def ema_multi_avg_fn(decay: float):
    """EMA update for :class:`AveragedModel` with TensorFlow's warm-up
    (``tf.train.ExponentialMovingAverage(decay, num_updates)``): the decay used at update ``n``
    is ``min(decay, (1 + n) / (10 + n))``, so early averages are not dominated by the
    initialization."""

    @torch.no_grad()
    def update(ema_params: List[torch.Tensor], model_params: List[torch.Tensor], num_averaged) -> None:
        n = float(num_averaged)
        d = min(decay, (1.0 + n) / (10.0 + n))
        if torch.is_floating_point(ema_params[0]):
            torch._foreach_lerp_(ema_params, model_params, 1.0 - d)
        else:  # integer buffers (BatchNorm's num_batches_tracked): follow the model
            for e, m in zip(ema_params, model_params):
                e.copy_(m)

    return update


def build_ema(model: nn.Module, decay: Optional[float]) -> Optional[AveragedModel]:
    """An EMA copy of ``model`` (parameters and buffers), or ``None`` when ``decay`` is None."""
    if decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=ema_multi_avg_fn(decay), use_buffers=True)
