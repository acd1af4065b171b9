"""The fast inference path, and running an exported ONNX file.

* :func:`prepare_for_inference` turns a trained model into a deployment copy: BatchNorm folded
  into the convolutions (:func:`inception_v2.deploy.fuse.fuse_conv_bn`), auxiliary heads dropped,
  channels_last memory format, and on CUDA bfloat16 autocast. ``evaluate`` and ``predict`` run
  through it.
* :class:`OnnxClassifier` runs a file written by ``inception-v2 export --format onnx`` with
  ONNX Runtime (an optional dependency: ``pip install 'inception-v2[onnx]'``) and exposes the
  preprocessing stored in the file's metadata.

Both take a normalized float32 ``N x 3 x S x S`` batch (the model's eval transform) and return
float32 logits ``N x num_classes``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from inception_v2.deploy.fuse import fuse_conv_bn
from inception_v2.errors import UsageError
from inception_v2.formats.schema import validate_normalization
from inception_v2.models.registry import DataConfig

ONNX_INSTALL_HINT = "pip install 'inception-v2[onnx]'"

# Attributes of our models that describe them rather than compute anything; copied onto the
# deployment wrapper so that callers can read them from either.
_DESCRIPTIVE_ATTRIBUTES = ("name", "data_config", "num_classes", "classes")


class InferenceModel(nn.Module):
    """A deployment copy of a classifier: ``forward`` moves the batch to ``device`` in the
    model's memory format, runs it (under bfloat16 autocast when ``amp_dtype`` is set) and
    returns float32 logits. Built by :func:`prepare_for_inference`."""

    def __init__(
        self,
        model: nn.Module,
        device: torch.device,
        channels_last: bool,
        amp_dtype: Optional[torch.dtype],
    ) -> None:
        super().__init__()
        self.model = model
        self.device = device
        self.channels_last = channels_last
        self.amp_dtype = amp_dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, torch.float32, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
        ):
            logits = self.model(x)
        return logits.float()


def resolve_device(device: Union[str, torch.device]) -> torch.device:
    """``auto`` = CUDA when available, else the CPU; a CUDA device that is not there is a
    :class:`UsageError`."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine")
    return dev


