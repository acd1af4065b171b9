"""One training step and one pass over the training data.

:class:`TrainStep` holds everything an optimizer step involves besides the data: the model and
the forward that trains it (possibly wrapped in DDP and ``torch.compile``), the loss, autocast
and the fp16 gradient scaler, gradient accumulation (DDP synchronizing only the last batch of
a step: ``no_sync``), gradient clipping, the optimizer, the weight EMA and the per-step
learning-rate schedule. :func:`train_one_epoch` feeds it a loader and keeps the books: the
mean loss and top-1, images per second, the periodic NaN check and log points.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Sized, Tuple

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from inception_v2.errors import CheckFailedError, UsageError
from inception_v2.evaluation import autocast, place_batch, topk_correct
from inception_v2.models import DataConfig, ModelOutput
from inception_v2.train import distributed as dist_utils
from inception_v2.train.config import DeviceSettings
from inception_v2.train.device_augment import PackedImages, augment_batch

CHECK_EVERY = 20  # default steps between loss checks (a host sync) and progress-bar refreshes (--log-every)


class NonFiniteLossError(CheckFailedError):
    """The training loss became NaN or infinite; the run stopped before saving anything."""


class _ForwardWithAux(nn.Module):
    """``forward = model.forward_with_aux``, so DDP and ``torch.compile`` wrap the training
    forward (DDP only synchronizes gradients of what goes through its own ``forward``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> ModelOutput:
        return self.model.forward_with_aux(x)


@dataclass
class StepOptions:
    """How batches become an optimizer step."""

    accum_steps: int = 1  # batches whose gradients add up to one step (each loss divided by this)
    grad_clip_norm: Optional[float] = None  # clip the global gradient norm to this
    mix: Optional[Callable[..., Tuple[torch.Tensor, torch.Tensor]]] = None  # MixUp / CutMix of a batch
    data_cfg: Optional[DataConfig] = None  # normalizes uint8 batches on the device


class TrainStep:
    """Forward, backward and, every ``options.accum_steps`` batches, an optimizer step.

    ``forward`` maps a batch to a :class:`ModelOutput` (default ``model.forward_with_aux``;
    :meth:`distribute` and :meth:`compile` wrap it). ``frozen`` modules stay in eval mode.
    The gradient scaler is on for fp16 autocast only (``self.scaler``).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[ModelOutput, torch.Tensor], torch.Tensor],
        *,
        settings: DeviceSettings,
        options: Optional[StepOptions] = None,
        scheduler: Optional[torch.optim.lr_scheduler.LRScheduler] = None,
        ema: Optional[torch.optim.swa_utils.AveragedModel] = None,
        frozen: Sequence[nn.Module] = (),
        forward: Optional[Callable[[torch.Tensor], ModelOutput]] = None,
    ) -> None:
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.settings = settings
        self.options = options or StepOptions()
        if self.options.accum_steps < 1:
            raise ValueError(f"accum_steps must be >= 1, got {self.options.accum_steps}")
        self.scheduler, self.ema, self.frozen = scheduler, ema, list(frozen)
        # `is None`, not `or`: a compiled module has no truth value (it has no __len__ of its own)
        self.forward = _ForwardWithAux(model) if forward is None else forward
        self.no_sync: Optional[Callable[[], Any]] = None
        self.scaler = torch.amp.GradScaler(settings.device.type, enabled=settings.amp_dtype == torch.float16)
        self.params = [p for p in model.parameters() if p.requires_grad]

    # -- wrapping the training forward

    def distribute(self) -> None:
        """Wrap the forward in DDP (gradients averaged over processes at the last batch of a step)."""
        cuda = self.settings.device.type == "cuda"
        self.forward = DistributedDataParallel(self.forward, device_ids=[self.settings.device] if cuda else None)
        self.no_sync = self.forward.no_sync

    def compile(self, backend: str, mode: str = "default") -> None:
        """``torch.compile`` the training forward and losses' input (``mode`` other than
        ``default``, e.g. ``max-autotune-no-cudagraphs``, is passed on)."""
        extra = {} if mode == "default" else {"mode": mode}
        self.forward = torch.compile(self.forward, backend=backend, **extra)

    # -- the step

    def train(self) -> None:
        """Training mode, but ``frozen`` modules in eval mode (their BatchNorm statistics stay)."""
        self.model.train()
        if isinstance(self.forward, nn.Module):
            self.forward.train()
        for m in self.frozen:
            m.eval()

    def accumulate(self, x: torch.Tensor, y: torch.Tensor, first: bool, last: bool):
        """Forward and backward of one batch (the ``first`` of a step clears the gradients; only
        the ``last`` synchronizes under DDP). Returns the detached loss and main logits and the
        labels on the device."""
        s, accum = self.settings, self.options.accum_steps
        mix = self.options.mix
        if isinstance(x, PackedImages):  # --device-augment: the whole training transform runs here
            x, y = augment_batch(x, self.options.data_cfg, s.device, s.channels_last and mix is None), y.to(s.device)
        else:
            x, y = place_batch(x, y, s.device, s.channels_last and mix is None, self.options.data_cfg)
        target = y
        if mix is not None:
            x, target = mix(x, y)  # after normalization: mixing uint8 pixels would round them
            if s.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        with self.no_sync() if (self.no_sync is not None and not last) else contextlib.nullcontext():
            with autocast(s.device, s.amp_dtype):
                output = self.forward(x)
                loss = self.loss_fn(output, target)
            if first:
                self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss / accum if accum > 1 else loss).backward()
        return loss.detach(), output.logits.detach(), y

    def update(self) -> float:
        """Clip, step the optimizer (through the scaler), update the EMA and the schedule;
        returns the lr the step used."""
        if self.options.grad_clip_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.options.grad_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            with warnings.catch_warnings():
                # a step the fp16 grad scaler skipped (inf/NaN gradients) still advances the schedule
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
                self.scheduler.step()
        return lr

    def steps_in(self, loader: Sized) -> int:
        """Optimizer steps in one pass over ``loader`` (batches left over that do not fill a step
        are not loaded)."""
        steps = len(loader) // self.options.accum_steps
        if steps == 0:
            raise UsageError(
                f"the train loader yields {len(loader)} batches, fewer than one step of "
                f"{self.options.accum_steps} (--grad-accum-steps)"
            )
        return steps


def _check_finite(loss_sum: torch.Tensor, epoch: int, step: int, device: torch.device) -> None:
    bad = not bool(torch.isfinite(loss_sum))
    if dist_utils.any_true(bad, device):
        raise NonFiniteLossError(
            f"the training loss became NaN or infinite in epoch {epoch + 1} (by step {step}); "
            "stopped without saving, the last checkpoint is the last good one "
            "(lower --lr, or use --recipe paper's gradient clipping)"
        )


@dataclass
class EpochLog:
    """Where a pass reports: its progress bar, and every ``every`` steps ``on_log(global step,
    mean loss of those steps, lr, images/s)``; ``on_step(global step)`` after every step."""

    epoch: int = 0
    step_offset: int = 0  # optimizer steps before this epoch
    every: int = CHECK_EVERY
    progress: bool = True
    on_step: Optional[Callable[[int], None]] = None
    on_log: Optional[Callable[[int, float, float, float], None]] = None


def train_one_epoch(step: TrainStep, loader: Iterable, log: Optional[EpochLog] = None) -> Dict[str, float]:
    """One pass over ``loader``; returns ``loss``, ``acc1`` (main logits against the unmixed
    labels), ``images``, ``seconds``, ``images_per_s`` (summed over every process) and ``steps``.

    Every ``log.every`` steps the loss is checked on every process at once
    (:class:`NonFiniteLossError` when NaN or infinite) and ``log.on_log`` is called.
    """
    log = log or EpochLog()
    device, accum = step.settings.device, step.options.accum_steps
    step.train()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss * n, correct top-1, n
    world = torch.distributed.get_world_size() if dist_utils.is_initialized() else 1
    steps_in_epoch = step.steps_in(loader)
    bar = tqdm(
        loader,
        desc=f"epoch {log.epoch + 1} train",
        unit="batch",
        leave=False,
        total=steps_in_epoch * accum,
        disable=not log.progress or None,
        dynamic_ncols=True,
    )
    start = time.perf_counter()
    done, logged, logged_at = 0, torch.zeros(2, dtype=torch.float64, device=device), start
    for i, (x, y) in enumerate(bar):
        last = (i + 1) % accum == 0
        loss, logits, y = step.accumulate(x, y, first=i % accum == 0, last=last)
        with torch.no_grad():
            n = y.shape[0]
            sums[0] += loss.double() * n
            sums[1] += topk_correct(logits, y, (1,))[0]
            sums[2] += n
        if not last:
            continue
        lr = step.update()
        done += 1
        if log.on_step is not None:
            log.on_step(log.step_offset + done)
        if done % log.every == 0 or done == steps_in_epoch:
            _check_finite(sums[0], log.epoch, done, device)
            now = time.perf_counter()
            window = sums[[0, 2]] - logged
            if log.on_log is not None:
                rate = window[1].item() * world / max(now - logged_at, 1e-9)
                log.on_log(log.step_offset + done, window[0].item() / window[1].item(), lr, rate)
            logged, logged_at = sums[[0, 2]].clone(), now
            bar.set_postfix(
                loss=f"{sums[0].item() / sums[2].item():.4f}", img_s=f"{sums[2].item() * world / (now - start):.0f}"
            )
        if done == steps_in_epoch:
            break
    bar.close()
    dist_utils.all_reduce_sum(sums)
    seconds = time.perf_counter() - start
    loss_sum, correct, images = sums.tolist()
    return {
        "loss": loss_sum / images,
        "acc1": correct / images,
        "images": images,
        "seconds": seconds,
        "images_per_s": images / seconds,
        "steps": done,
    }
