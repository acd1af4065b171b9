"""``inception-v2 train``: a thin layer over :func:`~inception_v2.train.resolve_config` and
:func:`~inception_v2.train.fit`.

One process: ``inception-v2 train --model inception_v2 --data DIR --out RUN_DIR``.
Data parallel: ``torchrun --nproc_per_node=N -m inception_v2 train ...`` (see docs/training.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict

from inception_v2.errors import UsageError
from inception_v2.models import list_models
from inception_v2.train.config import RECIPES, TrainConfig, resolve_config, resume_config
from inception_v2.train.engine import fit

# argparse dest -> TrainConfig field, for every override
OVERRIDES = (
    "epochs", "batch_size", "lr", "image_size", "resize_size", "label_smoothing", "aux_weight",
    "dropout", "workers", "device", "amp", "channels_last", "compile", "sync_bn", "seed",
    "val_fraction", "cache_dir",
)  # fmt: skip


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run's config: the recipe with the given overrides, or, with ``--resume`` on a run
    directory that has one, its ``config.json`` with the (resumable) overrides."""
    overrides: Dict[str, Any] = {k: getattr(args, k) for k in OVERRIDES}
    overrides.update(model=args.model, data=str(args.data), out=str(args.out))
    if overrides["cache_dir"] is not None:
        overrides["cache_dir"] = str(overrides["cache_dir"])
    saved_path = Path(args.out) / "config.json"
    if args.resume and saved_path.is_file() and (Path(args.out) / "last.pt").is_file():
        try:
            saved = TrainConfig.from_dict(json.loads(saved_path.read_text()))
        except (OSError, ValueError, TypeError) as e:
            raise UsageError(f"{saved_path} is unreadable: {e}") from None
        if args.recipe is not None and args.recipe != saved.recipe:
            raise UsageError(f"cannot resume {args.out} (recipe {saved.recipe}) with --recipe {args.recipe}")
        return resume_config(saved, **overrides)
    return resolve_config(args.recipe or "seed", **overrides)


def run(args: argparse.Namespace) -> int:
    fit(config_from_args(args), resume=args.resume, progress=not args.no_progress)
    return 0


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Train a model on a prepared data set. Defaults are the source's recipe (`seed`); every "
        "option below overrides the recipe. Writes RUN_DIR/{config.json,metrics.csv,last.pt,best.pt,"
        "summary.json}. Data parallel: torchrun --nproc_per_node=N -m inception_v2 train ..."
    )
    p.add_argument("--model", required=True, help=f"one of: {', '.join(list_models())}")
    p.add_argument("--data", required=True, type=Path, metavar="DIR",
                   help="a prepared directory (inception-v2 prepare), or a VOC root, prepared first into a cache")
    p.add_argument("--out", required=True, type=Path, metavar="RUN_DIR", help="run directory")
    p.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                   help="seed (default: the source's Adam recipe) or paper (RMSProp, LSR, clipping, EMA)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt (a new run if there is none)")
    g = p.add_argument_group("recipe overrides (default: the recipe's value)")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int, help="per process (global = this x processes)")
    g.add_argument("--lr", type=float, help="learning rate (paper recipe: 0.045 x batch/32 unless given)")
    g.add_argument("--image-size", type=int, help="crop side (default: the model's, 299 or 224)")
    g.add_argument("--resize-size", type=int, help="shorter side before the crop (default keeps the model's ratio)")
    g.add_argument("--label-smoothing", type=float, help="epsilon of label smoothing (paper: 0.1)")
    g.add_argument("--aux-weight", type=float, help="weight of each auxiliary loss (0.3)")
    g.add_argument("--dropout", type=float, help="dropout before the classifier (default: the model's)")
    g.add_argument("--val-fraction", type=float,
                   help="must match the prepared directory's; with a VOC root, the share held out as val (0.05)")
    g.add_argument("--cache-dir", type=Path, help="where a VOC root given as --data is prepared")
    h = p.add_argument_group("hardware")
    h.add_argument("--workers", type=int, help="data-loading processes per training process (default: the CPUs per process - 1, at most 8)")
    h.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    h.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (default: on for CUDA, off for CPU)")
    h.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels_last memory format (default: on for CUDA)")
    h.add_argument("--compile", action="store_const", const=True, default=None, help="torch.compile the training forward")
    h.add_argument("--sync-bn", action="store_const", const=True, default=None, help="SyncBatchNorm under DDP")
    h.add_argument("--seed", type=int, help="random seed (0)")
    h.add_argument("--no-progress", action="store_true", help="no progress bar (one line per epoch only)")
