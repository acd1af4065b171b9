"""GPU training throughput of the seed recipe's training step, and the wall time it implies
for the 100-epoch VOC07+12 experiment, in one run on synthetic data.

    python benchmarks/bench_gpu.py [--models inception_v2 googlenet_bn] [--batch-size 128]
        [--configs fp32 bf16-cl bf16-cl-native bf16-cl-fused bf16-cl-compile ...] [--steps 30]
        [--warmup 10] [--workers N] [--loaders float uint8 device device-jpeg]
        [--pools | --pools-only] [--pool-impls ...] [--json FILE] [--profile N]

``--pools`` first measures every pool formulation (docs/training.md, "GPU") side by side:
each stride-1 pool alone, then the whole forward + backward, in interleaved rounds. Every row
also gives the achieved TFLOP/s of the step and its share of the device's dense bf16 peak, and
the run starts with the probe of the channels-last ``avg_pool2d`` backward bug.

On a machine without CUDA it prints "CUDA not available, nothing measured" and exits with
status 0. ``--device cpu`` runs the same code on the CPU (a smoke test of the script with
small ``--image-size`` / ``--batch-size``, not a measurement).

The step is the seed recipe's (docs/training.md, as ``inception-v2 train --recipe seed`` runs
it): ``forward_with_aux``, cross-entropy on the logits + 0.3 x cross-entropy on each auxiliary
head, Adam lr 1e-3, batch 128, 20 classes, ``cudnn.benchmark`` on. Configurations:

* ``fp32``: float32, NCHW (PyTorch's default settings, so cuDNN convolutions may use TF32);
* ``bf16-cl``: bfloat16 autocast + channels_last (the training default on CUDA);
* ``bf16-cl-fused``: the same with ``torch.optim.Adam(fused=True)``;
* ``bf16-cl-compile``: the same with ``torch.compile`` of the training forward.

Each is measured "data excluded" (a fixed, already normalized batch on the GPU) and "data
included" (a DataLoader with ``--workers`` processes over synthetic ``uint8`` crops of VOC-like
sizes in memory, through the project's train transforms -- resize the shorter side, random
crop, flip, normalize -- pinned and copied to the GPU; the prepared store reads raw ``uint8``
pixels too, so no decoding is skipped), the latter with two loaders: ``float`` (all transforms
in the workers) and ``uint8`` (the workers stop at the uint8 crop; ``inception_v2.data.normalize``
does the float steps on the GPU). The faster of the two goes into the implied wall time.
Evaluation throughput (the test split is evaluated every epoch) is measured with
:func:`inception_v2.deploy.inference.prepare_for_inference` (fp32: the eager eval model). The
implied wall time of the experiment is ``100 x (40,058 / train images/s with data + 12,032 /
eval images/s)``, against the source's 308 min (Inception-v2) and 195 min (GoogLeNet-BN).
Target: >= 3,000 images/s for ``inception_v2`` on one H200-class GPU, i.e. the whole experiment
in under 25 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from inception_v2 import create_model, get_data_config, list_models
from inception_v2.deploy.inference import prepare_for_inference
from inception_v2.models.pooling import DEFAULT_POOL_IMPL, POOL_IMPLS, avg_pool_backward_is_broken, set_pool_impl

# amp, channels_last, compile (None or a torch.compile mode), fused optimizer, pool formulation
CONFIGS: Dict[str, Dict[str, Any]] = {
    "fp32": {"amp": False, "channels_last": False, "compile": None, "fused": False, "pool": DEFAULT_POOL_IMPL},
    "fp32-cl": {"amp": False, "channels_last": True, "compile": None, "fused": False, "pool": DEFAULT_POOL_IMPL},
    "bf16-cl": {"amp": True, "channels_last": True, "compile": None, "fused": False, "pool": DEFAULT_POOL_IMPL},
    "bf16-cl-native": {"amp": True, "channels_last": True, "compile": None, "fused": False, "pool": "native"},
    "bf16-cl-fused": {"amp": True, "channels_last": True, "compile": None, "fused": True, "pool": DEFAULT_POOL_IMPL},
    "bf16-cl-compile": {
        "amp": True, "channels_last": True, "compile": "default", "fused": True, "pool": DEFAULT_POOL_IMPL,
    },
    "bf16-cl-compile-mant": {
        "amp": True, "channels_last": True, "compile": "max-autotune-no-cudagraphs", "fused": True,
        "pool": DEFAULT_POOL_IMPL,
    },
}  # fmt: skip
# Dense bf16 tensor-core peaks (TFLOP/s, without sparsity) from the vendors' data sheets, by a
# substring of torch.cuda.get_device_name(); the first match wins.
PEAK_BF16_TFLOPS = (
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
)
SOURCE_MINUTES = {"inception_v2": 308, "googlenet_bn": 195}  # the source's 100-epoch runs
TRAIN_CROPS, TEST_CROPS, EPOCHS = 40_058, 12_032, 100  # the VOC07+12 experiment (docs/data.md)
NUM_CLASSES = 20
AUX_WEIGHT = 0.3
LR = 1e-3


def loader_transforms(cfg, uint8: bool) -> Tuple[Callable, Callable[[torch.Tensor], torch.Tensor]]:
    """(per-image transform in the workers, per-batch step on the device).

    ``uint8=False``: the project's train transforms end to end in the workers (float batches
    travel to the device). ``uint8=True``: the workers stop at the flipped ``uint8`` crop and
    ``inception_v2.data.normalize`` does the float steps on the batch on the device. Without
    the project's data package, the same pipeline is written out with torchvision."""
    try:
        from inception_v2.data import normalize, train_transform
    except ImportError:
        from torchvision.transforms import v2

        head = [v2.Resize(cfg.resize_size, antialias=True), v2.RandomCrop(cfg.input_size), v2.RandomHorizontalFlip()]
        tail = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(cfg.mean), list(cfg.std))])
        if uint8:
            return v2.Compose(head), tail
        return v2.Compose(head + list(tail.transforms)), lambda x: x
    if uint8:
        return train_transform(cfg, normalize=False), lambda x: normalize(x, cfg)
    return train_transform(cfg), lambda x: x


