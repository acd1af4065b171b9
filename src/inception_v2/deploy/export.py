"""``inception-v2 export``: a model as an ONNX, ``torch.export`` or TorchScript file, checked
against PyTorch.

What is exported is the deployment copy of the model (:func:`inception_v2.deploy.inference.deploy_copy`:
eval mode, BatchNorm folded into the convolutions, no auxiliary head), captured on a fixed
``S x S`` input with a dynamic batch dimension:

* ONNX: input ``images`` (``N x 3 x S x S`` float32, normalized as the model's data config),
  output ``logits`` (``N x num_classes`` float32). Written by PyTorch's dynamo-based exporter
  (``torch.onnx.export(..., dynamo=True)``: ``torch.export`` then ``onnxscript``) when
  ``onnxscript`` is installed and the opset is 18 or newer, else by the TorchScript-based one
  (``dynamo=False``); :attr:`ExportResult.exporter` says which. The file's ``metadata_props``
  hold ``model_name`` (plain text) and, JSON-encoded, ``classes`` (a list, or null for an
  untrained model), ``num_classes``, ``image_size``, ``resize_size``, ``mean`` and ``std``.
* pt2: a ``torch.export`` program (``torch.export.save``; run it with
  ``torch.export.load(path).module()``). The same fields are written as JSON to the sidecar file
  ``PATH.json`` (:func:`pt2_sidecar`) and embedded in the archive as the extra file ``meta.json``.
* TorchScript (legacy: deprecated upstream): ``torch.jit.trace`` of the same copy; the same
  fields are stored as the extra file ``meta.json``
  (``torch.jit.load(path, _extra_files={"meta.json": ""})``).

The file is written next to its destination under a temporary name, loaded back (ONNX Runtime,
``torch.export.load`` or ``torch.jit.load``) and run on random input at two batch sizes; only
when its logits agree with the original PyTorch model's (float32, eval mode, BatchNorm not
folded) within :func:`parity_tolerance` (1e-4 max-abs for logits of order 1) is it renamed onto
the destination. Otherwise :class:`ParityError` is raised and nothing is left behind.
See ``docs/deployment.md``.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import logging
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, NamedTuple, Optional, Tuple

import torch
from torch import nn

from inception_v2.atomic import remove_stale_temps, temp_file, write_json
from inception_v2.deploy.inference import ONNX_INSTALL_HINT, OnnxClassifier, deploy_copy, import_onnxruntime
from inception_v2.errors import CheckFailedError, UsageError, first_line
from inception_v2.formats.state_dict import model_name
from inception_v2.formats.untrusted import check_pt2_archive, read_model_file, refuse_untrusted_code
from inception_v2.paths import PathLike
from inception_v2.version import __version__

logger = logging.getLogger(__name__)

FORMATS = ("onnx", "pt2", "torchscript")
INPUT_NAME = "images"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 18  # the dynamo-based exporter's own opset; read by ONNX Runtime 1.14 and newer
MIN_OPSET, MAX_OPSET = 11, 23
DYNAMO_MIN_OPSET = 18  # the dynamo-based exporter writes opset 18 and newer ...
TORCHSCRIPT_MAX_OPSET = 20  # ... the TorchScript-based one up to 20
ONNX_EXPORTERS = ("auto", "dynamo", "torchscript")
TORCHSCRIPT_META = "meta.json"
PT2_META = "meta.json"  # the metadata inside a .pt2 archive; the sidecar PATH.json holds the same
# Parity: the exported file's logits must be within parity_tolerance() of PyTorch's, max-abs.
TOLERANCE = 1e-4  # max-abs, for logits up to 1 in magnitude (relative beyond)
NOISE_FACTOR = 3  # ... unless float32 itself is noisier: see parity_tolerance
VERIFY_BATCH_SIZES = (1, 3)
TRACE_BATCH_SIZE = 2  # differs from both verification sizes, so they test the dynamic batch


class ParityError(CheckFailedError):
    """The exported file's logits differ from PyTorch's by more than the tolerance (exit 1)."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    model_name: str
    image_size: int
    num_classes: int
    opset: Optional[int]
    max_abs_diff: Dict[int, float]  # batch size -> max |exported - PyTorch|
    tolerance: float
    float32_error: float  # max |PyTorch float32 - PyTorch float64| on the same inputs
    size_bytes: int
    exporter: Optional[str] = None  # ONNX: "dynamo" or "torchscript" (the exporter that wrote it)
    notes: Tuple[str, ...] = ()  # e.g. why the TorchScript-based ONNX exporter was used
    sidecar: Optional[Path] = None  # pt2: the metadata file next to it

    def describe(self) -> str:
        if self.format == "onnx":
            what = f"ONNX opset {self.opset}, {self.exporter}-based exporter"
        else:
            what = {"pt2": "torch.export program", "torchscript": "TorchScript (legacy)"}.get(self.format, self.format)
        runtime = {"onnx": "ONNX Runtime", "pt2": "torch.export.load", "torchscript": "torch.jit.load"}[self.format]
        diffs = ", ".join(f"{d:.1e} at batch {b}" for b, d in self.max_abs_diff.items())
        lines = [f"note: {n}" for n in self.notes] + [
            f"wrote {self.path} ({what}, {self.size_bytes / 1e6:.1f} MB): {self.model_name}, "
            f"input '{INPUT_NAME}' N x 3 x {self.image_size} x {self.image_size} (N dynamic) -> "
            f"output '{OUTPUT_NAME}' N x {self.num_classes}",
            f"verified with {runtime} against PyTorch: max-abs difference {diffs} "
            f"(tolerance {self.tolerance:.1e}; PyTorch float32 vs float64: {self.float32_error:.1e})",
        ]
        if self.sidecar is not None:
            lines.append(f"class names and preprocessing: {self.sidecar}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- shared steps


def _image_size(model: nn.Module, image_size: Optional[int]) -> int:
    cfg = getattr(model, "data_config", None)
    if cfg is None:
        raise UsageError("only models with a data_config (from create_model or load_model) can be exported")
    size = cfg.input_size if image_size is None else int(image_size)
    if size < cfg.min_input_size:
        raise UsageError(f"{model_name(model)} needs an image size >= {cfg.min_input_size}, got {size}")
    return size


def export_metadata(model: nn.Module, image_size: int) -> Dict[str, Any]:
    """The fields stored with an exported file: ``model_name``, ``classes`` (list or None),
    ``num_classes``, ``image_size``, ``resize_size``, ``mean``, ``std``. The resize keeps its
    ratio to the crop when ``image_size`` is not the model's own."""
    cfg = model.data_config
    if image_size != cfg.input_size:
        cfg = cfg.with_input_size(image_size)
    classes = getattr(model, "classes", None)
    return {
        "model_name": model_name(model),
        "classes": list(classes) if classes is not None else None,
        "num_classes": int(model.num_classes) if hasattr(model, "num_classes") else None,
        "image_size": image_size,
        "resize_size": cfg.resize_size,
        "mean": list(cfg.mean),
        "std": list(cfg.std),
    }


def onnx_metadata_props(fields: Dict[str, Any]) -> Dict[str, str]:
    """``metadata_props`` values are strings: JSON for each field, the model name as is."""
    return {k: v if k == "model_name" else json.dumps(v) for k, v in fields.items()}


def _random_batch(batch_size: int, image_size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch_size, 3, image_size, image_size, generator=g) * 2 - 1  # like mean/std 0.5


def parity_tolerance(logits: torch.Tensor, float32_error: float) -> float:
    """How far an exported model's logits may be from PyTorch's (max-abs).

    ``TOLERANCE`` (1e-4), times the largest logit when that exceeds 1 (float32 rounding grows
    with magnitude: an untrained model in eval mode, whose BatchNorm statistics are still 0 / 1,
    has logits around 1e4) -- or ``NOISE_FACTOR`` times ``float32_error``, PyTorch's own float32
    error against float64 on the same inputs, when that is larger: these networks are deep
    enough that two correct float32 implementations can differ by ~1e-4 on logits of order 1,
    so a fixed 1e-4 would reject correct files. A real export bug (a missing layer, a wrong
    fold, dropout left on) moves the logits by orders of magnitude more than either bound.
    """
    scale = max(1.0, float(logits.abs().max()))
    return max(TOLERANCE * scale, NOISE_FACTOR * float32_error)


class _Reference(NamedTuple):
    inputs: Dict[int, torch.Tensor]  # batch size -> random normalized batch
    logits: Dict[int, torch.Tensor]  # the model's float32 logits on it
    float32_error: float  # max |float32 logits - float64 logits| over all batches
    tolerance: float


def _reference(model: nn.Module, image_size: int) -> _Reference:
    """PyTorch's answers (the model itself: eval mode, BatchNorm not folded) on random batches."""
    ref = copy.deepcopy(model).float().cpu().eval()
    inputs = {b: _random_batch(b, image_size, seed=b) for b in VERIFY_BATCH_SIZES}
    try:
        with torch.inference_mode():
            logits = {b: ref(x) for b, x in inputs.items()}
            ref64 = ref.double()
            error = max(float((logits[b].double() - ref64(x.double())).abs().max()) for b, x in inputs.items())
    except (RuntimeError, ValueError) as e:
        raise UsageError(
            f"{model_name(model)} cannot run at {image_size}x{image_size}: {str(e).splitlines()[0]}"
        ) from None
    largest = max(logits.values(), key=lambda t: float(t.abs().max()))
    return _Reference(inputs, logits, error, parity_tolerance(largest, error))


def _compare(run: Callable[[torch.Tensor], torch.Tensor], ref: _Reference, what: str) -> Dict[int, float]:
    """Max-abs difference of ``run`` from PyTorch at each batch size; :class:`ParityError`
    when one exceeds the tolerance."""
    diffs: Dict[int, float] = {}
    for b, x in ref.inputs.items():
        got = run(x)
        if tuple(got.shape) != tuple(ref.logits[b].shape):
            raise ParityError(
                f"{what} returned logits shaped {tuple(got.shape)} for a batch of {b}, "
                f"PyTorch {tuple(ref.logits[b].shape)}"
            )
        diffs[b] = float((got.float() - ref.logits[b]).abs().max())
    if not all(d <= ref.tolerance for d in diffs.values()):  # also catches NaN
        raise ParityError(
            f"{what} disagrees with PyTorch: max-abs difference "
            + ", ".join(f"{d:.2e} at batch {b}" for b, d in diffs.items())
            + f" exceeds the tolerance {ref.tolerance:.1e}"
        )
    return diffs


def check_output_path(path: PathLike) -> Path:
    """``path`` as a file to write: not an existing folder, and not inside a file."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"output {path} is a folder; give a file name (for example {path / 'model.onnx'})")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"cannot write {path}: {parent} is a file, not a folder")
            break
    return path


def _write_verified(
    path: Path,
    write: Callable[[Path], None],
    verify: Callable[[Path], Any],
    sidecar: Optional[Tuple[Path, Any]] = None,
) -> Any:
    """``write`` the file to a temporary sibling of ``path``, ``verify`` it there, then rename
    it onto ``path``; on any failure the temporary file is removed and ``path`` untouched.
    ``sidecar``: ``(file, object)`` written as JSON (atomically) just before the rename, so a
    file that exists always has its sidecar."""
    check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temps(path.parent, prefix=f".{path.name}."):  # a killed export's
        logger.info("removed %s, left by an export that was killed", stale)
    fd, name = temp_file(path)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual mode
        result = verify(tmp)
        if sidecar is not None:
            write_json(*sidecar)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno is not None and e.filename in (None, str(tmp)):
            raise OSError(e.errno, os.strerror(e.errno), str(path)) from e  # (a full disk: name the file)
        raise
    return result


@contextmanager
def _quiet_tracing() -> Iterator[None]:
    """Silences the tracer's notes on our input checks (they become constants, which is what
    a fixed-size export wants), PyTorch's deprecation notices for its TorchScript tools, and
    ``torch.export``'s log of a failed load (a traceback; our error says it in one line)."""
    logger = logging.getLogger("torch.export")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            yield
    finally:
        logger.setLevel(level)


