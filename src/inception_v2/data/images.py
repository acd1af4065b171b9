"""Pictures in, RGB pixels out: the decoding rules of ``prepare`` (see ``docs/data.md``).

* **By content.** A file is decoded by what its bytes are, not by its name: a PNG named
  ``.jpg`` is a PNG. Any format Pillow reads (JPEG, PNG, BMP, WebP, GIF, TIFF, ...); of an
  animated GIF or a multi-page TIFF the first frame.
* **Every colour mode becomes RGB**: grey, palette, RGBA (alpha dropped, as torchvision's
  ``ImageFolder`` and ``predict`` do), CMYK, YCbCr; 16-bit grey keeps its 8 high bits (32-bit
  integer grey from a TIFF whose values fit 0-255 keeps them; negative or wider values are a
  ``bad-image``); 32-bit
  float grey (``F``, TIFF) is read as intensities in [0, 1] (scaled by 255) when all its
  values lie there, else as 0-255 values; NaN, infinities or values outside [0, 255] are a
  ``bad-image``.
* **EXIF orientation** (every user picture: image folders, ``predict``; not VOC, whose boxes
  refer to the stored pixels): a picture is read the way a viewer shows it, so a phone photo
  taken upright is upright. :func:`read_picture` is the one way a user's picture file is
  opened.
* **Broken files** raise :class:`BadFileError` with a reason: ``empty-file``, ``bad-image``
  (truncated, undecodable, unsupported mode), ``decompression-bomb`` (more pixels to decode
  than Pillow's ``Image.MAX_IMAGE_PIXELS`` safety limit, about 89.5 million: refused from the
  header, before any pixel is decoded), ``not-a-file`` (a FIFO, a device: never opened, so
  never waited on) or ``unreadable``.

Messages name the file, never a Python object (Pillow's own messages say
``<_io.BytesIO object at 0x...>``).
"""

from __future__ import annotations

import io
import os
import re
import stat
import warnings
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError

