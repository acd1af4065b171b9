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
  (:class:`TorchScriptClassifier`); names from its ``meta.json``. A TorchScript file is code
  and is refused unless the caller trusts it (``trust_file=True``, ``--trust-file``);
* an OpenVINO IR (a folder with ``model.xml`` + ``model.bin``, or an ``.xml``): OpenVINO
  (:class:`~inception_v2.deploy.openvino.OpenVinoClassifier`), which also runs ``.onnx`` files
  and checkpoints with ``runtime="openvino"``; names from its ``rt_info``.

Which runtime runs a file, at which precision: :mod:`inception_v2.deploy.runtime`. A ``.pt2``
archive is checked before ``torch.export.load`` sees it, so that no pickle in it is ever
unpickled unchecked (:mod:`inception_v2.formats.untrusted`).

Each returned object is called on a normalized float32 batch ``N x 3 x S x S`` (the model's
eval transform, :func:`inception_v2.data.eval_transform` of its ``data_config``) and returns
float32 logits ``N x num_classes`` on :attr:`device`. Each has ``classes`` (index = label, or
None when the file does not name them), ``data_config``, ``name``, ``num_classes``, ``device``
and ``kind`` (a short description: ``checkpoint``, ``ONNX int8``...). See ``docs/deployment.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import torch

from inception_v2.deploy.export import read_pt2, read_torchscript
from inception_v2.deploy.inference import (
    OnnxClassifier,
    import_onnxruntime,
    metadata_data_config,
    prepare_for_inference,
    resolve_device,
)
from inception_v2.deploy.load import load_model
from inception_v2.deploy.openvino import OpenVinoClassifier, check_precision, ir_file
from inception_v2.deploy.runtime import select, torch_amp
from inception_v2.errors import UsageError
from inception_v2.formats.schema import validate_normalization
from inception_v2.formats.untrusted import is_torchscript, refuse_untrusted_code
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
        validate_normalization(meta.get("mean") or (0.5,) * 3, meta.get("std") or (0.5,) * 3, f"{path} (metadata)")
        try:
            self.image_size = int(meta["image_size"])
            self.data_config = metadata_data_config(meta, self.image_size)
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
    """A TorchScript file written by ``inception-v2 export --format torchscript`` (legacy).
    A TorchScript file runs its own code, so it is refused unless ``trust_file``."""

    kind = "TorchScript"

    def __init__(self, path: PathLike, device: Union[str, torch.device] = "cpu", trust_file: bool = False) -> None:
        path, dev = Path(path), resolve_device(device)
        module, meta = read_torchscript(path, trust_file=trust_file)
        super().__init__(path, module.to(dev).eval(), meta, dev)


class CheckedClassifier:
    """A runner whose every answer is checked before anyone reads it: logits shaped
    ``N x len(classes)`` for ``N`` images, all finite. A file whose metadata names more or
    fewer classes than its outputs, or whose outputs are NaN or infinite (a broken or crafted
    file), raises :class:`UsageError` naming the file instead of printing a wrong answer. Every
    other attribute is the wrapped runner's (:attr:`runner`)."""

    def __init__(self, runner: Any, path: Path) -> None:
        self.runner = runner
        self.path = path

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["runner"], name)

    def __call__(self, images: Any) -> torch.Tensor:
        logits = self.runner(images)
        check_logits(logits, len(images), len(self.runner.classes), self.path)
        return logits

    def __repr__(self) -> str:
        return repr(self.runner)


def check_logits(logits: torch.Tensor, n_images: int, n_classes: int, path: PathLike) -> None:
    """:class:`UsageError` naming ``path`` unless ``logits`` is ``n_images x n_classes`` and finite."""
    if logits.dim() != 2 or tuple(logits.shape) != (n_images, n_classes):
        raise UsageError(
            f"{path}: the model returned outputs shaped {tuple(logits.shape)} for {n_images} image(s), "
            f"but its metadata names {n_classes} classes"
        )
    if not bool(torch.isfinite(logits).all()):
        raise UsageError(f"{path}: the model returned non-finite outputs (NaN or infinity); the file is broken")


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
    """The runner of ``path`` under ``runtime`` at ``precision`` (None: the file's own); a
    TorchScript file only once :func:`runner_for` has checked that the caller trusts it."""
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
        runner = ProgramClassifier(path, device) if fmt == "pt2" else TorchScriptClassifier(path, device, True)
        runner.precision = "fp32"
    runner.runtime = runtime
    return runner


def runner_for(
    path: PathLike,
    device: Union[str, torch.device] = "auto",
    runtime: str = "auto",
    precision: Optional[str] = None,
    trust_file: bool = False,
) -> Any:
    """:func:`load_classifier` without its class-name checks (a benchmark's untrained file)."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    if not path.is_dir() and not path.is_file():  # a FIFO or a device: reading it could block forever
        raise UsageError(f"{path} is not a regular file or a folder (a pipe, socket or device)")
    fmt = file_format(path)
    if fmt == "torchscript" and not trust_file:
        refuse_untrusted_code(path, trust_file)
    cuda = str(device) != "cpu" and resolve_device(device).type == "cuda"
    return select(path, fmt, runtime, precision, cuda, lambda rt, p: _build(path, fmt, device, rt, p))


def load_classifier(
    path: PathLike,
    device: Union[str, torch.device] = "auto",
    runtime: str = "auto",
    precision: Optional[str] = None,
    trust_file: bool = False,
) -> Any:
    """The model in ``path``, ready to classify normalized batches (see the module docstring):
    a checkpoint, a release folder, an ``.onnx`` file (float or INT8), an OpenVINO IR, a
    ``.pt2`` program or a TorchScript file. ``device``: ``auto`` (CUDA when available), ``cpu``,
    ``cuda``, ``cuda:N``. ``runtime`` (``auto``, ``torch``, ``onnxruntime``, ``openvino``) and
    ``precision`` (None: the file's own; ``fp32``, ``bf16``, ``int8``): see
    :mod:`inception_v2.deploy.runtime`; the runner says what ran in ``runtime``, ``precision``
    and ``runtime_choice``. A file that names no classes is refused (``evaluate`` and
    ``predict`` need them): export it from a checkpoint. A TorchScript file runs its own code and
    is refused unless ``trust_file`` (:mod:`inception_v2.formats.untrusted`). The returned runner
    checks every answer (:class:`CheckedClassifier`)."""
    runner = runner_for(path, device, runtime, precision, trust_file)
    if not runner.classes:
        raise UsageError(f"{path} does not name its classes in its metadata (export it with --checkpoint)")
    num = getattr(runner, "num_classes", None)
    if num is not None and int(num) != len(runner.classes):
        raise UsageError(f"{path} names {len(runner.classes)} classes in its metadata for a {num}-class model")
    return CheckedClassifier(runner, path)
