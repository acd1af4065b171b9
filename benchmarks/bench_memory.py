"""Peak memory of one training step with and without gradient checkpointing.

One step = ``forward_with_aux`` -> cross-entropy + 0.3 x cross-entropy per auxiliary head ->
backward -> SGD step (no momentum: no optimizer state), at batch 32 and 299 x 299 by default.
Each (model, checkpointing) pair runs in a fresh subprocess, so that peaks do not mix:

* ``--device cpu``: the process's peak resident set size during the step
  (``resource.getrusage``) minus its resident size just before it (model, input and imports);
* ``--device cuda``: ``torch.cuda.max_memory_allocated`` during the step minus
  ``torch.cuda.memory_allocated`` before it (the caching allocator's view of live tensors).

    python benchmarks/bench_memory.py                      # CPU, every model
    python benchmarks/bench_memory.py --device cuda        # on a GPU
    python benchmarks/bench_memory.py --models inception_v2 --batch-size 8

Checkpointing (``model.set_grad_checkpointing()``) keeps only each stage's input for the
backward pass and recomputes the rest, so the peak should fall and the step take about one
more forward pass.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(args: argparse.Namespace) -> None:
    import torch
    import torch.nn.functional as F

    from inception_v2 import create_model

    torch.manual_seed(0)
    device = torch.device(args.device)
    model = create_model(args.model, num_classes=args.num_classes, aux_logits=True).to(device).train()
    if args.checkpointing:
        model.set_grad_checkpointing()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
    y = torch.randint(0, args.num_classes, (args.batch_size,), device=device)

    def step() -> None:
        out = model.forward_with_aux(x)
        loss = F.cross_entropy(out.logits, y) + sum(0.3 * F.cross_entropy(a, y) for a in out.aux_logits)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    if device.type == "cuda":
        step()  # warm-up: cuDNN workspaces and the allocator's first blocks
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() - before
    else:
        before = rss_bytes()
        start = time.perf_counter()
        step()
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    print(json.dumps({"peak_bytes": peak, "before_bytes": before, "seconds": seconds}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--models", nargs="*", default=None, help="default: every registered model")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--image-size", type=int, default=299)
    p.add_argument("--num-classes", type=int, default=20)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--checkpointing", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    import torch

    from inception_v2 import list_models

    models = args.models or list_models()
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}; batch {args.batch_size} at {args.image_size} x {args.image_size}")
    what = "peak allocated" if args.device == "cuda" else "peak RSS increase"
    print(f"| model | {what}, plain | with checkpointing | saved | step s, plain | with checkpointing |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in models:
        results = []
        for ckpt in (False, True):
            cmd = [
                sys.executable,
                __file__,
                "--child",
                "--model",
                name,
                "--device",
                args.device,
                "--batch-size",
                str(args.batch_size),
                "--image-size",
                str(args.image_size),
                "--num-classes",
                str(args.num_classes),
            ] + (["--checkpointing"] if ckpt else [])
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        plain, ckpt = results
        gib = 1024**3
        print(
            f"| `{name}` | {plain['peak_bytes'] / gib:.2f} GiB | {ckpt['peak_bytes'] / gib:.2f} GiB | "
            f"{1 - ckpt['peak_bytes'] / plain['peak_bytes']:.0%} | {plain['seconds']:.2f} | {ckpt['seconds']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