def _result(
    model: nn.Module,
    path: Path,
    fmt: str,
    size: int,
    opset: Optional[int],
    ref: _Reference,
    diffs: Dict[int, float],
    **extra: Any,
) -> ExportResult:
    num_classes = int(ref.logits[VERIFY_BATCH_SIZES[0]].shape[1])
    return ExportResult(
        path,
        fmt,
        model_name(model),
        size,
        num_classes,
        opset,
        diffs,
        ref.tolerance,
        ref.float32_error,
        path.stat().st_size,
        **extra,
    )


def _batch_dim() -> Any:
    """The dynamic batch dimension for ``torch.export`` (and the dynamo-based ONNX exporter)."""
    return torch.export.Dim("batch", min=1)


def export_program(model: nn.Module, image_size: int) -> "torch.export.ExportedProgram":
    """``torch.export`` of ``model`` (already a deployment copy, on the CPU) on an
    ``N x 3 x S x S`` input with a dynamic ``N``; :class:`UsageError` naming the model when the
    network cannot be captured."""
    example = _random_batch(TRACE_BATCH_SIZE, image_size, seed=0)
    try:
        with _quiet_tracing():
            return torch.export.export(model, (example,), dynamic_shapes=({0: _batch_dim()},))
    except Exception as e:  # torch.export raises many types (UserError, GuardOnDataDependent...)
        raise UsageError(
            f"{model_name(model)} cannot be captured by torch.export at {image_size}x{image_size} "
            f"({first_line(e, with_type=True)}); export it as ONNX or TorchScript instead"
        ) from None


