"""Hostile but realistic picture files and image folders: one reader for every user picture
(EXIF orientation included), float TIFFs, pictures above the pixel limit refused from their
header, JPEGs the loader cannot decode, symbolic links (aliases, loops, one file twice) and
file names that are not UTF-8."""

from __future__ import annotations

import csv
import os
import resource
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inception_v2.data import PreparedDataset, prepare
from inception_v2.data.dataset import jpeg_decoder
from inception_v2.data.images import BadFileError, decode, read_picture
from inception_v2.errors import UsageError
from inception_v2.predict import read_image
from tests.data.folders import black_png, encode, exif_rotated_jpeg, gradient, quadrants, two_classes, write

QUIET = dict(progress=False, log=lambda _: None)


def manifest(out: Path) -> dict:
    with open(out / "manifest.csv", newline="", encoding="utf-8") as f:
        return {row["file"]: row for row in csv.DictReader(f)}


def stored(out: Path, row: dict) -> np.ndarray:
    return PreparedDataset(out, row["status"]).image(int(row["store_index"])).permute(1, 2, 0).numpy()


# --------------------------------------------------------------------------- one reader


def test_predict_and_prepare_see_the_same_upright_pixels_of_an_exif_rotated_jpeg(tmp_path):
    shown = quadrants(40, 56)
    root = tmp_path / "pictures"
    two_classes(root)
    write(root / "cat" / "phone.jpg", exif_rotated_jpeg(shown, 6))
    out = tmp_path / "p"
    prepare(out, image_folder=root, val_fraction=0.0, test_fraction=0.0, max_side=0, **QUIET)
    row = manifest(out)["cat/phone.jpg"]
    assert "EXIF orientation 6 applied" in row["warnings"]
    in_store = stored(out, row)
    seen_by_predict = read_image(root / "cat" / "phone.jpg").permute(1, 2, 0).numpy()
    assert in_store.shape == (40, 56, 3) and np.array_equal(seen_by_predict, in_store)
    assert np.abs(in_store[2, 2].astype(int) - (220, 30, 30)).max() < 20  # red top left: upright
    # --box is in the upright frame a viewer shows: the top-right (green) quadrant
    box = read_image(root / "cat" / "phone.jpg", box=(31, 1, 56, 20)).permute(1, 2, 0).numpy()
    assert np.array_equal(box, in_store[0:20, 30:56])
    assert np.abs(box.astype(int) - (30, 200, 30)).max(axis=2).mean() < 20


