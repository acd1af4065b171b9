"""Data pipeline throughput: ``prepare`` (objects/s) and the training loader of the prepared
store against the usual approach (the same crops as PNG files in an ``ImageFolder``, read with
PIL), with the same train transforms, batch size and worker count, in one run.

    python benchmarks/bench_data.py [--images 600] [--workers 2] [--batches 20]
    python benchmarks/bench_data.py --voc-root ../shared/voc-sample --replicate 10   # real images

Without ``--voc-root`` it builds a synthetic sample (``make_sample``) in a temporary folder;
``--replicate K`` lists every image of a small devkit K times so that ``prepare`` is timed on
more than its fixed costs.
Three loader measurements, each store vs PNG:

* ``train loader``: DataLoader with ``--workers`` processes and the Inception-v2 train
  transforms (resize 384, random crop 299, flip, normalize), images/s of wall time; the two
  loaders run interleaved, one alive at a time, two warm-up batches before the clock starts,
  median of ``--rounds`` rounds;
* ``train pipeline, CPU``: the same in the main process (no workers), CPU seconds per image
  (less sensitive to other load on a shared machine);
* ``read crops only``: decoding the crops to uint8 tensors without any transform, which is the
  part the storage format decides;
* ``uint8 out``: the store with ``train_transform(cfg, normalize=False)``, the float steps being
  left to the GPU (``inception_v2.data.normalize`` on the batch; not timed here), against the
  PNG loader doing everything.

Targets (issue 3): train loader >= 3x the ImageFolder/PNG loader; prepare >= 300 objects/s per
core.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import torch
import torchvision
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from inception_v2.data import VOC_CLASSES, VOCCrops, make_loader, make_sample, prepare, train_transform
from inception_v2.data.voc import find_devkit
from inception_v2.models.registry import DataConfig

INCEPTION_V2 = DataConfig(input_size=299, resize_size=384, min_input_size=75)  # SPEC section 4


def export_png_imagefolder(prepared: Path, root: Path) -> int:
    """Write the train crops as ``root/<class>/<index>.png`` (the usual ImageFolder layout)."""
    ds = VOCCrops(prepared, "train")
    for name in VOC_CLASSES:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i in range(len(ds)):
        image, label = ds[i]
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(root / VOC_CLASSES[label] / f"{i:06d}.png")
    return len(ds)


def replicate_devkit(root: Path, out: Path, times: int) -> Path:
    """A devkit listing every image of ``root`` ``times`` times under new ids (links to the same
    files), so that a small real sample is big enough to time ``prepare`` on."""
    source = find_devkit(root)
    for year, image_set in source.splits():
        base = out / "VOCdevkit" / f"VOC{year}"
        for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        ids = []
        for k in range(times):
            for image_id in source.image_ids(year, image_set):
                new_id = f"{k}x{image_id}"
                for rel, name in ((source.annotation_path(year, image_id), f"Annotations/{new_id}.xml"),
                                  (source.image_path(year, image_id), f"JPEGImages/{new_id}.jpg")):  # fmt: skip
                    try:
                        (base / name).symlink_to(Path(source.display(rel)).resolve())
                    except OSError:
                        shutil.copyfile(source.display(rel), base / name)
                ids.append(new_id)
        (base / "ImageSets" / "Main" / f"{image_set}.txt").write_text("".join(f"{i}\n" for i in ids))
    return out


def forever(loader) -> Iterator:
    while True:
        yield from loader


def loader_rate(ds: Dataset, batch_size: int, workers: int, batches: int) -> float:
    """Images/s of wall time over ``batches`` batches, after two warm-up batches."""
    loader = make_loader(ds, batch_size, shuffle=True, workers=workers, drop_last=True, seed=0)
    it = forever(loader)
    for _ in range(2):
        next(it)
    start, seen = time.perf_counter(), 0
    for _ in range(batches):
        seen += len(next(it)[1])
    return seen / (time.perf_counter() - start)


def cpu_ms_per_image(ds: Dataset, batch_size: int, batches: int) -> float:
    """CPU milliseconds per image of the whole pipeline (read, transform, collate), no workers,
    one torch thread as in a DataLoader worker (idle intra-op threads would count as CPU time)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        it = forever(make_loader(ds, batch_size, shuffle=True, workers=0, drop_last=True, seed=0))
        next(it)
        start, seen = time.process_time(), 0
        for _ in range(batches):
            seen += len(next(it)[1])
        return (time.process_time() - start) / seen * 1e3
    finally:
        torch.set_num_threads(threads)


