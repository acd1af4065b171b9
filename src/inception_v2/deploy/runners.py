"""One loader for every deployed form of a model: :func:`load_classifier`.

``evaluate`` and ``predict`` take any of these, and so can any caller:

* a training checkpoint: ``load_model`` then
  :func:`~inception_v2.deploy.inference.prepare_for_inference`; class names from the checkpoint;
* a release folder (``DIR/model.safetensors`` + ``DIR/config.json``): the same; names from
  ``config.json``;
* ``.onnx`` (float or INT8): ONNX Runtime (:class:`~inception_v2.deploy.inference.OnnxClassifier`);
  names from ``metadata_props``;
* ``.pt2``: ``torch.export.load(path).module()`` (:class:`ProgramClassifier`); names from the
  sidecar ``PATH.json`` (or the copy inside the archive);
* TorchScript (legacy; any suffix, recognized by its content): ``torch.jit.load``
  (:class:`TorchScriptClassifier`); names from its ``meta.json``;
* an OpenVINO IR (a folder with ``model.xml`` + ``model.bin``, or an ``.xml``): OpenVINO
  (:class:`~inception_v2.deploy.openvino.OpenVinoClassifier`), which also runs ``.onnx`` files
  and checkpoints with ``runtime="openvino"``; names from its ``rt_info``.

Which runtime runs a file, at which precision: :mod:`inception_v2.deploy.runtime`.

Each returned object is called on a normalized float32 batch ``N x 3 x S x S`` (the model's
eval transform, :func:`inception_v2.data.eval_transform` of its ``data_config``) and returns
float32 logits ``N x num_classes`` on :attr:`device`. Each has ``classes`` (index = label, or
None when the file does not name them), ``data_config``, ``name``, ``num_classes``, ``device``
and ``kind`` (a short description: ``checkpoint``, ``ONNX int8``...). See ``docs/deployment.md``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import torch

from inception_v2.deploy.export import read_pt2, read_torchscript
from inception_v2.deploy.inference import OnnxClassifier, import_onnxruntime, prepare_for_inference, resolve_device
from inception_v2.deploy.load import load_model
from inception_v2.deploy.openvino import OpenVinoClassifier, check_precision, ir_file
from inception_v2.deploy.runtime import select, torch_amp
from inception_v2.errors import UsageError
from inception_v2.models.registry import DataConfig

PathLike = Union[str, "os.PathLike[str]"]


def _check_batch(x: torch.Tensor, size: int, path: Path) -> None:
    want = (3, size, size)
    if x.dim() != 4 or tuple(x.shape[1:]) != want:
        raise ValueError(f"{path.name} expects a batch shaped N x {' x '.join(map(str, want))}, got {tuple(x.shape)}")


class _ExportedClassifier:
    """A ``torch.export`` or TorchScript module with the metadata written next to / inside it."""

    kind = "exported"

    def __init__(self, path: Path, module: Any, meta: Dict[str, Any], device: torch.device) -> None:
        self.path = path
        self.device = device
        self.module = module
        try:
            self.image_size = int(meta["image_size"])
            self.data_config = DataConfig(
                input_size=self.image_size,
                resize_size=int(meta.get("resize_size") or self.image_size),
                min_input_size=self.image_size,
                mean=tuple(meta.get("mean") or (0.5,) * 3),
                std=tuple(meta.get("std") or (0.5,) * 3),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"{path}: its metadata lacks a valid image_size / resize_size ({e})") from None
        classes = meta.get("classes")
        self.classes: Optional[List[str]] = [str(c) for c in classes] if isinstance(classes, list) else None
        self.name: Optional[str] = meta.get("model_name")
        num = meta.get("num_classes")
        self.num_classes: Optional[int] = int(num) if num is not None else (len(self.classes) if self.classes else None)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        _check_batch(images, self.image_size, self.path)
        with torch.inference_mode():
            return self.module(images.to(self.device, torch.float32)).float()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, model_name={self.name!r}, image_size={self.image_size})"


class ProgramClassifier(_ExportedClassifier):
    """A ``.pt2`` file written by ``inception-v2 export --format pt2`` (``torch.export``)."""

    kind = "torch.export"

    def __init__(self, path: PathLike, device: Union[str, torch.device] = "cpu") -> None:
        path, dev = Path(path), resolve_device(device)
        program, meta = read_pt2(path)
        super().__init__(path, program.module().to(dev), meta, dev)


class TorchScriptClassifier(_ExportedClassifier):
    """A TorchScript file written by ``inception-v2 export --format torchscript`` (legacy)."""

    kind = "TorchScript"

    def __init__(self, path: PathLike, device: Union[str, torch.device] = "cpu") -> None:
        path, dev = Path(path), resolve_device(device)
        module, meta = read_torchscript(path)
        super().__init__(path, module.to(dev).eval(), meta, dev)


def is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip with ``constants.pkl`` and ``code/``),
    as opposed to a ``torch.save`` checkpoint (a zip with ``data.pkl`` only)."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def _onnx_providers(device: str) -> Optional[Sequence[str]]:
    if device == "auto":
        return None  # CUDA when this build has it, else the CPU
    dev = resolve_device(device)
    if dev.type == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in import_onnxruntime().get_available_providers():
        raise UsageError(f"--device {device}: this ONNX Runtime build has no CUDA provider (onnxruntime-gpu)")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def file_format(path: Path) -> str:
    """What ``path`` holds: ``checkpoint``, ``release folder``, ``onnx``, ``openvino`` (an IR
    folder or ``.xml``), ``pt2`` or ``torchscript``."""
    if ir_file(path) is not None:
        return "openvino"
    if path.is_dir():
        return "release folder"
    suffix = path.suffix.lower()
    if suffix in (".onnx", ".pt2"):
        return suffix[1:]
    return "torchscript" if is_torchscript(path) else "checkpoint"


def _build(path: Path, fmt: str, device: Union[str, torch.device], runtime: str, precision: Optional[str]) -> Any:
    """The runner of ``path`` under ``runtime`` at ``precision`` (None: the file's own)."""
    if runtime == "openvino":
        if str(device) not in ("auto", "cpu"):
            raise UsageError(f"OpenVINO runs on the CPU here: --runtime openvino takes --device cpu, not {device}")
        if fmt in ("checkpoint", "release folder"):
            return OpenVinoClassifier.from_torch(load_model(path), path, precision)
        return OpenVinoClassifier(path, precision)
    if runtime == "onnxruntime":
        if precision == "bf16":
            raise UsageError("ONNX Runtime runs .onnx files at float32 or int8; bf16 needs --runtime openvino")
        runner = OnnxClassifier(path, providers=_onnx_providers(str(device)))
        runner.precision = check_precision(path, precision, runner.quantization)
    elif fmt in ("checkpoint", "release folder"):
        dev = resolve_device(device)
        amp = torch_amp(path, dev, precision, fmt)
        runner = prepare_for_inference(load_model(path), dev, amp=amp)
        runner.kind, runner.precision = fmt, "bf16" if runner.amp_dtype is not None else "fp32"
    else:
        torch_amp(path, resolve_device(device), precision, fmt)
        runner = ProgramClassifier(path, device) if fmt == "pt2" else TorchScriptClassifier(path, device)
        runner.precision = "fp32"
    runner.runtime = runtime
    return runner


def runner_for(
    path: PathLike,
    device: Union[str, torch.device] = "auto",
    runtime: str = "auto",
    precision: Optional[str] = None,
) -> Any:
    """:func:`load_classifier` without its class-name check (a benchmark's untrained file)."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    fmt = file_format(path)
    cuda = str(device) != "cpu" and resolve_device(device).type == "cuda"
    return select(path, fmt, runtime, precision, cuda, lambda rt, p: _build(path, fmt, device, rt, p))


def load_classifier(
    path: PathLike,
    device: Union[str, torch.device] = "auto",
    runtime: str = "auto",
    precision: Optional[str] = None,
) -> Any:
    """The model in ``path``, ready to classify normalized batches (see the module docstring):
    a checkpoint, a release folder, an ``.onnx`` file (float or INT8), an OpenVINO IR, a
    ``.pt2`` program or a TorchScript file. ``device``: ``auto`` (CUDA when available), ``cpu``,
    ``cuda``, ``cuda:N``. ``runtime`` (``auto``, ``torch``, ``onnxruntime``, ``openvino``) and
    ``precision`` (None: the file's own; ``fp32``, ``bf16``, ``int8``): see
    :mod:`inception_v2.deploy.runtime`; the runner says what ran in ``runtime``, ``precision``
    and ``runtime_choice``. A file that names no classes is refused (``evaluate`` and
    ``predict`` need them): export it from a checkpoint."""
    runner = runner_for(path, device, runtime, precision)
    if not runner.classes:
        raise UsageError(f"{path} does not name its classes in its metadata (export it with --checkpoint)")
    return runner
