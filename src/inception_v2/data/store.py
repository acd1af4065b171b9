"""The on-disk crop store of a prepared folder: written by ``prepare``, read by ``VOCCrops``.

Per split (``train``, ``val``, ``test``) two files:

* ``<split>.pixels``: the raw ``uint8`` pixels of every crop, height x width x RGB, one crop
  after another, no header: read through ``numpy.memmap``, so reading a crop is a slice;
* ``<split>.index.npy``: an ``int64`` array with one row per crop, the columns of
  :data:`INDEX_COLUMNS`.

Lossless on purpose: a crop is exactly the pixels of its box, which the tests check to the pixel.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import List, Optional, Tuple, Type

import numpy as np

from inception_v2.atomic import atomic_open

SPLITS = ("train", "val", "test")
INDEX_COLUMNS = ("offset", "height", "width", "label")  # offset in bytes into <split>.pixels


def pixels_path(root: os.PathLike, split: str) -> Path:
    return Path(root) / f"{split}.pixels"


def index_path(root: os.PathLike, split: str) -> Path:
    return Path(root) / f"{split}.index.npy"


def store_files() -> Tuple[str, ...]:
    """The file names of every split's store."""
    return tuple(p.name for s in SPLITS for p in (pixels_path(".", s), index_path(".", s)))


class SplitWriter:
    """Appends crops to one split's store. Both files appear (atomically) only when the writer
    is closed without an error; used as a context manager."""

    def __init__(self, root: os.PathLike, split: str) -> None:
        self.root, self.split = Path(root), split
        self._pixels_cm = atomic_open(pixels_path(root, split), "wb")
        self._pixels = self._pixels_cm.__enter__()
        self._index: List[Tuple[int, int, int, int]] = []
        self._offset = 0

    def append(self, crop: np.ndarray, label: int) -> int:
        """Add a ``height x width x 3`` ``uint8`` crop; returns its index in the split."""
        height, width = crop.shape[:2]
        self._pixels.write(np.ascontiguousarray(crop, dtype=np.uint8).tobytes())
        self._index.append((self._offset, height, width, label))
        self._offset += height * width * 3
        return len(self._index) - 1

    def __enter__(self) -> "SplitWriter":
        return self

    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self._pixels_cm.__exit__(kind, error, tb)  # renames on success, removes the temp file on error
        if kind is None:
            with atomic_open(index_path(self.root, self.split), "wb") as f:
                np.save(f, np.array(self._index, dtype=np.int64).reshape(-1, len(INDEX_COLUMNS)))


def read_index(root: os.PathLike, split: str) -> np.ndarray:
    """The ``(n, 4)`` index of a split (columns :data:`INDEX_COLUMNS`)."""
    return np.load(index_path(root, split))


def open_pixels(root: os.PathLike, split: str) -> np.ndarray:
    """The pixel file of a split as a read-only flat ``uint8`` memmap (an empty array for an
    empty split, which cannot be mapped)."""
    path = pixels_path(root, split)
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r")


def read_crop(pixels: np.ndarray, entry: np.ndarray) -> np.ndarray:
    """Crop ``entry`` (a row of the index) out of ``pixels``, copied, as ``H x W x 3``."""
    offset, height, width = (int(v) for v in entry[:3])
    return np.array(pixels[offset : offset + height * width * 3]).reshape(height, width, 3)
