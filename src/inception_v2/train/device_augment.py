"""The training transform on the device, in batches (``inception-v2 train --device-augment``;
docs/training.md, "GPU").

The CPU path (:func:`inception_v2.data.train_transform`) resizes each image's shorter side to
``resize_size`` with antialiasing, takes a random ``input_size`` crop, flips it at random, in
the loader workers; the device normalizes. Here the workers only read each stored image (the
raw pixels, or the JPEG bytes undecoded) and draw its random crop position and flip
(:func:`draw_params`, from the workers' seeded random streams as before); :func:`collate`
packs a batch into one flat ``uint8`` buffer (one host-to-device copy), and
:func:`augment_batch` does the rest on the device: decodes the JPEGs in one call
(``torchvision.io.decode_jpeg(..., device=...)``), resizes with antialiasing (images of the same
size in one ``interpolate`` call), rounds to ``uint8`` levels as the CPU path does, crops,
flips and normalizes the whole batch.

:func:`augment_one` is the same transform on one image with given draws, written with
torchvision's functional ops as the CPU path runs them: the tests check that the batched path
gives the same crops up to resampling differences (torchvision's ``uint8`` resize kernel on the
CPU, with fixed-point weights, against float ``interpolate``: at most 1 level of 255, on 11-15%
of the values, measured in ``tests/train/test_device_augment.py``).

The engine's only calls: ``build_data(..., device_augment=True)`` builds the train loader
from :class:`PackedSource` + :func:`collate`, and its batch-to-device step hands a
:class:`PackedImages` batch to :func:`augment_batch`. Automatic augmentation policies and random
erasing stay on the CPU path.
"""

from __future__ import annotations

import warnings
from typing import Dict, List, NamedTuple, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from inception_v2.data.store import entry_bytes, open_data
from inception_v2.models import DataConfig


class CropParams(NamedTuple):
    top: int  # of the crop in the resized image
    left: int
    flip: bool


class PackedImages(NamedTuple):
    """A batch of stored images as the workers hand it over: ``data`` all their bytes, one
    after the other; ``meta`` one row per image: offset, bytes, height, width, is-JPEG, crop
    top, crop left, flip."""

    data: torch.Tensor  # uint8, 1-D
    meta: torch.Tensor  # int64, N x 8


def resized_size(height: int, width: int, resize: int) -> Tuple[int, int]:
    """The size after resizing the shorter side to ``resize`` (``v2.Resize(resize)``'s rule:
    the longer side is ``int(resize * long / short)``)."""
    if height <= width:
        return resize, int(resize * width / height)
    return int(resize * height / width), resize


def draw_params(height: int, width: int, cfg: DataConfig, generator: torch.Generator = None) -> CropParams:
    """The random crop position and flip of one image, drawn as ``v2.RandomCrop`` and
    ``v2.RandomHorizontalFlip`` draw them (from torch's random stream, or ``generator``)."""
    h, w = resized_size(height, width, cfg.resize_size)
    size = cfg.input_size
    top = int(torch.randint(0, h - size + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - size + 1, (1,), generator=generator))
    flip = bool(torch.rand(1, generator=generator) < 0.5)
    return CropParams(top, left, flip)


def augment_one(image: torch.Tensor, params: CropParams, cfg: DataConfig) -> torch.Tensor:
    """The CPU path on one ``uint8`` image ``3 x H x W`` with given draws: resize the shorter
    side (antialiased), crop, flip; ``uint8`` out."""
    h, w = resized_size(image.shape[-2], image.shape[-1], cfg.resize_size)
    mode = TF.InterpolationMode(cfg.interpolation)
    out = TF.resize(image, [h, w], interpolation=mode, antialias=True)
    out = TF.crop(out, params.top, params.left, cfg.input_size, cfg.input_size)
    return TF.horizontal_flip(out) if params.flip else out


class PackedSource(Dataset):
    """The worker side: ``dataset[i]`` is ``(bytes of image i, its meta row, label)``, the
    bytes as stored (raw ``H x W x 3`` pixels or the JPEG file), the meta row with the random
    draws (:func:`draw_params`). ``base`` is a :class:`~inception_v2.data.PreparedDataset`."""

    def __init__(self, base: Dataset, cfg: DataConfig) -> None:
        self.base, self.cfg = base, cfg
        self._data = None

    def __len__(self) -> int:
        return len(self.base)

    def __getstate__(self) -> Dict:
        return {**self.__dict__, "_data": None}

    def __getitem__(self, i: int) -> Tuple[torch.Tensor, List[int], int]:
        base = self.base
        if self._data is None:
            self._data = open_data(base.root, base.split, base.store)
        entry = base.index[i]
        payload = torch.from_numpy(entry_bytes(self._data, entry))
        height, width, label = int(entry[1]), int(entry[2]), int(entry[3])
        p = draw_params(height, width, self.cfg)
        meta = [0, payload.numel(), height, width, int(base.store == "jpeg"), p.top, p.left, int(p.flip)]
        return payload, meta, label


