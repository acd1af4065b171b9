"""Builders of tiny hand-written VOC devkits for tests that need exact, known content."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
from PIL import Image


def coordinate_image(width: int, height: int) -> np.ndarray:
    """An RGB image whose pixel (row y, column x) is (x, y, 77): every crop says where it came
    from. Sides must be <= 256."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx, yy, np.full_like(xx, 77)], axis=-1).astype(np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    """Lossless image bytes. Saved under a ``.jpg`` name, they are still read correctly (PIL
    goes by content), which lets tests check crop geometry to the pixel."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def object_xml(
    name: str,
    box: Sequence[str],
    difficult: Optional[str] = "0",
    truncated: str = "0",
    parts: Iterable[Tuple[str, Sequence[str]]] = (),
) -> str:
    """One ``<object>``; ``difficult=None`` leaves the tag out."""
    coords = "".join(f"<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
    diff = "" if difficult is None else f"<difficult>{difficult}</difficult>"
    part_xml = "".join(
        f"<part><name>{p}</name><bndbox>"
        + "".join(f"<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), b))
        + "</bndbox></part>"
        for p, b in parts
    )
    return (
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>{truncated}</truncated>"
        f"{diff}<bndbox>{coords}</bndbox>{part_xml}</object>"
    )


def annotation_xml(width: int, height: int, objects: Iterable[str]) -> str:
    return (
        "<annotation><folder>VOC2007</folder><filename>x.jpg</filename>"
        f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
        "<segmented>0</segmented>" + "".join(objects) + "</annotation>"
    )


def write_devkit(root: Path, images: Dict[Tuple[str, str, str], Tuple[bytes, str]]) -> Path:
    """Write ``root/VOCdevkit`` with ``images[(year, image_set, image_id)] = (image bytes,
    xml text)``; returns ``root``."""
    lists: Dict[Tuple[str, str], list] = {}
    for (year, image_set, image_id), (image, xml) in images.items():
        base = root / "VOCdevkit" / f"VOC{year}"
        (base / "JPEGImages").mkdir(parents=True, exist_ok=True)
        (base / "Annotations").mkdir(parents=True, exist_ok=True)
        (base / "JPEGImages" / f"{image_id}.jpg").write_bytes(image)
        (base / "Annotations" / f"{image_id}.xml").write_text(xml)
        lists.setdefault((year, image_set), []).append(image_id)
    for (year, image_set), ids in lists.items():
        main = root / "VOCdevkit" / f"VOC{year}" / "ImageSets" / "Main"
        main.mkdir(parents=True, exist_ok=True)
        (main / f"{image_set}.txt").write_text("".join(f"{i}\n" for i in ids))
    return root


def official_tars(devkit_root: Path, out: Path) -> list:
    """Pack a devkit the way the three official tar files are packed (members named
    ``VOCdevkit/VOC<year>/...``): 2007 trainval, 2007 test, 2012 trainval."""
    out.mkdir(parents=True, exist_ok=True)
    tars = []
    for tar_name, year, image_set in (
        ("VOCtrainval_06-Nov-2007.tar", "2007", "trainval"),
        ("VOCtest_06-Nov-2007.tar", "2007", "test"),
        ("VOCtrainval_11-May-2012.tar", "2012", "trainval"),
    ):
        base = devkit_root / "VOCdevkit" / f"VOC{year}"
        ids = (base / "ImageSets" / "Main" / f"{image_set}.txt").read_text().split()
        members = [f"ImageSets/Main/{image_set}.txt"]
        for image_id in ids:
            members += [f"Annotations/{image_id}.xml", f"JPEGImages/{image_id}.jpg"]
        with tarfile.open(out / tar_name, "w") as tar:  # uncompressed, like the originals
            for member in members:
                tar.add(base / member, arcname=f"VOCdevkit/VOC{year}/{member}")
        tars.append(out / tar_name)
    return tars
