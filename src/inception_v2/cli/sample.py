"""``inception-v2 make-sample``: :func:`inception_v2.data.make_sample`, the built-in data set
(or, with ``--image-folder``, :func:`inception_v2.data.make_folder_sample`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from inception_v2.data.sample import DEFAULT_IMAGES, DEFAULT_SEED, make_folder_sample, make_sample


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Write a synthetic PASCAL VOC devkit in the official layout to OUT/VOCdevkit, with "
        "OUT/COUNTS.json; deterministic for a seed. Prepare it with `inception-v2 prepare --voc-root OUT`. "
        "With --image-folder, write a folder of pictures, one folder per class, instead."
    )
    p.add_argument("out", type=Path, metavar="OUT", help="output folder")
    p.add_argument("--images", type=int, default=DEFAULT_IMAGES, help=f"number of images (default {DEFAULT_IMAGES})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    p.add_argument(
        "--image-folder",
        action="store_true",
        help="write OUT/CLASS/NNNNNN.jpg (one object per picture) instead of a VOC devkit",
    )
    p.add_argument("--classes", type=int, default=10, help="with --image-folder: number of classes (default 10)")


def run(args: argparse.Namespace) -> int:
    if args.image_folder:
        per_class = make_folder_sample(args.out, classes=args.classes, images=args.images, seed=args.seed)
        print(
            f"{len(per_class)} classes, {sum(per_class.values())} pictures: "
            + ", ".join(f"{name} {n}" for name, n in per_class.items())
        )
        print(f"wrote {args.out}; next: inception-v2 prepare --image-folder {args.out} --out PREPARED")
        return 0
    counts = make_sample(args.out, images=args.images, seed=args.seed)
    for key, entry in counts.items():
        print(
            f"VOC{key.replace('/', ' ')}: {entry['images']} images, {entry['objects']} objects, "
            f"{entry['non_difficult_objects']} not difficult"
        )
    print(f"wrote {Path(args.out) / 'VOCdevkit'}; next: inception-v2 prepare --voc-root {args.out} --out PREPARED")
    return 0
