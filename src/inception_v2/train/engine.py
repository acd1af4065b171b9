"""The training loop: :func:`train_one_epoch`, :func:`evaluate` and :func:`fit`, read top to bottom.

Every epoch trains on ``train``, then evaluates on ``val`` (which alone selects ``best.pt``) and
on ``test`` (reported, never used for a decision). Evaluation runs under ``eval()`` and
``inference_mode()`` with the deterministic eval transform. Under ``torchrun`` the model is
wrapped in DDP, metrics are summed over processes and only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from inception_v2.atomic import write_json
from inception_v2.data import normalize
from inception_v2.data.transforms import batch_mix
from inception_v2.errors import CheckFailedError, LockedError, UsageError
from inception_v2.locking import exclusive
from inception_v2.models import DataConfig, ModelOutput, create_model
from inception_v2.models.pooling import set_pool_impl
from inception_v2.summary import count_macs, count_params
from inception_v2.train import distributed as dist_utils
from inception_v2.train.board import TensorBoardLog, summary_writer_class
from inception_v2.train.checkpoint import (
    data_config_dict,
    load_checkpoint,
    load_weights,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from inception_v2.train.config import TrainConfig, changed_fields, flag_name
from inception_v2.train.data import build_data, resolve_prepared
from inception_v2.train.device_augment import PackedImages, augment_batch
from inception_v2.train.finetune import freeze_features
from inception_v2.train.losses import InceptionLoss
from inception_v2.train.metrics import confusion_matrix, per_class_accuracy, topk_correct, write_metrics_csv
from inception_v2.train.optim import build_ema, build_optimizer, build_scheduler

CHECK_EVERY = 20  # default steps between loss checks (a host sync) and progress-bar refreshes (--log-every)


class NonFiniteLossError(CheckFailedError):
    """The training loss became NaN or infinite; the run stopped before saving anything."""


# --------------------------------------------------------------------------- one epoch


def _to_device(
    x: torch.Tensor,
    y: torch.Tensor,
    device: torch.device,
    channels_last: bool,
    data_cfg: Optional[DataConfig] = None,
):
    if isinstance(x, PackedImages):  # --device-augment: the whole training transform runs here
        return augment_batch(x, data_cfg, device, channels_last), y.to(device, non_blocking=True)
    x = x.to(device, non_blocking=True)
    if x.dtype == torch.uint8:
        # The loader workers hand over uint8 crops (a quarter of the bytes, a third of the work);
        # the float conversion and normalization run here, on the device, with the same values.
        if data_cfg is None:
            raise ValueError("uint8 batches need the model's data config to be normalized")
        x = normalize(x, data_cfg)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)


def _autocast(device: torch.device, amp_dtype: Optional[torch.dtype]):
    return torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None)


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    loss_fn: Callable[[ModelOutput, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    device: torch.device,
    forward: Optional[Callable[[torch.Tensor], ModelOutput]] = None,
    amp_dtype: Optional[torch.dtype] = None,
    scaler: Optional[torch.amp.GradScaler] = None,
    grad_clip_norm: Optional[float] = None,
    ema: Optional[torch.optim.swa_utils.AveragedModel] = None,
    channels_last: bool = False,
    data_cfg: Optional[DataConfig] = None,
    epoch: int = 0,
    progress: bool = True,
    scheduler: Optional[torch.optim.lr_scheduler.LRScheduler] = None,
    accum_steps: int = 1,
    mix: Optional[Callable[..., Tuple[torch.Tensor, torch.Tensor]]] = None,
    no_sync: Optional[Callable[[], Any]] = None,
    frozen: Sequence[nn.Module] = (),
    log_every: int = CHECK_EVERY,
    step_offset: int = 0,
    on_step: Optional[Callable[[int], None]] = None,
    on_log: Optional[Callable[[int, float, float, float], None]] = None,
) -> Dict[str, float]:
    """One pass over ``loader``; returns ``loss``, ``acc1`` (main logits against the unmixed
    labels), ``images``, ``seconds``, ``images_per_s`` (summed over every process) and ``steps``.

    Each optimizer step accumulates the gradients of ``accum_steps`` batches (each loss divided
    by ``accum_steps``, DDP synchronizing only the last: ``no_sync``), so it computes what a
    batch ``accum_steps`` times larger would, up to BatchNorm statistics; batches left over at
    the end of the epoch that do not fill a step are not loaded. After every step: gradient
    clipping, the (scaled) optimizer step, the EMA update, ``scheduler.step()`` and
    ``on_step(global step)``. ``mix`` (MixUp / CutMix) runs on the normalized batch and turns
    the labels into probabilities. ``frozen`` modules stay in eval mode.

    ``forward`` maps a batch to a :class:`ModelOutput` (default ``model.forward_with_aux``;
    :func:`fit` passes the DDP / compiled wrapper). Every ``log_every`` steps the loss is
    checked on every process at once (:class:`NonFiniteLossError` when NaN or infinite) and
    ``on_log(global step, mean loss of those steps, lr, images/s)`` is called.
    """
    # `is None`, not `or`: a compiled module has no truth value (it has no __len__ of its own)
    forward = model.forward_with_aux if forward is None else forward
    model.train()
    if isinstance(forward, nn.Module):
        forward.train()
    for m in frozen:
        m.eval()
    if accum_steps < 1:
        raise ValueError(f"accum_steps must be >= 1, got {accum_steps}")
    scaler = scaler or torch.amp.GradScaler(device.type, enabled=False)
    params = [p for p in model.parameters() if p.requires_grad]
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss * n, correct top-1, n
    world = torch.distributed.get_world_size() if dist_utils.is_initialized() else 1
    steps_in_epoch = len(loader) // accum_steps
    if steps_in_epoch == 0:
        raise UsageError(
            f"the train loader yields {len(loader)} batches, fewer than one step of {accum_steps} (--grad-accum-steps)"
        )
    batches = steps_in_epoch * accum_steps
    bar = tqdm(
        loader,
        desc=f"epoch {epoch + 1} train",
        unit="batch",
        leave=False,
        total=batches,
        disable=not progress or None,
        dynamic_ncols=True,
    )
    start = time.perf_counter()
    step, logged, logged_at = 0, torch.zeros(2, dtype=torch.float64, device=device), start
    for i, (x, y) in enumerate(bar):
        x, y = _to_device(x, y, device, channels_last and mix is None, data_cfg)
        target = y
        if mix is not None:
            x, target = mix(x, y)  # after normalization: mixing uint8 pixels would round them
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        first, last = i % accum_steps == 0, (i + 1) % accum_steps == 0
        with no_sync() if (no_sync is not None and not last) else contextlib.nullcontext():
            with _autocast(device, amp_dtype):
                output = forward(x)
                loss = loss_fn(output, target)
            if first:
                optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss / accum_steps if accum_steps > 1 else loss).backward()
        with torch.no_grad():
            n = y.shape[0]
            sums[0] += loss.detach().double() * n
            sums[1] += topk_correct(output.logits.detach(), y, (1,))[0]
            sums[2] += n
        if not last:
            continue
        if grad_clip_norm is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, grad_clip_norm)
        scaler.step(optimizer)
        scaler.update()
        if ema is not None:
            ema.update_parameters(model)
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            with warnings.catch_warnings():
                # a step the fp16 grad scaler skipped (inf/NaN gradients) still advances the schedule
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
                scheduler.step()
        step += 1
        if on_step is not None:
            on_step(step_offset + step)
        if step % log_every == 0 or step == steps_in_epoch:
            _check_finite(sums[0], epoch, step, device)
            now = time.perf_counter()
            window = sums[[0, 2]] - logged
            if on_log is not None:
                on_log(
                    step_offset + step,
                    window[0].item() / window[1].item(),
                    lr,
                    window[1].item() * world / max(now - logged_at, 1e-9),
                )
            logged, logged_at = sums[[0, 2]].clone(), now
            bar.set_postfix(
                loss=f"{sums[0].item() / sums[2].item():.4f}", img_s=f"{sums[2].item() * world / (now - start):.0f}"
            )
        if step == steps_in_epoch:
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
        "steps": step,
    }


def _check_finite(loss_sum: torch.Tensor, epoch: int, step: int, device: torch.device) -> None:
    bad = not bool(torch.isfinite(loss_sum))
    if dist_utils.any_true(bad, device):
        raise NonFiniteLossError(
            f"the training loss became NaN or infinite in epoch {epoch + 1} (by step {step}); "
            "stopped without saving, the last checkpoint is the last good one "
            "(lower --lr, or use --recipe paper's gradient clipping)"
        )


# --------------------------------------------------------------------------- evaluation


@dataclass
class EvalResult:
    loss: float  # mean cross-entropy of the logits (no label smoothing, no auxiliary heads)
    acc1: float
    acc5: float
    images: int
    confusion: torch.Tensor  # num_classes x num_classes, row = true class

    @property
    def per_class(self) -> List[float]:
        return per_class_accuracy(self.confusion)


def evaluate(
    model: Callable[[torch.Tensor], torch.Tensor],
    loader: torch.utils.data.DataLoader,
    *,
    device: torch.device,
    num_classes: int,
    amp_dtype: Optional[torch.dtype] = None,
    channels_last: bool = False,
    data_cfg: Optional[DataConfig] = None,
    tta: str = "none",
    progress: bool = True,
    desc: str = "eval",
) -> EvalResult:
    """Loss, top-1, top-5 and the confusion matrix of ``model`` (logits in) on ``loader``.

    Runs in eval mode under ``inference_mode``; ``tta="flip"`` averages the logits of each image
    and its mirror. Sums are reduced over processes, so with a sharded loader (each sample seen
    by one process) the result is exact for the whole split.
    """
    if tta not in ("none", "flip"):
        raise UsageError(f"--tta must be none or flip, got {tta!r}")
    was_training = getattr(model, "training", False)
    if isinstance(model, nn.Module):
        model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss sum, top-1, top-5, n
    cm = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, disable=not progress or None, dynamic_ncols=True)
    try:
        with torch.inference_mode():
            for x, y in bar:
                x, y = _to_device(x, y, device, channels_last, data_cfg)
                with _autocast(device, amp_dtype):
                    logits = model(x)
                    if tta == "flip":
                        logits = (logits + model(torch.flip(x, dims=[3]))) / 2
                logits = logits.float()
                top1, top5 = topk_correct(logits, y, (1, 5))
                sums += torch.stack(
                    [
                        F.cross_entropy(logits, y, reduction="sum").double(),
                        top1.double(),
                        top5.double(),
                        torch.tensor(float(y.shape[0]), dtype=torch.float64, device=device),
                    ]
                )
                cm += confusion_matrix(logits.argmax(dim=1), y, num_classes)
    finally:
        bar.close()
        if isinstance(model, nn.Module):
            model.train(was_training)
    dist_utils.all_reduce_sum(sums)
    dist_utils.all_reduce_sum(cm)
    loss_sum, top1, top5, n = sums.tolist()
    if n == 0:
        raise UsageError("evaluation saw no images (empty split)")
    return EvalResult(loss=loss_sum / n, acc1=top1 / n, acc5=top5 / n, images=int(n), confusion=cm.cpu())


# --------------------------------------------------------------------------- fit


class _ForwardWithAux(nn.Module):
    """``forward = model.forward_with_aux``, so DDP and ``torch.compile`` wrap the training
    forward (DDP only synchronizes gradients of what goes through its own ``forward``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> ModelOutput:
        return self.model.forward_with_aux(x)


def _seed_epoch(seed: int, epoch: int, rank: int, loader: torch.utils.data.DataLoader) -> None:
    """Seed every generator from (seed, epoch, rank): an epoch's augmentation and dropout do not
    depend on what ran before it, so a resumed run repeats the uninterrupted one."""
    s = int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)
    if loader.generator is not None:
        loader.generator.manual_seed(s)


