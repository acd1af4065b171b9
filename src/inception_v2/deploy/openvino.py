"""OpenVINO: export to its IR, INT8 with NNCF, and running IR and ONNX files with it.

* :func:`export_openvino` writes the deployment copy of a model (BatchNorm folded, no auxiliary
  head; captured with ``torch.export`` and converted by ``openvino.convert_model``) as a folder
  ``DIR/model.xml`` + ``DIR/model.bin`` (float32 weights), with the class names and the
  preprocessing in the model's ``rt_info`` under ``inception_v2`` (the fields of
  :func:`inception_v2.deploy.export.export_metadata`, JSON-encoded). The folder is built under a
  temporary name next to ``DIR``, read back and run at two batch sizes against PyTorch like every
  export, and only then renamed onto ``DIR``.
* :func:`export_openvino_int8` quantizes the verified float model with NNCF's post-training
  quantization (``nncf.quantize``: 8-bit weights and activations, ``FakeQuantize`` nodes that the
  CPU plugin runs as integer kernels), calibrated on train images, and keeps it only when its val
  top-1 is within ``max_drop`` points of float32's (the gate of the ONNX INT8 path).
* :class:`OpenVinoClassifier` runs an IR folder, an ``.xml`` file, an ``.onnx`` file (float or
  INT8 QDQ: OpenVINO reads ONNX directly) or a model converted in memory from a checkpoint, at
  ``fp32``, ``bf16`` (``INFERENCE_PRECISION_HINT``; needs AMX or AVX-512 BF16) or, for an INT8
  file, ``int8``. float32 is asked for explicitly: on AMX CPUs the plugin's own default is bf16.

``openvino`` and ``nncf`` are optional (``pip install 'inception-v2[openvino]'``); without them
every entry point here is one :class:`~inception_v2.errors.UsageError` naming the extra.
See ``docs/deployment.md``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from inception_v2.deploy.cpu import require_bf16
from inception_v2.deploy.export import (
    VERIFY_BATCH_SIZES,
    _compare,
    _image_size,
    _reference,
    export_metadata,
    export_program,
)
from inception_v2.deploy.inference import batch_array, deploy_copy, metadata_data_config, run_in_batches
from inception_v2.deploy.quantize import (
    DEFAULT_CALIBRATION_IMAGES,
    DEFAULT_MAX_DROP,
    Top1Change,
    calibration_sets,
    gate_top1,
)
from inception_v2.errors import CheckFailedError, UsageError, first_line
from inception_v2.formats.state_dict import model_name
from inception_v2.paths import PathLike

OPENVINO_INSTALL_HINT = "pip install 'inception-v2[openvino]'"
IR_XML, IR_BIN = "model.xml", "model.bin"
RT_SECTION = "inception_v2"  # rt_info section holding the metadata fields
METADATA_KEYS = ("model_name", "classes", "num_classes", "image_size", "resize_size", "mean", "std")
INT8_KEYS = ("quantization", "calibration_images", "val_top1_float32", "val_top1_int8")
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # int8: what is not quantized stays float32


def import_openvino() -> Any:
    try:
        import openvino
    except ImportError:
        raise UsageError(
            f"OpenVINO is not installed (the openvino extra); install it with: {OPENVINO_INSTALL_HINT}"
        ) from None
    return openvino


@functools.lru_cache(maxsize=None)
def ov_core() -> Any:
    """The process's one ``openvino.Core``. Every model is read and compiled through it: creating
    a ``Core`` per model has crashed processes that load many models (reported against the 2026
    OpenVINO releases), and one ``Core`` also shares the CPU plugin's setup between models."""
    return import_openvino().Core()


def import_nncf() -> Any:
    try:
        import nncf
    except ImportError:
        raise UsageError(
            f"INT8 for OpenVINO needs NNCF, which is not installed (the openvino extra); "
            f"install it with: {OPENVINO_INSTALL_HINT}"
        ) from None
    return nncf


