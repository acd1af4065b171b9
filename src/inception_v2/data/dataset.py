"""Reading a prepared data set: :class:`PreparedDataset` (alias :data:`VOCCrops`) and
:func:`make_loader`.

The images of a split live in a store (:mod:`inception_v2.data.store`): raw ``uint8`` pixels
read through ``numpy.memmap``, or JPEG bytes decoded here (``torchvision.io.decode_jpeg``, in
the DataLoader workers), plus a small index. The file is opened lazily, once per process, so a
dataset pickles to DataLoader workers as a path and the index. The files are checked when the
dataset is made: a truncated store is an error naming the file, not a crash mid-epoch.
"""

from __future__ import annotations

import functools
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from inception_v2.data.store import SPLITS, STORES, check_split, data_path, entry_bytes, open_data, read_index
from inception_v2.data.voc import VOC_CLASSES
from inception_v2.errors import UsageError
from inception_v2.procs import WorkerInit


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError(f"{path} is unreadable or damaged ({e}); prepare the folder again") from None


def _store_of(root: Path, info: Dict[str, Any]) -> str:
    """The store kind of a prepared folder: recorded in ``prepare.json``; else the data files
    that exist (folders prepared before the jpeg store are raw)."""
    store = info.get("options", {}).get("store") if isinstance(info.get("options"), dict) else None
    if store in STORES:
        return store
    return "jpeg" if data_path(root, "train", "jpeg").is_file() and not data_path(root, "train").is_file() else "raw"


@functools.lru_cache(maxsize=None)
def jpeg_decoder() -> Callable[[np.ndarray], torch.Tensor]:
    """JPEG bytes -> ``uint8`` RGB tensor ``3 x H x W``: ``torchvision.io.decode_jpeg`` (libjpeg-turbo,
    no PIL round trip), or PIL where torchvision no longer has it (its image I/O is deprecated
    in favour of TorchCodec; the pixels are the same)."""
    try:
        from torchvision.io import ImageReadMode, decode_jpeg
    except ImportError:  # pragma: no cover - a torchvision without image I/O
        from PIL import Image

        def decode_pil(data: np.ndarray) -> torch.Tensor:
            with Image.open(io.BytesIO(data.tobytes())) as im:
                return torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)

        return decode_pil

    def decode_tv(data: np.ndarray) -> torch.Tensor:
        with warnings.catch_warnings():  # torchvision 0.29 warns on every call that its image I/O is deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            return decode_jpeg(torch.from_numpy(data), mode=ImageReadMode.RGB)

    return decode_tv


class PreparedDataset(Dataset):
    """The images of one split of a prepared folder (``inception-v2 prepare --out``), from
    PASCAL VOC crops or an image folder, in either store.

    ``dataset[i]`` is ``(image, label)``: ``image`` is the stored image as a ``uint8`` tensor
    ``3 x H x W`` when ``transform`` is None, else ``transform(image)``; ``label`` indexes
    :attr:`classes`, the class names of ``counts.json`` (folders prepared before image
    folders existed have none: they are VOC, the 20 classes in alphabetical order, docs/data.md).
    Raises :class:`UsageError` naming the file when the folder is unfinished, a store file is
    missing or truncated, or the index is damaged.
    """

    def __init__(self, prepared_dir: os.PathLike, split: str, transform: Optional[Callable] = None) -> None:
        if split not in SPLITS:
            raise UsageError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        self.root = Path(prepared_dir)
        if not (self.root / "counts.json").is_file():
            raise UsageError(
                f"{self.root} is not a finished prepared data set (no counts.json); run "
                "`inception-v2 prepare (--voc-root ROOT | --image-folder ROOT) --out DIR` first"
            )
        counts = _read_json(self.root / "counts.json")
        classes = counts.get("classes", list(VOC_CLASSES)) if isinstance(counts, dict) else None
        if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
            raise UsageError(f"{self.root / 'counts.json'} has no valid class list; prepare the folder again")
        self.classes: List[str] = classes
        info = _read_json(self.root / "prepare.json") if (self.root / "prepare.json").is_file() else {}
        info = info if isinstance(info, dict) else {}
        self.store = _store_of(self.root, info)
        self.split = split
        self.transform = transform
        self.index = read_index(self.root, split)  # (N, 5): offset, height, width, label, nbytes
        recorded = info.get("files", {}).get(data_path(self.root, split, self.store).name)
        check_split(self.root, split, self.store, self.index, recorded if isinstance(recorded, int) else None)
        if len(self.index) and not (0 <= self.index[:, 3].min() and self.index[:, 3].max() < len(self.classes)):
            raise UsageError(f"{self.root}: the {split} index has labels outside the {len(self.classes)} classes")
        self._data: Optional[np.ndarray] = None  # opened on first access, in each process

    @property
    def targets(self) -> List[int]:
        """The label of every image, in order (for samplers and class counts)."""
        return self.index[:, 3].tolist()

    @property
    def class_to_idx(self) -> Dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    def counts(self) -> Dict[str, Any]:
        """The ``counts.json`` of the prepared folder."""
        return _read_json(self.root / "counts.json")

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        state["_data"] = None  # each worker maps the file itself
        return state

    def image(self, i: int) -> torch.Tensor:
        """The stored image ``i`` as a ``uint8`` tensor ``3 x H x W`` (no transform)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for the {len(self)} {self.split} images")
        if self._data is None:
            self._data = open_data(self.root, self.split, self.store)
        entry = self.index[i]
        data = entry_bytes(self._data, entry)
        if self.store == "raw":
            hwc = torch.from_numpy(data.reshape(int(entry[1]), int(entry[2]), 3))
            return hwc.permute(2, 0, 1)  # channels-last memory: fast uint8 resize
        try:
            return jpeg_decoder()(data)
        except RuntimeError as e:
            raise UsageError(
                f"{data_path(self.root, self.split, self.store)}: image {i % len(self)} is not a decodable JPEG "
                f"({str(e).splitlines()[-1].rsplit(', ', 1)[-1]}); prepare the folder again"
            ) from None

    crop = image  # the name from when every prepared image was a VOC object crop

    def __getitem__(self, i: int) -> Tuple[Any, int]:
        image = self.image(i)
        label = int(self.index[i, 3])
        if self.transform is not None:
            image = self.transform(image)
        return image, label


VOCCrops = PreparedDataset  # the name from when every prepared folder was PASCAL VOC


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
    collate_fn: Optional[Callable] = None,
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
        collate_fn=collate_fn,
    )
