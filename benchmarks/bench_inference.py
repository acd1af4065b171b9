"""CPU inference speed of the deployment paths, per multiply-add, against torchvision's
Inception-v3 in eager mode, measured in one run.

    python benchmarks/bench_inference.py [--model inception_v2] [--batch-size 8] [--image-size 299]
        [--rounds 5] [--iters 2] [--warmup 2] [--paths eager fused compile onnx] [--json]

Paths (ours, 1000 classes, eval mode, ``torch.inference_mode``; the network's weights are
untrained, which changes nothing in the arithmetic):

* ``eager``: the model as built, NCHW;
* ``fused-nchw``: BatchNorm folded into the convolutions, NCHW (not run by default);
* ``fused``: :func:`inception_v2.deploy.inference.prepare_for_inference` on CPU (BatchNorm folded,
  channels_last) -- what ``evaluate`` and ``predict`` run;
* ``compile``: the same under ``torch.compile`` (Inductor, with ``freezing`` on, which folds the
  weights into the compiled graph -- PyTorch's recommended setting for CPU inference);
* ``onnx``: ``inception-v2 export --format onnx`` of the model, run by ONNX Runtime with as
  many intra-op threads as PyTorch uses.

Baseline: ``torchvision.models.inception_v3(weights=None, aux_logits=False,
init_weights=False)`` in eager mode (1000 classes). Each round times ``--iters`` batches of
every path in turn, baseline included, so background load on a shared machine hits all of them
alike; the figure is the median batch time over all rounds. Ratios:

* ``x tv``: images/s over torchvision's images/s;
* ``per MAC``: (images/s x our multiply-adds per image) / (torchvision images/s x its
  multiply-adds per image), i.e. how fast each gets through its own arithmetic.

Targets (issue 5): the fastest path >= 2.0 per MAC; ``eager`` >= 1.0 per MAC.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch
import torchvision

from inception_v2 import create_model, list_models
from inception_v2.deploy.export import export_onnx
from inception_v2.deploy.fuse import fuse_conv_bn
from inception_v2.deploy.inference import OnnxClassifier, prepare_for_inference
from inception_v2.summary import count_macs

ALL_PATHS = ("eager", "fused-nchw", "fused", "compile", "onnx")
DEFAULT_PATHS = ("eager", "fused", "compile", "onnx")
BASELINE = "torchvision"


def build_paths(
    names: List[str], model_name: str, size: int, tmp: Path, log: Callable[[str], None]
) -> Dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=1000).eval()
    runners: Dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
    for name in names:
        if name == "eager":
            runners[name] = model
        elif name == "fused-nchw":
            runners[name] = fuse_conv_bn(model)
        elif name == "fused":
            runners[name] = prepare_for_inference(model, "cpu")
        elif name == "compile":
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True
            runners[name] = prepare_for_inference(model, "cpu", compile=True)
        elif name == "onnx":
            log("exporting to ONNX ...")
            export_onnx(model, tmp / f"{model_name}.onnx", image_size=size)
            runners[name] = OnnxClassifier(tmp / f"{model_name}.onnx", providers=["CPUExecutionProvider"],
                                           threads=torch.get_num_threads())  # fmt: skip
        else:
            raise SystemExit(f"unknown path {name!r}; choose from {', '.join(ALL_PATHS)}")
    return runners


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="inception_v2", choices=list_models())
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--image-size", type=int, default=299)
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--iters", type=int, default=2, help="timed batches per path and round (default 2)")
    p.add_argument("--warmup", type=int, default=2, help="untimed batches per path first (compile: more)")
    p.add_argument("--paths", nargs="+", default=list(DEFAULT_PATHS), choices=ALL_PATHS)
    p.add_argument("--threads", type=int, default=None, help="torch / ONNX Runtime threads (default: torch's)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # untrained weights must not hit the slow denormal path
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    size, batch = args.image_size, args.batch_size
    machine = f"{platform.machine()} {platform.processor() or ''}".strip()
    log(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {machine}, "
        f"{torch.get_num_threads()} threads; {args.model} vs torchvision inception_v3, batch {batch} at {size}x{size}")  # fmt: skip

    baseline = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False).eval()
    with tempfile.TemporaryDirectory() as tmp:
        runners = {BASELINE: baseline, **build_paths(args.paths, args.model, size, Path(tmp), log)}
        macs = {BASELINE: count_macs(baseline, size)}
        ours_macs = count_macs(create_model(args.model, num_classes=1000), size)
        macs.update({name: ours_macs for name in args.paths})
        x = torch.randn(batch, 3, size, size)
        times: Dict[str, List[float]] = {name: [] for name in runners}
        with torch.inference_mode():
            for name, run in runners.items():
                start = time.perf_counter()
                for _ in range(args.warmup + (3 if name == "compile" else 0)):
                    run(x)
                log(f"warm-up {name}: {time.perf_counter() - start:.1f} s")
            for r in range(args.rounds):
                for name, run in runners.items():
                    for _ in range(args.iters):
                        start = time.perf_counter()
                        run(x)
                        times[name].append(time.perf_counter() - start)
                log(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {t[-1]:.2f}s" for n, t in times.items()))

    ips = {name: batch / statistics.median(t) for name, t in times.items()}
    base = ips[BASELINE] * macs[BASELINE]
    rows = [{
        "path": name, "images_per_s": ips[name], "gmacs_per_image": macs[name] / 1e9,
        "median_batch_s": statistics.median(times[name]), "x_tv": ips[name] / ips[BASELINE],
        "per_mac": ips[name] * macs[name] / base,
    } for name in runners]  # fmt: skip
    log("")
    log(f"| path | GMACs/image | median batch (s) | images/s | x tv | per MAC |")
    log("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        label = "torchvision inception_v3 eager" if row["path"] == BASELINE else f"{args.model} {row['path']}"
        log(f"| {label} | {row['gmacs_per_image']:.2f} | {row['median_batch_s']:.3f} | "
            f"{row['images_per_s']:.2f} | {row['x_tv']:.2f} | {row['per_mac']:.2f} |")  # fmt: skip
    ours = [r for r in rows if r["path"] != BASELINE]
    best = max(ours, key=lambda r: r["per_mac"])
    log(f"\nfastest: {best['path']} at {best['per_mac']:.2f}x torchvision eager per multiply-add (target >= 2.0)")
    if "eager" in ips:
        log(f"eager: {ips['eager'] * macs['eager'] / base:.2f}x per multiply-add (target >= 1.0)")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "torch": torch.__version__, "machine": machine,
                                         "threads": torch.get_num_threads(), "rows": rows}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
