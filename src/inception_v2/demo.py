"""``inception-v2 demo``: the whole experiment on the built-in sample, on CPU, in minutes.

make-sample -> prepare -> train ``inception_v2`` and ``googlenet_bn`` with a small CPU preset
(reduced input size, few epochs; otherwise the ``blog`` recipe) -> compare. Rerunning it on the
same folder reuses what is finished (the sample, the prepared crops, finished runs) and
resumes an interrupted run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import torch

from inception_v2.data import make_sample, prepare
from inception_v2.errors import UsageError
from inception_v2.report.compare import compare
from inception_v2.train.config import resolve_config
from inception_v2.train.engine import fit

# One compute thread: on a CPU shared with other processes, OpenMP's busy-waiting makes two
# threads up to 10x slower than one (measured); on an idle machine two are ~1.5x faster.
DEMO_THREADS = 1
DEMO_VAL_FRACTION = 0.1  # ~100 val crops of the sample's ~1,000 trainval ones
# The CPU preset, chosen by measurement (docs/training.md): the blog recipe (Adam 1e-3, aux 0.3)
# at small inputs and few epochs. Inception-v2's smallest input is 75.
DEMO_RUNS: Dict[str, Dict[str, Any]] = {
    "inception_v2": {"image_size": 75, "epochs": 6, "batch_size": 32},
    "googlenet_bn": {"image_size": 64, "epochs": 6, "batch_size": 32},
}


def demo(
    out: Path = Path("demo-run"),
    workers: int = 0,
    device: str = "cpu",
    threads: Optional[int] = DEMO_THREADS,
    progress: bool = True,
    log: Callable[[str], None] = print,
    epochs: Optional[int] = None,
) -> Dict[str, Any]:
    """Run the demo in ``out``; returns :func:`inception_v2.report.compare`'s result plus
    ``summaries`` (model -> summary.json) and ``seconds``. ``threads`` sets
    :func:`torch.set_num_threads` for the run (None: PyTorch's default); ``epochs`` overrides
    the preset's (for quick checks)."""
    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be >= 1, got {threads}")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _demo(Path(out), workers, device, progress, log, epochs)
    finally:
        torch.set_num_threads(before)  # the caller's process keeps its own setting


def _demo(
    out: Path, workers: int, device: str, progress: bool, log: Callable[[str], None], epochs: Optional[int]
) -> Dict[str, Any]:
    start = time.perf_counter()
    log(f"[1/4] make-sample -> {out / 'sample'}")
    make_sample(out / "sample")
    log(f"[2/4] prepare -> {out / 'prepared'}")
    prepare(out / "prepared", voc_root=out / "sample", val_fraction=DEMO_VAL_FRACTION, progress=progress, log=log)
    summaries = {}
    for i, (model, preset) in enumerate(DEMO_RUNS.items(), start=1):
        log(f"[3/4] train {model} ({i}/{len(DEMO_RUNS)}) -> {out / 'runs' / model}")
        options = dict(preset, workers=workers, device=device)
        if epochs is not None:
            options["epochs"] = epochs
        cfg = resolve_config("blog", model=model, data=str(out / "prepared"), out=str(out / "runs" / model), **options)
        summaries[model] = fit(cfg, resume=True, progress=progress)
    log(f"[4/4] compare -> {out / 'compare'}")
    result = compare([out / "runs" / m for m in DEMO_RUNS], out / "compare")
    result["summaries"] = summaries
    result["seconds"] = time.perf_counter() - start
    return result