# Files considered pictures by name; anything else under a class folder is ignored (and
# counted). The name only selects candidates: decoding goes by content.
IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".webp", ".gif",
    ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm",
})  # fmt: skip
JPEG_QUALITY = 95  # re-encoding for the jpeg store: high quality, no chroma subsampling
JPEG_SUBSAMPLING = 0  # 4:4:4
EXIF_ORIENTATION = 0x0112
# The largest picture file read: the pixel limit (89.5 Mpx) uncompressed at 16-bit RGBA is 716 MB.
MAX_FILE_BYTES = 1 << 30
_TRANSPOSE = {  # EXIF orientation -> the transposition that shows the picture upright
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_REPR = re.compile(r"\s*<[^<>\n]*? (?:object )?at 0x[0-9a-fA-F]+>")


class BadFileError(Exception):
    """A source file that cannot be used: ``reason`` (``bad-image``, ``empty-file``,
    ``decompression-bomb``, ``bad-xml``, ``missing-file``, ``unreadable``, ``not-a-file``), ``path`` naming the
    file and ``problem`` saying what is wrong with it."""

    def __init__(self, reason: str, path: str, problem: str) -> None:
        super().__init__(reason, path, problem)
        self.reason = reason
        self.path = path
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass(frozen=True)
class Decoded:
    """A decoded picture: ``pixels`` (``H x W x 3`` uint8 RGB, upright, downscaled if needed)
    and what was done to get there."""

    pixels: np.ndarray
    format: str  # Pillow's name of the file format (JPEG, PNG, ...)
    mode: str  # the colour mode of the file (RGB, L, P, CMYK, I;16, ...)
    orientation: int  # the EXIF orientation applied (1: none)
    size: Tuple[int, int]  # (width, height) of the file, before orientation and downscaling

    @property
    def resized(self) -> bool:
        """Whether the pixels are smaller than the file's picture."""
        return self.pixels.shape[0] * self.pixels.shape[1] != self.size[0] * self.size[1]

    def changes(self) -> str:
        """What was done to the file's pixels, for the manifest (empty when nothing)."""
        notes = []
        if self.mode != "RGB":
            notes.append(f"{self.mode} to RGB")
        if self.orientation != 1:
            notes.append(f"EXIF orientation {self.orientation} applied")
        if self.resized:
            notes.append("downscaled from {}x{}".format(*self.size))
        return "; ".join(notes)


def _clean(message: object) -> str:
    return _REPR.sub("", str(message)).strip() or "no detail"


def _bomb_problem(pixels: int, size: Tuple[int, int]) -> str:
    return (
        f"refused as a possible decompression bomb: {size[0]}x{size[1]} = {pixels:,} pixels to decode, more "
        f"than the {Image.MAX_IMAGE_PIXELS:,} Pillow allows (PIL.Image.MAX_IMAGE_PIXELS)"
    )


def _bomb_error(error: Exception) -> str:
    """The problem of Pillow's own refusal (above twice the limit, raised by ``Image.open``)."""
    m = re.search(r"\((\d+) pixels\)", str(error))
    if m:
        return (
            f"refused as a possible decompression bomb: {int(m.group(1)):,} pixels to decode, more than "
            f"the {Image.MAX_IMAGE_PIXELS or 0:,} Pillow allows (PIL.Image.MAX_IMAGE_PIXELS)"
        )
    return f"refused as a possible decompression bomb ({_clean(error)})"


def _check_pixels(im: Image.Image, name: str) -> None:
    """Refuse, before decoding, a picture with more pixels than ``Image.MAX_IMAGE_PIXELS``
    (Pillow itself only warns between one and two times the limit)."""
    limit = Image.MAX_IMAGE_PIXELS
    pixels = im.size[0] * im.size[1]
    if limit is not None and pixels > limit:
        raise BadFileError("decompression-bomb", name, _bomb_problem(pixels, im.size))


def _to_rgb(im: Image.Image) -> np.ndarray:
    """The loaded image ``im`` as ``H x W x 3`` uint8 RGB."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im)
    if mode == "F":
        return _float_to_rgb(np.asarray(im))
    if mode.startswith("I;16") or mode == "I":  # 16-bit grey (PNG, TIFF): the high byte
        values = np.asarray(im).astype(np.int64)
        low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
        if low < 0 or high > 65535:
            raise ValueError(f"an integer picture with values in [{low}, {high}]; only 8 or 16 bits are understood")
        # 32-bit integer grey (TIFF; Pillow < 10 also opens 16-bit PNGs as "I") holding 0-255 values
        shift = 0 if mode == "I" and im.format != "PNG" and high <= 255 else 8
        grey = (values >> shift).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    try:
        return np.asarray(im.convert("RGB"))
    except ValueError as e:  # a mode Pillow cannot convert (LAB, ...)
        raise ValueError(f"colour mode {mode} cannot be converted to RGB ({_clean(e)})") from None


def _float_to_rgb(values: np.ndarray) -> np.ndarray:
    """32-bit float grey: intensities in [0, 1] (scaled by 255) when every value lies there,
    else 0-255 values; anything else has no single reading and is refused."""
    if not np.isfinite(values).all():
        raise ValueError("a float picture with NaN or infinite values")
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low < 0 or high > 255:
        raise ValueError(f"a float picture with values in [{low:g}, {high:g}]; only [0, 1] or [0, 255] is understood")
    scale = 255.0 if high <= 1.0 else 1.0
    grey = np.rint(values.astype(np.float64) * scale).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def downscale(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """``pixels`` unchanged, or resized with LANCZOS so that the longer side is ``max_side``
    (0: no limit); ``reducing_gap`` off, so the result is exact for the given pixels."""
    h, w = pixels.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return pixels
    scale = max_side / max(h, w)
    size = (max_side, max(1, round(h * scale))) if w >= h else (max(1, round(w * scale)), max_side)
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS, reducing_gap=None))


def decode(data: bytes, name: str, *, exif: bool = False, max_side: int = 0) -> Decoded:
    """Decode picture bytes; ``name`` only names the file in errors.

    ``exif`` applies the EXIF orientation; ``max_side`` > 0 downscales a picture whose longer
    side exceeds it (LANCZOS; a large JPEG is first decoded at the smallest DCT scale that
    keeps at least twice the final size, which is much faster and visually the same). The
    pixels to decode (after that DCT scaling) must not exceed ``Image.MAX_IMAGE_PIXELS``.
    Raises :class:`BadFileError`.
    """
    if not data:
        raise BadFileError("empty-file", name, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below, after draft
            im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise BadFileError("decompression-bomb", name, _bomb_error(e)) from None
    except UnidentifiedImageError:
        raise BadFileError("bad-image", name, "cannot decode image (not a picture format Pillow reads)") from None
    except Exception as e:  # noqa: BLE001 - a hostile header can raise anything in a decoder
        raise BadFileError("bad-image", name, f"cannot decode image ({_clean(e)})") from None
    with im:
        fmt, mode, size = im.format or "unknown", im.mode, im.size
        try:
            if max_side > 0 and fmt == "JPEG" and max(size) > 2 * max_side:
                k = 2 * max_side / max(size)
                im.draft(None, (max(1, int(size[0] * k + 1)), max(1, int(size[1] * k + 1))))
        except Exception as e:  # noqa: BLE001 - a damaged header met while scaling
            raise BadFileError("bad-image", name, f"cannot decode image ({_clean(e)})") from None
        _check_pixels(im, name)  # before anything that decodes (a PNG's EXIF may follow its pixels)
        try:
            orientation = _orientation(im) if exif else 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im.load()
            pixels = _to_rgb(im)
        except Exception as e:  # noqa: BLE001 - truncated data, bad chunks, unsupported modes...
            raise BadFileError("bad-image", name, f"cannot decode image ({_clean(e)})") from None
    if orientation != 1:
        pixels = np.asarray(Image.fromarray(pixels).transpose(_TRANSPOSE[orientation]))
    pixels = downscale(pixels, max_side)
    return Decoded(np.ascontiguousarray(pixels), fmt, mode, orientation, size)


def read_picture(path: os.PathLike, *, max_side: int = 0, name: Optional[str] = None) -> Tuple[bytes, Decoded]:
    """The one way a user's picture file is opened (image folders, ``predict``): its bytes and
    its pixels decoded by content, EXIF orientation applied, as RGB (:func:`decode`).

    ``name`` names the file in errors (default: ``path``). Only a regular file is opened (a
    FIFO would block, a device never end): anything else is a ``not-a-file``
    :class:`BadFileError`, as are a missing (``missing-file``) or unreadable file; a file over
    :data:`MAX_FILE_BYTES` is a ``bad-image``, refused before it is read.
    """
    name = str(path) if name is None else name
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO, socket or device)"
            raise BadFileError("not-a-file", name, f"{kind}, not a picture file")
        if info.st_size > MAX_FILE_BYTES:
            problem = f"{info.st_size:,} bytes, more than any picture within the pixel limit needs (1 GiB); not read"
            raise BadFileError("bad-image", name, problem)
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise BadFileError("missing-file", name, "file not found") from None
    except OSError as e:
        raise BadFileError("unreadable", name, f"cannot read file ({e.strerror or e})") from None
    return data, decode(data, name, exif=True, max_side=max_side)


def _orientation(im: Image.Image) -> int:
    try:
        value = int(im.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a damaged EXIF block: the picture as stored
        return 1
    return value if value in _TRANSPOSE else 1


def keeps_original_bytes(decoded: Decoded) -> bool:
    """Whether the jpeg store can keep the file's own bytes: a JPEG whose pixels needed no
    change that the loader's ``decode_jpeg(mode=RGB)`` would not make itself."""
    unchanged = decoded.orientation == 1 and not decoded.resized
    return unchanged and decoded.format == "JPEG" and decoded.mode in ("RGB", "L")


def encode_jpeg(pixels: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """``H x W x 3`` uint8 RGB as JPEG bytes (baseline, 4:4:4, ``quality``)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality, subsampling=JPEG_SUBSAMPLING)
    return buffer.getvalue()


def is_image_name(name: str) -> bool:
    """Whether a file name looks like a picture (by extension, case-insensitive)."""
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in IMAGE_EXTENSIONS