def test_read_picture_refuses_what_is_not_a_regular_file_without_opening_it(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    for path, reason in ((fifo, "not-a-file"), (tmp_path, "not-a-file"), (tmp_path / "nope.png", "missing-file")):
        with pytest.raises(BadFileError) as info:
            read_picture(path)
        assert info.value.reason == reason and str(path) in str(info.value)
    with pytest.raises(UsageError, match=f"image {fifo} is not a regular file"):
        read_image(fifo)


def test_a_picture_file_over_1_gib_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.png"
    with open(path, "wb") as f:  # sparse: no disk used
        f.write(black_png(4, 4))
        f.truncate((1 << 30) + 1)
    with pytest.raises(BadFileError) as info:
        read_picture(path)
    assert info.value.reason == "bad-image" and "1,073,741,825 bytes" in str(info.value)


# --------------------------------------------------------------------------- pixels


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_a_float_tiff_is_stored_as_its_intensities_not_black(scale):
    values = np.linspace(0.0, 1.0, 20 * 30, dtype=np.float32).reshape(20, 30)
    data = encode(Image.fromarray(values * np.float32(scale), "F"), "TIFF")
    decoded = decode(data, "depth.tif")
    assert decoded.mode == "F" and decoded.pixels.shape == (20, 30, 3)
    want = np.rint(values.astype(np.float64) * 255).astype(np.uint8)
    assert np.abs(decoded.pixels[:, :, 1].astype(int) - want).max() <= 1
    assert decoded.pixels.max() == 255 and decoded.pixels.min() == 0


@pytest.mark.parametrize("bad, message", [(np.nan, "NaN or infinite"), (-0.5, "values in [-0.5, 1]"), (300, ", 300]")])
def test_a_float_tiff_without_one_reading_is_a_named_bad_image(bad, message):
    values = np.linspace(0.0, 1.0, 6 * 8, dtype=np.float32).reshape(6, 8)
    values[0, 0] = bad
    with pytest.raises(BadFileError) as info:
        decode(encode(Image.fromarray(values, "F"), "TIFF"), "/data/cat/odd.tif")
    assert info.value.reason == "bad-image" and message in str(info.value) and "/data/cat/odd.tif" in str(info.value)


def test_a_32_bit_integer_tiff_keeps_0_to_255_values_and_refuses_what_does_not_fit():
    values = (np.arange(20 * 30).reshape(20, 30) % 256).astype(np.int32)
    decoded = decode(encode(Image.fromarray(values, "I"), "TIFF"), "count.tif")
    assert decoded.mode == "I" and np.array_equal(decoded.pixels[:, :, 0], values.astype(np.uint8))
    wide = values * 100  # 16-bit values: the high byte, as a 16-bit PNG
    assert np.array_equal(decode(encode(Image.fromarray(wide, "I"), "TIFF"), "w.tif").pixels[:, :, 0], wide >> 8)
    values[0, 0] = -7
    with pytest.raises(BadFileError, match=r"neg.tif: .*integer picture with values in \[-7, 255\]"):
        decode(encode(Image.fromarray(values, "I"), "TIFF"), "neg.tif")


def test_a_picture_above_the_pixel_limit_is_refused_from_its_header_with_little_memory():
    data = black_png(10_000, 10_000)  # 100 million pixels, complete and decodable, ~100 KB on disk
    assert len(data) < 500_000 and 10_000 * 10_000 > Image.MAX_IMAGE_PIXELS
    decode(black_png(8, 8), "warm-up.png")  # Pillow's plugins load on first use
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    for max_side in (0, 512):
        with pytest.raises(BadFileError) as info:
            decode(data, "/data/cat/huge.png", exif=True, max_side=max_side)
        assert info.value.reason == "decompression-bomb"
        assert "10000x10000 = 100,000,000 pixels" in str(info.value) and "MAX_IMAGE_PIXELS" in str(info.value)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 50, f"peak memory grew by {grown_mib:.0f} MiB: the pixels were decoded"


def test_the_pixel_limit_counts_the_pixels_decoded_so_a_large_jpeg_scaled_by_its_draft_passes(monkeypatch):
    data = encode(Image.fromarray(gradient(400, 600)), "JPEG", quality=90)  # 240,000 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 150_000)  # (Pillow itself refuses above twice that)
    with pytest.raises(BadFileError, match="600x400 = 240,000 pixels to decode"):
        decode(data, "big.jpg")  # decoded in full: refused
    assert decode(data, "big.jpg", max_side=100).pixels.shape == (67, 100, 3)  # DCT-scaled to 1/4 first


# --------------------------------------------------------------------------- the jpeg store


def zero_padded_jpeg() -> tuple:
    """A JPEG whose end marker was lost to zero padding: Pillow decodes it, ``decode_jpeg`` refuses it."""
    pixels = gradient(48, 64, seed=3)
    good = encode(Image.fromarray(pixels), "JPEG", quality=92)
    return good[:-2] + b"\x00" * 4, pixels


def test_a_jpeg_the_loader_cannot_decode_is_re_encoded_in_the_jpeg_store(tmp_path):
    data, pixels = zero_padded_jpeg()
    with pytest.raises(RuntimeError):
        jpeg_decoder()(np.frombuffer(data, dtype=np.uint8).copy())  # what train would have met
    assert decode(data, "x.jpg").pixels.shape == (48, 64, 3)
    root = tmp_path / "pictures"
    two_classes(root)
    write(root / "cat" / "padded.jpg", data)
    write(root / "dog" / "fine.jpg", encode(Image.fromarray(gradient(48, 64, seed=4)), "JPEG", quality=92))
    out = tmp_path / "p"
    prepare(out, image_folder=root, val_fraction=0.0, test_fraction=0.0, store="jpeg", **QUIET)
    rows = manifest(out)
    assert "re-encoded: the loader's JPEG decoder cannot read the file" in rows["cat/padded.jpg"]["warnings"]
    assert rows["dog/fine.jpg"]["warnings"] == ""  # a good JPEG keeps its own bytes
    dataset = PreparedDataset(out, "train")
    for i in range(len(dataset)):  # every stored JPEG decodes the way the loader decodes it
        dataset.image(i)
    padded = stored(out, rows["cat/padded.jpg"])
    assert np.abs(padded.astype(int) - pixels.astype(int)).mean() < 4
    assert (root / "dog" / "fine.jpg").read_bytes() in (out / "train.jpeg").read_bytes()


# --------------------------------------------------------------------------- links


def test_a_file_linked_twice_in_one_class_is_stored_once_and_a_loop_is_not_followed(tmp_path):
    root = tmp_path / "pictures"
    two_classes(root)
    os.symlink("0.png", root / "cat" / "zz-again.png")  # the same file twice in one class
    os.symlink("..", root / "dog" / "up")  # a loop back to the root
    os.symlink(".", root / "cat" / "here")  # a loop to its own folder
    os.symlink("missing.png", root / "cat" / "dangling.png")
    out = tmp_path / "p"
    counts = prepare(out, image_folder=root, val_fraction=0.0, test_fraction=0.0, **QUIET)
    rows = manifest(out)
    assert rows["cat/zz-again.png"]["reason"] == "duplicate-file"
    assert rows["cat/zz-again.png"]["warnings"] == "same file as cat/0.png"
    assert rows["dog/up/"]["reason"] == "link-loop" and rows["dog/up/"]["warnings"] == "a link to ROOT"
    assert (
        rows["cat/here/"]["reason"] == "link-loop"
        and rows["cat/here/"]["warnings"] == "a link to cat/, a folder above it"
    )
    assert rows["cat/dangling.png"]["reason"] == "broken-link"
    assert counts["train"]["total"] == 8  # 4 + 4: nothing twice, nothing from the loop
    assert counts["ignored_files"] == {"broken-link": 1, "duplicate-file": 1, "link-loop": 2}
    assert not any(f.startswith(("dog/up/", "cat/here/")) and r["status"] != "ignored" for f, r in rows.items())


def test_one_file_in_train_and_test_of_the_same_class_is_stored_in_train_only(tmp_path):
    root = tmp_path / "pictures"
    for split in ("train", "test"):
        two_classes(root / split, n=2)
    (root / "test" / "cat" / "0.png").unlink()
    os.symlink(root / "train" / "cat" / "0.png", root / "test" / "cat" / "0.png")  # a leak, by link
    os.link(root / "train" / "dog" / "1.png", root / "test" / "dog" / "hard.png")  # a hard link
    out = tmp_path / "p"
    counts = prepare(out, image_folder=root, val_fraction=0.0, **QUIET)
    rows = manifest(out)
    assert rows["train/cat/0.png"]["status"] == "train"
    assert rows["test/cat/0.png"]["status"] == "ignored" and rows["test/cat/0.png"]["reason"] == "duplicate-file"
    assert rows["test/dog/hard.png"]["warnings"] == "same file as train/dog/1.png"
    assert counts["train"]["total"] == 4 and counts["test"]["total"] == 3


def test_a_split_folder_linked_to_another_is_refused(tmp_path):
    root = tmp_path / "pictures"
    two_classes(root / "train")
    os.symlink("train", root / "test")
    with pytest.raises(UsageError, match=r"split folder .*test is the same folder as .*train"):
        prepare(tmp_path / "p", image_folder=root, **QUIET)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda r: os.symlink("cat", r / "kitty"), r"class folders .*cat and .*kitty are the same folder"),
        (lambda r: os.symlink(".", r / "everything"), r"class folder .*everything is a symbolic link to .* \(a loop\)"),
        (lambda r: os.symlink("../dog/0.png", r / "cat" / "x.png"), r"cat/x.png \(class 'cat'\) and .*dog/0.png"),
        (lambda r: os.symlink("../dog", r / "cat" / "more"), r"\(class 'cat'\) and .*dog/0.png \(class 'dog'\)"),
    ],
    ids=["alias-class", "class-is-root", "file-in-two-classes", "folder-of-another-class"],
)
def test_one_picture_under_two_classes_is_refused_before_any_work(tmp_path, make, message):
    root = tmp_path / "pictures"
    two_classes(root)
    make(root)
    with pytest.raises(UsageError, match=message):
        prepare(tmp_path / "p", image_folder=root, **QUIET)
    assert not (tmp_path / "p" / "work").exists()  # refused while scanning: nothing decoded


