"""Builders of tiny image folders for the tests: pictures in every format and colour mode, with
the quirks of real folders, each with the RGB pixels a viewer shows for it."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Dict, Optional

import numpy as np
from PIL import Image


def quadrants(height: int, width: int) -> np.ndarray:
    """An RGB picture of four flat quadrants (red, green, blue, yellow from the top left,
    clockwise): any rotation or mirror of it is told apart from it by its corners."""
    out = np.zeros((height, width, 3), dtype=np.uint8)
    h, w = height // 2, width // 2
    out[:h, :w] = (220, 30, 30)
    out[:h, w:] = (30, 200, 30)
    out[h:, w:] = (30, 30, 220)
    out[h:, :w] = (230, 220, 40)
    return out


def gradient(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth RGB picture with some noise (compresses like a photo)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1), (xx + yy) % 256], axis=-1)
    return np.clip(base + rng.integers(-6, 7, size=(height, width, 3)), 0, 255).astype(np.uint8)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def exif_rotated_jpeg(shown: np.ndarray, orientation: int) -> bytes:
    """A JPEG whose stored pixels, turned by its EXIF ``orientation`` (6 or 3), show ``shown``."""
    stored = {6: np.rot90(shown, k=1), 3: np.rot90(shown, k=2), 8: np.rot90(shown, k=-1)}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(np.ascontiguousarray(stored)), "JPEG", quality=95, exif=exif)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width x height`` 8-bit grey pixels and holds almost none: a
    decompression bomb's header, refused before any pixel is decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def pictures() -> Dict[str, tuple]:
    """Name -> (file bytes, the RGB pixels a viewer shows, tolerance: mean absolute difference
    allowed, 0 for exact). One per format and colour mode, plus EXIF-rotated and disguised."""
    rgb = gradient(24, 32)
    grey = rgb[:, :, 0]
    shown_q = quadrants(40, 56)
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
    bilevel = Image.fromarray(grey).convert("1")
    cmyk = Image.fromarray(rgb).convert("CMYK")
    grey16 = grey.astype(np.uint16) * 257
    frame0, frame1 = Image.new("RGB", (20, 16), (200, 20, 20)), Image.new("RGB", (20, 16), (20, 20, 200))
    gif = io.BytesIO()
    frame0.save(gif, format="GIF", save_all=True, append_images=[frame1])
    jpeg_rgb = encode(Image.fromarray(rgb), "JPEG", quality=92)
    return {
        "photo.jpg": (jpeg_rgb, np.asarray(Image.open(io.BytesIO(jpeg_rgb)).convert("RGB")), 0),
        "lossless.png": (encode(Image.fromarray(rgb), "PNG"), rgb, 0),
        "disguised.jpg": (encode(Image.fromarray(rgb), "PNG"), rgb, 0),  # a PNG named .jpg
        "bitmap.bmp": (encode(Image.fromarray(rgb), "BMP"), rgb, 0),
        "lossless.webp": (encode(Image.fromarray(rgb), "WEBP", lossless=True), rgb, 0),
        "animated.gif": (gif.getvalue(), np.asarray(frame0), 0),  # the first frame
        "scan.tiff": (encode(Image.fromarray(rgb), "TIFF"), rgb, 0),
        "grey.png": (encode(Image.fromarray(grey), "PNG"), np.repeat(grey[:, :, None], 3, axis=2), 0),
        "palette.png": (encode(palette, "PNG"), np.asarray(palette.convert("RGB")), 0),
        "alpha.png": (encode(Image.fromarray(rgba, "RGBA"), "PNG"), rgb, 0),  # alpha dropped
        "bilevel.bmp": (encode(bilevel, "BMP"), np.asarray(bilevel.convert("RGB")), 0),
        "grey16.png": (encode(Image.fromarray(grey16), "PNG"), np.repeat(grey[:, :, None], 3, axis=2), 0),
        "print.jpg": (encode(cmyk, "JPEG", quality=95), rgb, 6),  # CMYK
        "rotated6.jpg": (exif_rotated_jpeg(shown_q, 6), shown_q, 6),
        "rotated3.jpg": (exif_rotated_jpeg(shown_q, 3), shown_q, 6),
    }


def broken() -> Dict[str, bytes]:
    """Name -> bytes of pictures that cannot be used, and the reason ``prepare`` gives."""
    jpeg = encode(Image.fromarray(gradient(40, 40, seed=1)), "JPEG", quality=90)
    return {
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "empty.png": b"",
        "bomb.png": png_header_only(30_000, 30_000),
        "garbage.webp": b"RIFF\x00\x00\x00\x00WEBPnot really",
    }


BROKEN_REASONS = {
    "truncated.jpg": "bad-image", "empty.png": "empty-file", "bomb.png": "decompression-bomb",
    "garbage.webp": "bad-image",
}  # fmt: skip


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def quirky_folder(root: Path, with_broken: bool = True, split: Optional[str] = None) -> Dict[str, tuple]:
    """``root/CLASS/...`` (or ``root/split/CLASS/...``) with every quirk; returns the expected
    ``(pixels, tolerance)`` of each picture by its path relative to ``root``.

    Classes: ``Zebra`` (sorts before lower case), ``cat``, ``dog house`` (a space),
    ``émigré.v2`` (non-ASCII, a dot). ``.ipynb_checkpoints`` at the top and ``.git`` in a
    class are hidden folders; ``cat/2019/summer/`` nests; ``notes.txt``, ``.DS_Store`` and
    ``Thumbs.db`` are not pictures; ``root/README.txt`` is outside any class folder.
    """
    base = root / split if split else root
    prefix = f"{split}/" if split else ""
    expected: Dict[str, tuple] = {}
    pics = list(pictures().items())
    classes = ["Zebra", "cat", "dog house", "émigré.v2"]
    for i, (name, (data, pixels, tolerance)) in enumerate(pics):
        cls = classes[i % len(classes)]
        rel = f"{cls}/2019/summer/{name}" if cls == "cat" and i % 2 else f"{cls}/{name}"
        write(base / rel, data)
        expected[prefix + rel] = (pixels, tolerance)
    for cls in classes:  # a second, plain picture each, so every class has two at least
        data = encode(Image.fromarray(gradient(20, 20, seed=len(cls))), "PNG")
        write(base / cls / "extra.png", data)
        expected[f"{prefix}{cls}/extra.png"] = (gradient(20, 20, seed=len(cls)), 0)
    write(base / ".ipynb_checkpoints" / "x-checkpoint.png", encode(Image.fromarray(gradient(8, 8)), "PNG"))
    write(base / "cat" / ".git" / "HEAD", b"ref: refs/heads/main\n")
    write(base / "cat" / "notes.txt", b"not a picture")
    write(base / "cat" / ".DS_Store", b"\x00\x00\x00\x01Bud1")
    write(base / "dog house" / "Thumbs.db", b"\xd0\xcf\x11\xe0")
    write(root / "README.txt", b"my pictures")
    if with_broken:
        for j, (name, data) in enumerate(broken().items()):
            write(base / classes[j % len(classes)] / name, data)
    return expected


def two_classes(root: Path, n: int = 4) -> None:
    """``root/cat`` and ``root/dog``, ``n`` small PNGs each (distinct pixels)."""
    for c, cls in enumerate(("cat", "dog")):
        for i in range(n):
            write(root / cls / f"{i}.png", encode(Image.fromarray(gradient(12, 16, seed=10 * c + i)), "PNG"))


def black_png(width: int, height: int) -> bytes:
    """A real, complete, all-black 8-bit grey PNG, compressed row by row (small on disk)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    z = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