# --------------------------------------------------------------------------- formats


def dynamo_exporter_available() -> bool:
    """Whether PyTorch's dynamo-based ONNX exporter can run here (it needs ``onnxscript``)."""
    return importlib.util.find_spec("onnxscript") is not None


def _choose_exporter(exporter: str, opset: int) -> Tuple[str, Tuple[str, ...]]:
    """The ONNX exporter to use for ``exporter`` (``auto``, ``dynamo``, ``torchscript``) at
    ``opset``, and a note saying why when ``auto`` could not take the dynamo-based one."""
    if exporter not in ONNX_EXPORTERS:
        raise UsageError(f"--exporter must be one of {', '.join(ONNX_EXPORTERS)}, got {exporter!r}")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UsageError(f"--opset must be between {MIN_OPSET} and {MAX_OPSET}, got {opset}")
    if exporter == "dynamo":
        if opset < DYNAMO_MIN_OPSET:
            raise UsageError(f"the dynamo-based ONNX exporter writes opset {DYNAMO_MIN_OPSET} or newer, not {opset}")
        if not dynamo_exporter_available():
            raise UsageError(
                f"the dynamo-based ONNX exporter needs onnxscript, which is not installed; "
                f"install it with: {ONNX_INSTALL_HINT}"
            )
        return "dynamo", ()
    if exporter == "torchscript" or opset < DYNAMO_MIN_OPSET or not dynamo_exporter_available():
        if opset > TORCHSCRIPT_MAX_OPSET:
            why = "" if exporter == "torchscript" else f" (the dynamo-based one needs onnxscript: {ONNX_INSTALL_HINT})"
            raise UsageError(
                f"the TorchScript-based ONNX exporter writes opset {TORCHSCRIPT_MAX_OPSET} or older, not {opset}{why}"
            )
        if exporter == "torchscript":
            return "torchscript", ()
        why = (
            f"opset {opset} is older than the dynamo-based exporter's {DYNAMO_MIN_OPSET}"
            if opset < DYNAMO_MIN_OPSET
            else f"onnxscript is not installed ({ONNX_INSTALL_HINT})"
        )
        return "torchscript", (f"used the TorchScript-based ONNX exporter: {why}",)
    return "dynamo", ()


