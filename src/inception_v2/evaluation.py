"""The one evaluator: loss, top-1, top-5 and the confusion matrix of a model on a loader, used
by training (val and test after every epoch) and by ``inception-v2 evaluate``.

The model is anything that maps a normalized float batch to logits: a network (run in
``eval()`` mode and restored afterwards) or a deployed runner
(:func:`inception_v2.deploy.runners.load_classifier`). Batches of ``uint8`` images are
normalized on the device with the model's data config; ``tta="flip"`` averages the logits of
each image and its mirror. Every figure is a sum (float64 for the loss), reduced over
processes under ``torch.distributed``, so with a sharded loader (each sample seen by one
process) the result is exact for the whole split. With ``predictions=True`` the result also
holds each image's predicted class and its softmax probability, in loader order (this
process's images only).

Accuracies are fractions in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from inception_v2.data import normalize
from inception_v2.errors import UsageError
from inception_v2.models import DataConfig

TTA_CHOICES = ("none", "flip")


# --------------------------------------------------------------------------- metrics as sums


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (1, 5)) -> List[torch.Tensor]:
    """Number of samples whose target is among the top-k logits, for each k (capped at the
    number of classes), as 0-d tensors on ``logits``' device."""
    maxk = min(max(ks), logits.shape[1])
    top = logits.topk(maxk, dim=1).indices  # N x maxk
    hit = top.eq(target.view(-1, 1))
    return [hit[:, : min(k, maxk)].any(dim=1).sum() for k in ks]


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``num_classes x num_classes`` int64 counts; row = true class, column = predicted class."""
    idx = target.to(torch.int64) * num_classes + pred.to(torch.int64)
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_accuracy(cm: torch.Tensor) -> List[float]:
    """Recall of every class (the diagonal over the row sum); NaN for a class with no samples."""
    totals = cm.sum(dim=1)
    return [float(cm[i, i]) / float(totals[i]) if totals[i] > 0 else math.nan for i in range(cm.shape[0])]


def _all_reduce_sum(t: torch.Tensor) -> None:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)


# --------------------------------------------------------------------------- batches on the device


def place_batch(
    x: torch.Tensor,
    y: torch.Tensor,
    device: torch.device,
    channels_last: bool = False,
    data_cfg: Optional[DataConfig] = None,
):
    """``(x, y)`` on ``device``; ``uint8`` images normalized there with ``data_cfg``."""
    x = x.to(device, non_blocking=True)
    if x.dtype == torch.uint8:
        # The loader workers hand over uint8 crops (a quarter of the bytes, a third of the work);
        # the float conversion and normalization run here, on the device, with the same values.
        if data_cfg is None:
            raise ValueError("uint8 batches need the model's data config to be normalized")
        x = normalize(x, data_cfg)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)


def autocast(device: torch.device, amp_dtype: Optional[torch.dtype]):
    """``torch.autocast`` in ``amp_dtype`` on ``device``; a no-op for None."""
    return torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None)


# --------------------------------------------------------------------------- the evaluator


@dataclass
class EvalResult:
    loss: float  # mean cross-entropy of the logits (no label smoothing, no auxiliary heads)
    acc1: float
    acc5: float
    images: int
    confusion: torch.Tensor  # num_classes x num_classes, row = true class
    predictions: Optional[torch.Tensor] = None  # per image (loader order): the predicted class
    confidences: Optional[torch.Tensor] = None  # per image: the softmax probability of that class

    @property
    def per_class(self) -> List[float]:
        return per_class_accuracy(self.confusion)


NO_RESULT = EvalResult(loss=math.nan, acc1=math.nan, acc5=math.nan, images=0, confusion=torch.zeros(0, 0))


@dataclass(frozen=True)
class Evaluator:
    """How to evaluate: where and in which precision the model runs, how batches are prepared
    (``data_cfg`` normalizes ``uint8`` batches) and the test-time augmentation. Call it with a
    model and a loader."""

    device: torch.device
    num_classes: int
    data_cfg: Optional[DataConfig] = None
    amp_dtype: Optional[torch.dtype] = None
    channels_last: bool = False
    tta: str = "none"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.tta not in TTA_CHOICES:
            raise UsageError(f"--tta must be none or flip, got {self.tta!r}")

    def __call__(
        self, model: Callable[[torch.Tensor], torch.Tensor], loader: Sequence, desc: str = "eval", predictions=False
    ) -> EvalResult:
        """Evaluate ``model`` on ``loader`` (see the module docstring)."""
        was_training = getattr(model, "training", False)
        if isinstance(model, nn.Module):
            model.eval()
        bar = tqdm(loader, desc=desc, unit="batch", leave=False, disable=not self.progress or None, dynamic_ncols=True)
        try:
            with torch.inference_mode():
                sums, cm, preds, confs = self._run(model, bar, predictions)
        finally:
            bar.close()
            if isinstance(model, nn.Module):
                model.train(was_training)
        _all_reduce_sum(sums)
        _all_reduce_sum(cm)
        loss_sum, top1, top5, n = sums.tolist()
        if n == 0:
            raise UsageError("evaluation saw no images (empty split)")
        return EvalResult(
            loss=loss_sum / n,
            acc1=top1 / n,
            acc5=top5 / n,
            images=int(n),
            confusion=cm.cpu(),
            predictions=torch.cat(preds).cpu() if predictions else None,
            confidences=torch.cat(confs).cpu() if predictions else None,
        )

    def _run(self, model, batches, predictions: bool):
        device, k = self.device, self.num_classes
        sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss sum, top-1, top-5, n
        cm = torch.zeros(k, k, dtype=torch.int64, device=device)
        preds: List[torch.Tensor] = []
        confs: List[torch.Tensor] = []
        for x, y in batches:
            x, y = place_batch(x, y, device, self.channels_last, self.data_cfg)
            logits = self.logits(model, x)
            if logits.shape != (y.shape[0], k):
                raise UsageError(
                    f"the model returned logits shaped {tuple(logits.shape)} for {y.shape[0]} images of {k} classes"
                )
            y = y.to(logits.device)
            top1, top5 = topk_correct(logits, y, (1, 5))
            sums += torch.stack(
                [
                    F.cross_entropy(logits, y, reduction="sum").double(),
                    top1.double(),
                    top5.double(),
                    torch.tensor(float(y.shape[0]), dtype=torch.float64, device=logits.device),
                ]
            ).to(device)
            pred = logits.argmax(dim=1)
            cm += confusion_matrix(pred, y, k).to(device)
            if predictions:
                preds.append(pred)
                confs.append(torch.softmax(logits, dim=1).gather(1, pred[:, None])[:, 0])
        return sums, cm, preds, confs

    def logits(self, model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The float32 logits of a prepared batch (with the mirror's averaged in under flip TTA)."""
        with autocast(self.device, self.amp_dtype):
            logits = model(x)
            if self.tta == "flip":
                logits = (logits + model(torch.flip(x, dims=[3]))) / 2
        return logits.float()


def evaluate(
    model: Callable[[torch.Tensor], torch.Tensor],
    loader: Sequence,
    *,
    desc: str = "eval",
    predictions: bool = False,
    **settings,
) -> EvalResult:
    """``Evaluator(**settings)(model, loader, desc, predictions)``: ``settings`` are the fields
    of :class:`Evaluator` (``device`` and ``num_classes`` are required)."""
    return Evaluator(**settings)(model, loader, desc, predictions)
