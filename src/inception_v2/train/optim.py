"""Optimizers, the step learning-rate schedule and the weight EMA of both recipes.

* ``adam`` — :class:`torch.optim.Adam` (the source's optimizer).
* ``rmsprop_tf`` — :class:`RMSpropTF`, RMSProp as TensorFlow 1 computes it, which the paper
  used ("RMSProp with decay of 0.9 and epsilon = 1.0", Szegedy et al. 2015, section 8).
  :class:`torch.optim.RMSprop` differs in two ways that matter with so large an epsilon: it adds
  epsilon *outside* the square root (``g / (sqrt(ms) + eps)``; TensorFlow: ``g / sqrt(ms + eps)``)
  and starts the mean square at 0 (TensorFlow: at 1).
* The schedule is :class:`torch.optim.lr_scheduler.StepLR`, stepped once per epoch.
* The EMA is :class:`torch.optim.swa_utils.AveragedModel` over parameters *and* buffers (so the
  BatchNorm statistics are averaged too, as TensorFlow's Inception training averaged its moving
  statistics), updated after every optimizer step.
"""

from __future__ import annotations

from typing import Iterable, List, Optional

import torch
from torch import nn
from torch.optim.lr_scheduler import StepLR
from torch.optim.swa_utils import AveragedModel

from inception_v2.train.config import TrainConfig


class RMSpropTF(torch.optim.Optimizer):
    """RMSProp as ``tf.compat.v1.train.RMSPropOptimizer``::

        ms  <- decay * ms + (1 - decay) * g**2          # ms starts at 1, as in TensorFlow
        mom <- momentum * mom + lr * g / sqrt(ms + eps)  # eps inside the square root
        p   <- p - mom

    With ``eps = 1.0`` the denominator is at least 1, so a step is never larger than ``lr * g``.
    """

    def __init__(
        self, params: Iterable, lr: float, decay: float = 0.9, eps: float = 1.0,
        momentum: float = 0.0,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        super().__init__(params, dict(lr=lr, decay=decay, eps=eps, momentum=momentum))

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


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr)
    if cfg.optimizer == "rmsprop_tf":
        return RMSpropTF(params, lr=cfg.lr, decay=0.9, eps=1.0)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")  # TrainConfig rejects it first


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> StepLR:
    """lr x ``lr_decay`` every ``lr_step_epochs`` epochs; call ``.step()`` after each epoch."""
    return StepLR(optimizer, step_size=cfg.lr_step_epochs, gamma=cfg.lr_decay)


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