def _onnx_bytes(deploy: nn.Module, size: int, opset: int, exporter: str) -> bytes:
    """The ONNX graph of ``deploy`` written by ``exporter`` (``dynamo`` or ``torchscript``)."""
    example = (_random_batch(TRACE_BATCH_SIZE, size, seed=0),)
    with _quiet_tracing():
        if exporter == "dynamo":
            program = torch.onnx.export(
                deploy,
                example,
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: _batch_dim()},),
                opset_version=opset,
                optimize=True,
                verbose=False,
            )
            return program.model_proto.SerializeToString()
        buffer = io.BytesIO()
        torch.onnx.export(
            deploy,
            example,
            buffer,
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
        )
        return buffer.getvalue()


def export_onnx(
    model: nn.Module,
    path: PathLike,
    image_size: Optional[int] = None,
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
) -> ExportResult:
    """Write ``model`` as a verified ONNX file (see the module docstring). Needs ``onnx`` and
    ``onnxruntime`` (``pip install 'inception-v2[onnx]'``; the dynamo-based exporter also
    ``onnxscript``). ``exporter``: ``auto`` (dynamo-based when it can, else TorchScript-based,
    with a note in the result saying why), ``dynamo`` or ``torchscript``. In ``auto`` mode a
    failure of the dynamo-based exporter also falls back, with its first line in the note."""
    try:
        import onnx
    except ImportError:
        raise UsageError(
            f"ONNX export needs the onnx package, which is not installed; install it with: {ONNX_INSTALL_HINT}"
        ) from None
    import_onnxruntime()
    used, notes = _choose_exporter(exporter, opset)
    path = check_output_path(path)
    size = _image_size(model, image_size)
    ref = _reference(model, size)
    deploy = deploy_copy(model).float().cpu()
    try:
        data = _onnx_bytes(deploy, size, opset, used)
    except Exception as e:  # noqa: BLE001 - the exporters raise many types; see below
        why = first_line(e, with_type=True)
        if used != "dynamo" or exporter == "dynamo" or opset > TORCHSCRIPT_MAX_OPSET:
            raise UsageError(
                f"{model_name(model)} cannot be exported to ONNX by the {used}-based exporter ({why})"
            ) from None
        notes += (f"used the TorchScript-based ONNX exporter: the dynamo-based one failed ({why})",)
        used = "torchscript"
        data = _onnx_bytes(deploy, size, opset, used)
    proto = onnx.load_from_string(data)
    proto.producer_name, proto.producer_version = "inception-v2", __version__
    del proto.metadata_props[:]
    for key, value in onnx_metadata_props(export_metadata(model, size)).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()

    def verify(tmp: Path) -> Dict[int, float]:
        runner = OnnxClassifier(tmp, providers=["CPUExecutionProvider"])
        if runner.image_size != size or runner.input_name != INPUT_NAME or runner.output_name != OUTPUT_NAME:
            raise ParityError(f"{path}: the written file does not read back as written")
        return _compare(runner, ref, "the ONNX Runtime session")

    diffs = _write_verified(path, lambda tmp: tmp.write_bytes(data), verify)
    return _result(model, path, "onnx", size, opset, ref, diffs, exporter=used, notes=notes)


