"""``inception-v2 predict``: the top classes of images (or of a box in them) with probabilities,
from any deployed form of a model (:func:`inception_v2.deploy.runners.load_classifier`): a
checkpoint or release folder (through :func:`~inception_v2.deploy.inference.prepare_for_inference`),
or an exported ``.onnx`` (float or INT8), ``.pt2`` or TorchScript file.

An image is read exactly as ``prepare --image-folder`` reads a picture (by content, EXIF
orientation applied: :func:`~inception_v2.data.images.read_picture`), so the model sees the
pixels it was trained on. The image, or the ``--box`` crop of it (in the upright frame a
viewer shows), goes through the model's eval transform: resize the shorter side, centre crop,
normalize, exactly as the val/test crops in training. An image with more pixels than PIL's
decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``, about 89 million) is refused before
it is decoded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from inception_v2.data import eval_transform
from inception_v2.data.images import BadFileError, read_picture
from inception_v2.deploy.runners import load_classifier
from inception_v2.deploy.runtime import DEFAULT_RUN, RunOptions
from inception_v2.errors import UsageError

Box = Tuple[int, int, int, int]


def parse_box(text: str) -> Box:
    """``"x1,y1,x2,y2"`` -> four ints (VOC convention: 1-based, inclusive pixel coordinates)."""
    try:
        box = tuple(int(v) for v in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 4:
        raise UsageError(f"--box must be x1,y1,x2,y2 (four integers), got {text!r}")
    x1, y1, x2, y2 = box
    if x1 < 1 or y1 < 1 or x2 < x1 or y2 < y1:
        raise UsageError(f"--box {text}: need 1 <= x1 <= x2 and 1 <= y1 <= y2 (1-based, inclusive)")
    return box  # type: ignore[return-value]


def read_image(path: Path, box: Optional[Box] = None) -> torch.Tensor:
    """An RGB image (or its ``box``) as a ``uint8`` tensor ``3 x H x W``, read as ``prepare``
    reads a picture of an image folder (:func:`~inception_v2.data.images.read_picture`: by
    content, EXIF orientation applied). ``box`` is in that upright frame, the one a viewer
    shows (for a file without an EXIF orientation, every VOC image, the stored pixels).
    :class:`UsageError` naming the image when it is missing, not a regular file, unreadable,
    undecodable or a decompression bomb (more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``)."""
    path = Path(path)
    try:
        _, decoded = read_picture(path)
    except BadFileError as e:
        raise UsageError(_problem(path, e)) from None
    rgb = decoded.pixels
    h, w = rgb.shape[:2]
    if box is not None:
        x1, y1, x2, y2 = box
        if x2 > w or y2 > h:
            raise UsageError(f"--box {x1},{y1},{x2},{y2} is outside {path} ({w}x{h}; boxes are 1-based, inclusive)")
        rgb = rgb[y1 - 1 : y2, x1 - 1 : x2]
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)  # a writable, contiguous copy


def _problem(path: Path, error: BadFileError) -> str:
    """One line naming the image, worded by what is wrong with it."""
    if error.reason == "missing-file":
        return f"image {path} does not exist"
    if error.reason == "not-a-file":
        return f"image {path} is {error.problem}"
    if error.reason == "decompression-bomb":
        return f"image {path} {error.problem}"
    return f"cannot read image {path}: {error.problem}"


def predict(
    checkpoint: Path,
    images: Sequence[Path],
    box: Optional[Box] = None,
    topk: int = 5,
    device: str = "auto",
    run: RunOptions = DEFAULT_RUN,
    trust_file: bool = False,
) -> List[Dict[str, Any]]:
    """For each image: ``{"image", "box", "top": [{"class", "probability"}, ...], "runtime",
    "precision", "runtime_choice"}``, best first. ``run``: the runtime and precision
    (:class:`~inception_v2.deploy.runtime.RunOptions`); ``trust_file``: load a TorchScript file,
    which runs its own code (refused otherwise)."""
    if topk < 1:
        raise UsageError(f"--topk must be >= 1, got {topk}")
    if not images:
        raise UsageError("give at least one image")
    clf = load_classifier(checkpoint, device, run.runtime, run.precision, trust_file=trust_file)
    transform = eval_transform(clf.data_config)
    batch = torch.stack([transform(read_image(Path(p), box)) for p in images])
    with torch.inference_mode():
        probs = torch.softmax(clf(batch).float(), dim=1).cpu()
    k = min(topk, probs.shape[1])
    top = probs.topk(k, dim=1)
    results = []
    for path, values, indices in zip(images, top.values.tolist(), top.indices.tolist()):
        results.append(
            {
                "image": str(path),
                "box": list(box) if box else None,
                "top": [{"class": clf.classes[i], "probability": v} for v, i in zip(values, indices)],
                "runtime": clf.runtime,
                "precision": clf.precision,
                "runtime_choice": clf.runtime_choice,
            }
        )
    return results