def ir_file(path: PathLike) -> Optional[Path]:
    """The ``.xml`` of an OpenVINO IR: ``path`` itself, or ``path/model.xml`` for an export
    folder; None when ``path`` is neither."""
    path = Path(path)
    if path.is_dir():
        return path / IR_XML if (path / IR_XML).is_file() else None
    return path if path.suffix.lower() == ".xml" else None


# --------------------------------------------------------------------------- metadata


def set_metadata(model: Any, fields: Dict[str, Any]) -> None:
    for key, value in fields.items():
        model.set_rt_info(json.dumps(value), [RT_SECTION, key])


def read_metadata(model: Any) -> Dict[str, Any]:
    """The fields :func:`set_metadata` stored in an OpenVINO model's ``rt_info``."""
    meta = {}
    for key in METADATA_KEYS + INT8_KEYS:
        if model.has_rt_info([RT_SECTION, key]):
            text = model.get_rt_info([RT_SECTION, key]).astype(str)
            try:
                meta[key] = json.loads(text)
            except json.JSONDecodeError:
                raise UsageError(f"its rt_info {RT_SECTION}/{key} is not valid JSON: {text[:60]!r}") from None
    return meta


def _onnx_metadata(path: Path) -> Dict[str, Any]:
    """The fields :func:`~inception_v2.deploy.export.export_metadata` wrote in an ``.onnx``
    file's ``metadata_props``, decoded (OpenVINO does not read them); other entries (tools such
    as ONNX Runtime's quantizer add their own) are left alone."""
    try:
        import onnx
    except ImportError:
        raise UsageError(
            f"{path}: reading an .onnx file's class names needs the onnx package; "
            "install it with: pip install 'inception-v2[onnx]'"
        ) from None
    try:
        props = onnx.load(str(path), load_external_data=False).metadata_props
    except Exception as e:  # noqa: BLE001 - protobuf raises its own types for a corrupt file
        raise UsageError(f"{path} is not a readable ONNX file ({first_line(e, with_type=True)})") from None
    meta = {}
    for p in props:
        if p.key not in METADATA_KEYS + INT8_KEYS:
            continue
        try:
            meta[p.key] = p.value if p.key == "model_name" else json.loads(p.value)
        except json.JSONDecodeError:
            raise UsageError(f"{path}: metadata {p.key!r} is not valid JSON") from None
    return meta


# --------------------------------------------------------------------------- running