def export_torchscript(model: nn.Module, path: PathLike, image_size: Optional[int] = None) -> ExportResult:
    """Write ``model`` as a verified TorchScript file (``torch.jit.trace``; see the module
    docstring). The traced graph does not check its input's shape."""
    path = check_output_path(path)
    size = _image_size(model, image_size)
    ref = _reference(model, size)
    deploy = deploy_copy(model).float().cpu()
    meta = json.dumps(export_metadata(model, size))
    with _quiet_tracing():
        traced = torch.jit.trace(deploy, _random_batch(TRACE_BATCH_SIZE, size, seed=0), check_trace=False)

    def write(tmp: Path) -> None:
        buffer = io.BytesIO()  # (torch's C++ writer aborts the process on a full disk; Python's raises)
        with _quiet_tracing():
            torch.jit.save(traced, buffer, _extra_files={TORCHSCRIPT_META: meta})
        tmp.write_bytes(buffer.getbuffer())

    def verify(tmp: Path) -> Dict[int, float]:
        loaded, read_back = read_torchscript(tmp, trust_file=True)  # the file just written
        if read_back.get("image_size") != size:
            raise ParityError(f"{path}: the written file's metadata does not read back as written")

        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return loaded(x)

        return _compare(run, ref, "the TorchScript module")

    diffs = _write_verified(path, write, verify)
    return _result(model, path, "torchscript", size, None, ref, diffs)


