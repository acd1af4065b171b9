"""CPU inference speed of the deployment paths, per multiply-add, against torchvision's
Inception-v3 in eager mode, measured in one run; and the accuracy bf16 and INT8 keep on a
trained model.

    python benchmarks/bench_inference.py [--model inception_v2] [--batch-sizes 1 8] [--image-size 299]
        [--rounds 5] [--iters 2] [--warmup 2] [--settle 0.1] [--paths eager fused onnx onnx-int8 ov-bf16 ...] [--json F]
    python benchmarks/bench_inference.py --accuracy RUN/best.pt --data PREPARED_DIR [--json F]

Paths (ours, 1000 classes, eval mode, ``torch.inference_mode``; the network's weights are
untrained, which changes nothing in the arithmetic):

* ``eager``: the model as built, NCHW;
* ``fused-nchw``: BatchNorm folded into the convolutions, NCHW (not run by default);
* ``fused``: :func:`inception_v2.deploy.inference.prepare_for_inference` on CPU (BatchNorm folded,
  channels_last) -- what ``evaluate`` and ``predict`` run under ``--runtime torch``;
* ``fused-bf16``: the same under bfloat16 autocast (``--runtime torch --precision bf16``);
* ``compile``: ``fused`` under ``torch.compile`` (Inductor, ``freezing`` on; not run by default);
* ``onnx``: ``inception-v2 export --format onnx`` of the model (the dynamo-based exporter), run
  by ONNX Runtime with as many intra-op threads as PyTorch uses;
* ``onnx-torchscript``: the same written by the TorchScript-based exporter (not run by default);
* ``onnx-int8``: that float32 file quantized as ``export --quantize int8`` does
  (:func:`inception_v2.deploy.quantize.quantize_int8`: QDQ, per-channel int8 weights, uint8
  activations), calibrated on ``--calibration-batches`` random batches (speed does not depend on
  the values), run by ONNX Runtime like ``onnx``;
* ``ov-onnx``: the float32 ``onnx`` file run by OpenVINO (float32 asked for explicitly);
* ``ov-ir``: ``export --format openvino`` (the IR), float32 (not run by default: ``ov-onnx``'s speed);
* ``ov-bf16``: the IR at ``--precision bf16`` (``INFERENCE_PRECISION_HINT=bf16``); skipped on a
  CPU without AMX or AVX-512 BF16;
* ``ov-int8``: the IR quantized by NNCF as ``export --format openvino --quantize int8`` does
  (:func:`inception_v2.deploy.openvino.nncf_quantize`), on the same random calibration batches;
* ``ov-onnx-int8``: the ``onnx-int8`` file, unchanged, run by OpenVINO;
* ``auto``: the ``onnx-int8`` file through ``--runtime auto`` (timed once, in a fresh cache, and
  the choice then run): what a user gets without choosing.

Each path runs with as many threads as PyTorch uses (``--threads``). Baseline:
``torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)`` in eager
mode (1000 classes). Each round times ``--iters`` batches of every path in turn at every batch
size, baseline included, so background load on a shared machine hits all of them alike, each
timed batch after an untimed ``--settle`` pause (default 0.1 s): ONNX Runtime's idle threads spin
for tens of milliseconds after a run, and the path timed right after one would otherwise lose a
quarter of its speed to them (a user runs one runtime, not several in turn). The
figure is the median batch time over all rounds (``--stat min``: the fastest batch, the
steadier figure when other processes compete for the cores). Batch 1 gives the latency (ms),
the largest batch the throughput (images/s). Ratios (at the largest batch):

* ``x tv``: images/s over torchvision's images/s;
* ``per MAC``: (images/s x our multiply-adds per image) / (torchvision images/s x its
  multiply-adds per image), i.e. how fast each gets through its own arithmetic.

Targets printed at the end: the fastest float path >= 2.0 per MAC; ``eager`` >= 1.0 per MAC;
``onnx-int8`` >= 2x ``onnx``; on a CPU with AMX or VNNI, the fastest INT8 path >= 12 per MAC and
>= 2.5x ``onnx-int8`` (ONNX Runtime on the same INT8 file); ``ov-bf16`` >= 3x ``onnx``; ``auto``
within 15% of the fastest single runtime on its file. The CPU model and the instruction sets
that decide these (AMX, AVX-512 VNNI/BF16, AVX-VNNI, AVX2; :mod:`inception_v2.deploy.cpu`) are
printed first.

``--accuracy CHECKPOINT --data DIR [--splits val test]``: exports the checkpoint at its trained size as float32 ONNX,
as INT8 ONNX and as float32 and NNCF INT8 OpenVINO IR (calibrated on ``--calibration-images``
train images, no accuracy gate) and prints top-1 of each way of running it (PyTorch float32 and
bf16, ONNX Runtime float32 and INT8, OpenVINO float32, bf16 and INT8 on both INT8 files) on the
val and test splits (``inception-v2 evaluate`` on each). bf16 rows need a CPU with bf16.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
import torchvision

from inception_v2 import create_model, list_models
from inception_v2.deploy.cpu import bf16_support, cpu_model, isa_summary
from inception_v2.deploy.export import export_onnx
from inception_v2.deploy.fuse import fuse_conv_bn
from inception_v2.deploy.inference import OnnxClassifier, prepare_for_inference
from inception_v2.deploy.runtime import versions
from inception_v2.errors import UsageError
from inception_v2.summary import count_macs

ALL_PATHS = (
    "eager", "fused-nchw", "fused", "fused-bf16", "compile", "onnx", "onnx-torchscript", "onnx-int8",
    "ov-onnx", "ov-ir", "ov-bf16", "ov-int8", "ov-onnx-int8", "auto",
)  # fmt: skip
DEFAULT_PATHS = (
    "eager", "fused", "fused-bf16", "onnx", "onnx-int8", "ov-onnx", "ov-bf16", "ov-int8", "ov-onnx-int8", "auto",
)  # fmt: skip
INT8_PATHS = ("onnx-int8", "ov-int8", "ov-onnx-int8")
BASELINE = "torchvision"
Log = Callable[[str], None]


def machine_line() -> str:
    """The CPU model, its inference instruction sets and the runtimes' versions, in one line."""
    isa = isa_summary()
    flags = ", ".join(name for name, present in isa.items() if present) or "none of AMX, AVX-512, AVX2"
    runtimes = ", ".join(f"{k} {v}" for k, v in versions().items() if v) + f", torchvision {torchvision.__version__}"
    return f"{platform.machine()} {cpu_model()}; instruction sets: {flags}; {runtimes}"


