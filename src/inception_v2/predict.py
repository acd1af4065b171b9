"""``inception-v2 predict``: the top classes of images (or of a box in them) with probabilities,
from any deployed form of a model (:func:`inception_v2.deploy.runners.load_classifier`): a
checkpoint or release folder (through :func:`~inception_v2.deploy.inference.prepare_for_inference`),
or an exported ``.onnx`` (float or INT8), ``.pt2`` or TorchScript file.

The image, or the ``--box`` crop of it, goes through the model's eval transform: resize the
shorter side, centre crop, normalize, exactly as the val/test crops in training. An image with
more pixels than PIL's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``, about 89
million) is refused before it is decoded.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from inception_v2.data import eval_transform
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
    """An RGB image (or its ``box``) as a ``uint8`` tensor ``3 x H x W``. :class:`UsageError`
    naming the image when it is missing, a folder, unreadable, or a decompression bomb (more
    pixels than ``PIL.Image.MAX_IMAGE_PIXELS``: PIL's warning is an error here)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"image {path} is a folder, not an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise UsageError(f"image {path} does not exist") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        size = str(e).split(", could be")[0]  # "Image size (N pixels) exceeds limit of M pixels"
        raise UsageError(f"image {path} refused as a possible decompression bomb: {size}") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise UsageError(f"cannot read image {path}: {e}") from None
    h, w = rgb.shape[:2]
    if box is not None:
        x1, y1, x2, y2 = box
        if x2 > w or y2 > h:
            raise UsageError(f"--box {x1},{y1},{x2},{y2} is outside {path} ({w}x{h}; boxes are 1-based, inclusive)")
        rgb = rgb[y1 - 1 : y2, x1 - 1 : x2]
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)  # a writable, contiguous copy


def predict(
    checkpoint: Path,
    images: Sequence[Path],
    box: Optional[Box] = None,
    topk: int = 5,
    device: str = "auto",
    run: RunOptions = DEFAULT_RUN,
) -> List[Dict[str, Any]]:
    """For each image: ``{"image", "box", "top": [{"class", "probability"}, ...], "runtime",
    "precision", "runtime_choice"}``, best first. ``run``: the runtime and
    precision (:class:`~inception_v2.deploy.runtime.RunOptions`)."""
    if topk < 1:
        raise UsageError(f"--topk must be >= 1, got {topk}")
    if not images:
        raise UsageError("give at least one image")
    clf = load_classifier(checkpoint, device, run.runtime, run.precision)
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
