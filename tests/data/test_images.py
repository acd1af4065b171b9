"""The decoding rules: by content, every format and colour mode to RGB, EXIF orientation,
downscaling, and broken pictures as named, repr-free errors with a reason."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inception_v2.data.images import BadFileError, decode, encode_jpeg, is_image_name, keeps_original_bytes
from tests.data.folders import BROKEN_REASONS, broken, encode, exif_rotated_jpeg, gradient, pictures, quadrants


@pytest.mark.parametrize("name", sorted(pictures()))
def test_every_format_and_mode_becomes_the_rgb_a_viewer_shows(name):
    data, expected, tolerance = pictures()[name]
    decoded = decode(data, name, exif=True)
    assert decoded.pixels.dtype == np.uint8 and decoded.pixels.shape == expected.shape
    diff = np.abs(decoded.pixels.astype(int) - expected.astype(int)).mean()
    assert diff <= tolerance, f"{name}: mean difference {diff:.2f} > {tolerance}"
    if name == "disguised.jpg":
        assert decoded.format == "PNG"  # by content, not by name


def test_exif_orientation_is_applied_only_when_asked():
    shown = quadrants(40, 56)
    data = exif_rotated_jpeg(shown, 6)
    upright, as_stored = decode(data, "r.jpg", exif=True), decode(data, "r.jpg", exif=False)
    assert upright.pixels.shape == (40, 56, 3) and as_stored.pixels.shape == (56, 40, 3)
    assert upright.orientation == 6 and "EXIF orientation 6 applied" in upright.changes()
    assert np.abs(upright.pixels[2, 2].astype(int) - (220, 30, 30)).max() < 20  # red top left, as shown
    assert not keeps_original_bytes(upright)  # the jpeg store re-encodes it upright


def test_max_side_downscales_large_pictures_also_through_the_jpeg_draft():
    big = gradient(300, 1200)
    for data in (encode(Image.fromarray(big), "PNG"), encode(Image.fromarray(big), "JPEG", quality=95)):
        decoded = decode(data, "big", max_side=100)
        assert decoded.pixels.shape == (25, 100, 3) and decoded.resized and decoded.size == (1200, 300)
        reference = np.asarray(Image.fromarray(big).resize((100, 25), Image.Resampling.LANCZOS))
        assert np.abs(decoded.pixels.astype(int) - reference.astype(int)).mean() < 4
    small = decode(encode(Image.fromarray(big[:50, :80]), "PNG"), "small", max_side=100)
    assert small.pixels.shape == (50, 80, 3) and not small.resized and small.changes() == ""


def test_only_unchanged_rgb_or_grey_jpegs_keep_their_bytes():
    rgb = gradient(30, 40)
    assert keeps_original_bytes(decode(encode(Image.fromarray(rgb), "JPEG"), "a"))
    assert keeps_original_bytes(decode(encode(Image.fromarray(rgb[:, :, 0]), "JPEG"), "a"))
    assert not keeps_original_bytes(decode(encode(Image.fromarray(rgb), "PNG"), "a"))
    assert not keeps_original_bytes(decode(encode(Image.fromarray(rgb).convert("CMYK"), "JPEG"), "a"))
    assert not keeps_original_bytes(decode(encode(Image.fromarray(rgb), "JPEG"), "a", max_side=20))
    again = decode(encode_jpeg(rgb), "re-encoded")
    assert np.abs(again.pixels.astype(int) - rgb.astype(int)).mean() < 4  # quality 95, 4:4:4, on noise


@pytest.mark.parametrize("name", sorted(broken()))
def test_broken_pictures_are_named_errors_with_a_reason(name):
    with pytest.raises(BadFileError) as info:
        decode(broken()[name], f"/data/cat/{name}", exif=True)
    assert info.value.reason == BROKEN_REASONS[name]
    message = str(info.value)
    assert message.startswith(f"/data/cat/{name}: ") and "0x" not in message and "BytesIO" not in message
    if name == "bomb.png":
        assert "decompression bomb" in message and "900,000,000 pixels" in message


def test_picture_names():
    assert all(is_image_name(n) for n in ("a.jpg", "B.JPEG", "c.Png", "d.tif", "e.webp", "f.gif", "x.y.bmp"))
    assert not any(is_image_name(n) for n in ("notes.txt", "Thumbs.db", "jpg", ".jpg", "archive.zip"))