class OpenVinoClassifier:
    """A model run by OpenVINO's CPU plugin: an IR folder or ``.xml``, an ``.onnx`` file, or (with
    :meth:`from_torch`) a model converted in memory. Called on a normalized float32
    ``N x 3 x S x S`` batch (tensor or array), returns float32 CPU logits ``N x num_classes``.

    ``precision``: ``None`` (the file's own: ``int8`` for an INT8 file, else ``fp32``), ``fp32``,
    ``bf16`` (refused on a CPU without AMX or AVX-512 BF16) or ``int8`` (INT8 files only).
    ``threads``: OpenVINO's inference threads (default: its own choice). Has ``classes``,
    ``data_config``, ``name``, ``num_classes``, ``device``, ``kind``, ``runtime`` and
    ``precision`` like every runner (:mod:`inception_v2.deploy.runners`).
    """

    runtime = "openvino"

    def __init__(self, path: PathLike, precision: Optional[str] = None, threads: Optional[int] = None) -> None:
        import_openvino()
        self.path = Path(path)
        xml = ir_file(self.path)
        if xml is None and self.path.suffix.lower() != ".onnx":
            raise UsageError(f"{self.path} is neither an OpenVINO IR (.xml, or a folder with {IR_XML}) nor .onnx")
        source = xml or self.path
        if not source.is_file():
            raise UsageError(f"{source} does not exist")
        try:
            model = ov_core().read_model(str(source))
        except Exception as e:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses of its own
            raise UsageError(f"{self.path}: OpenVINO cannot read it ({first_line(e, with_type=True)})") from None
        if xml is not None:
            try:
                meta = read_metadata(model)
            except UsageError as e:
                raise UsageError(f"{self.path}: {e}") from None
            self.kind = "OpenVINO IR"
        else:
            meta = _onnx_metadata(self.path)
            self.kind = "ONNX"
        self._setup(model, meta, precision, threads)

    @classmethod
    def from_torch(
        cls, model: nn.Module, where: PathLike, precision: Optional[str] = None, threads: Optional[int] = None
    ) -> "OpenVinoClassifier":
        """``model`` (a checkpoint's or release folder's, loaded from ``where``) converted in memory
        at its trained input size."""
        self = cls.__new__(cls)
        self.path, self.kind = Path(where), "checkpoint"
        size = _image_size(model, None)
        self._setup(openvino_model(model, size), export_metadata(model, size), precision, threads)
        return self

    def _setup(self, model: Any, meta: Dict[str, Any], precision: Optional[str], threads: Optional[int]) -> None:
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise UsageError(
                f"{self.path}: expected one input and one output, found {len(model.inputs)} and {len(model.outputs)}"
            )
        self.quantization = meta.get("quantization") or (
            "int8" if any(op.get_type_name() == "FakeQuantize" for op in model.get_ops()) else None
        )
        self.precision = check_precision(self.path, precision, self.quantization)
        if self.precision == "bf16":
            require_bf16(f"--precision bf16 ({self.path})")
        if self.quantization and self.kind != "checkpoint":
            self.kind += f" {self.quantization}"
        shape = model.inputs[0].get_partial_shape()
        # a foreign file's graph may fix its batch (at 1, say): it then runs batch by batch
        self.batch_size = shape[0].get_length() if shape.rank.is_static and shape[0].is_static else None
        graph_size = shape[3].get_length() if shape.rank.is_static and shape[3].is_static else None
        if graph_size is not None and meta.get("image_size") and int(meta["image_size"]) != graph_size:
            raise UsageError(
                f"{self.path}: its metadata says image_size {meta['image_size']} but its graph takes {graph_size}"
            )
        self.image_size = int(meta.get("image_size") or graph_size or 0)
        if not self.image_size:
            raise UsageError(f"{self.path}: no image_size in its metadata and no fixed input size")
        self.data_config = metadata_data_config(meta, self.image_size)
        classes = meta.get("classes")
        self.classes: Optional[List[str]] = [str(c) for c in classes] if isinstance(classes, list) else None
        self.name: Optional[str] = meta.get("model_name")
        out = model.outputs[0].get_partial_shape()
        self.num_classes = out[out.rank.get_length() - 1].get_length() if out.rank.is_static else None
        if self.num_classes is not None and self.num_classes < 0:
            self.num_classes = None
        check_class_count(self.path, self.classes, self.num_classes)
        config = {"INFERENCE_PRECISION_HINT": PRECISION_HINTS[self.precision]}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            self.compiled = ov_core().compile_model(model, "CPU", config)
        except Exception as e:  # noqa: BLE001
            raise UsageError(
                f"{self.path}: OpenVINO cannot compile it for the CPU ({first_line(e, with_type=True)})"
            ) from None
        self.device = torch.device("cpu")

    def __call__(self, images: Union[torch.Tensor, np.ndarray]) -> torch.Tensor:
        x = batch_array(images, self.image_size, self.path.name)
        logits = run_in_batches(lambda b: np.array(self.compiled(b)[0], dtype=np.float32), x, self.batch_size)
        check_finite(self.path, logits, "OpenVINO")
        return torch.from_numpy(logits)

    def __repr__(self) -> str:
        return f"OpenVinoClassifier({str(self.path)!r}, model_name={self.name!r}, precision={self.precision!r})"