def deploy_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` as it is deployed: BatchNorm folded, auxiliary heads
    (never run by ``forward``) removed, gradients off. Shared by :func:`prepare_for_inference`
    and the exporters."""
    fused = fuse_conv_bn(model)
    if isinstance(getattr(fused, "aux_heads", None), nn.ModuleDict):
        fused.aux_heads = nn.ModuleDict()
    fused.requires_grad_(False)
    return fused


def prepare_for_inference(
    model: nn.Module,
    device: Union[torch.device, str] = "cpu",
    *,
    channels_last: bool = True,
    amp: Optional[bool] = None,
    compile: bool = False,
) -> nn.Module:
    """A deployment copy of ``model`` on ``device``; ``model`` itself is not changed.

    BatchNorm is folded into the preceding convolutions and the auxiliary heads are dropped
    (:func:`deploy_copy`), the weights use the channels_last memory format, and the forward
    pass runs under bfloat16 autocast when ``amp`` (default: on for CUDA, off elsewhere). The
    returned module maps a normalized float32 ``N x 3 x S x S`` batch, on any device, to
    float32 logits on ``device``; it is in eval mode and has ``name``, ``data_config``,
    ``num_classes`` and ``classes`` of ``model`` where ``model`` has them. Call it under
    ``torch.inference_mode()``. ``compile=True`` wraps the network in ``torch.compile``
    (the first batch of each shape then takes a while).
    """
    device = torch.device(device)
    if amp is None:
        amp = device.type == "cuda"
    net = deploy_copy(model).to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if compile:
        net = torch.compile(net)
    wrapper = InferenceModel(net, device, channels_last, torch.bfloat16 if amp else None)
    for attr in _DESCRIPTIVE_ATTRIBUTES:
        if hasattr(model, attr):
            setattr(wrapper, attr, getattr(model, attr))
    return wrapper.eval()


# --------------------------------------------------------------------------- ONNX Runtime


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise UsageError(
            f"running an .onnx file needs ONNX Runtime, which is not installed; install it with: {ONNX_INSTALL_HINT}"
        ) from None
    return onnxruntime


def _json_meta(meta: Dict[str, str], key: str, path: Path) -> Any:
    try:
        return json.loads(meta[key]) if key in meta else None
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: metadata {key!r} is not valid JSON ({e})") from None


def metadata_data_config(meta: Dict[str, Any], image_size: int) -> DataConfig:
    """The evaluation preprocessing an exported file's metadata describes (mean and std 0.5 when
    it names none, as a foreign file's are unknown)."""
    return DataConfig(
        input_size=image_size,
        resize_size=int(meta.get("resize_size") or image_size),
        min_input_size=image_size,
        mean=tuple(meta.get("mean") or (0.5,) * 3),
        std=tuple(meta.get("std") or (0.5,) * 3),
    )


def batch_array(images: Union[torch.Tensor, np.ndarray], image_size: int, name: str) -> np.ndarray:
    """A batch ``N x 3 x S x S`` as a contiguous float32 array for a runtime outside PyTorch;
    ``ValueError`` naming ``name`` for another shape."""
    if isinstance(images, torch.Tensor):
        images = images.detach().to("cpu", torch.float32).numpy()
    x = np.ascontiguousarray(images, dtype=np.float32)
    want = (3, image_size, image_size)
    if x.ndim != 4 or tuple(x.shape[1:]) != want:
        raise ValueError(f"{name} expects a batch shaped N x {' x '.join(map(str, want))}, got {tuple(x.shape)}")
    return x


def run_in_batches(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch_size: Optional[int]) -> np.ndarray:
    """``run(x)``; for a graph with a fixed batch (a foreign file), batch by batch, the last one
    padded with zeros and its padding's outputs dropped."""
    if batch_size is None or len(x) == batch_size:
        return run(x)
    parts = []
    for start in range(0, len(x), batch_size):
        chunk = x[start : start + batch_size]
        pad = batch_size - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.float32)])
        parts.append(run(chunk)[: batch_size - pad])
    return np.concatenate(parts)


class OnnxClassifier:
    """An ONNX file written by ``inception-v2 export``, run with ONNX Runtime.

    Call it on a normalized float32 ``N x 3 x S x S`` batch (torch tensor or numpy array) to
    get float32 logits as a CPU torch tensor. The preprocessing the model expects comes from
    the file's metadata (``metadata_props``): ``image_size`` (else the graph's input shape),
    ``resize_size``, ``mean``, ``std``, ``model_name`` and ``classes`` (``None`` when the file
    does not name them); :attr:`data_config` bundles them like a model's. ``quantization`` is
    ``"int8"`` for a file written by ``export --quantize int8`` (else ``None``).

    ``providers`` defaults to CUDA when this ONNX Runtime build has it, else CPU;
    ``threads`` sets ONNX Runtime's intra-op threads (default: its own choice).
    """

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]"],
        providers: Optional[Sequence[str]] = None,
        threads: Optional[int] = None,
    ) -> None:
        ort = import_onnxruntime()
        self.path = Path(path)
        if self.path.is_dir():
            raise UsageError(f"{self.path} is a folder, not an ONNX file")
        if not self.path.is_file():
            raise UsageError(f"ONNX file not found: {self.path}")
        if providers is None:
            available = ort.get_available_providers()
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=list(providers))
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise UsageError(f"{self.path}: ONNX Runtime cannot load it ({str(e).splitlines()[0]})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise UsageError(f"{self.path}: expected one input and one output, found {len(inputs)} and {len(outputs)}")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        shape = inputs[0].shape  # e.g. ['batch', 3, 299, 299]
        self.batch_size: Optional[int] = shape[0] if len(shape) == 4 and isinstance(shape[0], int) else None
        meta = self.session.get_modelmeta().custom_metadata_map
        graph_size = shape[-1] if len(shape) == 4 and isinstance(shape[-1], int) else None
        try:
            self._read_metadata(meta, graph_size)
        except (TypeError, ValueError) as e:
            if isinstance(e, UsageError):
                raise
            raise UsageError(f"{self.path}: its metadata is malformed ({e})") from None
        self.device = torch.device("cpu")  # the logits come back as CPU tensors
        out_shape = outputs[0].shape
        graph_classes = out_shape[-1] if len(out_shape) == 2 and isinstance(out_shape[-1], int) else None
        if graph_classes is not None and self.classes is not None and len(self.classes) != graph_classes:
            raise UsageError(
                f"{self.path}: its metadata names {len(self.classes)} classes but its output has {graph_classes}"
            )
        self.num_classes: Optional[int] = graph_classes or (len(self.classes) if self.classes else None)

    def _read_metadata(self, meta: Dict[str, str], graph_size: Optional[int]) -> None:
        """The preprocessing and names from ``metadata_props`` (see the class docstring); an
        ``image_size`` that contradicts the graph's fixed input is refused."""
        image_size = _json_meta(meta, "image_size", self.path) or graph_size
        if image_size is None:
            raise UsageError(f"{self.path}: no image_size in its metadata and no fixed input size")
        if graph_size is not None and int(image_size) != graph_size:
            raise UsageError(
                f"{self.path}: its metadata says image_size {image_size} but its graph takes {graph_size} pixels"
            )
        self.image_size: int = int(image_size)
        self.resize_size: int = int(_json_meta(meta, "resize_size", self.path) or self.image_size)
        self.mean: List[float] = [float(v) for v in _json_meta(meta, "mean", self.path) or (0.5, 0.5, 0.5)]
        self.std: List[float] = [float(v) for v in _json_meta(meta, "std", self.path) or (0.5, 0.5, 0.5)]
        validate_normalization(self.mean, self.std, f"{self.path} (metadata)")
        self.model_name: Optional[str] = meta.get("model_name")
        self.quantization: Optional[str] = _json_meta(meta, "quantization", self.path)
        classes = _json_meta(meta, "classes", self.path)
        if classes is not None and not isinstance(classes, list):
            raise UsageError(f"{self.path}: its metadata 'classes' is not a list")
        self.classes: Optional[List[str]] = [str(c) for c in classes] if classes is not None else None

    @property
    def name(self) -> Optional[str]:
        return self.model_name

    @property
    def kind(self) -> str:
        """``ONNX``, or ``ONNX int8`` for a quantized file."""
        return f"ONNX {self.quantization}" if self.quantization else "ONNX"

    @property
    def data_config(self) -> DataConfig:
        """The preprocessing as a :class:`DataConfig` (its ``min_input_size`` is the fixed
        input size: an exported graph takes exactly ``image_size`` pixels)."""
        return DataConfig(
            input_size=self.image_size,
            resize_size=self.resize_size,
            min_input_size=self.image_size,
            mean=tuple(self.mean),
            std=tuple(self.std),
        )

    def __call__(self, images: Union[torch.Tensor, np.ndarray]) -> torch.Tensor:
        x = batch_array(images, self.image_size, self.path.name)
        return torch.from_numpy(run_in_batches(self._run, x, self.batch_size))

    def _run(self, x: np.ndarray) -> np.ndarray:
        try:
            (logits,) = self.session.run([self.output_name], {self.input_name: x})
        except Exception as e:  # noqa: BLE001 - onnxruntime's own error types: the file cannot run this input
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise UsageError(f"{self.path}: ONNX Runtime cannot run it on a batch of {len(x)} ({first})") from None
        return np.asarray(logits, dtype=np.float32)

    def __repr__(self) -> str:
        return (
            f"OnnxClassifier({str(self.path)!r}, model_name={self.model_name!r}, "
            f"image_size={self.image_size}, classes={len(self.classes) if self.classes else None})"
        )
