"""Atomic file writes: a reader sees either the old file or the complete new one, never half.

Every file the project writes that another step reads (crops, manifests, counts, checkpoints,
metrics) goes through these helpers: the data is written to a temporary file in the same
directory, flushed to disk, then renamed over the target with ``os.replace``.

Temporary files are ours by construction: their names are ``.NAME.iv2-PID-XXXXXXXX.tmp``
(:func:`temp_file`: the target's name, this program's tag, the writing process and a random
part), and only names of exactly that pattern whose process is gone are ever removed by a
later run (:func:`remove_stale_temps`); a user's ``.notes.tmp`` is never touched.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator, List, Tuple

from inception_v2.paths import PathLike

TEMP_TAG = "iv2"
_TEMP_NAME = re.compile(r"^\..+\." + TEMP_TAG + r"-(\d+)-[a-z0-9_]{8}\.tmp$")


def temp_file(path: PathLike) -> Tuple[int, str]:
    """``mkstemp`` of a temporary sibling of ``path`` named as this module's docstring says:
    ``(file descriptor, name)``."""
    path = Path(path)
    return tempfile.mkstemp(prefix=f".{path.name}.{TEMP_TAG}-{os.getpid()}-", suffix=".tmp", dir=path.parent)


def is_our_temp(name: str) -> bool:
    """Whether ``name`` is a temporary file name this program writes (:func:`temp_file`)."""
    return _TEMP_NAME.match(name) is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_stale_temps(folder: PathLike, prefix: str = "") -> List[Path]:
    """Remove the temporary files of this program in ``folder`` (names starting with
    ``prefix``, e.g. ``.model.onnx.``) whose writing process is gone (killed mid-write), and
    return them. Anything else, a user's ``.x.tmp`` or a live writer's file, stays."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or not entry.name.startswith(prefix) or not entry.is_file(follow_symlinks=False):
            continue
        if _alive(int(match.group(1))):  # (this process too: another thread may be writing it)
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except FileNotFoundError:
            pass
    return removed


@contextmanager
def atomic_open(path: PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched; an
    ``OSError`` that names no file (a full disk while writing) is raised again naming ``path``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(path)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and e.filename is None and e.errno is not None:
            raise OSError(e.errno, os.strerror(e.errno), str(path)) from e
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_text(path: PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def write_json(path: PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
