"""One image -> its manifest rows and crops: the per-image work of ``prepare``.

Applies the box rules of :mod:`inception_v2.data.voc` to the decoded image: the image's own
size is trusted over the XML's (with a warning), boxes are clamped to it, an object whose box is
empty after clamping is excluded as ``degenerate-box``. A crop is the exact pixels of its
1-based inclusive box, downscaled with PIL's LANCZOS filter (``reducing_gap`` off: exact, no
JPEG-draft shortcut) only when its longer side exceeds ``max_side``.
"""

from __future__ import annotations

import io
from typing import Any, Dict, List, Tuple

import numpy as np
from PIL import Image

from inception_v2.data.voc import (
    CLASS_INDEX,
    VOC_CLASSES,
    BadFileError,
    ObjectRecord,
    VOCSource,
    clamp_box,
    exclusion_reason,
    parse_annotation,
)
from inception_v2.errors import UsageError

# Columns of manifest.csv. Object rows have an object_index; a file skipped with --skip-bad has
# a row of its own with an empty object_index. status: train / val / test (with store_index)
# or excluded (with reason); `keep` only inside prepare, before the split assignment.
MANIFEST_FIELDS = (
    "year", "image_set", "image_id", "object_index", "class",
    "xmin", "ymin", "xmax", "ymax", "difficult", "truncated",
    "status", "store_index", "reason", "file", "warnings",
)  # fmt: skip


def _decode(data: bytes, path: str) -> np.ndarray:
    """Image bytes -> ``H x W x 3`` uint8 RGB, or :class:`BadFileError` (``bad-image``)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise BadFileError("bad-image", path, f"cannot decode image ({e})") from None


def downscale(crop: np.ndarray, max_side: int) -> np.ndarray:
    """``crop`` unchanged, or resized so that its longer side is ``max_side`` (0: no limit)."""
    h, w = crop.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return crop
    scale = max_side / max(h, w)
    size = (max_side, max(1, round(h * scale))) if w >= h else (max(1, round(w * scale)), max_side)
    return np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS, reducing_gap=None))


def manifest_row(year: str, image_set: str, image_id: str, **fields: Any) -> Dict[str, Any]:
    """A manifest row with every column of :data:`MANIFEST_FIELDS` (empty unless given)."""
    row = {k: "" for k in MANIFEST_FIELDS}
    row.update(year=year, image_set=image_set, image_id=image_id, **fields)
    return row


def _object_row(year: str, image_set: str, image_id: str, obj: ObjectRecord, **fields: Any) -> Dict[str, Any]:
    return manifest_row(
        year, image_set, image_id,
        object_index=obj.index, **{"class": obj.name},
        xmin=obj.box_text[0], ymin=obj.box_text[1], xmax=obj.box_text[2], ymax=obj.box_text[3],
        difficult=obj.difficult, truncated=obj.truncated, **fields,
    )  # fmt: skip


def process_image(
    source: VOCSource, year: str, image_set: str, image_id: str, max_side: int = 512, strict: bool = False
) -> Tuple[List[Dict[str, Any]], List[np.ndarray]]:
    """Crop every kept object of one image.

    Returns the manifest rows of its objects (``status`` is ``keep`` for a crop, with
    ``label``, or ``excluded`` with a reason) and the crops of the kept ones, in order.
    Raises :class:`BadFileError` for a missing or unreadable file and :class:`UsageError` for
    an unknown class under ``strict``.
    """
    xml_rel, img_rel = source.annotation_path(year, image_id), source.image_path(year, image_id)
    try:
        xml = source.read(xml_rel)
    except FileNotFoundError:
        raise BadFileError("missing-file", source.display(xml_rel), "annotation file not found") from None
    annotation = parse_annotation(xml, source.display(xml_rel))
    if strict:
        for obj in annotation.objects:
            if obj.name not in CLASS_INDEX:
                raise UsageError(
                    f"{source.display(xml_rel)}: object {obj.index} has unknown class "
                    f"{obj.name!r} (--strict); the classes are {', '.join(VOC_CLASSES)}"
                )
    try:
        pixels = _decode(source.read(img_rel), source.display(img_rel))
    except FileNotFoundError:
        raise BadFileError("missing-file", source.display(img_rel), "image file not found") from None
    height, width = pixels.shape[:2]
    image_warnings = []
    if annotation.size is None:
        image_warnings.append(f"no <size> in XML; image is {width}x{height}")
    elif annotation.size != (width, height):
        xw, xh = annotation.size
        image_warnings.append(f"XML size {xw}x{xh} != image size {width}x{height}; image trusted")
    rows, crops = [], []
    for obj in annotation.objects:
        warnings = list(image_warnings)
        reason = exclusion_reason(obj)
        box = None
        if reason is None:
            box = clamp_box(obj.box, width, height)
            if box is None:
                reason = "degenerate-box"
            elif box != obj.box:
                warnings.append("box clamped to image: {},{},{},{}".format(*box))
        row = _object_row(year, image_set, image_id, obj, file=img_rel, warnings="; ".join(warnings))
        if reason is None:
            xmin, ymin, xmax, ymax = box  # 1-based inclusive -> rows ymin-1..ymax-1
            crop = downscale(pixels[ymin - 1 : ymax, xmin - 1 : xmax], max_side)
            row.update(status="keep", label=CLASS_INDEX[obj.name])
            crops.append(np.ascontiguousarray(crop))
        else:
            row.update(status="excluded", reason=reason)
        rows.append(row)
    return rows, crops


def skipped_rows(
    source: VOCSource, year: str, image_set: str, image_id: str, error: BadFileError
) -> List[Dict[str, Any]]:
    """Manifest rows for an image whose file is bad: one for the file, one per known object."""
    bad_file = _relpath(source, error.path, year, image_id)
    common = dict(status="excluded", reason=error.reason, warnings=f"{bad_file}: {error.problem}")
    rows = [manifest_row(year, image_set, image_id, file=bad_file, **common)]
    if error.reason != "bad-xml":  # the annotation parsed: its objects are known
        try:
            xml_rel = source.annotation_path(year, image_id)
            annotation = parse_annotation(source.read(xml_rel), xml_rel)
        except (FileNotFoundError, BadFileError):
            return rows
        image = source.image_path(year, image_id)
        rows.extend(_object_row(year, image_set, image_id, obj, file=image, **common) for obj in annotation.objects)
    return rows


def _relpath(source: VOCSource, display: str, year: str, image_id: str) -> str:
    """The devkit-relative name of a bad file (machine paths stay out of the manifest)."""
    for rel in (source.annotation_path(year, image_id), source.image_path(year, image_id)):
        if display.endswith(rel):
            return rel
    return display
