"""CPU inference speed of the deployment paths, per multiply-add, against torchvision's
Inception-v3 in eager mode, measured in one run; and the accuracy INT8 keeps on a trained model.

    python benchmarks/bench_inference.py [--model inception_v2] [--batch-size 8] [--image-size 299]
        [--rounds 5] [--iters 2] [--warmup 2] [--paths eager fused compile onnx onnx-int8] [--json F]
    python benchmarks/bench_inference.py --accuracy RUN/best.pt --data PREPARED_DIR [--json F]

Paths (ours, 1000 classes, eval mode, ``torch.inference_mode``; the network's weights are
untrained, which changes nothing in the arithmetic):

* ``eager``: the model as built, NCHW;
* ``fused-nchw``: BatchNorm folded into the convolutions, NCHW (not run by default);
* ``fused``: :func:`inception_v2.deploy.inference.prepare_for_inference` on CPU (BatchNorm folded,
  channels_last) -- what ``evaluate`` and ``predict`` run;
* ``compile``: the same under ``torch.compile`` (Inductor, with ``freezing`` on, which folds the
  weights into the compiled graph -- PyTorch's recommended setting for CPU inference);
* ``onnx``: ``inception-v2 export --format onnx`` of the model (the dynamo-based exporter), run
  by ONNX Runtime with as many intra-op threads as PyTorch uses;
* ``onnx-torchscript``: the same written by the TorchScript-based exporter (not run by default);
* ``onnx-int8``: that float32 file quantized as ``export --quantize int8`` does
  (:func:`inception_v2.deploy.quantize.quantize_int8`: QDQ, per-channel int8 weights, uint8
  activations), calibrated on ``--calibration-batches`` random batches (speed does not depend on
  the values), run by ONNX Runtime like ``onnx``.

Baseline: ``torchvision.models.inception_v3(weights=None, aux_logits=False,
init_weights=False)`` in eager mode (1000 classes). Each round times ``--iters`` batches of
every path in turn, baseline included, so background load on a shared machine hits all of them
alike; the figure is the median batch time over all rounds (``--stat min``: the fastest batch, the
steadier figure when other processes compete for the cores). Ratios:

* ``x tv``: images/s over torchvision's images/s;
* ``per MAC``: (images/s x our multiply-adds per image) / (torchvision images/s x its
  multiply-adds per image), i.e. how fast each gets through its own arithmetic.

Targets: the fastest float path >= 2.0 per MAC; ``eager`` >= 1.0 per MAC; ``onnx-int8`` >= 2x
``onnx`` and >= 4.5 per MAC. Whether the CPU has 8-bit dot-product instructions (AVX-512 VNNI,
AVX-VNNI, AMX) is read from ``/proc/cpuinfo`` and printed: ONNX Runtime's INT8 convolutions use
them where they exist.

``--accuracy CHECKPOINT --data DIR``: exports the checkpoint at its trained size as float32 ONNX
and as INT8 (calibrated on ``--calibration-images`` train images, no accuracy gate) and prints
top-1 / top-5 of the checkpoint, the float32 file and the INT8 file on the val and test splits
(``inception-v2 evaluate`` on each).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import torch
import torchvision

from inception_v2 import create_model, list_models
from inception_v2.deploy.export import export_onnx
from inception_v2.deploy.fuse import fuse_conv_bn
from inception_v2.deploy.inference import OnnxClassifier, prepare_for_inference
from inception_v2.summary import count_macs

ALL_PATHS = ("eager", "fused-nchw", "fused", "compile", "onnx", "onnx-torchscript", "onnx-int8")
DEFAULT_PATHS = ("eager", "fused", "compile", "onnx", "onnx-int8")
BASELINE = "torchvision"
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def int8_instructions() -> List[str]:
    """The 8-bit dot-product instruction sets this CPU reports (Linux ``/proc/cpuinfo``)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    return [f for f in INT8_FLAGS if f in flags]


def cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
        return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def build_paths(
    names: List[str],
    model_name: str,
    size: int,
    tmp: Path,
    log: Callable[[str], None],
    calibration_batches: int,
    batch: int,
) -> Dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=1000).eval()
    runners: Dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
    onnx_file = tmp / f"{model_name}.onnx"

    def ort(path: Path) -> OnnxClassifier:
        return OnnxClassifier(path, providers=["CPUExecutionProvider"], threads=torch.get_num_threads())

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
        elif name in ("onnx", "onnx-int8"):
            if not onnx_file.exists():
                log("exporting to ONNX ...")
                log(export_onnx(model, onnx_file, image_size=size).describe())
            if name == "onnx":
                runners[name] = ort(onnx_file)
            else:
                from inception_v2.deploy.quantize import quantize_int8

                log(f"quantizing to INT8 ({calibration_batches} random calibration batches) ...")
                g = torch.Generator().manual_seed(0)
                batches = [torch.rand(batch, 3, size, size, generator=g) * 2 - 1 for _ in range(calibration_batches)]
                quantize_int8(onnx_file, tmp / f"{model_name}-int8.onnx", batches)
                runners[name] = ort(tmp / f"{model_name}-int8.onnx")
        elif name == "onnx-torchscript":
            log("exporting to ONNX with the TorchScript-based exporter ...")
            export_onnx(model, tmp / f"{model_name}-ts.onnx", image_size=size, exporter="torchscript")
            runners[name] = ort(tmp / f"{model_name}-ts.onnx")
        else:
            raise SystemExit(f"unknown path {name!r}; choose from {', '.join(ALL_PATHS)}")
    return runners