def pt2_sidecar(path: PathLike) -> Path:
    """The metadata file of a ``.pt2`` program: ``PATH.json`` (``model.pt2`` -> ``model.pt2.json``)."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def export_pt2(model: nn.Module, path: PathLike, image_size: Optional[int] = None) -> ExportResult:
    """Write ``model`` as a verified ``torch.export`` program with a dynamic batch (see the
    module docstring), and its metadata as the sidecar :func:`pt2_sidecar`."""
    path = check_output_path(path)
    size = _image_size(model, image_size)
    ref = _reference(model, size)
    program = export_program(deploy_copy(model).float().cpu(), size)
    meta = export_metadata(model, size)

    def write(tmp: Path) -> None:
        buffer = io.BytesIO()  # (a path would have to end in .pt2; the temporary name does not)
        with _quiet_tracing():
            torch.export.save(program, buffer, extra_files={PT2_META: json.dumps(meta)})
        tmp.write_bytes(buffer.getvalue())

    def verify(tmp: Path) -> Dict[int, float]:
        loaded, read_back = read_pt2(tmp)
        if read_back.get("image_size") != size:
            raise ParityError(f"{path}: the written file's metadata does not read back as written")
        module = loaded.module()

        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return module(x)

        return _compare(run, ref, "the torch.export program")

    sidecar = pt2_sidecar(path)
    diffs = _write_verified(path, write, verify, sidecar=(sidecar, meta))
    return _result(model, path, "pt2", size, None, ref, diffs, sidecar=sidecar)


def read_pt2(path: PathLike) -> Tuple["torch.export.ExportedProgram", Dict[str, Any]]:
    """A program written by :func:`export_pt2` and its metadata: the sidecar ``PATH.json`` when
    it is there, else the copy inside the archive. The archive is checked first and refused
    unless loading it cannot run code from it
    (:func:`~inception_v2.formats.untrusted.check_pt2_archive`). :class:`UsageError` naming the
    file when it is refused or cannot be read."""
    path = Path(path)
    data = read_model_file(path)
    check_pt2_archive(data, path)
    extra = {PT2_META: ""}
    try:
        with _quiet_tracing():
            program = torch.export.load(io.BytesIO(data), extra_files=extra)
    except Exception as e:  # noqa: BLE001 - a corrupt archive fails in many ways
        raise UsageError(f"{path} is not a readable torch.export program ({first_line(e, with_type=True)})") from None
    sidecar = pt2_sidecar(path)
    text = sidecar.read_text(encoding="utf-8") if sidecar.is_file() else extra[PT2_META]
    try:
        meta = json.loads(text or "{}")
    except json.JSONDecodeError as e:
        raise UsageError(f"{sidecar if sidecar.is_file() else path}: the metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise UsageError(f"{sidecar if sidecar.is_file() else path}: the metadata is not a JSON object")
    return program, meta


def read_torchscript(path: PathLike, trust_file: bool = False) -> Tuple[torch.jit.ScriptModule, Dict[str, Any]]:
    """A TorchScript file written by :func:`export_torchscript` and its metadata (decoded).
    A TorchScript file runs its own code when loaded, so it is refused unless ``trust_file``
    (:func:`~inception_v2.formats.untrusted.refuse_untrusted_code`)."""
    refuse_untrusted_code(path, trust_file)
    extra = {TORCHSCRIPT_META: ""}
    try:
        with _quiet_tracing():
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        meta = json.loads(extra[TORCHSCRIPT_META] or "{}")
    except (RuntimeError, ValueError, OSError) as e:
        raise UsageError(f"{path} is not a readable TorchScript file ({first_line(e, with_type=True)})") from None
    return module, meta


def export_model(
    model: nn.Module,
    path: PathLike,
    format: str = "onnx",
    image_size: Optional[int] = None,
    opset: Optional[int] = None,
    exporter: Optional[str] = None,
) -> ExportResult:
    """Export ``model`` in ``format`` (``onnx``, ``pt2`` or ``torchscript``) and verify the
    file. ``opset`` and ``exporter`` apply to ONNX only."""
    if format not in FORMATS:
        raise UsageError(f"unknown export format {format!r}; available: {', '.join(FORMATS)}")
    if format == "onnx":
        return export_onnx(model, path, image_size, DEFAULT_OPSET if opset is None else opset, exporter or "auto")
    if opset is not None:
        raise UsageError("--opset applies to ONNX export only")
    if exporter is not None:
        raise UsageError("--exporter applies to ONNX export only")
    if format == "pt2":
        return export_pt2(model, path, image_size)
    return export_torchscript(model, path, image_size)
