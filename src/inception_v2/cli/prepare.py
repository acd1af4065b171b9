"""``inception-v2 prepare``: :func:`inception_v2.data.prepare`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inception_v2.data.counts import compare_with_seed
from inception_v2.data.prepare import DEFAULT_TEST_FRACTION, prepare
from inception_v2.data.store import STORES
from inception_v2.data.voc import SEED_TOTALS
from inception_v2.errors import UsageError


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Turn PASCAL VOC 2007/2012 (every non-difficult object, cropped) or an image folder (one folder "
        "per class) into per-split stores, with a manifest and counts.json. Resumable; see docs/data.md."
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--voc-root",
        type=Path,
        metavar="ROOT",
        help="folder holding VOCdevkit/, the VOCdevkit folder, or a VOC2007/VOC2012 folder",
    )
    src.add_argument(
        "--voc-tar",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="the official uncompressed tar files, read without extracting them",
    )
    src.add_argument(
        "--image-folder",
        type=Path,
        metavar="ROOT",
        help="your pictures: ROOT/CLASS/... or ROOT/{train,val,test}/CLASS/... (class = folder name)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--store",
        choices=STORES,
        default="raw",
        help="raw: lossless pixels, fastest to read (default); jpeg: about 5x smaller, decoded by the loader",
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.05,
        help="stratified share held out as val: of VOC trainval, or of each class of an image folder "
        "without ROOT/val (default 0.05)",
    )
    p.add_argument(
        "--test-fraction",
        type=float,
        default=None,
        help=f"image folder ROOT/CLASS/...: stratified share held out as test (default {DEFAULT_TEST_FRACTION})",
    )
    p.add_argument(
        "--max-side",
        type=int,
        default=512,
        help="downscale images (VOC: crops) whose longer side exceeds this (default 512; 0 = never)",
    )
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="record corrupt or missing files in the manifest and counts.json and go on",
    )
    p.add_argument("--strict", action="store_true", help="VOC: an unknown class name is an error")
    p.add_argument(
        "--verify-counts",
        choices=["blog", "seed"],
        default=None,
        help="VOC: compare the counts with the source's table (docs/data.md; seed is the earlier name of blog); "
        "exit 1 on a difference",
    )


def run(args: argparse.Namespace) -> int:
    if args.image_folder is not None and args.verify_counts:
        raise UsageError("--verify-counts compares PASCAL VOC counts; it does not apply to --image-folder")
    counts = prepare(
        args.out,
        voc_root=args.voc_root,
        voc_tars=args.voc_tar,
        image_folder=args.image_folder,
        store=args.store,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        max_side=args.max_side,
        workers=args.workers,
        skip_bad=args.skip_bad,
        strict=args.strict,
    )
    if args.verify_counts in ("blog", "seed"):
        diffs = compare_with_seed(counts)
        if diffs:
            print(f"error: counts differ from the source's table in {len(diffs)} classes:", file=sys.stderr)
            for line in diffs:
                print("  " + line, file=sys.stderr)
            return 1
        print(f"counts match the source's table ({SEED_TOTALS[0]} train, {SEED_TOTALS[1]} test)")
    return 0