def accuracy(checkpoint: Path, data: Path, calibration_images: int, log: Callable[[str], None]) -> List[Dict[str, Any]]:
    """Top-1 / top-5 on val and test of the checkpoint, its float32 ONNX and its INT8 ONNX."""
    from inception_v2 import load_model
    from inception_v2.deploy.quantize import export_int8_from_prepared
    from inception_v2.evaluate import evaluate_checkpoint

    model = load_model(checkpoint)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        float_path, int8_path = Path(tmp) / "float32.onnx", Path(tmp) / "int8.onnx"
        log(export_onnx(model, float_path).describe())
        log(
            export_int8_from_prepared(
                model, int8_path, data, calibration_images=calibration_images, max_drop=100.0
            ).describe()
        )
        files = (("checkpoint (PyTorch)", checkpoint), ("float32 ONNX", float_path), ("INT8 ONNX", int8_path))
        for what, path in files:
            for split in ("val", "test"):
                r = evaluate_checkpoint(path, data, split=split, workers=0, device="cpu", progress=False)
                rows.append(
                    {
                        "file": what,
                        "split": split,
                        "images": r["images"],
                        "acc1": r["acc1"],
                        "acc5": r["acc5"],
                        "model": r["model"],
                        "image_size": r["image_size"],
                    }
                )
    log("")
    log("| file | split | images | top-1 | top-5 |")
    log("|---|---|---:|---:|---:|")
    for r in rows:
        log(f"| {r['file']} | {r['split']} | {r['images']} | {r['acc1']:.2%} | {r['acc5']:.2%} |")
    return rows


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
    p.add_argument("--calibration-batches", type=int, default=4, help="onnx-int8: random calibration batches (4)")
    p.add_argument(
        "--stat",
        choices=["median", "min"],
        default="median",
        help="batch time per path: the median over all rounds (default) or the fastest",
    )
    p.add_argument(
        "--accuracy",
        type=Path,
        default=None,
        metavar="CHECKPOINT",
        help="instead of timing: top-1 of this checkpoint, its float32 and its INT8 ONNX on val and test",
    )
    p.add_argument("--data", type=Path, default=None, metavar="DIR", help="with --accuracy: the prepared folder")
    p.add_argument("--calibration-images", type=int, default=256, help="with --accuracy: INT8 calibration images")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # untrained weights must not hit the slow denormal path
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    size, batch = args.image_size, args.batch_size
    machine = f"{platform.machine()} {cpu_name()}"
    int8 = int8_instructions()
    try:
        import onnxruntime

        ort_version = f", ONNX Runtime {onnxruntime.__version__}"
    except ImportError:
        ort_version = ""
    log(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}{ort_version}, {machine}, "
        f"{torch.get_num_threads()} threads; 8-bit dot-product instructions: "
        f"{', '.join(int8) or 'none (no VNNI)'}"
    )
    if args.accuracy is not None:
        if args.data is None:
            raise SystemExit("--accuracy needs --data (the prepared folder)")
        rows = accuracy(args.accuracy, args.data, args.calibration_images, log)
        if args.json:
            args.json.write_text(json.dumps({"machine": machine, "int8_instructions": int8, "rows": rows}, indent=2))
        return
    log(f"{args.model} vs torchvision inception_v3, batch {batch} at {size}x{size}")

    baseline = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False).eval()
    with tempfile.TemporaryDirectory() as tmp:
        ours = build_paths(args.paths, args.model, size, Path(tmp), log, args.calibration_batches, batch)
        runners = {BASELINE: baseline, **ours}
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

    stat = statistics.median if args.stat == "median" else min
    ips = {name: batch / stat(t) for name, t in times.items()}
    base = ips[BASELINE] * macs[BASELINE]
    rows = [
        {
            "path": name,
            "images_per_s": ips[name],
            "gmacs_per_image": macs[name] / 1e9,
            "median_batch_s": statistics.median(times[name]),
            "min_batch_s": min(times[name]),
            "x_tv": ips[name] / ips[BASELINE],
            "per_mac": ips[name] * macs[name] / base,
        }
        for name in runners
    ]
    log("")
    log(f"| path | GMACs/image | median batch (s) | min batch (s) | images/s ({args.stat}) | x tv | per MAC |")
    log("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        label = "torchvision inception_v3 eager" if row["path"] == BASELINE else f"{args.model} {row['path']}"
        log(
            f"| {label} | {row['gmacs_per_image']:.2f} | {row['median_batch_s']:.3f} | {row['min_batch_s']:.3f} | "
            f"{row['images_per_s']:.2f} | {row['x_tv']:.2f} | {row['per_mac']:.2f} |"
        )
    ours = [r for r in rows if r["path"] not in (BASELINE, "onnx-int8")]
    if ours:
        best = max(ours, key=lambda r: r["per_mac"])
        log(
            f"\nfastest float path: {best['path']} at {best['per_mac']:.2f}x torchvision eager per multiply-add "
            "(target >= 2.0)"
        )
    if "eager" in ips:
        log(f"eager: {ips['eager'] * macs['eager'] / base:.2f}x per multiply-add (target >= 1.0)")
    if "onnx-int8" in ips:
        log(
            f"onnx-int8: {ips['onnx-int8'] * macs['onnx-int8'] / base:.2f}x torchvision eager per multiply-add "
            "(target >= 4.5)"
            + (f", {ips['onnx-int8'] / ips['onnx']:.2f}x float32 ONNX (target >= 2.0)" if "onnx" in ips else "")
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "torch": torch.__version__,
                    "machine": machine,
                    "int8_instructions": int8,
                    "threads": torch.get_num_threads(),
                    "rows": rows,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
