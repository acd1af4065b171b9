"""Worker processes that die with the process that started them.

A ``prepare`` pool worker or a DataLoader worker whose parent was killed (``SIGKILL``, the
out-of-memory killer) must not live on, still reading and writing. Each worker calls
:func:`die_with_parent` first thing:

* on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker when its parent
  exits;
* everywhere, a daemon thread checks every ``interval`` seconds that the process it was
  started for (``owner_pid``: the main process, which under the ``forkserver`` start method
  is not the worker's direct parent) is still alive, and ends the worker at once when not.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from typing import Optional

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
CHECK_INTERVAL_S = 0.5


def set_pdeathsig() -> None:
    """Linux: ask the kernel to SIGKILL this process when its parent exits (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no prctl: the watcher still works
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def die_with_parent(owner_pid: Optional[int] = None, interval: float = CHECK_INTERVAL_S) -> None:
    """Make this (worker) process exit when ``owner_pid`` (default: the parent) is gone."""
    parent = os.getppid()
    owner = parent if owner_pid is None else owner_pid
    set_pdeathsig()
    if not _alive(owner) or os.getppid() != parent:  # died before the signal was armed
        os._exit(1)
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(interval):
            if not _alive(owner) or os.getppid() != parent:  # owner gone, or parent (reparented)
                os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


class WorkerInit:
    """A picklable DataLoader ``worker_init_fn``: :func:`die_with_parent` of the main process,
    then an optional further init function."""

    def __init__(self, then=None) -> None:
        self.owner_pid = os.getpid()
        self.then = then

    def __call__(self, worker_id: int) -> None:
        die_with_parent(self.owner_pid)
        if self.then is not None:
            self.then(worker_id)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask on Linux, else every CPU)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
