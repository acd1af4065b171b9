"""``inception-v2 export``: :func:`inception_v2.deploy.export.export_model`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inception_v2.deploy.export import (
    DEFAULT_OPSET,
    FORMATS,
    INPUT_NAME,
    NOISE_FACTOR,
    OUTPUT_NAME,
    TOLERANCE,
    VERIFY_BATCH_SIZES,
    ParityError,
    export_model,
)
from inception_v2.errors import UsageError
from inception_v2.models import create_model, list_models

SAFETENSORS = "safetensors"  # a release folder: weights + config.json (inception_v2.deploy.release)

SUFFIX_FORMATS = {".onnx": "onnx", ".pt": "torchscript", ".pth": "torchscript", ".ts": "torchscript",
                  ".torchscript": "torchscript"}  # fmt: skip


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
    src.add_argument("--checkpoint", metavar="F", help="a checkpoint written by training")
    src.add_argument("--model", metavar="NAME", help=f"an untrained model, one of: {', '.join(list_models())}")
    p.add_argument("--num-classes", type=int, default=None, metavar="K", help="with --model: classifier width (default 1000)")
    p.add_argument("--format", choices=FORMATS + (SAFETENSORS,), default=None,
                   help="default: from the suffix of --out (.onnx; .pt, .ts: torchscript); "
                   "safetensors: a release folder --out DIR with model.safetensors and config.json")
    p.add_argument("--out", required=True, metavar="PATH", help="the file to write (a folder for safetensors)")
    p.add_argument("--image-size", type=int, default=None, metavar="N",
                   help="input side S (default: the model's trained / nominal size)")
    p.add_argument("--opset", type=int, default=None, metavar="K", help=f"ONNX opset (default {DEFAULT_OPSET})")


def output_format(out: str, given: str = None) -> str:
    """The format of ``--out``: ``given`` (which must not contradict a known suffix), else the
    one its suffix names."""
    implied = SUFFIX_FORMATS.get(Path(out).suffix.lower())
    if given is None:
        if implied is None:
            raise UsageError(f"cannot tell the format from {out!r}; give --format {' or '.join(FORMATS)}")
        return implied
    if implied is not None and implied != given:
        raise UsageError(f"--format {given} contradicts the suffix of --out {out} (a {implied} file); "
                         "change one of them")  # fmt: skip
    return given


def run_release(args: argparse.Namespace) -> int:
    """``--format safetensors``: the weights (the checkpoint's selected ones) and config.json."""
    from inception_v2.deploy.release import export_release, write_release

    for flag, value in (("--image-size", args.image_size), ("--opset", args.opset)):
        if value is not None:
            raise UsageError(f"{flag} does not apply to --format {SAFETENSORS} (the release holds weights only)")
    if args.checkpoint is not None:
        if args.num_classes is not None:
            raise UsageError("--num-classes applies to --model only (a checkpoint knows its classes)")
        result = export_release(args.checkpoint, args.out)
    else:
        num_classes = 1000 if args.num_classes is None else args.num_classes
        if num_classes < 1:
            raise UsageError(f"--num-classes must be >= 1, got {num_classes}")
        result = write_release(create_model(args.model, num_classes=num_classes), args.out, "untrained")
    print(result.describe())
    return 0


def run(args: argparse.Namespace) -> int:
    if args.format == SAFETENSORS:
        return run_release(args)
    fmt = output_format(args.out, args.format)
    if args.checkpoint is not None:
        if args.num_classes is not None:
            raise UsageError("--num-classes applies to --model only (a checkpoint knows its classes)")
        if Path(args.out).resolve() == Path(args.checkpoint).resolve():
            raise UsageError(f"--out {args.out} is the checkpoint itself; choose another file")
        from inception_v2.deploy.load import load_model

        model = load_model(args.checkpoint)
    else:
        num_classes = 1000 if args.num_classes is None else args.num_classes
        if num_classes < 1:
            raise UsageError(f"--num-classes must be >= 1, got {num_classes}")
        model = create_model(args.model, num_classes=num_classes)
        print(
            f"note: exporting an untrained {args.model}: random weights and BatchNorm statistics "
            "never measured, so its logits are huge and the check below is relative to them"
        )
    try:
        result = export_model(model, args.out, fmt, args.image_size, args.opset)
    except ParityError as e:
        print(f"error: {e}; nothing was written", file=sys.stderr)
        return 1
    print(result.describe())
    return 0
