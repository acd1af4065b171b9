"""One writer per output folder: an advisory lock on ``DIR/.lock``.

``train --out RUN_DIR`` and ``prepare --out DIR`` hold the lock of their folder for as long as
they write to it. A second process that tries to write there fails at once with
:class:`~inception_v2.errors.LockedError`, naming the holder (its pid, host, command and
start time, which the holder writes into the lock file).

The lock is ``fcntl.flock`` on an open file: the operating system releases it when the holder
exits, however it exits (``SIGKILL`` included), so a crashed run never leaves a stale lock.
The file itself stays (removing it would let two processes lock two different files).
On platforms without ``fcntl`` (Windows) folders are not locked.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

from inception_v2.errors import LockedError, UsageError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


def _holder() -> str:
    return json.dumps(
        {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]) if sys.argv and sys.argv[0] else "python",
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )


def _describe(text: str) -> str:
    try:
        h = json.loads(text)
        return f"process {h['pid']} on {h['host']} ({h['command']}, since {h['since']})"
    except (ValueError, KeyError, TypeError):
        return "another process"


@contextmanager
def exclusive(folder: Union[str, "os.PathLike[str]"], what: str = "folder") -> Iterator[Path]:
    """Hold the lock of ``folder`` (created if needed) for the ``with`` block.

    Raises :class:`LockedError` at once when another process holds it; ``what`` names the
    folder's role in that message (``run directory``, ``prepare output``...).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    if fcntl is None:  # pragma: no cover
        yield path
        return
    f = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            f.seek(0)
            raise LockedError(
                f"{what} {folder} is in use by {_describe(f.read())}; wait for it to finish or choose another folder"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(_holder())
        f.flush()
        try:
            yield path
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    finally:
        f.close()