class Paths:
    """Builds each path's runner, writing the files they share once under ``tmp``."""

    def __init__(self, model_name: str, size: int, tmp: Path, log: Log, calibration_batches: int) -> None:
        torch.manual_seed(0)
        self.model = create_model(model_name, num_classes=1000).eval()
        self.size, self.tmp, self.log, self.threads = size, tmp, log, torch.get_num_threads()
        g = torch.Generator().manual_seed(0)
        self.calibration = [torch.rand(8, 3, size, size, generator=g) * 2 - 1 for _ in range(calibration_batches)]
        self.onnx = tmp / f"{model_name}.onnx"
        self.onnx_int8 = tmp / f"{model_name}-int8.onnx"

    def onnx_file(self) -> Path:
        if not self.onnx.exists():
            self.log("exporting to ONNX ...")
            self.log(export_onnx(self.model, self.onnx, image_size=self.size).describe())
        return self.onnx

    def onnx_int8_file(self) -> Path:
        if not self.onnx_int8.exists():
            from inception_v2.deploy.quantize import quantize_int8

            self.log(f"quantizing to INT8 with ONNX Runtime ({len(self.calibration)} random calibration batches) ...")
            quantize_int8(self.onnx_file(), self.onnx_int8, self.calibration)
        return self.onnx_int8

    def ir(self, int8: bool) -> Path:
        from inception_v2.deploy import openvino as ovd

        folder = self.tmp / ("ir-int8" if int8 else "ir")
        if not folder.exists():
            ov = ovd.import_openvino()
            model = ovd.openvino_model(self.model, self.size)
            meta = {"image_size": self.size}
            if int8:
                self.log(f"quantizing to INT8 with NNCF ({len(self.calibration)} random calibration batches) ...")
                model, _ = ovd.nncf_quantize(model, self.calibration)
                meta["quantization"] = "int8"
            ovd.set_metadata(model, meta)
            ov.save_model(model, str(folder / ovd.IR_XML), compress_to_fp16=False)
        return folder

    def ort(self, path: Path) -> OnnxClassifier:
        return OnnxClassifier(path, providers=["CPUExecutionProvider"], threads=self.threads)

    def openvino(self, path: Path, precision: Optional[str] = None) -> Any:
        from inception_v2.deploy.openvino import OpenVinoClassifier

        return OpenVinoClassifier(path, precision, threads=self.threads)

    def auto(self) -> Any:
        from inception_v2.deploy.runners import runner_for

        os.environ["XDG_CACHE_HOME"] = str(self.tmp / "cache")  # a fresh cache: auto times here, once
        start = time.perf_counter()
        runner = runner_for(self.onnx_int8_file(), "cpu")
        self.log(f"auto on {self.onnx_int8.name}: {runner.runtime_choice} ({time.perf_counter() - start:.1f} s)")
        return runner

    def build(self, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
        builders: Dict[str, Callable[[], Any]] = {
            "eager": lambda: self.model,
            "fused-nchw": lambda: fuse_conv_bn(self.model),
            "fused": lambda: prepare_for_inference(self.model, "cpu"),
            "fused-bf16": lambda: prepare_for_inference(self.model, "cpu", amp=True),
            "compile": self.compiled,
            "onnx": lambda: self.ort(self.onnx_file()),
            "onnx-torchscript": self.torchscript_onnx,
            "onnx-int8": lambda: self.ort(self.onnx_int8_file()),
            "ov-onnx": lambda: self.openvino(self.onnx_file(), "fp32"),
            "ov-ir": lambda: self.openvino(self.ir(False), "fp32"),
            "ov-bf16": lambda: self.openvino(self.ir(False), "bf16"),
            "ov-int8": lambda: self.openvino(self.ir(True)),
            "ov-onnx-int8": lambda: self.openvino(self.onnx_int8_file()),
            "auto": self.auto,
        }
        if name in ("fused-bf16", "ov-bf16") and bf16_support() is None:
            raise UsageError("this CPU has no bfloat16 instructions (AMX or AVX-512 BF16)")
        return builders[name]()

    def compiled(self) -> Any:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        return prepare_for_inference(self.model, "cpu", compile=True)

    def torchscript_onnx(self) -> OnnxClassifier:
        self.log("exporting to ONNX with the TorchScript-based exporter ...")
        path = self.tmp / "ts.onnx"
        export_onnx(self.model, path, image_size=self.size, exporter="torchscript")
        return self.ort(path)


def time_paths(
    runners: Dict[str, Callable[[torch.Tensor], torch.Tensor]], args: argparse.Namespace, log: Log
) -> Dict[int, Dict[str, List[float]]]:
    """Batch times per batch size and path, in interleaved rounds (see the module docstring)."""
    xs = {b: torch.randn(b, 3, args.image_size, args.image_size) for b in args.batch_sizes}
    times = {b: {name: [] for name in runners} for b in args.batch_sizes}
    with torch.inference_mode():
        for name, run in runners.items():
            start = time.perf_counter()
            for x in xs.values():
                for _ in range(args.warmup + (3 if name == "compile" else 0)):
                    run(x)
            log(f"warm-up {name}: {time.perf_counter() - start:.1f} s")
        for r in range(args.rounds):
            for b, x in xs.items():
                for name, run in runners.items():
                    for _ in range(args.iters):
                        time.sleep(args.settle)
                        start = time.perf_counter()
                        run(x)
                        times[b][name].append(time.perf_counter() - start)
            big = ", ".join(f"{n} {t[-1]:.2f}s" for n, t in times[max(xs)].items())
            log(f"round {r + 1}/{args.rounds}, batch {max(xs)}: {big}")
    return times


def table(times: Dict[int, Dict[str, List[float]]], macs: Dict[str, int], args: argparse.Namespace) -> List[dict]:
    stat = statistics.median if args.stat == "median" else min
    batch = max(times)
    ips = {name: batch / stat(t) for name, t in times[batch].items()}
    base = ips[BASELINE] * macs[BASELINE]
    rows = []
    for name, t in times[batch].items():
        row = {
            "path": name,
            "images_per_s": ips[name],
            "gmacs_per_image": macs[name] / 1e9,
            "median_batch_s": statistics.median(t),
            "min_batch_s": min(t),
            "x_tv": ips[name] / ips[BASELINE],
            "per_mac": ips[name] * macs[name] / base,
        }
        if 1 in times and batch != 1:
            row["latency_ms"] = 1000 * stat(times[1][name])
        rows.append(row)
    return rows


def print_table(rows: List[dict], args: argparse.Namespace, log: Log) -> None:
    batch = max(args.batch_sizes)
    lat = "batch-1 latency ms | " if any("latency_ms" in r for r in rows) else ""
    log("")
    log(f"| path | GMACs/image | {lat}batch-{batch} median (s) | min (s) | images/s ({args.stat}) | x tv | per MAC |")
    log("|---|---:|" + ("---:|" if lat else "") + "---:|---:|---:|---:|---:|")
    for r in rows:
        label = "torchvision inception_v3 eager" if r["path"] == BASELINE else f"{args.model} {r['path']}"
        latency = f"{r['latency_ms']:.1f} | " if lat else ""
        log(
            f"| {label} | {r['gmacs_per_image']:.2f} | {latency}{r['median_batch_s']:.3f} | {r['min_batch_s']:.3f} | "
            f"{r['images_per_s']:.2f} | {r['x_tv']:.2f} | {r['per_mac']:.2f} |"
        )


def print_targets(rows: List[dict], log: Log) -> Dict[str, float]:
    """The target ratios (see the module docstring) the run can tell; returns them by name."""
    by = {r["path"]: r for r in rows}
    ips = {name: r["images_per_s"] for name, r in by.items()}
    found: Dict[str, float] = {}
    floats = [r for r in rows if r["path"] not in (BASELINE, "auto", "fused-bf16", "ov-bf16", *INT8_PATHS)]
    if floats:
        best = max(floats, key=lambda r: r["per_mac"])
        found["fastest_float_per_mac"] = best["per_mac"]
        log(f"\nfastest float32 path: {best['path']} at {best['per_mac']:.2f}x torchvision per multiply-add (>= 2.0)")
    if "eager" in by:
        found["eager_per_mac"] = by["eager"]["per_mac"]
        log(f"eager: {by['eager']['per_mac']:.2f}x per multiply-add (target >= 1.0)")
    if "onnx-int8" in ips and "onnx" in ips:
        found["ort_int8_over_ort_fp32"] = ips["onnx-int8"] / ips["onnx"]
        log(f"onnx-int8: {found['ort_int8_over_ort_fp32']:.2f}x ONNX Runtime float32 (target >= 2.0)")
    int8 = [r for r in rows if r["path"] in INT8_PATHS]
    if int8:
        best = max(int8, key=lambda r: r["per_mac"])
        found["fastest_int8_per_mac"] = best["per_mac"]
        line = f"fastest INT8 path: {best['path']} at {best['per_mac']:.2f}x torchvision per multiply-add (>= 12)"
        if "onnx-int8" in ips:
            found["fastest_int8_over_ort_int8"] = best["images_per_s"] / ips["onnx-int8"]
            line += f", {found['fastest_int8_over_ort_int8']:.2f}x ONNX Runtime INT8 (>= 2.5)"
        log(line)
    if "ov-onnx-int8" in ips and "onnx-int8" in ips:
        found["ov_over_ort_same_int8_file"] = ips["ov-onnx-int8"] / ips["onnx-int8"]
        log(f"the same INT8 .onnx: OpenVINO {found['ov_over_ort_same_int8_file']:.2f}x ONNX Runtime (>= 2.5)")
    if "ov-bf16" in ips and "onnx" in ips:
        found["ov_bf16_over_ort_fp32"] = ips["ov-bf16"] / ips["onnx"]
        log(f"ov-bf16: {found['ov_bf16_over_ort_fp32']:.2f}x ONNX Runtime float32 (target >= 3.0)")
    single = [ips[n] for n in ("onnx-int8", "ov-onnx-int8") if n in ips]
    if "auto" in ips and single:
        found["auto_over_fastest_single"] = ips["auto"] / max(single)
        log(f"auto: {found['auto_over_fastest_single']:.2f}x the fastest single runtime on its file (>= 0.85)")
    return found


def benchmark(args: argparse.Namespace, log: Log) -> Dict[str, Any]:
    log(f"{args.model} vs torchvision inception_v3, batch sizes {args.batch_sizes} at {args.image_size}px")
    baseline = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False).eval()
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths(args.model, args.image_size, Path(tmp), log, args.calibration_batches)
        runners: Dict[str, Callable[[torch.Tensor], torch.Tensor]] = {BASELINE: baseline}
        for name in args.paths:
            try:
                runners[name] = paths.build(name)
            except UsageError as e:
                log(f"skipped {name}: {e}")
        macs = {BASELINE: count_macs(baseline, args.image_size)}
        ours = count_macs(paths.model, args.image_size)
        macs.update({name: ours for name in runners if name != BASELINE})
        times = time_paths(runners, args, log)
    rows = table(times, macs, args)
    print_table(rows, args, log)
    return {"rows": rows, "targets": print_targets(rows, log)}