def _resume_check(state: Dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    if state["model_name"] != cfg.model:
        raise UsageError(
            f"{path} is a checkpoint of {state['model_name']}, not {cfg.model}; "
            "resume with the same --model or choose another --out"
        )
    changed = changed_fields(state["config"], cfg)
    if changed:
        detail = ", ".join(f"{flag_name(k)} {old!r} -> {new!r}" for k, (old, new) in changed.items())
        raise UsageError(f"cannot resume {path} with other settings ({detail})")


def fit(
    cfg: TrainConfig, resume: bool = False, log: Callable[[str], None] = print, progress: bool = True
) -> Dict[str, Any]:
    """Train ``cfg.model`` per ``cfg``; returns the content of ``summary.json``.

    Writes (rank 0 only) ``config.json``, ``metrics.csv`` (a row per epoch), ``last.pt`` after
    every epoch, ``best.pt`` on a new best val top-1, ``summary.json`` at the end, and with
    ``cfg.tensorboard`` TensorBoard event files. ``resume`` continues from ``last.pt`` (a run with
    no ``last.pt`` starts fresh); without it an existing ``last.pt`` is a :class:`UsageError`.
    Under ``torchrun`` it joins the process group (and leaves it when done); when torchrun has
    restarted the workers (``--max-restarts``), it resumes by itself.
    """
    info = dist_utils.env_info()
    device = dist_utils.resolve_device(cfg.device, info)
    owns_group = info.is_distributed and not dist_utils.is_initialized()
    say = log if info.is_main else (lambda _msg: None)
    restarts = dist_utils.restart_count()
    if restarts > 0 and dist_utils.shares_agent_store():
        say(dist_utils.SHARED_STORE_NOTE)
    dist_utils.init_distributed(device, info)
    with contextlib.ExitStack() as stack:
        try:
            # torchrun counts restarts per node (a node whose workers did not fail keeps 0), so a
            # restart anywhere is a restart of the whole job.
            restarted = dist_utils.any_true(restarts > 0, device)
            # Rank 0's config everywhere (another machine may lack RUN_DIR/config.json on --resume).
            cfg = dist_utils.run_on_main(lambda own=cfg: own)
            # One writer per run directory: rank 0 holds its lock until the run ends (or dies).
            wait_s = LOCK_WAIT_S if restarted else 0.0
            dist_utils.run_on_main(lambda: _own_run_dir(stack, Path(cfg.out), wait_s=wait_s))
            if restarted:
                say(f"torchrun restarted the workers: resuming from {Path(cfg.out) / 'last.pt'}")
                resume = True
            return _fit(cfg, resume, info, device, say, progress and info.is_main, stack)
        finally:
            if owns_group:
                dist_utils.cleanup()


LOCK_WAIT_S = 60.0  # after an elastic restart, how long to wait for the dead attempt's lock


def _own_run_dir(stack: contextlib.ExitStack, out: Path, wait_s: float = 0.0) -> None:
    """Lock ``out`` for this process (until ``stack`` closes) and remove the temporary files
    a killed write left there (``.last.pt.*.tmp``...): nobody else can be writing them.

    ``wait_s`` > 0 (an elastic restart) retries while the lock is held: the failed attempt's
    processes (its loader workers among them) may take a moment to die and release it."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            stack.enter_context(exclusive(out, "run directory"))
            break
        except LockedError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)
    for tmp in out.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def _fit(
    cfg: TrainConfig,
    resume: bool,
    info: dist_utils.DistInfo,
    device: torch.device,
    log: Callable[[str], None],
    progress: bool,
    stack: contextlib.ExitStack,
) -> Dict[str, Any]:
    out = Path(cfg.out)
    last_path, best_path = out / "last.pt", out / "best.pt"
    if cfg.sync_bn and device.type != "cuda":
        raise UsageError("--sync-bn needs CUDA devices (SyncBatchNorm does not run on CPU)")
    fault_at = dist_utils.fault_step()
    if cfg.tensorboard and info.is_main:
        summary_writer_class()  # a missing package is an error now, not after the data is ready

    # -- resume state (read by rank 0, sent to the others: nodes need not share a filesystem)
    def read_state() -> Optional[Dict[str, Any]]:
        if last_path.is_file():
            if not resume:
                raise UsageError(
                    f"{out} already holds a run (last.pt); pass --resume to continue it or choose another --out"
                )
            saved = load_checkpoint(last_path)
            _resume_check(saved, cfg, last_path)
            return saved
        if resume:
            log(f"no {last_path} yet: starting a new run")
        return None

    state = dist_utils.run_on_main(read_state)

    # -- data
    prepared = resolve_prepared(cfg.data, cfg.out, cfg.val_fraction, cfg.cache_dir, log)
    data_cfg = cfg.data_config()
    data = build_data(
        prepared,
        data_cfg,
        cfg.batch_size,
        cfg.num_workers(),
        cfg.seed,
        info,
        device,
        auto_augment=cfg.auto_augment,
        random_erasing=cfg.random_erasing,
        device_augment=cfg.device_augment,
    )
    num_classes = len(data.classes)
    steps_per_epoch = len(data.train_loader) // cfg.grad_accum_steps
    if steps_per_epoch == 0:
        raise UsageError(
            f"{prepared}: the train split gives {len(data.train_loader)} batches per process, fewer than "
            f"--grad-accum-steps {cfg.grad_accum_steps}; lower --grad-accum-steps or --batch-size"
        )

    # -- model, optimizer, schedule, EMA
    torch.manual_seed(cfg.seed)  # the same initial weights on every process
    use_cuda = device.type == "cuda"
    amp_dtype = _AMP_DTYPES[cfg.amp_dtype] if (cfg.amp if cfg.amp is not None else use_cuda) else None
    channels_last = cfg.channels_last if cfg.channels_last is not None else use_cuda
    if use_cuda:
        torch.backends.cudnn.benchmark = True
    aux = cfg.aux_weight > 0
    # a resumed run takes every weight from last.pt: the pretrained file is not read again
    pretrained = cfg.pretrained if state is None else None
    arch = dict(state.get("arch_options") or {}) if state is not None else {}  # as the run was built
    model = create_model(
        cfg.model, num_classes=num_classes, aux_logits=aux, dropout=cfg.dropout, pretrained=pretrained, **arch
    )
    if pretrained is not None:
        log(f"initialized from {pretrained} (classifiers for the {num_classes} classes of {prepared})")
    frozen = freeze_features(model) if cfg.freeze_features else []
    if cfg.freeze_features and cfg.pretrained is None:
        log("note: --freeze-features without --pretrained trains the heads on randomly initialized features")
    if cfg.sync_bn and info.is_distributed:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    set_pool_impl(model, cfg.pool_impl)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    params, macs = count_params(model), count_macs(model, data_cfg.input_size)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    ema = build_ema(model, cfg.ema_decay)
    loss_fn = InceptionLoss(cfg.label_smoothing, cfg.aux_weight)
    mix = batch_mix(cfg.mixup, cfg.cutmix, num_classes)

    start_epoch, history, best = 0, [], {"val_acc1": -1.0, "epoch": 0}
    if state is not None:
        _restore(state, last_path, model, optimizer, scaler, ema)
        start_epoch, history, best = int(state["epoch"]), list(state["history"]), dict(state["best"])
        log(
            f"resuming {out} after epoch {start_epoch} (best val top-1 {best['val_acc1']:.4f} at epoch {best['epoch']})"
        )
        del state
    scheduler.set_step(start_epoch * steps_per_epoch)  # the lr is a function of the step alone

    forward: nn.Module = _ForwardWithAux(model)
    no_sync = None
    if info.is_distributed:
        forward = DistributedDataParallel(forward, device_ids=[device] if use_cuda else None)
        no_sync = forward.no_sync
    if cfg.compile:
        mode = {} if cfg.compile_mode == "default" else {"mode": cfg.compile_mode}
        forward = torch.compile(forward, backend=cfg.compile_backend, **mode)

    board = None
    if info.is_main:
        write_json(out / "config.json", cfg.to_dict())
        if cfg.tensorboard:
            board = TensorBoardLog(out, purge_step=start_epoch * steps_per_epoch + 1)
            stack.enter_context(contextlib.closing(board))
    log(
        f"{cfg.model} ({cfg.recipe} recipe) on {prepared}: {len(data.train)} train / {len(data.val)} val / "
        f"{len(data.test)} test crops at {data_cfg.input_size}px; {params:,} parameters; "
        f"{info.world_size} process(es) on {device.type}, batch {cfg.batch_size} and {cfg.num_workers()} "
        "loader workers each" + (f", {cfg.grad_accum_steps} batches per step" if cfg.grad_accum_steps > 1 else "")
    )

    def on_step(global_step: int) -> None:
        if global_step == fault_at:
            dist_utils.fault_now(global_step)

    eval_model = ema.module if ema is not None else model
    for epoch in range(start_epoch, cfg.epochs):
        epoch_start = time.perf_counter()
        _seed_epoch(cfg.seed, epoch, info.rank, data.train_loader)
        data.train_sampler.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        tr = train_one_epoch(
            model,
            data.train_loader,
            loss_fn,
            optimizer,
            device=device,
            forward=forward,
            amp_dtype=amp_dtype,
            scaler=scaler,
            grad_clip_norm=cfg.grad_clip_norm,
            ema=ema,
            channels_last=channels_last,
            data_cfg=data_cfg,
            epoch=epoch,
            progress=progress,
            scheduler=scheduler,
            accum_steps=cfg.grad_accum_steps,
            mix=mix,
            no_sync=no_sync,
            frozen=frozen,
            log_every=cfg.log_every,
            step_offset=epoch * steps_per_epoch,
            on_step=on_step if fault_at is not None else None,
            on_log=board.train_point if board is not None else None,
        )
        dist_utils.broadcast_buffers(eval_model)  # every process evaluates rank 0's model
        kw = dict(
            device=device,
            num_classes=num_classes,
            amp_dtype=amp_dtype,
            channels_last=channels_last,
            data_cfg=data_cfg,
            progress=progress,
        )
        va = evaluate(eval_model, data.val_loader, desc="val", **kw)
        # a data set without a test split (an image folder without test/) reports none: NaN
        te = evaluate(eval_model, data.test_loader, desc="test", **kw) if len(data.test) else _NO_TEST
        row = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": tr["loss"],
            "train_acc1": tr["acc1"],
            "val_loss": va.loss,
            "val_acc1": va.acc1,
            "val_acc5": va.acc5,
            "test_loss": te.loss,
            "test_acc1": te.acc1,
            "test_acc5": te.acc5,
            "images_per_s": tr["images_per_s"],
            "seconds": time.perf_counter() - epoch_start,
        }
        history.append(row)
        improved = va.acc1 > best["val_acc1"]  # ties keep the earlier epoch
        if improved:
            best = {"val_acc1": va.acc1, "epoch": epoch + 1}
        if info.is_main:
            ckpt = {
                "model_name": cfg.model,
                "num_classes": num_classes,
                "classes": data.classes,
                "aux_logits": aux,
                "data_config": data_config_dict(data_cfg),
                "config": cfg.to_dict(),
                # what rebuilds this very network (a release's options, e.g. Caffe pooling)
                "in_chans": model.in_chans,
                "arch_options": dict(model.arch_options),
                "epoch": epoch + 1,
                "history": history,
                "best": best,
                **_training_state(model, optimizer, scheduler, scaler, ema),
            }
            save_checkpoint(last_path, ckpt)
            if improved:
                save_checkpoint(best_path, ckpt)
            write_metrics_csv(out / "metrics.csv", history)
            if board is not None:  # after last.pt: a resumed run never repeats an epoch's points
                board.epoch((epoch + 1) * steps_per_epoch, row)
        log(_epoch_line(row, cfg.epochs, improved))
        dist_utils.barrier()

    summary = make_summary(cfg, history, params, macs, data_cfg.input_size)
    if info.is_main:
        write_json(out / "summary.json", summary)
        test = (
            "no test split"
            if summary["test_acc1_at_best_val"] is None
            else f"test top-1 there {summary['test_acc1_at_best_val']:.2%} (final {summary['final_test_acc1']:.2%}; "
            f"source-style best test {summary['best_test_acc1']:.2%})"
        )
        log(f"done: best val top-1 {summary['best_val_acc1']:.2%} at epoch {summary['best_epoch']}, {test}; {out}")
    return summary


_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _training_state(model, optimizer, scheduler, scaler, ema) -> Dict[str, Any]:
    return {
        "model": model.state_dict(),  # always the raw trained weights
        "model_ema": ema.module.state_dict() if ema is not None else None,  # plain, no "module."
        "ema_updates": int(ema.n_averaged) if ema is not None else 0,
        "selected": "ema" if ema is not None else "model",  # what val evaluated and selected on
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),  # for the record: resuming recomputes it from the step
        "scaler": scaler.state_dict(),
        "rng": rng_state(),
    }


def _restore(state: Dict[str, Any], path: Path, model, optimizer, scaler, ema) -> None:
    """The inverse of :func:`_training_state` (the schedule follows from the epoch), with a
    one-line error for a state that does not fit."""
    load_weights(model, state["model"], path, "model")
    if ema is not None:
        if state.get("model_ema") is None:
            raise UsageError(f"{path}: the run keeps an EMA but the checkpoint holds none")
        load_weights(ema.module, state["model_ema"], path, "EMA")
    try:
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        if ema is not None:
            ema.n_averaged.fill_(int(state.get("ema_updates", 0)))
        set_rng_state(state["rng"])
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as e:
        raise UsageError(f"{path}: cannot restore the training state: {e}") from None


_NO_TEST = EvalResult(loss=math.nan, acc1=math.nan, acc5=math.nan, images=0, confusion=torch.zeros(0, 0))


def _epoch_line(row: Dict[str, float], epochs: int, improved: bool) -> str:
    test = (
        "no test split"
        if math.isnan(row["test_acc1"])
        else f"test acc1 {row['test_acc1']:.2%} acc5 {row['test_acc5']:.2%}"
    )
    return (
        f"epoch {row['epoch']:>3}/{epochs} lr {row['lr']:.3g} | train loss {row['train_loss']:.4f} "
        f"acc1 {row['train_acc1']:.2%} | val loss {row['val_loss']:.4f} acc1 {row['val_acc1']:.2%} "
        f"acc5 {row['val_acc5']:.2%} | {test} | "
        f"{row['images_per_s']:.0f} img/s {row['seconds']:.0f}s" + ("  * best val" if improved else "")
    )


def _finite(x: float) -> Optional[float]:
    """``x``, or None for the NaN of a split that does not exist (JSON has no NaN)."""
    return None if math.isnan(x) else x


def make_summary(
    cfg: TrainConfig, history: List[Dict[str, float]], params: int, macs: int, image_size: int
) -> Dict[str, Any]:
    """``summary.json``: the honest figures (selected on val) and the source's (best on test)."""
    if not history:
        raise UsageError("no epoch was trained")
    best_i = max(range(len(history)), key=lambda i: (history[i]["val_acc1"], -i))  # first of ties
    at_best, final = history[best_i], history[-1]
    return {
        "model": cfg.model,
        "recipe": cfg.recipe,
        "epochs": len(history),
        "image_size": image_size,
        "best_val_acc1": at_best["val_acc1"],
        "best_epoch": int(at_best["epoch"]),
        # None when the data set has no test split
        "test_acc1_at_best_val": _finite(at_best["test_acc1"]),
        "test_acc5_at_best_val": _finite(at_best["test_acc5"]),
        "final_val_acc1": final["val_acc1"],
        "final_test_acc1": _finite(final["test_acc1"]),
        # The source's figure: the maximum test accuracy over epochs, i.e. selected on the test
        # set itself. Optimistic; reported only to compare with the source's numbers.
        "best_test_acc1": _finite(max(r["test_acc1"] for r in history)),
        "best_test_acc1_note": "source-style: max test top-1 over epochs (selected on test; optimistic)",
        "params": params,
        "macs": macs,
        "train_time_s": sum(r["seconds"] for r in history),
        "accuracy_units": "fractions in [0, 1]",
    }
