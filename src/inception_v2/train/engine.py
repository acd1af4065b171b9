"""The training run: :func:`fit` sets a run up and trains it epoch by epoch.

Every epoch trains on ``train`` (:func:`~inception_v2.train.step.train_one_epoch`), then
evaluates on ``val`` (which alone selects ``best.pt``) and on ``test`` (reported, never used for
a decision) with the one evaluator (:class:`~inception_v2.evaluation.Evaluator`: ``eval()``,
``inference_mode()``, the deterministic eval transform). Under ``torchrun`` the model is wrapped
in DDP, metrics are summed over processes and only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from inception_v2.atomic import remove_stale_temps, write_json
from inception_v2.data.prepare import check_out_outside_input
from inception_v2.data.transforms import batch_mix
from inception_v2.errors import LockedError, UsageError
from inception_v2.evaluation import NO_RESULT, EvalResult, Evaluator, evaluate  # noqa: F401 (evaluate re-exported)
from inception_v2.locking import exclusive
from inception_v2.models import create_model
from inception_v2.models.pooling import set_pool_impl
from inception_v2.summary import count_macs, count_params
from inception_v2.train import distributed as dist_utils
from inception_v2.train.board import TensorBoardLog, summary_writer_class
from inception_v2.train.checkpoint import DataIdentity, RunRecord, checkpoint_state, restore_state, save_checkpoint
from inception_v2.train.config import DeviceSettings, TrainConfig, device_settings
from inception_v2.train.data import RunData, build_data, resolve_prepared
from inception_v2.train.finetune import freeze_features
from inception_v2.train.losses import InceptionLoss
from inception_v2.train.metrics import write_metrics_csv
from inception_v2.train.optim import build_ema, build_optimizer, build_scheduler
from inception_v2.train.resume import ResumePoint, data_identity, resolve_resume
from inception_v2.train.step import (  # noqa: F401 (re-exported)
    CHECK_EVERY,
    EpochLog,
    NonFiniteLossError,
    StepOptions,
    TrainStep,
    train_one_epoch,
)

logger = logging.getLogger(__name__)


@dataclass
class TrainHooks:
    """Extension points of :func:`fit`, called on every process."""

    on_setup: Optional[Callable[["Run"], None]] = None  # the run is set up; before its first epoch
    on_step: Optional[Callable[[int], None]] = None  # after every optimizer step, with the global step
    # replaces the run's evaluator: (model, loader, split name) -> result
    evaluate: Optional[Callable[[nn.Module, Any, str], EvalResult]] = None


@dataclass
class Run:
    """A run set up by :func:`fit`: its config, device settings, data, training step and evaluator."""

    cfg: TrainConfig
    info: dist_utils.DistInfo
    settings: DeviceSettings
    data: RunData
    identity: DataIdentity
    step: TrainStep
    evaluator: Evaluator
    steps_per_epoch: int
    cost: Tuple[int, int]  # parameters, multiply-adds of one image
    board: Optional[TensorBoardLog] = None

    @property
    def eval_model(self) -> nn.Module:
        """What val evaluates and selects on: the EMA of the weights if the run keeps one."""
        return self.step.ema.module if self.step.ema is not None else self.step.model

    def say(self, message: str) -> None:
        if self.info.is_main:
            logger.info(message)


# --------------------------------------------------------------------------- fit


def fit(
    cfg: TrainConfig, resume: bool = False, progress: bool = True, hooks: Optional[TrainHooks] = None
) -> Dict[str, Any]:
    """Train ``cfg.model`` per ``cfg``; returns the content of ``summary.json``.

    Writes (rank 0 only) ``config.json``, ``metrics.csv`` (a row per epoch), ``last.pt`` after
    every epoch, ``best.pt`` on a new best val top-1, ``summary.json`` at the end, and with
    ``cfg.tensorboard`` TensorBoard event files. ``resume`` continues from ``last.pt`` (a run with
    no ``last.pt`` starts fresh; :func:`~inception_v2.train.resume.resolve_resume` decides);
    without it an existing ``last.pt`` is a :class:`UsageError`. Under ``torchrun`` it joins the
    process group (and leaves it when done); when torchrun has restarted the workers
    (``--max-restarts``), it resumes by itself. Global backend flags it sets (cuDNN's benchmark
    mode) are restored when it returns. Messages go to this module's logger (rank 0 only).
    """
    info = dist_utils.env_info()
    device = dist_utils.resolve_device(cfg.device, info)
    owns_group = info.is_distributed and not dist_utils.is_initialized()
    restarts = dist_utils.restart_count()
    if restarts > 0 and dist_utils.shares_agent_store() and info.is_main:
        logger.info(dist_utils.SHARED_STORE_NOTE)
    dist_utils.init_distributed(device, info)
    with contextlib.ExitStack() as stack:
        try:
            # torchrun counts restarts per node (a node whose workers did not fail keeps 0), so a
            # restart anywhere is a restart of the whole job.
            restarted = dist_utils.any_true(restarts > 0, device)
            # Rank 0's config everywhere (another machine may lack RUN_DIR/config.json on --resume).
            cfg = dist_utils.run_on_main(lambda own=cfg: own)
            _check_out_outside_source(cfg)  # before the run folder exists
            # One writer per run directory: rank 0 holds its lock until the run ends (or dies).
            wait_s = LOCK_WAIT_S if restarted else 0.0
            dist_utils.run_on_main(lambda: _own_run_dir(stack, Path(cfg.out), wait_s=wait_s))
            if restarted and info.is_main:
                logger.info("torchrun restarted the workers: resuming from %s", Path(cfg.out) / "last.pt")
            point = resolve_resume(cfg, resume or restarted)
            settings = device_settings(cfg, device, info.local_world_size)
            stack.enter_context(settings.applied())
            run = _set_up(cfg, info, settings, point, progress and info.is_main)
            record = _start(run, point, stack)
            if hooks is not None and hooks.on_setup is not None:
                hooks.on_setup(run)
            _train_epochs(run, record, hooks or TrainHooks(), progress and info.is_main)
            return _finish(run, record)
        finally:
            if owns_group:
                dist_utils.cleanup()


LOCK_WAIT_S = 60.0  # after an elastic restart, how long to wait for the dead attempt's lock


def _check_out_outside_source(cfg: TrainConfig) -> None:
    """:class:`UsageError` when ``--out`` lies in a ``--data`` that is a source to prepare (a VOC
    root or an image folder), not a prepared folder: the run's files would become input."""
    data = Path(cfg.data)
    if data.is_dir() and not (data / "counts.json").is_file():
        check_out_outside_input(Path(cfg.out), [data], "--out")