# --------------------------------------------------------------------------- accuracy

ACCURACY_RUNS = (  # label, file, runtime, precision
    ("PyTorch float32", "checkpoint", "torch", "fp32"),
    ("PyTorch bf16", "checkpoint", "torch", "bf16"),
    ("ONNX Runtime float32", "float32.onnx", "onnxruntime", None),
    ("OpenVINO float32", "ir", "openvino", "fp32"),
    ("OpenVINO bf16", "ir", "openvino", "bf16"),
    ("ONNX Runtime INT8", "int8.onnx", "onnxruntime", None),
    ("OpenVINO INT8 (.onnx)", "int8.onnx", "openvino", None),
    ("OpenVINO INT8 (NNCF IR)", "ir-int8", "openvino", None),
)


def export_all(checkpoint: Path, data: Path, tmp: Path, calibration_images: int, log: Log) -> Dict[str, Path]:
    from inception_v2 import load_model
    from inception_v2.deploy.openvino import export_openvino, export_openvino_int8_from_prepared
    from inception_v2.deploy.quantize import export_int8_from_prepared

    model = load_model(checkpoint)
    files = {"checkpoint": checkpoint}
    for name in ("float32.onnx", "int8.onnx", "ir", "ir-int8"):
        files[name] = tmp / name
    log(export_onnx(model, files["float32.onnx"]).describe())
    gate_off = {"calibration_images": calibration_images, "max_drop": 100.0}
    log(export_int8_from_prepared(model, files["int8.onnx"], data, **gate_off).describe())
    log(export_openvino(model, files["ir"]).describe())
    log(export_openvino_int8_from_prepared(model, files["ir-int8"], data, **gate_off).describe())
    return files