def check_precision(path: Path, precision: Optional[str], quantization: Optional[str]) -> str:
    """The precision a file runs at: ``precision``, or its own when None. ``int8`` needs an INT8
    file, and an INT8 file runs at int8 only; both mistakes are a :class:`UsageError` saying
    what to do."""
    own = "int8" if quantization else "fp32"
    if precision is None:
        return own
    if precision not in PRECISION_HINTS:
        raise UsageError(f"--precision must be fp32, bf16 or int8, got {precision!r}")
    if precision == "int8" and own != "int8":
        raise UsageError(
            f"--precision int8 needs an INT8 file and {path} is float32; write one with: inception-v2 export "
            "--checkpoint F --quantize int8 --calibration-data DIR --out model-int8.onnx "
            "(or --format openvino --out DIR)"
        )
    if own == "int8" and precision != "int8":
        raise UsageError(f"{path} is an INT8 file: it runs at --precision int8, not {precision}")
    return precision


def check_class_count(path: Path, classes: Optional[List[str]], num_classes: Optional[int]) -> None:
    if classes is not None and num_classes is not None and len(classes) != num_classes:
        raise UsageError(f"{path} names {len(classes)} classes but its output has {num_classes}")


def check_finite(path: Path, logits: np.ndarray, runtime: str) -> None:
    if not np.isfinite(logits).all():
        raise UsageError(f"{path}: {runtime} returned non-finite logits (NaN or infinity); the file is broken")


# --------------------------------------------------------------------------- export


def openvino_model(model: nn.Module, image_size: int) -> Any:
    """The deployment copy of ``model`` as an OpenVINO model with input ``images``
    ``N x 3 x S x S`` (``N`` dynamic) and output ``logits``; :class:`UsageError` naming the
    model when OpenVINO cannot take it at that size."""
    ov = import_openvino()
    name = model_name(model)
    program = export_program(deploy_copy(model).float().cpu(), image_size)
    try:
        converted = ov.convert_model(program)
        converted.reshape([ov.Dimension(), 3, image_size, image_size])
    except Exception as e:  # noqa: BLE001 - the converter raises many types
        raise UsageError(
            f"OpenVINO cannot convert {name} at {image_size}x{image_size} ({first_line(e, with_type=True)[:300]}); "
            "try a larger --image-size"
        ) from None
    converted.inputs[0].get_tensor().set_names({"images"})
    converted.outputs[0].get_tensor().set_names({"logits"})
    return converted


