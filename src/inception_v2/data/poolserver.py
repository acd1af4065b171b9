"""What the fork server of ``prepare``'s process pool imports before it forks any worker.

``prepare`` runs its pool under the ``forkserver`` start method and lists this module as the
server's preload (:func:`inception_v2.data.prepare._pool_context`), for two things:

* the server imports :mod:`inception_v2.data.prepare` (and so PyTorch, NumPy, Pillow) once;
  each worker is then a fork of a loaded process and starts in milliseconds;
* on Linux the server asks the kernel to kill it when the process that started it dies
  (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), at once and without running interpreter shutdown.
  Its workers, which arm the same signal for their own parent (the server) through
  :func:`inception_v2.procs.die_with_parent`, follow it, and the resource tracker exits when
  the last of them has closed its pipe. A ``SIGKILL``-ed ``prepare`` leaves no process behind.

The signal is armed only when this module is imported by the fork server itself (its
``multiprocessing.forkserver.main`` is on the stack), never in any other process.
"""

from __future__ import annotations

import os
import sys

import inception_v2.data.prepare  # noqa: F401 - the preload itself
from inception_v2.procs import set_pdeathsig


def _in_fork_server() -> bool:
    frame = sys._getframe(1) if hasattr(sys, "_getframe") else None
    while frame is not None:
        if frame.f_code.co_name == "main" and frame.f_globals.get("__name__") == "multiprocessing.forkserver":
            return True
        frame = frame.f_back
    return False


def _die_with_parent() -> None:
    """Arm the kernel's parent-death signal (:func:`inception_v2.procs.set_pdeathsig`); exit at
    once if the parent died before it was armed. No thread here: the server must stay single-
    threaded to fork safely."""
    parent = os.getppid()
    set_pdeathsig()
    if os.getppid() != parent:
        os._exit(1)


if _in_fork_server():
    _die_with_parent()