def collate(samples: Sequence[Tuple[torch.Tensor, List[int], int]]) -> Tuple[PackedImages, torch.Tensor]:
    """A list of :class:`PackedSource` samples -> ``(PackedImages, labels)``."""
    meta = torch.tensor([m for _, m, _ in samples], dtype=torch.int64)
    sizes = meta[:, 1]
    meta[:, 0] = torch.cumsum(sizes, 0) - sizes
    data = torch.cat([p for p, _, _ in samples]) if samples else torch.empty(0, dtype=torch.uint8)
    return PackedImages(data, meta), torch.tensor([label for _, _, label in samples], dtype=torch.int64)


def _decode(batch: PackedImages, device: torch.device) -> List[torch.Tensor]:
    """The batch's images as ``uint8`` ``3 x H x W`` tensors on ``device``; the JPEGs decoded
    in one call on the device (``decode_jpeg`` takes the encoded bytes on the CPU)."""
    meta = batch.meta.tolist()
    data = batch.data.to(device, non_blocking=True)
    images: List[torch.Tensor] = [torch.empty(0)] * len(meta)
    jpegs = [k for k, m in enumerate(meta) if m[4]]
    for k, (offset, nbytes, h, w, is_jpeg, *_) in enumerate(meta):
        if not is_jpeg:
            images[k] = data[offset : offset + nbytes].view(h, w, 3).permute(2, 0, 1)
    if jpegs:
        from torchvision.io import ImageReadMode, decode_jpeg

        encoded = [batch.data[meta[k][0] : meta[k][0] + meta[k][1]] for k in jpegs]
        with warnings.catch_warnings():  # torchvision 0.29 deprecates its image I/O on every call
            warnings.simplefilter("ignore", DeprecationWarning)
            decoded = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device)
        for k, image in zip(jpegs, decoded):
            images[k] = image
    return images


def augment_batch(
    batch: PackedImages, cfg: DataConfig, device: torch.device, channels_last: bool = False
) -> torch.Tensor:
    """The training transform of a :class:`PackedImages` batch on ``device``: float
    ``N x 3 x S x S``, normalized with ``cfg.mean`` / ``cfg.std`` (module docstring)."""
    meta = batch.meta.tolist()
    images = _decode(batch, device)
    size, mode = cfg.input_size, cfg.interpolation
    out = torch.empty(len(meta), 3, size, size, device=device)
    groups: Dict[Tuple[int, int], List[int]] = {}
    for k, image in enumerate(images):
        groups.setdefault((image.shape[-2], image.shape[-1]), []).append(k)
    for (h, w), members in groups.items():
        stack = torch.stack([images[k] for k in members]).float()
        resized = F.interpolate(
            stack, size=resized_size(h, w, cfg.resize_size), mode=mode, antialias=True, align_corners=False
        )
        resized = resized.round_().clamp_(0, 255)  # the uint8 levels the CPU path produces
        for row, k in enumerate(members):
            top, left = meta[k][5], meta[k][6]
            out[k] = resized[row, :, top : top + size, left : left + size]
    flips = batch.meta[:, 7].bool().to(device)
    out = torch.where(flips.view(-1, 1, 1, 1), out.flip(-1), out)
    mean = torch.tensor(cfg.mean, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(cfg.std, device=device).view(1, 3, 1, 1) * 255
    out = (out - mean) / std
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


def resampling_difference(a: torch.Tensor, b: torch.Tensor) -> Tuple[int, float]:
    """(largest difference, share of values that differ) between two ``uint8`` image batches."""
    d = (a.int() - b.int()).abs()
    return int(d.max()), float((d > 0).double().mean())


def levels(images: torch.Tensor, cfg: DataConfig) -> torch.Tensor:
    """Normalized float images back to ``uint8`` levels (for comparing the two paths)."""
    mean = torch.tensor(cfg.mean, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std, device=images.device).view(1, 3, 1, 1)
    return (images * std + mean).mul(255).round().clamp(0, 255).to(torch.uint8)


__all__ = [
    "CropParams",
    "PackedImages",
    "PackedSource",
    "augment_batch",
    "augment_one",
    "collate",
    "draw_params",
    "levels",
    "resampling_difference",
    "resized_size",
]