def _own_run_dir(stack: contextlib.ExitStack, out: Path, wait_s: float = 0.0) -> None:
    """Lock ``out`` for this process (until ``stack`` closes) and remove the temporary files
    a killed write left there (``.last.pt.iv2-PID-*.tmp``...; never anyone else's files).

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
    remove_stale_temps(out)  # only this program's, of a writer that is gone


def _set_up(
    cfg: TrainConfig, info: dist_utils.DistInfo, settings: DeviceSettings, point: Optional[ResumePoint], progress: bool
) -> Run:
    """The data, the model (initialized from ``cfg.seed``, or as ``point``'s run was built), the
    optimizer, schedule, EMA and loss in a :class:`TrainStep`, and the evaluator."""
    device = settings.device
    if cfg.sync_bn and device.type != "cuda":
        raise UsageError("--sync-bn needs CUDA devices (SyncBatchNorm does not run on CPU)")
    if cfg.tensorboard and info.is_main:
        summary_writer_class()  # a missing package is an error now, not after the data is ready
    say = logger.info if info.is_main else (lambda *_: None)
    prepared = resolve_prepared(cfg.data, cfg.out, cfg.val_fraction, cfg.cache_dir, say)
    data_cfg = cfg.data_config()
    data = build_data(
        prepared,
        data_cfg,
        cfg.batch_size,
        settings.workers,
        cfg.seed,
        info,
        device,
        auto_augment=cfg.auto_augment,
        random_erasing=cfg.random_erasing,
        device_augment=cfg.device_augment,
    )
    identity = data_identity(prepared, data.classes)
    if point is not None:
        point.check_data(identity)
    steps_per_epoch = len(data.train_loader) // cfg.grad_accum_steps
    if steps_per_epoch == 0:
        raise UsageError(
            f"{prepared}: the train split gives {len(data.train_loader)} batches per process, fewer than "
            f"--grad-accum-steps {cfg.grad_accum_steps}; lower --grad-accum-steps or --batch-size"
        )
    model, frozen = _build_model(cfg, info, settings, len(data.classes), point)
    cost = (count_params(model), count_macs(model, data_cfg.input_size))
    optimizer = build_optimizer(model, cfg)
    step = TrainStep(
        model,
        optimizer,
        InceptionLoss(cfg.label_smoothing, cfg.aux_weight),
        settings=settings,
        options=StepOptions(
            cfg.grad_accum_steps, cfg.grad_clip_norm, batch_mix(cfg.mixup, cfg.cutmix, len(data.classes)), data_cfg
        ),
        scheduler=build_scheduler(optimizer, cfg, steps_per_epoch),
        ema=build_ema(model, cfg.ema_decay),
        frozen=frozen,
    )
    evaluator = Evaluator(
        device, len(data.classes), data_cfg, settings.amp_dtype, settings.channels_last, progress=progress
    )
    return Run(cfg, info, settings, data, identity, step, evaluator, steps_per_epoch, cost)


def _build_model(
    cfg: TrainConfig,
    info: dist_utils.DistInfo,
    settings: DeviceSettings,
    num_classes: int,
    point: Optional[ResumePoint],
):
    """The network on its device, and its frozen modules (``--freeze-features``)."""
    torch.manual_seed(cfg.seed)  # the same initial weights on every process
    # a resumed run takes every weight from last.pt: the pretrained file is not read again
    pretrained = cfg.pretrained if point is None else None
    arch = dict(point.state.arch_options) if point is not None else {}  # as the run was built
    model = create_model(
        cfg.model,
        num_classes=num_classes,
        aux_logits=cfg.aux_weight > 0,
        dropout=cfg.dropout,
        pretrained=pretrained,
        **arch,
    )
    if pretrained is not None and info.is_main:
        logger.info("initialized from %s (classifiers for the %d classes of %s)", pretrained, num_classes, cfg.data)
    frozen = freeze_features(model) if cfg.freeze_features else []
    if cfg.freeze_features and cfg.pretrained is None and info.is_main:
        logger.info("note: --freeze-features without --pretrained trains the heads on randomly initialized features")
    if cfg.sync_bn and info.is_distributed:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(settings.device)
    set_pool_impl(model, settings.pool_impl)
    if settings.channels_last:
        model.to(memory_format=torch.channels_last)
    return model, frozen


def _start(run: Run, point: Optional[ResumePoint], stack: contextlib.ExitStack) -> RunRecord:
    """Restore ``point``'s state (or start afresh), wrap the forward (DDP, compile), write
    ``config.json``, open TensorBoard and say what runs."""
    cfg, step, info = run.cfg, run.step, run.info
    record = RunRecord()
    if point is not None:
        record = restore_state(point.state, point.path, step)
        best = record.best
        run.say(
            f"resuming {cfg.out} after epoch {record.epoch} "
            f"(best val top-1 {best['val_acc1']:.4f} at epoch {best['epoch']})"
        )
        point.state = None  # the weights are in the model now; free the copy
    step.scheduler.set_step(record.epoch * run.steps_per_epoch)  # the lr is a function of the step alone
    if info.is_distributed:
        step.distribute()
    if cfg.compile:
        step.compile(cfg.compile_backend, cfg.compile_mode)
    if info.is_main:
        write_json(Path(cfg.out) / "config.json", cfg.to_dict())
        if cfg.tensorboard:
            run.board = TensorBoardLog(Path(cfg.out), purge_step=record.epoch * run.steps_per_epoch + 1)
            stack.enter_context(contextlib.closing(run.board))
    data = run.data
    run.say(
        f"{cfg.model} ({cfg.recipe} recipe) on {data.prepared}: {len(data.train)} train / {len(data.val)} val / "
        f"{len(data.test)} test crops at {cfg.data_config().input_size}px; {run.cost[0]:,} parameters; "
        f"{info.world_size} process(es) on {run.settings.device.type}, batch {cfg.batch_size} and "
        f"{run.settings.workers} loader workers each"
        + (f", {cfg.grad_accum_steps} batches per step" if cfg.grad_accum_steps > 1 else "")
    )
    return record


# --------------------------------------------------------------------------- the epoch loop


def _seed_epoch(seed: int, epoch: int, rank: int, loader: torch.utils.data.DataLoader) -> None:
    """Seed every generator from (seed, epoch, rank): an epoch's augmentation and dropout do not
    depend on what ran before it, so a resumed run repeats the uninterrupted one."""
    s = int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)
    if loader.generator is not None:
        loader.generator.manual_seed(s)


def _train_epochs(run: Run, record: RunRecord, hooks: TrainHooks, progress: bool) -> None:
    """Train from ``record.epoch`` to ``cfg.epochs``: after each epoch, evaluate val (which
    selects ``best.pt``) and test (reported only), then save and say it."""
    cfg, data, step = run.cfg, run.data, run.step
    evaluate_split = hooks.evaluate or (lambda model, loader, split: run.evaluator(model, loader, split))
    for epoch in range(record.epoch, cfg.epochs):
        epoch_start = time.perf_counter()
        _seed_epoch(cfg.seed, epoch, run.info.rank, data.train_loader)
        data.train_sampler.set_epoch(epoch)
        lr = step.optimizer.param_groups[0]["lr"]
        log = EpochLog(
            epoch=epoch,
            step_offset=epoch * run.steps_per_epoch,
            every=cfg.log_every,
            progress=progress,
            on_step=hooks.on_step,
            on_log=run.board.train_point if run.board is not None else None,
        )
        tr = train_one_epoch(step, data.train_loader, log)
        dist_utils.broadcast_buffers(run.eval_model)  # every process evaluates rank 0's model
        va = evaluate_split(run.eval_model, data.val_loader, "val")
        # a data set without a test split (an image folder without test/) reports none: NaN
        te = evaluate_split(run.eval_model, data.test_loader, "test") if len(data.test) else NO_RESULT
        row = _row(epoch, lr, tr, va, te, time.perf_counter() - epoch_start)
        improved = va.acc1 > record.best["val_acc1"]  # ties keep the earlier epoch
        record.epoch = epoch + 1
        record.history.append(row)
        if improved:
            record.best = {"val_acc1": va.acc1, "epoch": epoch + 1}
        if run.info.is_main:
            _save(run, record, improved, row)
        run.say(_epoch_line(row, cfg.epochs, improved))
        dist_utils.barrier()


def _row(epoch: int, lr: float, tr: Dict[str, float], va: EvalResult, te: EvalResult, seconds: float):
    """The ``metrics.csv`` row of an epoch."""
    return {
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
        "seconds": seconds,
    }


def _save(run: Run, record: RunRecord, improved: bool, row: Dict[str, float]) -> None:
    """``last.pt`` (and ``best.pt`` on a new best), ``metrics.csv``, the epoch's TensorBoard points."""
    out = Path(run.cfg.out)
    state = checkpoint_state(run.cfg, run.step, run.identity, record)
    save_checkpoint(out / "last.pt", state)
    if improved:
        save_checkpoint(out / "best.pt", state)
    write_metrics_csv(out / "metrics.csv", record.history)
    if run.board is not None:  # after last.pt: a resumed run never repeats an epoch's points
        run.board.epoch(record.epoch * run.steps_per_epoch, row)


def _finish(run: Run, record: RunRecord) -> Dict[str, Any]:
    """Write and say ``summary.json``."""
    params, macs = run.cost
    summary = make_summary(run.cfg, record.history, params, macs, run.cfg.data_config().input_size)
    if run.info.is_main:
        write_json(Path(run.cfg.out) / "summary.json", summary)
        test = (
            "no test split"
            if summary["test_acc1_at_best_val"] is None
            else f"test top-1 there {summary['test_acc1_at_best_val']:.2%} (final {summary['final_test_acc1']:.2%}; "
            f"source-style best test {summary['best_test_acc1']:.2%})"
        )
        best = f"best val top-1 {summary['best_val_acc1']:.2%} at epoch {summary['best_epoch']}"
        run.say(f"done: {best}, {test}; {run.cfg.out}")
    return summary


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