def synthetic_pool(size: int = 256, seed: int = 0) -> List[np.ndarray]:
    """``size`` random ``uint8`` crops (``H x W x 3``), sides drawn from VOC-like object sizes."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in rng.integers(60, 480, size=(size, 2))]


class SyntheticCrops(Dataset):
    """``length`` crops cycling through ``pool``, as ``3 x H x W`` tensors with channels-last
    memory (like the prepared store's), through ``transform``; random labels."""

    def __init__(self, pool: List[np.ndarray], length: int, transform: Callable) -> None:
        self.pool, self.length, self.transform = pool, length, transform
        self.labels = np.random.default_rng(1).integers(0, NUM_CLASSES, size=length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> Tuple[torch.Tensor, int]:
        image = torch.from_numpy(self.pool[i % len(self.pool)]).permute(2, 0, 1)
        return self.transform(image), int(self.labels[i])


class SyntheticPacked(Dataset):
    """The ``device`` loaders' worker side: each crop of ``pool`` as stored bytes (raw
    ``H x W x 3`` pixels, or JPEG files with ``jpeg``) with its random draws, as
    :class:`inception_v2.train.device_augment.PackedSource` hands them over."""

    def __init__(self, pool: List[np.ndarray], length: int, cfg, jpeg: bool) -> None:
        self.length, self.cfg, self.jpeg = length, cfg, jpeg
        self.labels = np.random.default_rng(1).integers(0, NUM_CLASSES, size=length)
        self.sizes = [(a.shape[0], a.shape[1]) for a in pool]
        if jpeg:
            from torchvision.io import encode_jpeg

            self.payloads = [encode_jpeg(torch.from_numpy(a).permute(2, 0, 1).contiguous(), quality=90) for a in pool]
        else:
            self.payloads = [torch.from_numpy(a.reshape(-1)) for a in pool]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        from inception_v2.train.device_augment import draw_params

        k = i % len(self.payloads)
        (h, w), payload = self.sizes[k], self.payloads[k]
        p = draw_params(h, w, self.cfg)
        return payload, [0, payload.numel(), h, w, int(self.jpeg), p.top, p.left, int(p.flip)], int(self.labels[i])


class ForwardLoss(nn.Module):
    """``forward_with_aux`` and the loss (CE + 0.3 x CE per auxiliary head) as one module, so
    ``torch.compile`` takes the forward, the losses and (through AOTAutograd) their backward
    as one graph."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.ce = nn.CrossEntropyLoss()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self.model.forward_with_aux(x)
        loss = self.ce(out.logits.float(), y)
        for aux in out.aux_logits:
            loss = loss + AUX_WEIGHT * self.ce(aux.float(), y)
        return loss


def make_step(
    model: nn.Module, config: Dict[str, Any], device: torch.device
) -> Callable[[torch.Tensor, torch.Tensor], None]:
    forward_loss: Callable = ForwardLoss(model)
    if config["compile"]:
        mode = None if config["compile"] == "default" else config["compile"]
        forward_loss = torch.compile(forward_loss, mode=mode)
    # fused: one kernel for the whole Adam update instead of foreach's few per parameter group
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, fused=config["fused"] or None)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config["amp"]):
            loss = forward_loss(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def train_flops_per_image(name: str, size: int) -> float:
    """Floating-point operations of one training step per image (forward with the auxiliary
    heads and backward; convolutions and matrix products, as ``torch.utils.flop_counter``
    counts them), on the meta device: no memory, no time."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = create_model(name, num_classes=NUM_CLASSES, aux_logits=True).train()
        x = torch.randn(2, 3, size, size)
    counter = FlopCounterMode(display=False)
    with counter:
        out = model.forward_with_aux(x)
        (out.logits.sum() + sum(a.sum() for a in out.aux_logits)).backward()
    return counter.get_total_flops() / 2


def peak_tflops(device: torch.device) -> Optional[float]:
    """The device's dense bf16 peak from :data:`PEAK_BF16_TFLOPS` (None when not listed)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in name), None)


def tflops_text(ips: float, flops: float, peak: Optional[float]) -> str:
    achieved = ips * flops / 1e12
    return f"{achieved:.0f} TFLOP/s" + (f" = {achieved / peak:.1%} of the bf16 peak" if peak else "")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def to_device(x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool):
    x = x.to(device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)


def timed_steps(
    batches: Iterator, run: Callable, steps: int, warmup: int, device: torch.device, batch_size: int
) -> float:
    """Images/s of ``run`` over ``steps`` batches after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run(*next(batches))
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        run(*next(batches))
    sync(device)
    return steps * batch_size / (time.perf_counter() - start)


def profile_step(step: Callable, x: torch.Tensor, y: torch.Tensor, steps: int) -> str:
    """Where the GPU time of ``steps`` training steps goes: the kernels that take the most,
    grouped by name (``torch.profiler``), as a small table."""
    from torch.profiler import ProfilerActivity, profile

    try:
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(steps):
                step(x, y)
            torch.cuda.synchronize()
        events = prof.key_averages()
        for key in ("self_device_time_total", "self_cuda_time_total"):  # the name changed across releases
            try:
                table = events.table(sort_by=key, row_limit=15, max_name_column_width=60)
                break
            except (AttributeError, KeyError, ValueError):
                continue
        else:
            return "    (the profiler's table could not be sorted by device time)"
    except Exception as e:  # noqa: BLE001 - a profiler problem must not cost the measurements
        return f"    (profiling failed: {type(e).__name__}: {e})"
    return "    " + table.replace("\n", "\n    ")


def loaded_batches(
    kind: str, cfg, pool: List[np.ndarray], length: int, args: argparse.Namespace, device: torch.device, config
) -> Iterator:
    """Training batches on ``device`` through DataLoader workers: ``float`` (every transform in
    the workers), ``uint8`` (normalized on the device), ``device`` / ``device-jpeg`` (raw or
    JPEG bytes and the random draws from the workers, the whole transform on the device,
    :mod:`inception_v2.train.device_augment`)."""
    from inception_v2.train.device_augment import augment_batch, collate

    packed = kind.startswith("device")
    if packed:
        dataset: Dataset = SyntheticPacked(pool, length, cfg, jpeg=kind == "device-jpeg")
        on_device: Callable = lambda xb: augment_batch(xb, cfg, device, config["channels_last"])  # noqa: E731
    else:
        transform, normalize = loader_transforms(cfg, uint8=kind == "uint8")
        dataset = SyntheticCrops(pool, length, transform)
        on_device = lambda xb: normalize(xb.to(device, non_blocking=True))  # noqa: E731
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        drop_last=True,
        pin_memory=device.type == "cuda",
        collate_fn=collate if packed else None,
    )
    for xb, yb in loader:
        xb = on_device(xb)
        if config["channels_last"]:
            xb = xb.contiguous(memory_format=torch.channels_last)
        yield xb, yb.to(device, non_blocking=True)


def measure(
    name: str,
    config_name: str,
    args: argparse.Namespace,
    device: torch.device,
    pool: List[np.ndarray],
    log: Callable[[str], None],
) -> Dict[str, Any]:
    config = CONFIGS[config_name]
    cfg = get_data_config(name)
    if args.image_size:
        cfg = cfg.with_input_size(args.image_size)
    bs, size = args.batch_size, cfg.input_size
    torch.manual_seed(0)
    model = create_model(name, num_classes=NUM_CLASSES, aux_logits=True).to(device).train()
    set_pool_impl(model, config["pool"])
    if config["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    step = make_step(model, config, device)
    compile_warmup = 5 if config["compile"] else 0

    # data excluded: one normalized batch, already on the device
    x = torch.randn(bs, 3, size, size)
    y = torch.randint(0, NUM_CLASSES, (bs,))
    x, y = to_device(x, y, device, config["channels_last"])

    def fixed() -> Iterator:
        while True:
            yield x, y

    start = time.perf_counter()
    no_data = timed_steps(fixed(), step, args.steps, args.warmup + compile_warmup, device, bs)
    flops = train_flops_per_image(name, size)
    log(
        f"  {name} {config_name}: train, data excluded {no_data:,.0f} images/s, "
        f"{tflops_text(no_data, flops, peak_tflops(device))} ({time.perf_counter() - start:.0f} s with warm-up)"
    )
    if args.profile and device.type == "cuda":
        log(profile_step(step, x, y, args.profile))

    # data included: DataLoader workers + train transforms + host-to-device copy. The workers
    # start together and hand over their first batches in a burst; warming up for two batches
    # per worker and timing at least four per worker keeps that burst out of the figure.
    data_warmup = max(args.warmup, 2 * args.workers)
    data_steps = max(args.steps, 4 * args.workers)
    with_data: Dict[str, float] = {}
    for kind in args.loaders:
        batches = loaded_batches(kind, cfg, pool, bs * (data_warmup + data_steps + 1), args, device, config)
        with_data[kind] = timed_steps(batches, step, data_steps, data_warmup, device, bs)
        log(f"  {name} {config_name}: train, data included ({kind} loader) {with_data[kind]:,.0f} images/s")

    # evaluation, as evaluate runs it (the deployment copy for the fast configurations)
    model.eval()
    runner: nn.Module = (
        prepare_for_inference(model, device, compile=config["compile"] is not None) if config["amp"] else model
    )
    xe = torch.randn(bs, 3, size, size, device=device)

    def infer(xb: torch.Tensor) -> None:
        with torch.inference_mode():
            runner(xb)

    def eval_batches() -> Iterator:
        while True:
            yield (xe,)

    eval_ips = timed_steps(eval_batches(), infer, args.steps, args.warmup + compile_warmup, device, bs)
    log(f"  {name} {config_name}: eval {eval_ips:,.0f} images/s")
    best_loader = max(with_data, key=with_data.get)
    minutes = EPOCHS * (TRAIN_CROPS / with_data[best_loader] + TEST_CROPS / eval_ips) / 60
    minutes_no_data = EPOCHS * (TRAIN_CROPS / no_data + TEST_CROPS / eval_ips) / 60
    del model, step, infer  # (runner goes with infer)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        "model": name,
        "config": config_name,
        "image_size": size,
        "batch_size": bs,
        "pool_impl": config["pool"],
        "train_ips_no_data": no_data,
        "train_gflops_per_image": flops / 1e9,
        "peak_tflops": peak_tflops(device),
        "train_ips_with_data": with_data,
        "best_loader": best_loader,
        "eval_ips": eval_ips,
        "experiment_minutes": minutes,
        "experiment_minutes_no_data": minutes_no_data,
        "source_minutes": SOURCE_MINUTES.get(name),
    }


def bench_pools(name: str, config_name: str, args: argparse.Namespace, device: torch.device, log) -> Dict[str, Any]:
    """Forward + backward of ``name`` (the training step without the optimizer, data excluded)
    with every pool formulation of ``args.pool_impls``, the same weights and batch, measured in
    interleaved rounds (A B C A B C ...: drifts of the machine hit them all alike); the median
    images/s of each and its ratio to ``native``."""
    config = CONFIGS[config_name]
    cfg = get_data_config(name)
    size = args.image_size or cfg.input_size
    torch.manual_seed(0)
    model = create_model(name, num_classes=NUM_CLASSES, aux_logits=True).to(device).train()
    if config["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    forward_loss = ForwardLoss(model)
    x = torch.randn(args.batch_size, 3, size, size)
    y = torch.randint(0, NUM_CLASSES, (args.batch_size,))
    x, y = to_device(x, y, device, config["channels_last"])

    def step(xb: torch.Tensor, yb: torch.Tensor) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config["amp"]):
            loss = forward_loss(xb, yb)
        model.zero_grad(set_to_none=True)
        loss.backward()

    def fixed() -> Iterator:
        while True:
            yield x, y

    rounds: Dict[str, List[float]] = {impl: [] for impl in args.pool_impls}
    for r in range(args.pool_rounds):
        for impl in args.pool_impls:
            set_pool_impl(model, impl)
            warmup = args.warmup if r == 0 else 1
            rounds[impl].append(timed_steps(fixed(), step, args.pool_steps, warmup, device, args.batch_size))
    median = {impl: float(np.median(v)) for impl, v in rounds.items()}
    base = median.get("native")
    for impl, ips in median.items():
        ratio = f", {ips / base:.2f}x native" if base else ""
        spread = f"{min(rounds[impl]):,.1f}-{max(rounds[impl]):,.1f}"
        log(f"  {name} {config_name} @{size} pool_impl={impl}: {ips:,.1f} images/s (rounds {spread}){ratio}")
    return {"model": name, "config": config_name, "image_size": size, "images_per_s": median, "rounds": rounds}


# The stride-1 pools of inception_v2 at 299 (kind, channels, grid): the 35x35, 17x17 and 8x8
# average-pool branches and the max-pool branch of module 2b.
POOL_OPS = (("avg", 288, 35), ("avg", 768, 17), ("avg", 1280, 8), ("max", 1280, 8))


def bench_pool_ops(config_name: str, args: argparse.Namespace, device: torch.device, log) -> Dict[str, float]:
    """Forward + backward of each pool of :data:`POOL_OPS` alone, at ``args.batch_size``, in the
    configuration's type and layout: PyTorch's kernel (``native``), on a channels-first copy
    (``contiguous``) and, for averages, as a depthwise convolution of ones (``depthwise``).
    Microseconds per call, the median of 3 rounds of ``args.pool_steps`` calls."""
    from torch.nn import AvgPool2d, MaxPool2d

    from inception_v2.models.pooling import PoolBranch

    config = CONFIGS[config_name]
    dtype = torch.bfloat16 if config["amp"] else torch.float32
    fmt = torch.channels_last if config["channels_last"] else torch.contiguous_format
    results: Dict[str, float] = {}
    for kind, channels, grid in POOL_OPS:
        x = torch.randn(args.batch_size, channels, grid, grid, device=device, dtype=dtype).contiguous(memory_format=fmt)
        x.requires_grad_(True)
        g = torch.randn_like(x)
        impls = ["native", "contiguous"] + (["depthwise"] if kind == "avg" else [])
        for impl in impls:
            branch = PoolBranch(AvgPool2d(3, 1, 1, count_include_pad=False) if kind == "avg" else MaxPool2d(3, 1, 1))
            branch.impl = impl
            times = []
            for _ in range(3):
                sync(device)
                start = time.perf_counter()
                for _ in range(args.pool_steps):
                    branch(x).backward(g)
                sync(device)
                times.append((time.perf_counter() - start) / args.pool_steps * 1e6)
            key = f"{kind} {channels}x{grid}x{grid} {impl}"
            results[key] = float(np.median(times))
            log(f"  pool op {config_name} {key}: {results[key]:,.0f} us forward + backward")
    return results


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["inception_v2", "googlenet_bn"], choices=list_models())
    p.add_argument(
        "--configs",
        nargs="+",
        default=["fp32", "bf16-cl", "bf16-cl-native", "bf16-cl-fused", "bf16-cl-compile"],
        choices=list(CONFIGS),
        help="(bf16-cl-compile-mant, max-autotune without CUDA graphs, compiles for minutes: ask for it)",
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--image-size", type=int, default=None, help="crop side (default: each model's own)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per measurement (default 30)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (compile: 5 more)")
    p.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1), help="DataLoader processes")
    p.add_argument(
        "--loaders",
        nargs="+",
        default=["float", "uint8"],
        choices=["float", "uint8", "device", "device-jpeg"],
        help="data-included variants: float batches from the workers, uint8 batches normalized on the "
        "device, or the whole transform on the device from raw or JPEG bytes (default: float uint8)",
    )
    p.add_argument(
        "--pools",
        action="store_true",
        help="first measure every pool formulation (--pool-impls) side by side, forward + backward, "
        "in each configuration of --configs that does not compile",
    )
    p.add_argument("--pools-only", action="store_true", help="--pools and nothing else")
    p.add_argument("--pool-impls", nargs="+", default=list(POOL_IMPLS), choices=list(POOL_IMPLS))
    p.add_argument("--pool-rounds", type=int, default=3, help="interleaved rounds of the pool comparison")
    p.add_argument("--pool-steps", type=int, default=10, help="timed steps per formulation and round")
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for a smoke test")
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also write the figures to this JSON file (rewritten after every measurement)",
    )
    p.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="after each data-excluded measurement, profile N steps and print the top kernels",
    )
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA not available, nothing measured")
        return 0
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        where = f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
    else:
        where = f"CPU {platform.machine()} (smoke test, not a measurement)"
    log(
        f"torch {torch.__version__}, {where}, {os.cpu_count()} CPU cores, {args.workers} loader workers, "
        f"batch {args.batch_size}, {args.steps} timed steps"
    )
    broken = avg_pool_backward_is_broken(device)
    log(f"channels-last avg_pool2d backward on {device.type}: {'BROKEN (wrong gradients)' if broken else 'correct'}")
    pool = synthetic_pool()
    rows: List[Dict[str, Any]] = []
    pool_rows: List[Dict[str, Any]] = []

    def save() -> None:  # after every row: a run cut short keeps what it measured
        if args.json:
            report = {"device": where, "torch": torch.__version__, "avg_pool_backward_broken": broken}
            report.update(pool_ops=pool_ops, pools=pool_rows, rows=rows)
            args.json.write_text(json.dumps(report, indent=2))

    pool_ops: Dict[str, Dict[str, float]] = {}
    if args.pools or args.pools_only:
        for config_name in [c for c in args.configs if not CONFIGS[c]["compile"]]:
            pool_ops[config_name] = bench_pool_ops(config_name, args, device, log)
            for name in args.models:
                pool_rows.append(bench_pools(name, config_name, args, device, log))
                save()
    if args.pools_only:
        return 0

    for name in args.models:
        for config_name in args.configs:
            rows.append(measure(name, config_name, args, device, pool, log))
            save()
    log("")
    loaders = " | ".join(f"train img/s, data included ({k} loader)" for k in args.loaders)
    log(
        f"| model | size | config | train img/s, data excluded | {loaders} | eval img/s "
        "| 100 epochs (min), with data / without | source (min) | speed-up |"
    )
    log("|---|---:|---|---:|" + "---:|" * len(args.loaders) + "---:|---:|---:|---:|")
    for r in rows:
        src = r["source_minutes"]
        speedup = f"{src / r['experiment_minutes']:.1f}x" if src else "-"
        loaded = " | ".join(f"{r['train_ips_with_data'][k]:,.0f}" for k in args.loaders)
        log(
            f"| {r['model']} | {r['image_size']} | {r['config']} | {r['train_ips_no_data']:,.0f} | {loaded} | "
            f"{r['eval_ips']:,.0f} | {r['experiment_minutes']:.1f} / {r['experiment_minutes_no_data']:.1f} | "
            f"{src or '-'} | {speedup} |"
        )
    v2 = [r for r in rows if r["model"] == "inception_v2"]
    if v2:
        best = max(v2, key=lambda r: r["train_ips_with_data"][r["best_loader"]])
        log(
            f"\ninception_v2 best: {best['train_ips_with_data'][best['best_loader']]:,.0f} images/s with data "
            f"({best['config']}, {best['best_loader']} loader), {best['experiment_minutes']:.1f} min for the "
            "experiment (target >= 3,000 images/s, < 25 min)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