def accuracy(checkpoint: Path, data: Path, args: argparse.Namespace, log: Log) -> List[Dict[str, Any]]:
    """Top-1 / top-5 on val and test of each row of ``ACCURACY_RUNS``."""
    from inception_v2.deploy.runtime import RunOptions
    from inception_v2.evaluate import evaluate_checkpoint

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = export_all(checkpoint, data, Path(tmp), args.calibration_images, log)
        for label, name, runtime, precision in ACCURACY_RUNS:
            if precision == "bf16" and bf16_support() is None:
                log(f"skipped {label}: this CPU has no bfloat16 instructions")
                continue
            for split in args.splits:
                run = RunOptions(runtime, precision)
                r = evaluate_checkpoint(
                    files[name], data, split=split, workers=0, device="cpu", progress=False, run=run
                )
                keys = ("images", "acc1", "acc5", "model", "image_size", "runtime", "precision")
                rows.append({"run": label, "split": split, **{k: r[k] for k in keys}})
    log("")
    log("| run | split | images | top-1 | top-5 |")
    log("|---|---|---:|---:|---:|")
    for r in rows:
        log(f"| {r['run']} | {r['split']} | {r['images']} | {r['acc1']:.2%} | {r['acc5']:.2%} |")
    return rows


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="inception_v2", choices=list_models())
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8], help="1 (latency) and 8 (throughput)")
    p.add_argument("--image-size", type=int, default=299)
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--iters", type=int, default=2, help="timed batches per path, batch size and round (default 2)")
    p.add_argument("--warmup", type=int, default=2, help="untimed batches per path first (compile: more)")
    p.add_argument("--settle", type=float, default=0.1, help="untimed pause before each timed batch, s (0.1)")
    p.add_argument("--paths", nargs="+", default=list(DEFAULT_PATHS), choices=ALL_PATHS)
    p.add_argument("--threads", type=int, default=None, help="threads of every runtime (default: torch's)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    p.add_argument("--calibration-batches", type=int, default=4, help="INT8 paths: random calibration batches (4)")
    p.add_argument("--stat", choices=["median", "min"], default="median", help="median batch (default) or fastest")
    p.add_argument(
        "--accuracy",
        type=Path,
        default=None,
        metavar="CHECKPOINT",
        help="instead of timing: top-1 of this checkpoint under every runtime and precision on val and test",
    )
    p.add_argument("--data", type=Path, default=None, metavar="DIR", help="with --accuracy: the prepared folder")
    p.add_argument("--calibration-images", type=int, default=256, help="with --accuracy: INT8 calibration images")
    p.add_argument("--splits", nargs="+", default=["val", "test"], help="with --accuracy: the splits (val test)")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # untrained weights must not hit the slow denormal path
    log: Log = lambda msg: print(msg, flush=True)  # noqa: E731
    machine = machine_line()
    log(f"{machine}; {torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.1f}")
    if args.accuracy is not None:
        if args.data is None:
            raise SystemExit("--accuracy needs --data (the prepared folder)")
        result: Dict[str, Any] = {"rows": accuracy(args.accuracy, args.data, args, log)}
    else:
        result = benchmark(args, log)
    log(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.json:
        result.update(args={k: str(v) for k, v in vars(args).items()}, machine=machine, isa=isa_summary())
        result.update(versions=versions(), threads=torch.get_num_threads())
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
