"""The PyTorch build and whether its channels-last ``avg_pool2d`` backward is correct on each
device here (:func:`inception_v2.models.pooling.avg_pool_backward_is_broken`): the first step
of ``benchmarks/gpu_check.sh``.

    python benchmarks/pool_probe.py [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import List, Optional

import torch
import torchvision

from inception_v2.models.pooling import avg_pool_backward_is_broken


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path, default=None, help="also write the findings to this JSON file")
    args = p.parse_args(argv)
    report = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "devices": {"cpu": "CPU"},
        "avg_pool_backward_broken": {"cpu": avg_pool_backward_is_broken("cpu")},
    }
    if torch.cuda.is_available():
        report["devices"]["cuda"] = torch.cuda.get_device_name(0)
        report["avg_pool_backward_broken"]["cuda"] = avg_pool_backward_is_broken("cuda")
    for key in ("python", "torch", "torchvision", "cuda", "cudnn"):
        print(f"{key}: {report[key]}")
    for device, broken in report["avg_pool_backward_broken"].items():
        verdict = "BROKEN: wrong input gradients" if broken else "correct"
        print(f"avg_pool2d 3x3/1 pad 1 backward, channels_last, {device} ({report['devices'][device]}): {verdict}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
