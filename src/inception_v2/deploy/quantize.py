"""INT8 ONNX: static post-training quantization with ONNX Runtime, kept only when it keeps the
accuracy.

:func:`export_onnx_int8` writes the model as a float32 ONNX file (verified against PyTorch like
every export, :func:`inception_v2.deploy.export.export_onnx`), then quantizes it with
``onnxruntime.quantization.quantize_static``:

* QDQ format (``QuantizeLinear`` / ``DequantizeLinear`` pairs around each operator, which ONNX
  Runtime fuses into ``QLinearConv``, ``QLinearConcat``... when it loads the file);
* weights ``int8``, per output channel (each convolution filter gets its own scale);
  activations ``uint8``, one scale per tensor: the "U8S8" combination that ONNX Runtime's x86
  kernels run fastest, with AVX-512 VNNI / AVX-VNNI instructions where the CPU has them;
* activation ranges calibrated (min / max) by running the float model on ``N`` images of the
  train split through the model's own eval preprocessing (resize, centre crop, normalize);
* the logits (the output of the last ``Gemm``) stay float32: quantized to 8 bits they would
  land on a 256-step grid, where two classes often tie for the top score (66 of 1,914 val
  images of the demo's Inception-v2 did), and top-1 would depend on how ties are broken.

Before anything is written it evaluates the float32 and the INT8 file on the val split (top-1)
and refuses, with :class:`~inception_v2.errors.CheckFailedError` (exit status 1) and nothing
written, when INT8 top-1 is more than ``max_drop`` points below float32. The kept file carries
the float file's ``metadata_props`` plus ``quantization`` (``"int8"``), ``calibration_images``
and the two val top-1s. See ``docs/deployment.md``.

On a CPU without VNNI (plain AVX2), ONNX Runtime's U8S8 kernels multiply pairs of 8-bit values
into 16-bit sums that can saturate, which can cost accuracy there even when the gate passed on
a VNNI machine: evaluate the file on the machine that will run it (``inception-v2 evaluate``).
"""

from __future__ import annotations

import logging
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Tuple

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from inception_v2.atomic import write_bytes
from inception_v2.deploy.export import (
    DEFAULT_OPSET,
    VERIFY_BATCH_SIZES,
    ExportResult,
    check_output_path,
    export_onnx,
    onnx_metadata_props,
)
from inception_v2.deploy.inference import ONNX_INSTALL_HINT, OnnxClassifier, import_onnxruntime
from inception_v2.errors import CheckFailedError, UsageError
from inception_v2.formats.state_dict import model_name
from inception_v2.paths import PathLike

Batches = Callable[[], Iterable[torch.Tensor]]  # a fresh iterator of normalized image batches
LabelledBatches = Callable[[], Iterable[Tuple[torch.Tensor, torch.Tensor]]]  # (images, labels)

QUANTIZATIONS = ("int8",)
DEFAULT_CALIBRATION_IMAGES = 256  # ONNX Runtime's examples calibrate on a few hundred images
DEFAULT_MAX_DROP = 1.0  # top-1 points on val that INT8 may lose against float32
CALIBRATION_BATCH = 16
EVAL_BATCH = 32


class Top1Change:
    """What an INT8 result says of its val gate (both INT8 paths' results have these fields)."""

    val_images: int
    float_top1: float  # on val, in [0, 1]
    int8_top1: float
    agreement: float  # share of val images on which float32 and INT8 predict the same class
    max_drop: float  # points

    @property
    def drop(self) -> float:
        """How many top-1 points INT8 lost on val (negative: it gained)."""
        return 100 * (self.float_top1 - self.int8_top1)

    def top1_line(self) -> str:
        change = f"{self.drop:.2f} points lost" if self.drop >= 0 else f"{-self.drop:.2f} points gained"
        return (
            f"val top-1 over {self.val_images} images: float32 {self.float_top1:.2%}, int8 {self.int8_top1:.2%} "
            f"({change}; --max-drop {self.max_drop:g}); same prediction on {self.agreement:.1%}"
        )


