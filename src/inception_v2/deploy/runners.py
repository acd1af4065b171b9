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
  (:class:`TorchScriptClassifier`); names from its ``meta.json``.

Each returned object is called on a normalized float32 batch ``N x 3 x S x S`` (the model's
eval transform, :func:`inception_v2.data.eval_transform` of its ``data_config``) and returns
float32 logits ``N x num_classes`` on :attr:`device`. Each has ``classes`` (index = label, or
None when the file does not name them), ``data_config``, ``name``, ``num_classes``, ``device``
and ``kind`` (a short description: ``checkpoint``, ``ONNX int8``...). See ``docs/deployment.md``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import torch

from inception_v2.deploy.export import read_pt2, read_torchscript
from inception_v2.deploy.inference import OnnxClassifier, import_onnxruntime, prepare_for_inference, resolve_device
from inception_v2.deploy.load import load_model
from inception_v2.errors import UsageError
from inception_v2.models.registry import DataConfig
from inception_v2.paths import PathLike


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


def load_classifier(path: PathLike, device: Union[str, torch.device] = "auto") -> Any:
    """The model in ``path``, ready to classify normalized batches (see the module docstring):
    a checkpoint, a release folder, an ``.onnx`` file (float or INT8), a ``.pt2`` program or a
    TorchScript file. ``device``: ``auto`` (CUDA when available), ``cpu``, ``cuda``,
    ``cuda:N``. A file that names no classes is refused (``evaluate`` and ``predict`` need
    them): export it from a checkpoint."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    suffix = path.suffix.lower()
    if path.is_dir():
        runner = prepare_for_inference(load_model(path), resolve_device(device))  # a release folder
        runner.kind = "release folder"
    elif suffix == ".onnx":
        runner = OnnxClassifier(path, providers=_onnx_providers(str(device)))
    elif suffix == ".pt2":
        runner = ProgramClassifier(path, device)
    elif is_torchscript(path):
        runner = TorchScriptClassifier(path, device)
    else:
        runner = prepare_for_inference(load_model(path), resolve_device(device))
        runner.kind = "checkpoint"
    if not runner.classes:
        raise UsageError(f"{path} does not name its classes in its metadata (export it with --checkpoint)")
    return runner
