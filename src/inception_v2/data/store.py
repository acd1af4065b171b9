"""The on-disk store of a prepared folder: written by ``prepare``, read by ``PreparedDataset``.

Two kinds (``prepare --store``), each with two files per split (``train``, ``val``, ``test``):

* ``raw``: ``<split>.pixels`` holds the ``uint8`` pixels of every image, height x width x RGB,
  one after another, no header; read through ``numpy.memmap``, so reading an image is a slice.
  Lossless: a crop is exactly the pixels of its box, which the tests check to the pixel.
* ``jpeg``: ``<split>.jpeg`` holds the JPEG bytes of every image, one after another (a file's
  own bytes when nothing had to change, else a quality-95 re-encoding); decoded in the loader
  workers. About a fifth of the raw store's size on photos.

``<split>.index.npy`` is an ``int64`` array with one row per image, the columns of
:data:`INDEX_COLUMNS` (folders prepared before the jpeg store have no ``nbytes`` column:
:func:`read_index` adds it).
"""

from __future__ import annotations

import array
import os
from pathlib import Path
from types import TracebackType
from typing import Optional, Tuple, Type

import numpy as np

from inception_v2.atomic import atomic_open
from inception_v2.errors import UsageError

SPLITS = ("train", "val", "test")
STORES = ("raw", "jpeg")
INDEX_COLUMNS = ("offset", "height", "width", "label", "nbytes")  # offset and nbytes in the data file
_SUFFIX = {"raw": "pixels", "jpeg": "jpeg"}


def check_store(store: str) -> str:
    if store not in STORES:
        raise UsageError(f"--store must be one of {', '.join(STORES)}, got {store!r}")
    return store


def data_path(root: os.PathLike, split: str, store: str = "raw") -> Path:
    """The data file of a split: ``<split>.pixels`` (raw) or ``<split>.jpeg``."""
    return Path(root) / f"{split}.{_SUFFIX[check_store(store)]}"


def index_path(root: os.PathLike, split: str) -> Path:
    return Path(root) / f"{split}.index.npy"


def store_files(store: str = "raw") -> Tuple[str, ...]:
    """The file names of every split's store."""
    return tuple(p.name for s in SPLITS for p in (data_path(".", s, store), index_path(".", s)))


class SplitWriter:
    """Appends images to one split's store. Both files appear (atomically) only when the writer
    is closed without an error; used as a context manager."""

    def __init__(self, root: os.PathLike, split: str, store: str = "raw") -> None:
        self.root, self.split, self.store = Path(root), split, check_store(store)
        self._data_cm = atomic_open(data_path(root, split, store), "wb")
        self._data = self._data_cm.__enter__()
        self._index = array.array("q")  # flat rows of INDEX_COLUMNS: 40 bytes per image
        self._offset = 0

    def __len__(self) -> int:
        return len(self._index) // len(INDEX_COLUMNS)

    def append(self, data: np.ndarray, height: int, width: int, label: int) -> int:
        """Add one image: ``data`` is its raw ``height x width x 3`` pixels (any shape with that
        many bytes) or its JPEG bytes, as ``uint8``. Returns its index in the split."""
        data = np.ascontiguousarray(data, dtype=np.uint8).reshape(-1)
        if self.store == "raw" and data.size != height * width * 3:
            raise ValueError(f"{data.size} bytes are not the pixels of a {height}x{width} RGB image")
        self._data.write(memoryview(data))  # no copy
        self._index.extend((self._offset, height, width, label, data.size))
        self._offset += data.size
        return len(self) - 1

    def __enter__(self) -> "SplitWriter":
        return self

    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self._data_cm.__exit__(kind, error, tb)  # renames on success, removes the temp file on error
        if kind is None:
            with atomic_open(index_path(self.root, self.split), "wb") as f:
                np.save(f, np.frombuffer(self._index, dtype=np.int64).reshape(-1, len(INDEX_COLUMNS)))


def read_index(root: os.PathLike, split: str) -> np.ndarray:
    """The ``(n, 5)`` index of a split (columns :data:`INDEX_COLUMNS`); raises
    :class:`UsageError` naming the file when it is missing or damaged."""
    path = index_path(root, split)
    try:
        index = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"{path} is missing; prepare the folder again") from None
    except (OSError, ValueError, EOFError) as e:
        raise UsageError(f"{path} is damaged ({e}); prepare the folder again") from None
    if index.ndim != 2 or index.shape[1] not in (4, 5) or index.dtype != np.int64:
        raise UsageError(f"{path} is not a store index (shape {index.shape}, {index.dtype}); prepare the folder again")
    if index.shape[1] == 4:  # a raw store from before the jpeg store: nbytes = height x width x 3
        index = np.concatenate([index, index[:, 1:2] * index[:, 2:3] * 3], axis=1)
    return index


def check_split(root: os.PathLike, split: str, store: str, index: np.ndarray, recorded: Optional[int]) -> None:
    """Raise :class:`UsageError` naming the data file of ``split`` when it is missing, shorter
    than ``index`` needs, or not the size ``prepare`` recorded (``recorded``, if known)."""
    path = data_path(root, split, store)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UsageError(f"{path} is missing; prepare the folder again") from None
    needed = int((index[:, 0] + index[:, 4]).max()) if len(index) else 0
    if size < needed or (recorded is not None and size != recorded):
        expected = recorded if recorded is not None else needed
        raise UsageError(
            f"{path} is truncated or damaged: {size:,} bytes, expected {expected:,}; prepare the folder again"
        )


def open_data(root: os.PathLike, split: str, store: str = "raw") -> np.ndarray:
    """The data file of a split as a read-only flat ``uint8`` memmap (an empty array for an
    empty split, which cannot be mapped)."""
    path = data_path(root, split, store)
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r")


def entry_bytes(data: np.ndarray, entry: np.ndarray) -> np.ndarray:
    """The bytes of index row ``entry`` in ``data`` (a copy)."""
    offset, nbytes = int(entry[0]), int(entry[4]) if len(entry) > 4 else int(entry[1] * entry[2] * 3)
    return np.array(data[offset : offset + nbytes])
