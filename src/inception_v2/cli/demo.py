"""``inception-v2 demo``: :func:`inception_v2.demo.demo`, the main job."""

from __future__ import annotations

import argparse
from pathlib import Path

from inception_v2.demo import DEMO_THREADS, demo


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "The experiment end to end on the built-in synthetic sample with a small CPU preset: trains "
        "inception_v2 and googlenet_bn and prints the comparison table and figure paths."
    )
    p.add_argument("--out", type=Path, default=Path("demo-run"), help="output folder (default demo-run)")
    p.add_argument("--workers", type=int, default=0, help="data-loading processes (0: in the training process)")
    p.add_argument("--device", default="cpu", help="cpu (default), auto, cuda")
    p.add_argument(
        "--threads",
        type=int,
        default=DEMO_THREADS,
        help=f"compute threads ({DEMO_THREADS}; 0 = PyTorch's default, faster on an idle machine)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    threads = None if args.threads == 0 else args.threads
    result = demo(args.out, workers=args.workers, device=args.device, threads=threads, progress=not args.no_progress)
    print()
    print(result["table"])
    print()
    for model, s in result["summaries"].items():
        print(
            f"{model}: test top-1 {s['test_acc1_at_best_val']:.2%} at the best-val epoch {s['best_epoch']} (chance: 5%)"
        )
    print(f"\ntable: {result['markdown']}")
    for f in result["figures"]:
        print(f"figure: {f}")
    print(f"demo took {result['seconds']:.0f} s")
    return 0