# --------------------------------------------------------------------------- names


def test_a_file_name_that_is_not_utf8_is_stored_and_named_with_escapes(tmp_path):
    root = tmp_path / "pictures"
    two_classes(root)
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes, as an old camera or archive writes them
    write(root / "cat" / name, encode(Image.fromarray(gradient(12, 16, seed=99)), "PNG"))
    out = tmp_path / "p"
    counts = prepare(out, image_folder=root, val_fraction=0.0, test_fraction=0.0, workers=2, **QUIET)
    row = manifest(out)["cat/caf\\xe9.png"]
    assert row["status"] == "train" and "file name is not UTF-8" in row["warnings"]
    assert counts["train"]["total"] == 9


def test_a_bad_picture_with_a_non_utf8_name_is_named_in_one_printable_line(tmp_path):
    root = tmp_path / "pictures"
    two_classes(root)
    write(root / "cat" / os.fsdecode(b"bad\xff.png"), b"not a picture")
    with pytest.raises(UsageError) as info:
        prepare(tmp_path / "p", image_folder=root, **QUIET)
    message = str(info.value)
    assert "cat/bad\\xff.png: cannot decode image" in message
    message.encode("utf-8")  # printable: no lone surrogate
    counts = prepare(tmp_path / "q", image_folder=root, skip_bad=True, **QUIET)
    assert counts["skipped"][0]["file"] == "cat/bad\\xff.png"


def test_a_class_folder_name_that_is_not_utf8_is_refused_up_front(tmp_path):
    root = tmp_path / "pictures"
    two_classes(root)
    (root / "dog").rename(root / os.fsdecode(b"d\xf6g"))
    with pytest.raises(UsageError, match=r"class folder .*d\\xf6g: its name is not UTF-8"):
        prepare(tmp_path / "p", image_folder=root, **QUIET)
    assert not (tmp_path / "p").exists()


def test_read_picture_gives_the_file_bytes_and_upright_pixels(tmp_path):
    data = exif_rotated_jpeg(quadrants(20, 30), 6)
    (tmp_path / "a.jpg").write_bytes(data)
    raw, decoded = read_picture(tmp_path / "a.jpg")
    assert raw == data and decoded.orientation == 6 and decoded.pixels.shape == (20, 30, 3)
