"""Which runtime runs a deployed file: ``--runtime auto|torch|onnxruntime|openvino`` and
``--precision fp32|bf16|int8`` (:func:`select`).

Which runtime can run which file:

==========================  =========================  ===============================
file                        runtimes                   ``auto`` chooses among
==========================  =========================  ===============================
checkpoint, release folder  torch, openvino            torch (openvino converts the
                                                       model on every load: export it)
``.onnx`` (float or INT8)   onnxruntime, openvino      both, timed on this host
OpenVINO IR                 openvino                   openvino
``.pt2``, TorchScript       torch                      torch
==========================  =========================  ===============================

``auto`` with more than one installed candidate times them the first time a file runs on a
host: each runs a few batches of ``TIMING_BATCH`` random images in interleaved rounds for about
``TIMING_SECONDS`` in all (each batch after an untimed ``SETTLE_SECONDS`` pause), and the
fastest (by its fastest batch) is remembered in a small JSON cache,
``$XDG_CACHE_HOME/inception-v2/runtime-choice.json`` (``~/.cache/...`` when ``XDG_CACHE_HOME``
is unset), keyed by the file's content hash (SHA-256), the CPU model and flags, the installed
runtimes' versions, the precision and PyTorch's thread count. Later runs
read the choice back without timing. The cache is written atomically; an unreadable or corrupt
cache is ignored (and rewritten). On a CUDA device ``auto`` takes the file's own runtime
(torch, or ONNX Runtime's CUDA provider) without timing; OpenVINO runs on the CPU.

Precision: ``fp32``; ``bf16`` (PyTorch: bfloat16 autocast with channels_last; OpenVINO:
``INFERENCE_PRECISION_HINT=bf16``; not ONNX Runtime), refused on a CPU without AMX or AVX-512
BF16 (:mod:`inception_v2.deploy.cpu`); ``int8`` for INT8 files only (asking it of a float file
names the export command). Unset, a file runs at its own precision (int8 for INT8 files;
float32, or bf16 autocast for checkpoints on CUDA as before).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from inception_v2.atomic import write_json
from inception_v2.deploy.cpu import cpu_flags, cpu_model, require_bf16
from inception_v2.errors import UsageError

_log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16", "int8")
FORMAT_RUNTIMES = {
    "checkpoint": ("torch", "openvino"),
    "release folder": ("torch", "openvino"),
    "onnx": ("onnxruntime", "openvino"),
    "openvino": ("openvino",),
    "pt2": ("torch",),
    "torchscript": ("torch",),
}
AUTO_RUNTIMES = dict(FORMAT_RUNTIMES, **{"checkpoint": ("torch",), "release folder": ("torch",)})
RUNTIME_MODULES = {"torch": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino"}
TIMING_BATCH = 8  # images per timed batch: the throughput a batch job sees
TIMING_SECONDS = 1.0  # about this long in all, the first time a file runs on a host
TIMING_ROUNDS = (2, 20)  # at least / at most this many interleaved rounds
# Pause before each timed batch. ONNX Runtime's idle threads spin for tens of milliseconds after
# a run returns; without a pause the runtime timed next shares the cores with them and loses a
# quarter of its speed (measured: OpenVINO INT8 at batch 8 took 134 ms right after an ONNX
# Runtime run, 98 ms after a 0.1 s pause). A user runs one runtime, so each is timed rested.
SETTLE_SECONDS = 0.1
CACHE_NAME = "runtime-choice.json"
CACHE_ENTRIES = 256  # the oldest entries go beyond this


@dataclass(frozen=True)
class RunOptions:
    """How to run a deployed file: ``runtime`` (``auto``, ``torch``, ``onnxruntime``,
    ``openvino``) and ``precision`` (None: the file's own; ``fp32``, ``bf16``, ``int8``)."""

    runtime: str = "auto"
    precision: Optional[str] = None


DEFAULT_RUN = RunOptions()
Build = Callable[[str, Optional[str]], Any]  # (runtime, precision) -> runner


def installed(runtime: str) -> bool:
    try:
        return importlib.util.find_spec(RUNTIME_MODULES[runtime]) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules: blocked
        return False


def versions() -> Dict[str, Optional[str]]:
    """The installed runtimes' versions (None: not installed)."""
    found: Dict[str, Optional[str]] = {}
    for name, module in RUNTIME_MODULES.items():
        if not installed(name):
            found[name] = None
            continue
        try:
            found[name] = str(__import__(module).__version__)
        except Exception:  # noqa: BLE001 - a broken install counts as absent
            found[name] = None
    return found


def cache_path() -> Path:
    """``$XDG_CACHE_HOME/inception-v2/runtime-choice.json`` (default ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "inception-v2" / CACHE_NAME


def content_hash(path: Path) -> str:
    """SHA-256 of a file, or of every file in a folder (names and contents, sorted)."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(f.relative_to(path).as_posix().encode() if path.is_dir() else b"")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def cache_key(path: Path, precision: Optional[str]) -> str:
    parts = [content_hash(path), cpu_model(), sorted(cpu_flags()), versions(), precision, torch.get_num_threads()]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def read_cache() -> Dict[str, Any]:
    """The cache's entries; {} when it is missing, unreadable or not what we write."""
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    entries = data.get("entries") if isinstance(data, dict) else None
    return {k: v for k, v in entries.items() if isinstance(v, dict)} if isinstance(entries, dict) else {}


def remember(key: str, entry: Dict[str, Any]) -> None:
    """Add ``entry`` to the cache (atomically); a cache that cannot be written is only logged."""
    entries = read_cache()
    entries.pop(key, None)
    entries[key] = entry
    entries = dict(list(entries.items())[-CACHE_ENTRIES:])
    try:
        write_json(cache_path(), {"version": 1, "entries": entries})
    except OSError as e:
        _log.warning("cannot write the runtime cache %s (%s)", cache_path(), e)


def time_runners(runners: Dict[str, Any], image_size: int, seconds: float = TIMING_SECONDS) -> Dict[str, float]:
    """Images/s of each runner on random ``TIMING_BATCH`` batches: interleaved rounds (so that
    background load hits all alike) for about ``seconds``, each runner's fastest batch, each batch
    after a ``SETTLE_SECONDS`` pause (not timed) that lets the other runtimes' threads go idle."""
    x = torch.rand(TIMING_BATCH, 3, image_size, image_size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    best = {name: float("inf") for name in runners}
    with torch.inference_mode():
        for run in runners.values():
            run(x)  # warm-up: first-call allocations, lazy compilation
        start, rounds = time.perf_counter(), 0
        while rounds < TIMING_ROUNDS[0] or (time.perf_counter() - start < seconds and rounds < TIMING_ROUNDS[1]):
            for name, run in runners.items():
                time.sleep(SETTLE_SECONDS)
                t = time.perf_counter()
                run(x)
                best[name] = min(best[name], time.perf_counter() - t)
            rounds += 1
    return {name: TIMING_BATCH / t for name, t in best.items()}


def check_request(fmt: str, path: Path, runtime: str, precision: Optional[str]) -> None:
    if runtime not in RUNTIMES:
        raise UsageError(f"--runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if precision is not None and precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    allowed = FORMAT_RUNTIMES[fmt]
    if runtime != "auto" and runtime not in allowed:
        raise UsageError(f"--runtime {runtime} cannot run {path} (a {fmt} file); use --runtime {' or '.join(allowed)}")


def torch_amp(path: Path, device: torch.device, precision: Optional[str], fmt: str) -> Optional[bool]:
    """``prepare_for_inference``'s ``amp`` for ``precision`` (None: its default)."""
    if precision == "int8":
        raise UsageError(
            f"--precision int8 needs an INT8 file and {path} is a float32 {fmt}; write one with: inception-v2 "
            "export --checkpoint F --quantize int8 --calibration-data DIR --out model-int8.onnx "
            "(or --format openvino --out DIR)"
        )
    if precision == "bf16" and fmt not in ("checkpoint", "release folder"):
        raise UsageError(f"--precision bf16 under PyTorch applies to checkpoints and release folders, not {path}")
    if precision == "bf16" and device.type == "cpu":
        require_bf16(f"--precision bf16 ({path})")
    return None if precision is None else precision == "bf16"


def _candidates(fmt: str, precision: Optional[str], cuda: bool) -> List[str]:
    names = [r for r in AUTO_RUNTIMES[fmt] if installed(r)]
    if precision == "bf16":
        names = [r for r in names if r != "onnxruntime"]
    if cuda:
        names = [r for r in names if r != "openvino"][:1] or names
    return names or list(AUTO_RUNTIMES[fmt][:1])  # none installed: its error names the extra


def _build_all(names: List[str], precision: Optional[str], build: Build) -> Tuple[Dict[str, Any], List[Exception]]:
    runners, errors = {}, []
    for name in names:
        try:
            runners[name] = build(name, precision)
        except UsageError as e:
            _log.debug("auto: %s cannot run the file: %s", name, e)  # the first error is raised if none can
            errors.append(e)
    return runners, errors


def select(path: Path, fmt: str, runtime: str, precision: Optional[str], cuda: bool, build: Build) -> Any:
    """The runner of ``path`` (a ``fmt`` file) for ``runtime`` and ``precision``; ``auto`` as the
    module docstring says. ``build(runtime, precision)`` makes one; the result gets
    ``runtime_choice``, a line saying why that runtime runs."""
    check_request(fmt, path, runtime, precision)
    if runtime != "auto":
        runner = build(runtime, precision)
        runner.runtime_choice = f"--runtime {runtime}"
        return runner
    names = _candidates(fmt, precision, cuda)
    if len(names) == 1:
        runner = build(names[0], precision)
        runner.runtime_choice = f"auto: {names[0]}, the one runtime for this file here"
        return runner
    key = cache_key(path, precision)
    cached = read_cache().get(key, {})
    if cached.get("runtime") in names:
        try:
            runner = build(cached["runtime"], precision)
            runner.runtime_choice = f"auto: {cached['runtime']}, the fastest here when timed ({cache_path()})"
            return runner
        except UsageError:
            pass  # time again below
    runners, errors = _build_all(names, precision, build)
    if not runners:
        raise errors[0]
    if len(runners) == 1:
        (name, runner), rates = next(iter(runners.items())), {}
    else:
        rates = time_runners(runners, int(next(iter(runners.values())).data_config.input_size))
        name = max(rates, key=rates.get)
        runner = runners[name]
        remember(key, {"runtime": name, "images_per_s": rates, "file": str(path), "measured": time.time()})
    timed = ", ".join(f"{n} {r:.1f}" for n, r in rates.items())
    runner.runtime_choice = f"auto: {name}" + (f", the fastest here (images/s: {timed})" if rates else "")
    return runner
