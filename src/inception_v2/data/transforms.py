"""Train and eval preprocessing from a model's :class:`DataConfig` (docs/training.md).

Both are ``torchvision.transforms.v2`` pipelines on ``uint8`` images (a ``3 x H x W`` tensor
from :class:`~inception_v2.data.VOCCrops`, or a PIL image):

* train: resize the shorter side to ``resize_size`` -> random ``input_size`` crop ->
  horizontal flip -> float in [0, 1] -> normalize(mean, std);
* eval: resize -> centre crop -> float -> normalize; deterministic, never augmented.

Optional training augmentation (``inception-v2 train`` flags, docs/training.md): an automatic
policy after the flip (``auto_augment``: ``v2.RandAugment``, ``v2.TrivialAugmentWide``,
``v2.AutoAugment`` with the ImageNet policy) and ``v2.RandomErasing`` last, filling with the mean
colour (0 after normalization, as in torchvision's reference recipes); and, on whole batches,
``v2.MixUp`` / ``v2.CutMix`` (:func:`batch_mix`), which the training loop applies after
:func:`normalize` (mixing ``uint8`` pixels would round them).

For Inception-v2 that is 384 -> 299 with mean = std = 0.5; for GoogLeNet-BN 256 -> 224.

With ``normalize=False`` a pipeline stops before the float steps and returns ``uint8``
``input_size`` crops; :func:`normalize` then does those steps on a whole batch, on the device
it is on, with the same result. It is the fast path for training on a GPU: the loader workers
do a third of the work and move a quarter of the bytes (see ``benchmarks/RESULTS.md``).

Memory layout matters here: the crops (from ``VOCCrops`` or PIL) arrive as channels-last
``uint8`` views, the layout torch's antialiased uint8 resize is fastest on (about 3x), while the
float steps are much slower on it than on channels-first memory. So the image is made
contiguous right after the crop, where it is smallest; the values are unchanged.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import torch
from torchvision.transforms import v2

from inception_v2.models.registry import DataConfig


def _channels_first(image: torch.Tensor) -> torch.Tensor:
    """The same image in contiguous (channels-first) memory; see the module docstring."""
    return image.contiguous()


def _float_steps(cfg: DataConfig) -> List[v2.Transform]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(cfg.mean), std=list(cfg.std))]


AUTO_AUGMENT_POLICIES = ("none", "randaugment", "trivialaugment", "autoaugment")


def _auto_augment(policy: str) -> List[v2.Transform]:
    if policy == "none":
        return []
    if policy == "randaugment":
        return [v2.RandAugment()]
    if policy == "trivialaugment":
        return [v2.TrivialAugmentWide()]
    if policy == "autoaugment":
        return [v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET)]
    raise ValueError(f"auto_augment must be one of {', '.join(AUTO_AUGMENT_POLICIES)}, got {policy!r}")


def _resize(cfg: DataConfig) -> v2.Resize:
    """The shorter side to ``cfg.resize_size`` with ``cfg.interpolation`` (antialiased)."""
    return v2.Resize(cfg.resize_size, interpolation=v2.InterpolationMode(cfg.interpolation), antialias=True)


def train_transform(
    cfg: DataConfig,
    normalize: bool = True,
    auto_augment: str = "none",
    random_erasing: float = 0.0,
) -> v2.Compose:
    """Random-crop-and-flip preprocessing of the source's training pipeline (``uint8`` output
    without ``normalize``; see :func:`normalize`), optionally followed by an ``auto_augment``
    policy and random erasing with probability ``random_erasing`` (module docstring)."""
    if not 0 <= random_erasing <= 1:
        raise ValueError(f"random_erasing must be in [0, 1], got {random_erasing}")
    steps = [
        v2.ToImage(),  # PIL or tensor in, tv_tensors.Image out (no copy for a tensor)
        _resize(cfg),  # shorter side -> resize_size
        v2.RandomCrop(cfg.input_size),
        v2.Lambda(_channels_first),
        v2.RandomHorizontalFlip(),
        *_auto_augment(auto_augment),
    ]
    if normalize:
        steps += _float_steps(cfg)
    erase_value: List[float] = [0.0, 0.0, 0.0] if normalize else [round(255 * m) for m in cfg.mean]
    if random_erasing > 0:
        steps.append(v2.RandomErasing(p=random_erasing, value=erase_value))  # the mean colour
    return v2.Compose(steps)


def eval_transform(cfg: DataConfig, normalize: bool = True) -> v2.Compose:
    """Deterministic preprocessing for validation and test: resize, then the centre crop."""
    steps = [
        v2.ToImage(),
        _resize(cfg),
        v2.CenterCrop(cfg.input_size),
        v2.Lambda(_channels_first),
    ]
    return v2.Compose(steps + (_float_steps(cfg) if normalize else []))


def normalize(images: torch.Tensor, cfg: DataConfig) -> torch.Tensor:
    """The float steps left out by ``normalize=False``, on a ``uint8`` image or batch
    (``... x 3 x H x W``) on any device: float in [0, 1], then (x - mean) / std."""
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 images, got {images.dtype}")
    return v2.Compose(_float_steps(cfg))(images)


BatchMix = Callable[..., Tuple[torch.Tensor, torch.Tensor]]


def batch_mix(mixup: float, cutmix: float, num_classes: int) -> Optional[BatchMix]:
    """``(images, labels) -> (mixed images, soft labels)`` for a float batch: ``v2.MixUp`` with
    ``alpha = mixup``, ``v2.CutMix`` with ``alpha = cutmix``, one of the two at random per batch
    when both are > 0; None when both are 0. The labels come back as ``N x num_classes``
    probabilities, which :class:`~inception_v2.train.losses.InceptionLoss` takes."""
    if mixup < 0 or cutmix < 0:
        raise ValueError(f"mixup and cutmix alphas must be >= 0, got {mixup} and {cutmix}")
    mixes: List[v2.Transform] = []
    if mixup > 0:
        mixes.append(v2.MixUp(alpha=mixup, num_classes=num_classes))
    if cutmix > 0:
        mixes.append(v2.CutMix(alpha=cutmix, num_classes=num_classes))
    if not mixes:
        return None
    return mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)
