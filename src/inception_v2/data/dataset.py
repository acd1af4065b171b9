"""Reading a prepared data set: :class:`VOCCrops` and :func:`make_loader`.

The crops of a split live in a store (:mod:`inception_v2.data.store`): raw ``uint8`` pixels
read through ``numpy.memmap`` plus a small index. The memmap is opened lazily, once per
process, so a dataset pickles to DataLoader workers as a path and the index.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from inception_v2.data.store import SPLITS, open_pixels, read_crop, read_index
from inception_v2.data.voc import VOC_CLASSES
from inception_v2.errors import UsageError
from inception_v2.procs import WorkerInit


class VOCCrops(Dataset):
    """The object crops of one split of a prepared folder (``inception-v2 prepare --out``).

    ``dataset[i]`` is ``(image, label)``: ``image`` is the stored crop as a ``uint8`` tensor
    ``3 x H x W`` when ``transform`` is None, else ``transform(image)``; ``label`` indexes
    :attr:`classes`, the 20 VOC class names in SPEC.md's alphabetical order.
    """

    classes: List[str] = list(VOC_CLASSES)

    def __init__(self, prepared_dir: os.PathLike, split: str, transform: Optional[Callable] = None) -> None:
        if split not in SPLITS:
            raise UsageError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        self.root = Path(prepared_dir)
        if not (self.root / "counts.json").is_file():
            raise UsageError(
                f"{self.root} is not a finished prepared data set (no counts.json); "
                "run `inception-v2 prepare --voc-root ROOT --out DIR` first"
            )
        self.split = split
        self.transform = transform
        self.index = read_index(self.root, split)  # (N, 4): offset, height, width, label
        self._pixels: Optional[np.ndarray] = None  # opened on first access, in each process

    @property
    def targets(self) -> List[int]:
        """The label of every crop, in order (for samplers and class counts)."""
        return self.index[:, 3].tolist()

    @property
    def class_to_idx(self) -> Dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    def counts(self) -> Dict[str, Any]:
        """The ``counts.json`` of the prepared folder."""
        return json.loads((self.root / "counts.json").read_text())

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        state["_pixels"] = None  # each worker maps the file itself
        return state

    def crop(self, i: int) -> torch.Tensor:
        """The stored crop ``i`` as a ``uint8`` tensor ``3 x H x W`` (no transform)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for the {len(self)} {self.split} crops")
        if self._pixels is None:
            self._pixels = open_pixels(self.root, self.split)
        hwc = read_crop(self._pixels, self.index[i])
        return torch.from_numpy(hwc).permute(2, 0, 1)  # channels-last memory: fast uint8 resize

    def __getitem__(self, i: int) -> Tuple[Any, int]:
        image = self.crop(i)
        label = int(self.index[i, 3])
        if self.transform is not None:
            image = self.transform(image)
        return image, label


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    workers: int,
    drop_last: bool = False,
    sampler: Optional[Sampler] = None,
    pin_memory: Optional[bool] = None,
    persistent_workers: Optional[bool] = None,
    seed: Optional[int] = None,
) -> DataLoader:
    """A DataLoader with the project's defaults.

    ``pin_memory`` defaults to whether CUDA is available, ``persistent_workers`` to
    ``workers > 0``; ``seed`` fixes the shuffling order (and the workers' random streams, so
    augmentation is reproducible for a given worker count). ``sampler`` excludes ``shuffle``.
    """
    if batch_size < 1:
        raise UsageError(f"batch size must be >= 1, got {batch_size}")
    if workers < 0:
        raise UsageError(f"workers must be >= 0, got {workers}")
    if sampler is not None and shuffle:
        raise UsageError("give either shuffle=True or a sampler, not both")
    generator = None
    if seed is not None:
        generator = torch.Generator()
        generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=workers,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        persistent_workers=workers > 0 if persistent_workers is None else persistent_workers,
        generator=generator,
        worker_init_fn=WorkerInit() if workers > 0 else None,  # workers die with this process
    )
