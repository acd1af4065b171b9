"""A run's data: the prepared directory (preparing a raw VOC root or an image folder into a
cache first), the three splits and their loaders.

Every split is read as ``uint8`` images; the engine does the float steps on the device.

* train — ``train_transform`` (random crop + flip), a :class:`DistributedSampler` (also for one
  process) whose order depends only on ``(seed, epoch)``, whole batches only;
* val, test — ``eval_transform`` (deterministic), each process takes a strided shard
  (:class:`~inception_v2.train.distributed.ShardSampler`), so the reduced sums are exact. The
  test split may be empty (an image folder without ``test``): there is then nothing to report.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

import torch
from torch.utils.data import DataLoader, DistributedSampler

from inception_v2.data import PreparedDataset, eval_transform, make_loader, prepare, train_transform
from inception_v2.data.folder import detect_layout
from inception_v2.data.prepare import SCRATCH, BadSourceFileError, check_out_outside_input
from inception_v2.data.voc import find_devkit
from inception_v2.errors import LockedError, UsageError
from inception_v2.models import DataConfig
from inception_v2.train.device_augment import PackedSource, collate
from inception_v2.train.distributed import DistInfo, ShardSampler, run_on_main

logger = logging.getLogger(__name__)

DEFAULT_VAL_FRACTION = 0.05  # prepare's default


def prepared_val_fraction(prepared: Path) -> Optional[float]:
    """The ``val_fraction`` a prepared directory was made with (None if not recorded)."""
    try:
        return float(json.loads((prepared / "prepare.json").read_text())["options"]["val_fraction"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cache_dir_for(root: Path, val_fraction: float, out: Path, kind: str = "voc") -> Path:
    """Where a raw VOC root or an image folder (``kind`` ``"image-folder"``) is prepared when
    ``--cache-dir`` is not given: next to the run directory, named after the source and the val
    fraction (so runs on the same data share it)."""
    key = f"{root.resolve()}|{val_fraction}" if kind == "voc" else f"{kind}|{root.resolve()}|{val_fraction}"
    return out.resolve().parent / f".prepared-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


LOCK_POLL_S = 2.0  # while another process prepares the same cache


def _source_kind(path: Path) -> str:
    """``"voc"`` or ``"image-folder"``; :class:`UsageError` when ``path`` is neither."""
    try:
        find_devkit(path)
        return "voc"
    except UsageError as voc_error:
        try:
            detect_layout(path)
            return "image-folder"
        except UsageError as folder_error:
            raise UsageError(
                f"--data {path} is neither a prepared directory (no counts.json), a VOC root ({voc_error}), "
                f"nor an image folder ({folder_error})"
            ) from None


def resolve_prepared(
    data: str,
    out: str,
    val_fraction: Optional[float] = None,
    cache_dir: Optional[str] = None,
    log: Optional[Callable[[str], None]] = None,
) -> Path:
    """The prepared directory of ``--data``.

    A prepared directory (one with ``counts.json``) is used as it is; ``val_fraction``, if given,
    must be the one it was prepared with. A VOC root (a folder with ``VOCdevkit/``, ...) or an
    image folder (``ROOT/CLASS/...``, ``ROOT/train/CLASS/...``) is prepared first with
    ``prepare``'s defaults into ``cache_dir`` (default: :func:`cache_dir_for`), by rank 0 under
    DDP; a finished cache is reused (and prepared again where its source changed); while another
    run prepares the same cache, this one waits for it. Anything else is a :class:`UsageError`;
    so is a bad source file, with the advice to prepare the data with ``--skip-bad`` first.
    """
    path = Path(data)
    if not path.exists():
        raise UsageError(f"--data {path} does not exist")
    if not path.is_dir():
        raise UsageError(f"--data {path} is not a folder")
    if (path / "counts.json").is_file():
        recorded = prepared_val_fraction(path)
        if val_fraction is not None and recorded is not None and abs(recorded - val_fraction) > 1e-12:
            raise UsageError(
                f"--data {path} was prepared with --val-fraction {recorded}, not {val_fraction}; "
                "prepare it again with the fraction you want (or drop --val-fraction)"
            )
        return path
    if (path / "prepare.json").is_file() or (path / SCRATCH).is_dir():
        raise UsageError(
            f"--data {path} is an unfinished prepare output (no counts.json); "
            "run `inception-v2 prepare` again with the same arguments to finish it"
        )
    log = log or logger.info
    kind = _source_kind(path)
    fraction = DEFAULT_VAL_FRACTION if val_fraction is None else val_fraction
    cache = Path(cache_dir) if cache_dir else cache_dir_for(path, fraction, Path(out), kind)
    flag = "--voc-root" if kind == "voc" else "--image-folder"
    check_out_outside_input(
        cache, [path], "--cache-dir" if cache_dir else "the data cache (next to --out; see --cache-dir)"
    )

    def prepare_cache() -> None:
        what = "a VOC root" if kind == "voc" else "an image folder"
        log(f"{path} is {what}: preparing it into {cache} (reused by later runs)")
        source = {"voc_root": path} if kind == "voc" else {"image_folder": path}
        waiting = False
        while True:
            try:
                prepare(cache, val_fraction=fraction, log=log, **source)
                return
            except LockedError as e:
                if not waiting:
                    log(f"{e}; waiting for it to finish")
                    waiting = True
                time.sleep(LOCK_POLL_S)
            except BadSourceFileError as e:
                raise UsageError(
                    f"preparing --data {path} stopped at a bad file: {e.path}: {e.problem}; prepare it yourself, "
                    f"recording bad files instead: `inception-v2 prepare {flag} {path} --out DIR --skip-bad`, "
                    "then `inception-v2 train --data DIR`"
                ) from None

    run_on_main(prepare_cache)
    if not (cache / "counts.json").is_file():
        raise UsageError(f"preparing {path} into {cache} did not finish")
    return cache


@dataclass
class RunData:
    prepared: Path
    classes: List[str]
    train: PreparedDataset
    val: PreparedDataset
    test: PreparedDataset
    train_sampler: DistributedSampler
    train_loader: DataLoader
    val_loader: DataLoader
    test_loader: DataLoader


def build_data(
    prepared: Path,
    data_cfg: DataConfig,
    batch_size: int,
    workers: int,
    seed: int,
    info: DistInfo,
    device: torch.device,
    auto_augment: str = "none",
    random_erasing: float = 0.0,
    device_augment: bool = False,
) -> RunData:
    """Datasets and loaders of the three splits; :class:`UsageError` for an empty train or val
    split or a train split smaller than one global batch (the test split may be empty).
    ``auto_augment`` and ``random_erasing``: see :func:`~inception_v2.data.train_transform`.
    ``device_augment``: the train loader hands packed stored images and their random draws
    (:mod:`inception_v2.train.device_augment`); the engine transforms them on the device."""
    # uint8 out of the workers; the engine normalizes on the device (inception_v2.data.normalize)
    train_tf = train_transform(data_cfg, normalize=False, auto_augment=auto_augment, random_erasing=random_erasing)
    train = PreparedDataset(prepared, "train", train_tf)
    val = PreparedDataset(prepared, "val", eval_transform(data_cfg, normalize=False))
    test = PreparedDataset(prepared, "test", eval_transform(data_cfg, normalize=False))
    for ds in (train, val):  # an empty test split is allowed: there is nothing to report then
        if len(ds) == 0:
            hint = " (prepare it with --val-fraction > 0)" if ds.split == "val" else ""
            raise UsageError(f"{prepared}: the {ds.split} split is empty{hint}")
    if len(train) < batch_size * info.world_size:
        raise UsageError(
            f"{prepared}: the train split has {len(train)} images, fewer than one batch of "
            f"{batch_size} x {info.world_size} process(es); lower --batch-size"
        )
    pin = device.type == "cuda"
    # Whole batches only (BatchNorm needs > 1 sample); the order depends on (seed, epoch) only.
    sampler = DistributedSampler(
        train, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed, drop_last=True
    )
    # Workers restart every epoch (persistent_workers=False) so that their random streams,
    # seeded from the loader's generator, depend only on (seed, epoch): resuming is exact.
    train_loader = make_loader(
        PackedSource(train, data_cfg) if device_augment else train,
        batch_size,
        shuffle=False,
        workers=workers,
        drop_last=True,
        sampler=sampler,
        pin_memory=pin,
        persistent_workers=False,
        seed=seed,
        collate_fn=collate if device_augment else None,
    )

    def eval_loader(ds: PreparedDataset) -> DataLoader:
        return make_loader(
            ds,
            batch_size,
            shuffle=False,
            workers=workers,
            sampler=ShardSampler(ds, info),
            pin_memory=pin,
        )

    return RunData(
        prepared=prepared,
        classes=list(train.classes),
        train=train,
        val=val,
        test=test,
        train_sampler=sampler,
        train_loader=train_loader,
        val_loader=eval_loader(val),
        test_loader=eval_loader(test),
    )
