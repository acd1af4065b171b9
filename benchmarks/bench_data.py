"""Data pipeline figures: ``prepare`` speed per core and memory, store sizes, and the training
loader of each store against torchvision's ``ImageFolder`` + PIL on the same pictures.

    python benchmarks/bench_data.py --voc-root ../shared/voc-sample --replicate 40

The real VOC JPEGs of ``--voc-root`` are laid out as an image folder (``ROOT/CLASS/*.jpg``,
class = the first object's), every picture listed ``--replicate`` times (symbolic links), so
that ``prepare --image-folder`` is timed on more than its fixed costs. Without ``--voc-root``
the pictures are a synthetic ``make-sample --image-folder``. Measured, in one run:

* ``prepare --image-folder`` with each store (every picture in train, so the loaders below
  read the same pictures): images/s with 1 worker (= per core; with its CPU ms per image) and
  with ``--workers`` (wall time, the pool's start included), bytes per image;
* its peak resident memory at two folder sizes (``--rss-replicates``; one process,
  ``--workers 1``): flat if ``prepare`` streams;
* ``prepare --voc-root`` on the devkit itself (object crops): objects/s and both stores' sizes;
* the loader as training uses it (``train_transform(normalize=False)``: resize 384, random
  crop 299, flip, ``uint8`` out; the float steps run on the device, not here), ``--workers``
  DataLoader processes, batch ``--batch-size``: the raw store, the jpeg store, and
  ``ImageFolder`` + PIL on the same files, both with the same ``uint8`` transform and with the
  usual float output (``ToDtype`` + ``Normalize`` in the workers, as torchvision's references
  do). Wall images/s, median of ``--rounds`` interleaved rounds (one loader alive at a time,
  two warm-up batches), and CPU ms per image in one process (steadier on a shared machine).

Targets: prepare >= 300 images/s per core; raw store >= 3x and jpeg store >= 1.5x ``ImageFolder``
+ PIL; the jpeg store <= 1/3 of the raw store's bytes (the measured figures: docs/data.md,
"Sizes and speeds").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List

import torch
import torchvision
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder

from inception_v2.data import PreparedDataset, make_folder_sample, make_loader, prepare, train_transform
from inception_v2.data.voc import find_devkit, parse_annotation
from inception_v2.models.registry import DataConfig

INCEPTION_V2 = DataConfig(input_size=299, resize_size=384, min_input_size=75)  # the source's pipeline
QUIET = dict(progress=False, log=lambda _: None)


def voc_as_folder(voc_root: Path, out: Path, times: int) -> int:
    """Lay out the JPEGs of a devkit as ``out/CLASS/K_ID.jpg`` (links), each ``times`` times;
    returns the number of files."""
    source = find_devkit(voc_root)
    n = 0
    for year, image_set in source.splits():
        for image_id in source.image_ids(year, image_set):
            xml = source.annotation_path(year, image_id)
            objects = parse_annotation(source.read(xml), xml).objects
            cls = objects[0].name if objects else "background"
            target = Path(source.display(source.image_path(year, image_id))).resolve()
            for k in range(times):
                link = out / cls / f"{k:03d}_{year}_{image_id}.jpg"
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(target)
                n += 1
    return n


def timed_prepare(out: Path, **kwargs) -> Dict[str, float]:
    """Wall and CPU seconds (this process and its children) of one ``prepare``."""
    start, cpu_start = time.perf_counter(), os.times()
    prepare(out, **kwargs, **QUIET)
    wall, cpu_end = time.perf_counter() - start, os.times()
    kinds = ("user", "system", "children_user", "children_system")
    cpu = sum(getattr(cpu_end, k) - getattr(cpu_start, k) for k in kinds)
    return {"wall": wall, "cpu": cpu}


def store_bytes(out: Path) -> int:
    return sum(p.stat().st_size for p in out.iterdir() if p.suffix in (".pixels", ".jpeg"))


def peak_rss_mb(folder: Path, out: Path) -> float:
    """Peak resident memory of ``prepare --workers 1`` in a process of its own."""
    code = (
        "from inception_v2.data import prepare; "
        f"prepare({str(out)!r}, image_folder={str(folder)!r}, workers=1, val_fraction=0, test_fraction=0, "
        "progress=False, log=lambda _: None)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"prepare failed with status {status}")
    return usage.ru_maxrss / 1024  # kB on Linux


def forever(loader) -> Iterator:
    while True:
        yield from loader


def loader_rate(ds: Dataset, batch_size: int, workers: int, batches: int) -> float:
    """Images/s of wall time over ``batches`` batches, after two warm-up batches."""
    loader = make_loader(ds, batch_size, shuffle=True, workers=workers, drop_last=True, seed=0, pin_memory=False)
    it = forever(loader)
    for _ in range(2):
        next(it)
    start, seen = time.perf_counter(), 0
    for _ in range(batches):
        seen += len(next(it)[1])
    rate = seen / (time.perf_counter() - start)
    del it, loader
    return rate


def cpu_ms_per_image(ds: Dataset, images: int) -> float:
    """CPU milliseconds per image of read + transform in this process, one torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for i in range(8):
            ds[i]
        start = time.process_time()
        for i in range(images):
            ds[i % len(ds)]
        return (time.process_time() - start) / images * 1e3
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--voc-root", type=Path, default=None, help="a devkit whose JPEGs are used (default: synthetic pictures)"
    )
    parser.add_argument("--replicate", type=int, default=40, help="copies of each picture in the folder (default 40)")
    parser.add_argument(
        "--rss-replicates",
        type=int,
        nargs=2,
        default=[10, 80],
        help="the two folder sizes of the memory measurement, in copies (default 10 80)",
    )
    parser.add_argument("--workers", type=int, default=2, help="prepare and loader workers (default 2)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=20, help="timed batches per round (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved loader rounds (default 3)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    figures: Dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores; torch {torch.__version__}, torchvision "
        f"{torchvision.__version__}, Python {platform.python_version()}",
    }

    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        tmp = Path(tmp)

        def folder_of(times: int) -> Path:
            root = tmp / f"folder-x{times}"
            if not root.exists():
                if args.voc_root is not None:
                    voc_as_folder(args.voc_root, root, times)
                else:
                    make_folder_sample(root, classes=10, images=65 * times, seed=0)
            return root

        folder = folder_of(args.replicate)
        n_images = sum(1 for p in folder.rglob("*.jpg"))
        what = f"{args.voc_root} JPEGs x {args.replicate}" if args.voc_root else "make-sample --image-folder"
        figures["data"] = f"{what}: {n_images} pictures"
        print(f"machine: {figures['machine']}\ndata: {figures['data']}")

        # -- prepare --image-folder: speed per core, bytes per image
        print("\nprepare --image-folder --val-fraction 0 --test-fraction 0 (every picture in train)")
        print(
            f"{'store':<6} {'workers':>7} {'wall s':>8} {'images/s':>9} {'per core':>9} {'CPU ms/img':>11} "
            f"{'bytes/img':>10}"
        )
        prep: Dict[str, Dict[str, float]] = {}
        for store in ("raw", "jpeg"):
            for workers in (1, args.workers):
                out = tmp / f"prepared-{store}-{workers}"
                t = timed_prepare(
                    out, image_folder=folder, store=store, workers=workers, val_fraction=0, test_fraction=0
                )
                key = f"{store}-w{workers}"
                prep[key] = {
                    "wall_s": t["wall"],
                    "images_per_s": n_images / t["wall"],
                    "per_core": n_images / t["wall"] / workers,
                    "cpu_ms_per_image": t["cpu"] / n_images * 1e3,
                    "bytes_per_image": store_bytes(out) / n_images,
                }
                r = prep[key]
                # the pool's CPU time is not this process's to see (its workers are the fork server's children)
                cpu_ms = f"{r['cpu_ms_per_image']:11.2f}" if workers == 1 else f"{'-':>11}"
                print(
                    f"{store:<6} {workers:>7} {r['wall_s']:8.2f} {r['images_per_s']:9.0f} {r['per_core']:9.0f} "
                    f"{cpu_ms} {r['bytes_per_image']:10.0f}"
                )
                if workers != 1:
                    shutil.rmtree(out)
        figures["prepare_folder"] = prep
        ratio = prep["jpeg-w1"]["bytes_per_image"] / prep["raw-w1"]["bytes_per_image"]
        print(f"jpeg store / raw store bytes: {ratio:.3f} (target <= 0.333)")

        # -- memory at two sizes
        rss = {}
        for times in args.rss_replicates:
            root = folder_of(times)
            peak = peak_rss_mb(root, tmp / f"rss-{times}")
            rss[times] = {"images": sum(1 for _ in root.rglob("*.jpg")), "peak_rss_mb": peak}
            shutil.rmtree(tmp / f"rss-{times}")
        figures["peak_rss"] = rss
        print(
            "\npeak resident memory of prepare --workers 1 (raw store): "
            + ", ".join(f"{v['images']} pictures {v['peak_rss_mb']:.0f} MB" for v in rss.values())
        )

        # -- VOC crops: objects/s and sizes
        if args.voc_root is not None:
            voc = {}
            for store in ("raw", "jpeg"):
                out = tmp / f"voc-{store}"
                t = timed_prepare(out, voc_root=args.voc_root, store=store, workers=1, val_fraction=0)
                counts = json.loads((out / "counts.json").read_text())
                objects = sum(s["objects"] for s in counts["sources"].values())
                voc[store] = {
                    "objects": objects,
                    "wall_s": t["wall"],
                    "objects_per_s": objects / t["wall"],
                    "store_bytes": store_bytes(out),
                }
            figures["prepare_voc"] = voc
            print(
                f"\nprepare --voc-root {args.voc_root} (1 worker): {voc['raw']['objects']} objects; raw "
                f"{voc['raw']['objects_per_s']:.0f} objects/s, {voc['raw']['store_bytes'] / 1e6:.1f} MB; jpeg "
                f"{voc['jpeg']['objects_per_s']:.0f} objects/s, {voc['jpeg']['store_bytes'] / 1e6:.1f} MB "
                f"({voc['jpeg']['store_bytes'] / voc['raw']['store_bytes']:.3f} of raw)"
            )

        # -- the training loader
        uint8 = train_transform(INCEPTION_V2, normalize=False)
        float_out = train_transform(INCEPTION_V2, normalize=True)
        raw_dir, jpeg_dir = tmp / "prepared-raw-1", tmp / "prepared-jpeg-1"
        datasets: Dict[str, Dataset] = {
            "raw store": PreparedDataset(raw_dir, "train", uint8),
            "jpeg store": PreparedDataset(jpeg_dir, "train", uint8),
            "ImageFolder+PIL, uint8": ImageFolder(str(folder), transform=uint8),
            "ImageFolder+PIL, float": ImageFolder(str(folder), transform=float_out),
        }
        rates: Dict[str, List[float]] = {k: [] for k in datasets}
        cpu: Dict[str, List[float]] = {k: [] for k in datasets}
        for _ in range(args.rounds):
            for name, ds in datasets.items():
                rates[name].append(loader_rate(ds, args.batch_size, args.workers, args.batches))
                cpu[name].append(cpu_ms_per_image(ds, args.batch_size * 4))
        med = {k: statistics.median(v) for k, v in rates.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
        figures["loader"] = {"images_per_s": med, "cpu_ms_per_image": med_cpu, "rounds": rates}
        print(
            f"\nloader at 299, uint8 out, {args.workers} workers, batch {args.batch_size}, "
            f"median of {args.rounds} rounds"
        )
        print(
            f"{'loader':<24} {'images/s':>9} {'vs IF uint8':>12} {'vs IF float':>12} {'CPU ms/img':>11} "
            f"{'vs IF uint8':>12} {'vs IF float':>12}"
        )
        base_u, base_f = "ImageFolder+PIL, uint8", "ImageFolder+PIL, float"
        for name in datasets:
            print(
                f"{name:<24} {med[name]:9.0f} {med[name] / med[base_u]:11.2f}x {med[name] / med[base_f]:11.2f}x "
                f"{med_cpu[name]:11.2f} {med_cpu[base_u] / med_cpu[name]:11.2f}x "
                f"{med_cpu[base_f] / med_cpu[name]:11.2f}x"
            )
        print("targets: raw store >= 3x, jpeg store >= 1.5x ImageFolder + PIL")

    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
