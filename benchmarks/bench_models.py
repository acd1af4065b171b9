"""Forward (eval) and training-step throughput of every registered model next to torchvision's
reference Inception-v3 / GoogLeNet, measured in the same process, interleaved round by round.

    python benchmarks/bench_models.py [--device cpu|cuda] [--batch-size 8] [--rounds 5]

Prints images/s for each pair and two ratios: plain (ours / torchvision images/s) and per
multiply-add (ours images/s x our MACs) / (torchvision images/s x its MACs), i.e. how fast each
network gets through its own arithmetic. Target: per-multiply-add ratio >= 1.0 in both modes.
Also prints how long building each model takes (target: well under a second).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Callable, Dict

import torch
import torchvision
from torch import nn

from inception_v2 import create_model, get_data_config, list_models
from inception_v2.summary import count_macs

BASELINES = {
    "inception_v2": "inception_v3",
    "inception_v3": "inception_v3",
    "inception_v3_tv": "inception_v3",
    "googlenet_bn": "googlenet",
}


def torchvision_model(name: str, num_classes: int) -> nn.Module:
    builder = getattr(torchvision.models, name)
    return builder(weights=None, aux_logits=True, init_weights=False, num_classes=num_classes)


def logits_and_aux(model: nn.Module, x: torch.Tensor):
    """(main, [aux...]) for our models and torchvision's alike, in training mode."""
    if hasattr(model, "forward_with_aux"):
        out = model.forward_with_aux(x)
        return out.logits, list(out.aux_logits)
    out = model(x)
    if isinstance(out, torch.Tensor):
        return out, []
    aux = [a for a in out[1:] if a is not None]
    return out[0], aux


def make_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Dict[str, Callable[[], None]]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def infer() -> None:
        model.eval()
        with torch.inference_mode():
            model(x)

    def train() -> None:
        model.train()
        logits, aux = logits_and_aux(model, x)
        loss = loss_fn(logits, y) + 0.3 * sum(loss_fn(a, y) for a in aux)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return {"eval": infer, "train": train}


def timed(fn: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=5, help="timed rounds per model and mode (median)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--models", nargs="*", default=list_models())
    args = p.parse_args()
    device = torch.device(args.device)
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, device {device}"
        f" ({torch.cuda.get_device_name() if device.type == 'cuda' else platform.processor() or platform.machine()},"
        f" {torch.get_num_threads()} threads), batch {args.batch_size}"
    )
    print(f"{'model':<14}{'mode':<7}{'ours img/s':>11}{'baseline':>14}{'base img/s':>11}{'ratio':>8}{'per-MAC':>9}")
    for name in args.models:
        size = get_data_config(name).input_size
        x = torch.randn(args.batch_size, 3, size, size, device=device)
        y = torch.randint(0, 20, (args.batch_size,), device=device)
        create_model(name, num_classes=20, aux_logits=True)  # warm-up: imports, allocator
        start = time.perf_counter()
        ours = create_model(name, num_classes=20, aux_logits=True).to(device)  # as torchvision's, with aux heads
        build_s = time.perf_counter() - start
        base_name = BASELINES[name]
        base = torchvision_model(base_name, 20).to(device)
        macs = {"ours": count_macs(ours, size), "base": count_macs(base, size)}
        steps = {"ours": make_steps(ours, x, y), "base": make_steps(base, x, y)}
        for mode in ("eval", "train"):
            for who in ("ours", "base"):
                for _ in range(args.warmup):
                    steps[who][mode]()
            times: Dict[str, list] = {"ours": [], "base": []}
            for _ in range(args.rounds):  # interleaved, so background load hits both alike
                for who in ("ours", "base"):
                    times[who].append(timed(steps[who][mode], device))
            ips = {who: args.batch_size / statistics.median(t) for who, t in times.items()}
            ratio = ips["ours"] / ips["base"]
            per_mac = ratio * macs["ours"] / macs["base"]
            print(
                f"{name:<14}{mode:<7}{ips['ours']:>11.1f}{base_name:>14}{ips['base']:>11.1f}"
                f"{ratio:>8.2f}{per_mac:>9.2f}"
            )
        print(
            f"{'':<14}MACs: ours {macs['ours'] / 1e9:.2f} G, {base_name} {macs['base'] / 1e9:.2f} G;"
            f" building {name} took {build_s:.2f} s"
        )


if __name__ == "__main__":
    main()
