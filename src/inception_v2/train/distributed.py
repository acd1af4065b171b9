"""Data parallelism through ``torchrun``: process-group setup from its environment variables,
rank helpers, and the exact reduction of metric sums.

``torchrun --nproc_per_node=N -m inception_v2 train ...`` sets ``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; without them (a plain ``inception-v2 train``)
the run is a single process and every helper here is a no-op. NCCL is used on CUDA, gloo on CPU.

Elastic runs: under ``torchrun --max-restarts=N`` a failed worker makes torchrun restart every
worker with ``TORCHELASTIC_RESTART_COUNT`` raised by one; :func:`restart_count` reads it and
``fit`` then resumes from ``RUN_DIR/last.pt`` by itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Sized, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from inception_v2 import errors
from inception_v2.deploy.inference import resolve_device as deploy_resolve_device
from inception_v2.errors import UsageError

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1  # training processes on this node

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """The process's place in a ``torchrun`` job (rank 0 of 1 outside one)."""
    try:
        return DistInfo(
            rank=int(os.environ.get("RANK", 0)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
            local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", 1)),
        )
    except ValueError as e:
        raise UsageError(f"bad RANK/LOCAL_RANK/WORLD_SIZE/LOCAL_WORLD_SIZE environment variable: {e}") from None


RESTART_ENV = "TORCHELASTIC_RESTART_COUNT"  # set by torchrun: 0 on the first attempt


def restart_count() -> int:
    """How many times torchrun has restarted this job's workers (0 outside torchrun)."""
    value = os.environ.get(RESTART_ENV, "0") or "0"
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"bad {RESTART_ENV} environment variable: {value!r}") from None


SHARED_STORE_NOTE = (
    "note: this torchrun shares its rendezvous store with the restarted workers, where keys of the "
    "failed attempt can linger and break the new process group (a known PyTorch race); if it fails "
    "to connect, launch torchrun with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 (docs/training.md, Elastic runs)"
)


def shares_agent_store() -> bool:
    """Whether torchrun hands its own (rendezvous) TCP store to the workers, which it keeps
    across restarts (``TORCHELASTIC_USE_AGENT_STORE``)."""
    return os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "") == "True"


def resolve_device(name: str, info: DistInfo) -> torch.device:
    """:func:`inception_v2.deploy.inference.resolve_device`, and under torchrun a plain ``cuda``
    means GPU ``LOCAL_RANK``; a CUDA device becomes the current one."""
    device = deploy_resolve_device(name)
    if device.type != "cuda":
        return device
    if device.index is None:
        device = torch.device("cuda", info.local_rank if info.is_distributed else torch.cuda.current_device())
    torch.cuda.set_device(device)
    return device


def init_distributed(device: torch.device, info: DistInfo) -> None:
    """Join the ``torchrun`` process group (NCCL on CUDA, gloo on CPU); no-op for one process."""
    if not info.is_distributed or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs = {"device_id": device} if device.type == "cuda" else {}
    dist.init_process_group(backend=backend, **kwargs)


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def run_on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and hand its result to every process; a project error
    (:class:`~inception_v2.errors.InceptionV2Error`: bad input, a locked folder...) raised there
    is raised, with its type, on every process (so none waits forever in a collective)."""
    if not is_initialized():
        return fn()
    payload: List[Any] = [None]
    if dist.get_rank() == 0:
        try:
            payload[0] = ("ok", fn())
        except errors.InceptionV2Error as e:
            payload[0] = ("error", type(e).__name__, str(e))
        except BaseException as e:  # noqa: BLE001 - reported on every process, re-raised here
            payload[0] = ("crash", f"{type(e).__name__}: {e}")
            dist.broadcast_object_list(payload, src=0)
            raise
    dist.broadcast_object_list(payload, src=0)
    kind, *value = payload[0]
    if kind == "error":
        cls = getattr(errors, value[0], None)
        if not (isinstance(cls, type) and issubclass(cls, errors.InceptionV2Error)):
            cls = UsageError
        raise cls(value[1])
    if kind == "crash":
        raise RuntimeError(f"rank 0 failed: {value[0]}")
    return value[0]


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over every process in place (identity for one process); returns ``t``."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def any_true(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is true on any process (so that every process takes the same branch)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm statistics) to every process, so that all
    processes evaluate the very model rank 0 saves."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    for b in module.buffers():
        dist.broadcast(b, src=src)


class ShardSampler(torch.utils.data.Sampler):
    """Indices ``rank, rank + world, rank + 2 * world, ...``: every sample is evaluated by exactly
    one process (no padding, unlike :class:`~torch.utils.data.DistributedSampler`), so the
    reduced sums are the exact metrics of the whole split."""

    def __init__(self, dataset: Sized, info: DistInfo) -> None:
        self.n = len(dataset)
        self.info = info

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.info.rank, self.n, self.info.world_size))

    def __len__(self) -> int:
        return len(range(self.info.rank, self.n, self.info.world_size))