@dataclass(frozen=True)
class Int8Result(Top1Change):
    path: Path
    model_name: str
    image_size: int
    size_bytes: int
    float_size_bytes: int
    calibration_images: int
    val_images: int
    float_top1: float
    int8_top1: float
    agreement: float
    max_drop: float
    float_export: ExportResult
    seconds: float

    def describe(self) -> str:
        f = self.float_export
        return "\n".join(
            [
                *(f"note: {n}" for n in f.notes),
                f"float32 ONNX ({f.exporter}-based exporter, opset {f.opset}) verified against PyTorch: "
                "max-abs difference "
                + ", ".join(f"{d:.1e} at batch {b}" for b, d in f.max_abs_diff.items())
                + f" (tolerance {f.tolerance:.1e})",
                f"calibrated on {self.calibration_images} train images; {self.top1_line()}",
                f"wrote {self.path} (ONNX int8, QDQ, {self.size_bytes / 1e6:.1f} MB, float32 "
                f"{self.float_size_bytes / 1e6:.1f} MB): {self.model_name}, input 'images' N x 3 x {self.image_size} x "
                f"{self.image_size} (N dynamic) in {self.seconds:.0f} s",
            ]
        )


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """ONNX Runtime's quantization tools log advice through the root logger; keep it off the
    console (our own messages say what happened)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_int8(
    float_path: PathLike,
    out_path: PathLike,
    calibration: Iterable[torch.Tensor],
    progress: bool = False,
) -> int:
    """Quantize the float ONNX file ``float_path`` into ``out_path`` (QDQ, int8 per-channel
    weights, uint8 activations, min/max calibration on the ``calibration`` batches: normalized
    ``N x 3 x S x S`` tensors). Returns the number of calibration images. Metadata is not
    copied (see :func:`export_onnx_int8`)."""
    import_onnxruntime()
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quant_pre_process,
            quantize_static,
        )
    except ImportError:  # pragma: no cover - part of every onnxruntime wheel
        raise UsageError(f"INT8 export needs onnxruntime.quantization; install it with: {ONNX_INSTALL_HINT}") from None
    input_name = OnnxClassifier(float_path, providers=["CPUExecutionProvider"]).input_name
    seen = [0]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(
                tqdm(
                    calibration,
                    desc="calibrate",
                    unit="batch",
                    leave=False,
                    disable=not progress or None,
                    dynamic_ncols=True,
                )
            )

        def get_next(self) -> Optional[Dict[str, np.ndarray]]:
            batch = next(self.batches, None)
            if batch is None:
                return None
            seen[0] += int(batch.shape[0])
            return {input_name: batch.detach().to("cpu", torch.float32).numpy()}

    with tempfile.TemporaryDirectory(prefix="inception-v2-int8-") as tmp, _quiet_quantizer():
        pre = Path(tmp) / "preprocessed.onnx"
        quant_pre_process(str(float_path), str(pre))  # shape inference + graph clean-up, as ORT advises
        try:
            quantize_static(
                str(pre),
                str(out_path),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"OpTypesToExcludeOutputQuantization": ["Gemm"]},  # float32 logits
            )
        except ValueError:
            if seen[0] == 0:
                raise UsageError("INT8 calibration got no images") from None
            raise
    return seen[0]


def _predict(runner: OnnxClassifier, images: torch.Tensor) -> np.ndarray:
    return runner(images).argmax(dim=1).numpy()


def gate_top1(
    float_runner: Any,
    int8_runner: Any,
    validation: Iterable[Tuple[torch.Tensor, torch.Tensor]],
    max_drop: float,
    out: PathLike,
    progress: bool = False,
) -> Tuple[float, float, float, int]:
    """The val gate of both INT8 paths: float32 top-1, INT8 top-1, their agreement and the number
    of images; :class:`CheckFailedError` (``out`` was not written) when INT8 lost more than
    ``max_drop`` points."""
    right_f, right_q, same, n_val = compare_top1(float_runner, int8_runner, validation, progress)
    f_top1, q_top1 = right_f / n_val, right_q / n_val
    drop = 100 * (right_f - right_q) / n_val  # from counts: 1 of 100 images is exactly 1.0 point
    if drop > max_drop + 1e-9:
        raise CheckFailedError(
            f"INT8 val top-1 {q_top1:.2%} is {drop:.2f} points below float32 {f_top1:.2%} "
            f"({n_val} images; --max-drop {max_drop:g}); {out} was not written"
        )
    return f_top1, q_top1, same / n_val, n_val


def compare_top1(
    float_runner: Any,
    int8_runner: Any,
    validation: Iterable[Tuple[torch.Tensor, torch.Tensor]],
    progress: bool = False,
) -> Tuple[int, int, int, int]:
    """How many of the labelled images each runner classifies right (float, int8), on how many
    both predict the same class, and how many images there were."""
    correct_f = correct_q = agree = n = 0
    bar = tqdm(
        validation,
        desc="val float32 vs int8",
        unit="batch",
        leave=False,
        disable=not progress or None,
        dynamic_ncols=True,
    )
    try:
        for images, labels in bar:
            y = np.asarray(labels)
            pf, pq = _predict(float_runner, images), _predict(int8_runner, images)
            correct_f += int((pf == y).sum())
            correct_q += int((pq == y).sum())
            agree += int((pf == pq).sum())
            n += len(y)
    finally:
        bar.close()
    if n == 0:
        raise UsageError("the val split is empty: the INT8 accuracy check needs val images")
    return correct_f, correct_q, agree, n


def export_onnx_int8(
    model: nn.Module,
    path: PathLike,
    calibration: Batches,
    validation: LabelledBatches,
    image_size: Optional[int] = None,
    max_drop: float = DEFAULT_MAX_DROP,
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
    progress: bool = False,
) -> Int8Result:
    """Write ``model`` as an INT8 ONNX file at ``path`` (see the module docstring).

    ``calibration()`` yields normalized image batches (the calibration set), ``validation()``
    ``(images, labels)`` batches (the val split), both preprocessed for ``image_size``. Raises
    :class:`CheckFailedError` when INT8 val top-1 is more than ``max_drop`` points below float32's;
    then nothing is written and an existing file at ``path`` is left as it was.
    """
    if not (max_drop >= 0):  # also refuses NaN
        raise UsageError(f"--max-drop must be >= 0 (top-1 points), got {max_drop}")
    import onnx

    start = time.perf_counter()
    path = check_output_path(path)
    name = model_name(model)
    with tempfile.TemporaryDirectory(prefix="inception-v2-int8-") as tmp:
        float_path, int8_path = Path(tmp) / "float32.onnx", Path(tmp) / "int8.onnx"
        float_export = export_onnx(model, float_path, image_size, opset, exporter)
        size = float_export.image_size
        n_cal = quantize_int8(float_path, int8_path, calibration(), progress=progress)
        float_runner = OnnxClassifier(float_path, providers=["CPUExecutionProvider"])
        int8_runner = OnnxClassifier(int8_path, providers=["CPUExecutionProvider"])
        for b in VERIFY_BATCH_SIZES:  # the dynamic batch survived quantization
            got = int8_runner(torch.zeros(b, 3, size, size))
            if tuple(got.shape) != (b, float_export.num_classes) or not torch.isfinite(got).all():
                raise CheckFailedError(f"the INT8 model returned {tuple(got.shape)} logits for a batch of {b}")
        f_top1, q_top1, agreement, n_val = gate_top1(float_runner, int8_runner, validation(), max_drop, path, progress)
        proto = onnx.load(str(int8_path))
        meta = {p.key: p.value for p in onnx.load(str(float_path), load_external_data=False).metadata_props}
        meta.update(
            onnx_metadata_props(
                {
                    "quantization": "int8",
                    "calibration_images": n_cal,
                    "val_top1_float32": round(f_top1, 6),
                    "val_top1_int8": round(q_top1, 6),
                }
            )
        )
        del proto.metadata_props[:]
        for key, value in meta.items():
            proto.metadata_props.add(key=key, value=value)
        data = proto.SerializeToString()
        float_size = float_path.stat().st_size
    write_bytes(path, data)
    return Int8Result(
        path,
        name,
        size,
        len(data),
        float_size,
        n_cal,
        n_val,
        f_top1,
        q_top1,
        agreement,
        max_drop,
        float_export,
        time.perf_counter() - start,
    )


# --------------------------------------------------------------------------- a prepared folder


def prepared_batches(
    prepared: PathLike,
    split: str,
    data_config: Any,
    batch_size: int,
    limit: Optional[int] = None,
    classes: Optional[list] = None,
) -> Callable[[], Iterable[Tuple[torch.Tensor, torch.Tensor]]]:
    """``(images, labels)`` batches of ``split`` of a prepared folder through the eval transform
    of ``data_config`` (normalized float32). ``limit``: at most that many images, spread evenly
    over the split (the stores keep images in annotation order, so the first ``N`` would be few
    source photos). ``classes``: the model's class names, which must be the folder's."""
    from torch.utils.data import Subset

    from inception_v2.data import VOCCrops, eval_transform, make_loader

    prepared = Path(prepared)
    if not prepared.exists():
        raise UsageError(f"{prepared} does not exist")
    if not prepared.is_dir():
        raise UsageError(f"{prepared} is a file, not a prepared folder")
    dataset = VOCCrops(prepared, split, eval_transform(data_config))
    if classes is not None and list(dataset.classes) != list(classes):
        raise UsageError(f"the model was trained on other classes than those of {prepared}")
    if len(dataset) == 0:
        raise UsageError(f"{prepared}: the {split} split is empty")
    if limit is not None and limit < len(dataset):
        dataset = Subset(dataset, np.linspace(0, len(dataset) - 1, limit).round().astype(int).tolist())
    return lambda: make_loader(dataset, batch_size, shuffle=False, workers=0, pin_memory=False)


def calibration_sets(
    model: nn.Module, prepared: PathLike, calibration_images: int, image_size: Optional[int] = None
) -> Tuple[Any, Batches, LabelledBatches]:
    """The data config at the export size, ``calibration_images`` train images (calibration) and
    the val split (the gate) of the prepared folder ``prepared``, both through the model's eval
    preprocessing. Shared by the ONNX and the OpenVINO INT8 paths."""
    if calibration_images < 1:
        raise UsageError(f"--calibration-images must be >= 1, got {calibration_images}")
    classes = getattr(model, "classes", None)
    if not classes:
        raise UsageError("INT8 export needs a trained model (--checkpoint): its accuracy is checked on val")
    cfg = model.data_config
    if image_size is not None and image_size != cfg.input_size:
        if image_size < cfg.min_input_size:
            raise UsageError(f"{model_name(model)} needs an image size >= {cfg.min_input_size}, got {image_size}")
        cfg = cfg.with_input_size(image_size)
    train = prepared_batches(prepared, "train", cfg, CALIBRATION_BATCH, calibration_images, classes)
    val = prepared_batches(prepared, "val", cfg, EVAL_BATCH, None, classes)
    return cfg, lambda: (x for x, _ in train()), val


def export_int8_from_prepared(
    model: nn.Module,
    path: PathLike,
    prepared: PathLike,
    calibration_images: int = DEFAULT_CALIBRATION_IMAGES,
    image_size: Optional[int] = None,
    max_drop: float = DEFAULT_MAX_DROP,
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
    progress: bool = False,
) -> Int8Result:
    """:func:`export_onnx_int8` calibrated on ``calibration_images`` train images of the
    prepared folder ``prepared`` and checked on its val split, both through the model's eval
    preprocessing at the export size. ``model`` must name its classes (a trained model)."""
    cfg, calibration, val = calibration_sets(model, prepared, calibration_images, image_size)
    return export_onnx_int8(
        model,
        path,
        calibration,
        val,
        image_size=cfg.input_size,
        max_drop=max_drop,
        opset=opset,
        exporter=exporter,
        progress=progress,
    )