def read_rate(read: Callable[[int], torch.Tensor], n: int) -> float:
    """Images/s reading crops ``0..n-1`` to uint8 tensors, single process."""
    start = time.perf_counter()
    for i in range(n):
        read(i)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=600, help="synthetic sample size (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--voc-root", type=Path, default=None, help="benchmark this devkit instead")
    parser.add_argument("--replicate", type=int, default=1,
                        help="with --voc-root: list every image this many times (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="prepare and loader workers (default 2)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=20, help="timed batches per round (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        tmp = Path(tmp)
        if args.voc_root is None:
            make_sample(tmp / "sample", images=args.images, seed=args.seed)
            voc_root, data = tmp / "sample", f"make_sample(images={args.images}, seed={args.seed})"
        elif args.replicate > 1:
            voc_root = replicate_devkit(args.voc_root, tmp / "replicated", args.replicate)
            data = f"{args.voc_root}, every image listed {args.replicate} times"
        else:
            voc_root, data = args.voc_root, str(args.voc_root)

        start, cpu_start = time.perf_counter(), os.times()
        counts = prepare(tmp / "prepared", voc_root=voc_root, workers=args.workers, progress=False,
                         log=lambda _: None)  # fmt: skip
        prepare_s, cpu_end = time.perf_counter() - start, os.times()
        prepare_cpu_s = sum(getattr(cpu_end, k) - getattr(cpu_start, k)
                            for k in ("user", "system", "children_user", "children_system"))  # fmt: skip
        objects = sum(s["objects"] for s in counts["sources"].values())
        n_crops = export_png_imagefolder(tmp / "prepared", tmp / "png")
        store_raw = VOCCrops(tmp / "prepared", "train")
        png_raw = ImageFolder(str(tmp / "png"), transform=v2.PILToTensor())
        sides = [(h * w) ** 0.5 for _, h, w, _ in store_raw.index]

        transform = train_transform(INCEPTION_V2)
        datasets = {
            "store": VOCCrops(tmp / "prepared", "train", transform=transform),
            "png": ImageFolder(str(tmp / "png"), transform=transform),
            # the same store with normalize=False: uint8 batches, float steps left to the device
            "store-uint8": VOCCrops(tmp / "prepared", "train", train_transform(INCEPTION_V2, normalize=False)),
        }
        results: Dict[str, Dict[str, List[float]]] = {k: {n: [] for n in datasets} for k in ("loader", "cpu")}
        results["read"] = {"store": [], "png": []}
        for _ in range(args.rounds):
            for name, ds in datasets.items():
                results["loader"][name].append(loader_rate(ds, args.batch_size, args.workers, args.batches))
                results["cpu"][name].append(cpu_ms_per_image(ds, args.batch_size, max(2, args.batches // 4)))
            results["read"]["store"].append(read_rate(store_raw.crop, n_crops))
            results["read"]["png"].append(read_rate(lambda i: png_raw[i][0], n_crops))

    med = {k: {n: statistics.median(v) for n, v in r.items()} for k, r in results.items()}
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads; torch {torch.__version__}, "
          f"torchvision {torchvision.__version__}, Python {platform.python_version()}")  # fmt: skip
    print(f"data: {data}: {objects} annotated objects, {n_crops} train crops "
          f"(median side {statistics.median(sides):.0f} px)")  # fmt: skip
    print(f"\nprepare: {prepare_s:.2f} s for {objects} objects = {objects / prepare_s:.0f} objects/s with "
          f"{args.workers} workers = {objects / prepare_s / args.workers:.0f} objects/s per core of wall time; "
          f"{objects / prepare_cpu_s:.0f} objects per CPU second (target >= 300 per core)")  # fmt: skip
    print(f"\nbatch {args.batch_size}, {args.workers} workers, median of {args.rounds} rounds; "
          "store/PNG is a speed ratio in every row")  # fmt: skip
    print(f"{'measurement':<46} {'store':>9} {'PNG':>9} {'store/PNG':>10}")
    rows = (
        ("train loader, images/s", "loader", "store", False),
        ("train pipeline, CPU ms/image", "cpu", "store", True),
        ("read crops only, images/s", "read", "store", False),
        ("train loader, uint8 out (normalize on device)", "loader", "store-uint8", False),
        ("train pipeline, uint8 out, CPU ms/image", "cpu", "store-uint8", True),
    )
    for label, key, store, lower_is_better in rows:
        s, p = med[key][store], med[key]["png"]
        fmt = "{:9.2f}" if lower_is_better else "{:9.0f}"
        print(f"{label:<46} {fmt.format(s)} {fmt.format(p)} {(p / s if lower_is_better else s / p):9.2f}x")
    print("target: train loader >= 3x the ImageFolder/PNG loader")


if __name__ == "__main__":
    main()
