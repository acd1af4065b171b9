"""``inception-v2 export``: :func:`inception_v2.deploy.export.export_model`, and
:func:`inception_v2.deploy.quantize.export_int8_from_prepared` for ``--quantize int8``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from inception_v2.deploy.export import (
    DEFAULT_OPSET,
    FORMATS,
    INPUT_NAME,
    NOISE_FACTOR,
    ONNX_EXPORTERS,
    OUTPUT_NAME,
    TOLERANCE,
    VERIFY_BATCH_SIZES,
    ParityError,
    export_model,
)
from inception_v2.deploy.quantize import DEFAULT_CALIBRATION_IMAGES, DEFAULT_MAX_DROP, QUANTIZATIONS
from inception_v2.deploy.release import RELEASE_CONFIG, RELEASE_FORMAT
from inception_v2.errors import CheckFailedError, UsageError
from inception_v2.models import create_model, list_models

SAFETENSORS = "safetensors"  # a release folder: weights + config.json (inception_v2.deploy.release)
OPENVINO = "openvino"  # a folder: model.xml + model.bin (inception_v2.deploy.openvino)

SUFFIX_FORMATS = {
    ".onnx": "onnx",
    ".pt2": "pt2",
    ".pt": "torchscript",
    ".pth": "torchscript",
    ".ts": "torchscript",
    ".torchscript": "torchscript",
}


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Export the eval-mode network (BatchNorm folded, no auxiliary head) with a dynamic "
        f"batch dimension: input '{INPUT_NAME}' N x 3 x S x S (normalized), output "
        f"'{OUTPUT_NAME}' N x classes. The written file is run on random input at batch sizes "
        f"{' and '.join(map(str, VERIFY_BATCH_SIZES))} and must match PyTorch within "
        f"{TOLERANCE:g} max-abs (relative to the largest logit when that exceeds 1, and at least "
        f"{NOISE_FACTOR}x PyTorch's own float32 error); otherwise nothing is written and the "
        "exit status is 1."
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="F", help="a checkpoint written by training, or a release folder")
    src.add_argument("--model", metavar="NAME", help=f"an untrained model, one of: {', '.join(list_models())}")
    p.add_argument(
        "--num-classes", type=int, default=None, metavar="K", help="with --model: classifier width (default 1000)"
    )
    p.add_argument(
        "--format",
        choices=FORMATS + (SAFETENSORS, OPENVINO),
        default=None,
        help="default: from the suffix of --out (.onnx; .pt2: torch.export; .pt, .ts: torchscript, legacy); "
        "safetensors: a release folder --out DIR with model.safetensors and config.json; "
        "openvino: an OpenVINO IR folder --out DIR with model.xml and model.bin",
    )
    p.add_argument("--out", required=True, metavar="PATH", help="the file to write (a folder for safetensors)")
    p.add_argument(
        "--force",
        action="store_true",
        help="safetensors: write into an existing folder that is not a release folder (its config.json and "
        "model.safetensors are overwritten)",
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        metavar="N",
        help="input side S (default: the model's trained / nominal size)",
    )
    p.add_argument("--opset", type=int, default=None, metavar="K", help=f"ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument(
        "--exporter",
        choices=ONNX_EXPORTERS,
        default=None,
        help="ONNX: auto (default: dynamo-based when onnxscript is installed, else TorchScript-based), "
        "dynamo or torchscript",
    )
    q = p.add_argument_group(
        "INT8 (static post-training quantization: ONNX Runtime for .onnx, NNCF for --format openvino)"
    )
    q.add_argument(
        "--quantize",
        choices=QUANTIZATIONS,
        default=None,
        help="int8: QDQ, per-channel int8 weights, uint8 activations; needs --checkpoint and --calibration-data",
    )
    q.add_argument(
        "--calibration-data",
        metavar="DIR",
        default=None,
        help="a prepared folder with the model's classes: train images calibrate, val checks accuracy",
    )
    q.add_argument(
        "--calibration-images",
        type=int,
        default=None,
        metavar="N",
        help=f"train images to calibrate on (default {DEFAULT_CALIBRATION_IMAGES})",
    )
    q.add_argument(
        "--max-drop",
        type=float,
        default=None,
        metavar="POINTS",
        help=f"refuse (exit 1, nothing written) when INT8 val top-1 is more than this many points "
        f"below float32 (default {DEFAULT_MAX_DROP:g})",
    )


def output_format(out: str, given: str = None) -> str:
    """The format of ``--out``: ``given`` (which must not contradict a known suffix), else the
    one its suffix names. An existing folder is refused: these formats are single files."""
    if Path(out).is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name (for example {Path(out) / 'model.onnx'})")
    implied = SUFFIX_FORMATS.get(Path(out).suffix.lower())
    if given is None:
        if implied is None:
            raise UsageError(f"cannot tell the format from {out!r}; give --format {' or '.join(FORMATS)}")
        return implied
    if implied is not None and implied != given:
        raise UsageError(
            f"--format {given} contradicts the suffix of --out {out} (a {implied} file); change one of them"
        )
    return given


def run_release(args: argparse.Namespace) -> int:
    """``--format safetensors``: the weights (the checkpoint's selected ones) and config.json."""
    from inception_v2.deploy.release import export_release, write_release

    for flag, value in (("--image-size", args.image_size), ("--opset", args.opset)):
        if value is not None:
            raise UsageError(f"{flag} does not apply to --format {SAFETENSORS} (the release holds weights only)")
    check_release_target(Path(args.out), args.force)
    if args.checkpoint is not None:
        _check_no_num_classes(args)
        result = export_release(args.checkpoint, args.out)
    else:
        result = write_release(_untrained(args), args.out, "untrained")
    print(result.describe())
    return 0


def is_release_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a release's ``config.json`` (its ``format`` field says so)."""
    try:
        config = json.loads((folder / RELEASE_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("format") == RELEASE_FORMAT


def check_release_target(out: Path, force: bool) -> None:
    """A release may be written to a new or empty folder, or over an earlier release; an
    existing folder holding anything else (a ``config.json`` or ``model.safetensors`` of its
    own would be overwritten) needs ``--force``."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; a release is a folder (model.safetensors + config.json)")
    if not out.is_dir() or force or is_release_folder(out):
        return
    if any(p.name != ".lock" for p in out.iterdir()):
        raise UsageError(
            f"--out {out} is an existing folder that is not a release folder, whose files could be "
            "overwritten; choose a new folder, or pass --force"
        )


def run_openvino(args: argparse.Namespace) -> int:
    """``--format openvino``: an IR folder, float32 or (``--quantize int8``) NNCF INT8."""
    from inception_v2.deploy import openvino

    for flag, value in (("--opset", args.opset), ("--exporter", args.exporter)):
        if value is not None:
            raise UsageError(f"{flag} applies to ONNX export only")
    if args.checkpoint is None:
        model = _untrained(args)
    else:
        _check_no_num_classes(args)
        if Path(args.out).resolve() == Path(args.checkpoint).resolve():
            raise UsageError(f"--out {args.out} is the checkpoint itself; choose another folder")
        from inception_v2.deploy.load import load_model

        model = load_model(args.checkpoint)
    try:
        if args.quantize == "int8":
            result = openvino.export_openvino_int8_from_prepared(model, args.out, **_calibration(args))
        else:
            result = openvino.export_openvino(model, args.out, args.image_size)
    except ParityError as e:
        raise CheckFailedError(f"{e}; nothing was written") from None
    print(result.describe())
    return 0


def _calibration(args: argparse.Namespace) -> dict:
    """The INT8 calibration and accuracy-gate arguments, the same for ONNX and OpenVINO."""
    return {
        "prepared": args.calibration_data,
        "calibration_images": args.calibration_images or DEFAULT_CALIBRATION_IMAGES,
        "image_size": args.image_size,
        "max_drop": DEFAULT_MAX_DROP if args.max_drop is None else args.max_drop,
        "progress": True,
    }


def _check_no_num_classes(args: argparse.Namespace) -> None:
    if args.num_classes is not None:
        raise UsageError("--num-classes applies to --model only (a checkpoint knows its classes)")


def _untrained(args: argparse.Namespace):
    """``--model NAME [--num-classes K]``: a freshly initialized model."""
    num_classes = 1000 if args.num_classes is None else args.num_classes
    if num_classes < 1:
        raise UsageError(f"--num-classes must be >= 1, got {num_classes}")
    return create_model(args.model, num_classes=num_classes)


def _check_quantize_args(args: argparse.Namespace, fmt: str) -> None:
    options = {
        "--calibration-data": args.calibration_data,
        "--calibration-images": args.calibration_images,
        "--max-drop": args.max_drop,
    }
    given = [flag for flag, value in options.items() if value is not None]
    if args.quantize is None:
        if given:
            raise UsageError(f"{given[0]} applies to --quantize int8 only")
        return
    if fmt not in ("onnx", OPENVINO):
        raise UsageError(f"--quantize {args.quantize} writes ONNX or OpenVINO, not {fmt}; use an .onnx --out")
    if args.checkpoint is None:
        raise UsageError(f"--quantize {args.quantize} needs a trained model (--checkpoint): its accuracy is checked")
    if args.calibration_data is None:
        raise UsageError(f"--quantize {args.quantize} needs --calibration-data DIR (a prepared folder)")
    if args.calibration_images is not None and args.calibration_images < 1:
        raise UsageError(f"--calibration-images must be >= 1, got {args.calibration_images}")
    if args.max_drop is not None and not args.max_drop >= 0:
        raise UsageError(f"--max-drop must be >= 0 (top-1 points), got {args.max_drop}")


def run(args: argparse.Namespace) -> int:
    if args.format == SAFETENSORS:
        _check_quantize_args(args, SAFETENSORS)
        return run_release(args)
    if args.force:
        raise UsageError("--force applies to --format safetensors only (a file is replaced atomically)")
    if args.format == OPENVINO:
        _check_quantize_args(args, OPENVINO)
        return run_openvino(args)
    fmt = output_format(args.out, args.format)
    _check_quantize_args(args, fmt)
    if args.checkpoint is not None:
        _check_no_num_classes(args)
        if Path(args.out).resolve() == Path(args.checkpoint).resolve():
            raise UsageError(f"--out {args.out} is the checkpoint itself; choose another file")
        from inception_v2.deploy.load import load_model

        model = load_model(args.checkpoint)
    else:
        model = _untrained(args)
        print(
            f"note: exporting an untrained {args.model}: random weights and BatchNorm statistics "
            "never measured, so its logits are huge and the check below is relative to them"
        )
    try:
        if args.quantize == "int8":
            from inception_v2.deploy.quantize import export_int8_from_prepared

            result = export_int8_from_prepared(
                model,
                args.out,
                **_calibration(args),
                opset=args.opset or DEFAULT_OPSET,
                exporter=args.exporter or "auto",
            )
        else:
            result = export_model(model, args.out, fmt, args.image_size, args.opset, args.exporter)
    except ParityError as e:
        raise CheckFailedError(f"{e}; nothing was written") from None
    print(result.describe())
    return 0