def _check_out_folder(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; OpenVINO export writes a folder ({IR_XML} + {IR_BIN})")
    if out.is_dir():
        others = sorted(p.name for p in out.iterdir() if p.name not in (IR_XML, IR_BIN))
        if others:
            raise UsageError(
                f"--out {out} holds other files ({', '.join(others[:3])}); give a new or empty folder, "
                "or an earlier OpenVINO export to replace"
            )
    return out


def write_ir_verified(model: Any, out: PathLike, verify: Callable[[Path], Any]) -> Any:
    """Save ``model`` as ``out/model.xml`` + ``out/model.bin`` in a temporary sibling folder,
    ``verify`` it there, then put it in place of ``out`` (an earlier export there is replaced;
    on any failure nothing changes)."""
    ov = import_openvino()
    out = _check_out_folder(Path(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    try:
        ov.save_model(model, str(tmp / IR_XML), compress_to_fp16=False)
        for f in (tmp / IR_BIN, tmp / IR_XML):
            with open(f, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(f, 0o666 & ~umask)
        os.chmod(tmp, 0o777 & ~umask)
        result = verify(tmp)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old)  # an empty folder: replaced
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


@dataclass(frozen=True)
class OpenVinoExport:
    path: Path
    model_name: str
    image_size: int
    num_classes: int
    max_abs_diff: Dict[int, float]
    tolerance: float
    float32_error: float
    size_bytes: int

    def describe(self) -> str:
        diffs = ", ".join(f"{d:.1e} at batch {b}" for b, d in self.max_abs_diff.items())
        return "\n".join(
            [
                f"wrote {self.path}/{IR_XML} + {IR_BIN} (OpenVINO IR, float32, {self.size_bytes / 1e6:.1f} MB): "
                f"{self.model_name}, input 'images' N x 3 x {self.image_size} x {self.image_size} (N dynamic) -> "
                f"output 'logits' N x {self.num_classes}; class names and preprocessing in its rt_info",
                f"verified with OpenVINO against PyTorch: max-abs difference {diffs} "
                f"(tolerance {self.tolerance:.1e}; PyTorch float32 vs float64: {self.float32_error:.1e})",
            ]
        )


def export_openvino(model: nn.Module, out: PathLike, image_size: Optional[int] = None) -> OpenVinoExport:
    """Write ``model`` as a verified float32 OpenVINO IR folder ``out`` (see the module docstring)."""
    import_openvino()
    out = _check_out_folder(Path(out))
    size = _image_size(model, image_size)
    ref = _reference(model, size)
    converted = openvino_model(model, size)
    set_metadata(converted, export_metadata(model, size))

    def verify(tmp: Path) -> Dict[int, float]:
        runner = OpenVinoClassifier(tmp, precision="fp32")
        if runner.image_size != size or runner.classes != export_metadata(model, size)["classes"]:
            raise CheckFailedError(f"{out}: the written IR's metadata does not read back as written")
        return _compare(runner, ref, "the OpenVINO model")

    diffs = write_ir_verified(converted, out, verify)
    num_classes = int(ref.logits[VERIFY_BATCH_SIZES[0]].shape[1])
    name = model_name(model)
    size_bytes = sum(f.stat().st_size for f in (out / IR_XML, out / IR_BIN))
    return OpenVinoExport(out, name, size, num_classes, diffs, ref.tolerance, ref.float32_error, size_bytes)


# --------------------------------------------------------------------------- INT8 (NNCF)


@contextlib.contextmanager
def _quiet_nncf() -> Any:
    """NNCF prints progress bars (rich) and logs advice; our own messages say what happened."""
    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def nncf_quantize(model: Any, calibration: Iterable[torch.Tensor]) -> Tuple[Any, int]:
    """``model`` quantized by NNCF's post-training quantization (default preset: symmetric 8-bit
    weights per channel, 8-bit activations), its ranges measured on the ``calibration`` batches
    (normalized ``N x 3 x S x S``; fed one image at a time, as NNCF advises). Returns the model
    and the number of calibration images.

    Activation ranges are the smallest and largest value over all calibration images (``MINMAX``,
    the rule of the ONNX INT8 path), not NNCF's default for per-tensor activations, the mean over
    images of each image's own extremes (``MEAN_MINMAX``), which clips every image's largest
    activations. With the default, INT8 ``inception_v2`` (trained one epoch) made the same
    prediction as float32 on 88.4% of a 1,914-crop held-out set; with ``MINMAX``, on 96.3%
    (``benchmarks/RESULTS.md``)."""
    nncf = import_nncf()
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    images = [x[None] for batch in calibration for x in batch.detach().to("cpu", torch.float32).numpy()]
    if not images:
        raise UsageError("INT8 calibration got no images")
    ranges = AdvancedQuantizationParameters(activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)
    with _quiet_nncf():
        quantized = nncf.quantize(
            model.clone(), nncf.Dataset(images), subset_size=len(images), advanced_parameters=ranges
        )
    return quantized, len(images)


@dataclass(frozen=True)
class OpenVinoInt8(Top1Change):
    path: Path
    model_name: str
    image_size: int
    calibration_images: int
    val_images: int
    float_top1: float
    int8_top1: float
    agreement: float
    max_drop: float
    float_diffs: Dict[int, float]
    size_bytes: int
    seconds: float

    def describe(self) -> str:
        diffs = ", ".join(f"{d:.1e} at batch {b}" for b, d in self.float_diffs.items())
        return "\n".join(
            [
                f"float32 OpenVINO model verified against PyTorch: max-abs difference {diffs}",
                f"NNCF calibrated on {self.calibration_images} train images; {self.top1_line()}",
                f"wrote {self.path}/{IR_XML} + {IR_BIN} (OpenVINO IR int8, {self.size_bytes / 1e6:.1f} MB): "
                f"{self.model_name}, input 'images' N x 3 x {self.image_size} x {self.image_size} (N dynamic) "
                f"in {self.seconds:.0f} s",
            ]
        )


class _InMemory(OpenVinoClassifier):
    """An OpenVINO model held in memory (the float and INT8 models while the gate runs)."""

    def __init__(self, model: Any, meta: Dict[str, Any], where: Path, precision: str) -> None:
        self.path, self.kind = where, "OpenVINO IR"
        self._setup(model, meta, precision, None)


def export_openvino_int8(
    model: nn.Module,
    out: PathLike,
    calibration: Callable[[], Iterable[torch.Tensor]],
    validation: Callable[[], Iterable[Tuple[torch.Tensor, torch.Tensor]]],
    image_size: Optional[int] = None,
    max_drop: float = DEFAULT_MAX_DROP,
    progress: bool = False,
) -> OpenVinoInt8:
    """An INT8 OpenVINO IR folder ``out``: the float model, verified against PyTorch, quantized by
    NNCF on the ``calibration()`` batches; kept only when its top-1 on ``validation()``
    (``(images, labels)`` batches) is within ``max_drop`` points of float32's, else
    :class:`CheckFailedError` and nothing is written."""
    if not (max_drop >= 0):  # also refuses NaN
        raise UsageError(f"--max-drop must be >= 0 (top-1 points), got {max_drop}")
    import_openvino()
    import_nncf()
    start = time.perf_counter()
    out = _check_out_folder(Path(out))
    size = _image_size(model, image_size)
    ref = _reference(model, size)
    meta = export_metadata(model, size)
    converted = openvino_model(model, size)
    float_runner = _InMemory(converted, meta, out, "fp32")
    diffs = _compare(float_runner, ref, "the OpenVINO model")
    quantized, n_cal = nncf_quantize(converted, calibration())
    int8_runner = _InMemory(quantized, dict(meta, quantization="int8"), out, "int8")
    f_top1, q_top1, agreement, n_val = gate_top1(float_runner, int8_runner, validation(), max_drop, out, progress)
    int8_meta = {"quantization": "int8", "calibration_images": n_cal}
    int8_meta.update(val_top1_float32=round(f_top1, 6), val_top1_int8=round(q_top1, 6))
    set_metadata(quantized, dict(meta, **int8_meta))

    def verify(tmp: Path) -> None:
        runner = OpenVinoClassifier(tmp)
        if runner.quantization != "int8" or runner.classes != meta["classes"] or runner.image_size != size:
            raise CheckFailedError(f"{out}: the written IR's metadata does not read back as written")
        for b in VERIFY_BATCH_SIZES:  # the dynamic batch survived quantization; finite logits
            if tuple(runner(torch.zeros(b, 3, size, size)).shape) != (b, float_runner.num_classes):
                raise CheckFailedError(f"{out}: the INT8 model returned wrongly shaped logits for a batch of {b}")

    write_ir_verified(quantized, out, verify)
    size_bytes = sum(f.stat().st_size for f in (out / IR_XML, out / IR_BIN))
    name = model_name(model)
    return OpenVinoInt8(
        out, name, size, n_cal, n_val, f_top1, q_top1, agreement, max_drop, diffs, size_bytes,
        time.perf_counter() - start,
    )  # fmt: skip


def export_openvino_int8_from_prepared(
    model: nn.Module,
    out: PathLike,
    prepared: PathLike,
    calibration_images: int = DEFAULT_CALIBRATION_IMAGES,
    image_size: Optional[int] = None,
    max_drop: float = DEFAULT_MAX_DROP,
    progress: bool = False,
) -> OpenVinoInt8:
    """:func:`export_openvino_int8` calibrated on ``calibration_images`` train images of the
    prepared folder ``prepared`` and checked on its val split (as the ONNX INT8 path)."""
    cfg, calibration, val = calibration_sets(model, prepared, calibration_images, image_size)
    return export_openvino_int8(model, out, calibration, val, cfg.input_size, max_drop, progress)
