"""``inception-v2 make-sample``: a small synthetic PASCAL VOC devkit, the project's built-in data.

The devkit has the official layout (``VOCdevkit/VOC2007`` with ``trainval.txt`` and
``test.txt``, ``VOCdevkit/VOC2012`` with ``trainval.txt``) and real-format XML, so every part of
the pipeline runs on it exactly as on the real data set. Each of the 20 classes has its own
appearance, learnable by a small CNN in a few epochs:

* a hue of its own (class ``i`` at ``18 * i`` degrees, high saturation, over a low-saturation
  cluttered background), so colour alone nearly identifies the class;
* a shape of its own (circle, ring, star, cross, ...; a person is a head, a body, arms, legs);
* a texture (flat, stripes, checks, dots, noise), with random jitter of colour, size, aspect
  ratio and position, several objects per image.

It also has the quirks of the real annotations: ``difficult=1`` objects (small and faded),
``truncated=1`` objects cut by the image border, boxes on the border, files with one object,
person objects with ``<part>`` children (head, hands, feet), coordinates written as floats
(``48.0``) and objects without a ``<difficult>`` tag. ``OUT/COUNTS.json`` holds the counts per
year/split computed while drawing (the same schema as the real sample's ``COUNTS.json``).

The output is a deterministic function of ``images`` and ``seed``.
"""

from __future__ import annotations

import colorsys
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
from PIL import Image, ImageDraw

from inception_v2.atomic import write_bytes, write_json, write_text
from inception_v2.data.voc import SPLITS, VOC_CLASSES
from inception_v2.errors import UsageError

SAMPLE_VERSION = 1
DEFAULT_IMAGES = 400
DEFAULT_SEED = 0
TEST_FRACTION = 0.1  # share of images in VOC2007 test; the rest is split between the trainvals

# Shape and texture of each class, in VOC_CLASSES order (the hue is 18 degrees per class).
SHAPES = (
    "plus", "dumbbell", "triangle", "half-disc", "bottle",
    "square", "trapezoid", "diamond", "l-shape", "cloud",
    "t-shape", "ellipse", "parallelogram", "ring", "person",
    "star", "hexagon", "u-shape", "arrow", "frame",
)  # fmt: skip
TEXTURES = ("flat", "hstripes", "vstripes", "checker", "dots", "noise")


def _fit_unit_box(points: List[Tuple[float, float]]) -> List[Tuple[float, float]]:
    """Scale a polygon to touch all four sides of the unit box (so its box is tight)."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return [((x - min(xs)) / (max(xs) - min(xs)), (y - min(ys)) / (max(ys) - min(ys))) for x, y in points]


_POLYGONS = {
    "triangle": [(0.5, 0), (1, 1), (0, 1)],
    "diamond": [(0.5, 0), (1, 0.5), (0.5, 1), (0, 0.5)],
    "trapezoid": [(0.25, 0), (0.75, 0), (1, 1), (0, 1)],
    "l-shape": [(0, 0), (0.4, 0), (0.4, 0.6), (1, 0.6), (1, 1), (0, 1)],
    "t-shape": [(0, 0), (1, 0), (1, 0.3), (0.65, 0.3), (0.65, 1), (0.35, 1), (0.35, 0.3), (0, 0.3)],
    "u-shape": [(0, 0), (0.3, 0), (0.3, 0.6), (0.7, 0.6), (0.7, 0), (1, 0), (1, 1), (0, 1)],
    "parallelogram": [(0.3, 0), (1, 0), (0.7, 1), (0, 1)],
    "bottle": [(0.35, 0), (0.65, 0), (0.65, 0.3), (1, 0.45), (1, 1), (0, 1), (0, 0.45), (0.35, 0.3)],
    "arrow": [(0, 0.3), (0.6, 0.3), (0.6, 0), (1, 0.5), (0.6, 1), (0.6, 0.7), (0, 0.7)],
    "hexagon": [(0.25, 0), (0.75, 0), (1, 0.5), (0.75, 1), (0.25, 1), (0, 0.5)],
    "square": [(0, 0), (1, 0), (1, 1), (0, 1)],
    "star": _fit_unit_box([
        (math.sin(k * math.pi / 5) * (1.0 if k % 2 == 0 else 0.4),
         -math.cos(k * math.pi / 5) * (1.0 if k % 2 == 0 else 0.4))
        for k in range(10)
    ]),
}  # fmt: skip
# Person parts in box units (x0, y0, x1, y1), drawn as part of the figure.
_PERSON_PARTS = {
    "head": [(0.3, 0.0, 0.7, 0.25)],
    "hand": [(0.0, 0.33, 0.12, 0.45), (0.88, 0.33, 1.0, 0.45)],
    "foot": [(0.26, 0.9, 0.46, 1.0), (0.54, 0.9, 0.74, 1.0)],
}


@dataclass
class _Object:
    label: int
    box: Tuple[int, int, int, int]  # 1-based inclusive, clipped to the image
    difficult: int
    truncated: int
    pose: str
    floats: bool = False  # write coordinates as "48.0"
    omit_difficult: bool = False  # no <difficult> tag (only when difficult == 0)
    parts: List[Tuple[str, Tuple[int, int, int, int]]] = field(default_factory=list)


# --------------------------------------------------------------------------- drawing


def _unit_mask(shape: str, w: int, h: int, rng: np.random.Generator) -> Image.Image:
    """A ``w`` x ``h`` mask (mode L) of ``shape`` filling its box."""
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    sx, sy = w - 1, h - 1

    def rect(x0: float, y0: float, x1: float, y1: float, fill: int = 255) -> None:
        draw.rectangle((x0 * sx, y0 * sy, x1 * sx, y1 * sy), fill=fill)

    def ellipse(x0: float, y0: float, x1: float, y1: float, fill: int = 255) -> None:
        draw.ellipse((x0 * sx, y0 * sy, x1 * sx, y1 * sy), fill=fill)

    if shape in _POLYGONS:
        draw.polygon([(u * sx, v * sy) for u, v in _POLYGONS[shape]], fill=255)
    elif shape == "ellipse":
        ellipse(0, 0, 1, 1)
    elif shape == "ring":
        ellipse(0, 0, 1, 1)
        ellipse(0.28, 0.28, 0.72, 0.72, fill=0)
    elif shape == "frame":
        rect(0, 0, 1, 1)
        rect(0.22, 0.22, 0.78, 0.78, fill=0)
    elif shape == "plus":
        rect(0, 0.35, 1, 0.65)
        rect(0.35, 0, 0.65, 1)
    elif shape == "half-disc":
        draw.pieslice((0, -sy, sx, sy), 0, 180, fill=255)
    elif shape == "dumbbell":
        ellipse(0, 0, 0.45, 1)
        ellipse(0.55, 0, 1, 1)
        rect(0.2, 0.4, 0.8, 0.6)
    elif shape == "cloud":
        for x0, y0, x1, y1 in ((0, 0.3, 0.5, 1), (0.5, 0.3, 1, 1), (0.2, 0, 0.8, 0.6), (0.25, 0.4, 0.75, 1)):
            ellipse(x0, y0, x1, y1)
    elif shape == "person":
        ellipse(*_PERSON_PARTS["head"][0])
        body = [(0.25, 0.27), (0.75, 0.27), (0.68, 0.72), (0.32, 0.72)]
        draw.polygon([(u * sx, v * sy) for u, v in body], fill=255)
        rect(0, 0.33, 1, 0.45)  # arms, hands at the ends
        rect(0.3, 0.7, 0.44, 1)  # legs, feet below
        rect(0.56, 0.7, 0.7, 1)
        for x0, y0, x1, y1 in _PERSON_PARTS["foot"]:
            rect(x0, y0, x1, y1)
    else:  # pragma: no cover - SHAPES and this function are kept in step by a test
        raise ValueError(shape)
    return mask


def _texture(kind: str, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A brightness factor in [0.55, 1] per pixel."""
    yy, xx = np.mgrid[0:h, 0:w]
    period = int(rng.integers(5, 9))
    if kind == "flat":
        t = np.ones((h, w))
    elif kind == "hstripes":
        t = np.where((yy // period) % 2 == 0, 1.0, 0.6)
    elif kind == "vstripes":
        t = np.where((xx // period) % 2 == 0, 1.0, 0.6)
    elif kind == "checker":
        t = np.where(((xx // period) + (yy // period)) % 2 == 0, 1.0, 0.6)
    elif kind == "dots":
        r2 = ((xx % period) - period / 2) ** 2 + ((yy % period) - period / 2) ** 2
        t = np.where(r2 < (period / 3) ** 2, 0.6, 1.0)
    else:  # noise
        t = rng.uniform(0.6, 1.0, size=(h, w))
    return t


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255.0


def _background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Low-saturation clutter (so that the objects' hues stand out): a gradient, random
    rectangles, ellipses and lines, and noise."""
    top, bottom = (
        _hsv(rng.random(), rng.uniform(0, 0.2), rng.uniform(0.3, 0.9)),
        _hsv(rng.random(), rng.uniform(0, 0.2), rng.uniform(0.3, 0.9)),
    )
    ramp = np.linspace(0, 1, h)[:, None, None]
    base = (1 - ramp) * top + ramp * bottom
    image = Image.fromarray(np.broadcast_to(base, (h, w, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(8, 20))):
        colour = tuple(int(c) for c in _hsv(rng.random(), rng.uniform(0, 0.2), rng.uniform(0.15, 0.95)))
        x0, x1 = sorted(rng.integers(0, w, 2))
        y0, y1 = sorted(rng.integers(0, h, 2))
        kind = rng.integers(3)
        if kind == 0:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        elif kind == 1:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(1, 6)))
    noisy = np.asarray(image).astype(np.int16) + rng.integers(-8, 9, size=(h, w, 1))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _overlap(a: Tuple[int, int, int, int], b: Tuple[int, int, int, int]) -> float:
    """Intersection over the smaller box's area (1.0 when one box holds the other)."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return iw * ih / min(area(a), area(b))


def _draw_image(rng: np.random.Generator, labels: List[int]) -> Tuple[Image.Image, List[_Object]]:
    """One image with one object per entry of ``labels``, drawn in order (later ones on top)."""
    width, height = int(rng.integers(160, 321)), int(rng.integers(160, 321))
    image = _background(rng, width, height)
    objects: List[_Object] = []
    for label in labels:
        difficult = int(rng.random() < 0.08)
        side = min(width, height)
        for _ in range(20):  # a few tries to keep objects from covering each other much
            if difficult:  # small and faded, like the real difficult objects
                w, h = (int(v) for v in rng.integers(10, 25, size=2))
            else:
                scale = rng.uniform(0.25, 0.7) * side
                aspect = math.exp(rng.uniform(-0.6, 0.6))
                w, h = max(12, int(scale * math.sqrt(aspect))), max(12, int(scale / math.sqrt(aspect)))
            w, h = min(w, width), min(h, height)
            cut = not difficult and rng.random() < 0.12  # partly outside: truncated
            if cut:
                x0 = int(rng.choice([-int(rng.uniform(0.1, 0.4) * w), width - w + int(rng.uniform(0.1, 0.4) * w)]))
                y0 = int(rng.integers(0, height - h + 1))
            else:
                x0, y0 = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
                if rng.random() < 0.1:  # flush with a border, not truncated
                    x0 = 0 if rng.random() < 0.5 else width - w
            box = (max(x0, 0) + 1, max(y0, 0) + 1, min(x0 + w, width), min(y0 + h, height))
            if all(_overlap(box, o.box) < 0.1 for o in objects):
                break
        mask = _unit_mask(SHAPES[label], w, h, rng)
        hue = label / len(VOC_CLASSES) + rng.uniform(-0.012, 0.012)
        colour = _hsv(hue, rng.uniform(0.7, 1.0), rng.uniform(0.65, 1.0))
        pixels = colour[None, None, :] * _texture(TEXTURES[label % len(TEXTURES)], w, h, rng)[..., None]
        if difficult:
            pixels = 0.45 * pixels + 0.55 * 128.0
        image.paste(Image.fromarray(pixels.astype(np.uint8)), (x0, y0), mask)
        obj = _Object(
            label=label,
            box=box,
            difficult=difficult,
            truncated=int(cut),
            pose=str(rng.choice(["Unspecified", "Left", "Right", "Frontal", "Rear"])),
            floats=rng.random() < 0.05,
            omit_difficult=not difficult and rng.random() < 0.05,
        )
        if VOC_CLASSES[label] == "person" and not difficult and not cut and rng.random() < 0.5:
            for part, boxes in _PERSON_PARTS.items():
                for u0, v0, u1, v1 in boxes:
                    obj.parts.append(
                        (
                            part,
                            (
                                x0 + round(u0 * (w - 1)) + 1,
                                y0 + round(v0 * (h - 1)) + 1,
                                x0 + round(u1 * (w - 1)) + 1,
                                y0 + round(v1 * (h - 1)) + 1,
                            ),
                        )
                    )
        objects.append(obj)
    return image, objects


# --------------------------------------------------------------------------- XML


def _coords(box: Tuple[int, int, int, int], floats: bool, indent: str) -> str:
    text = (lambda v: f"{v}.0") if floats else str
    return "".join(f"{indent}<{k}>{text(v)}</{k}>\n" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box))


def annotation_xml(year: str, image_id: str, width: int, height: int, objects: List[_Object]) -> str:
    """The VOC XML of one image, laid out like the official files."""
    out = [
        "<annotation>\n",
        f"\t<folder>VOC{year}</folder>\n",
        f"\t<filename>{image_id}.jpg</filename>\n",
        "\t<source>\n\t\t<database>inception-v2 synthetic VOC sample</database>\n"
        f"\t\t<annotation>PASCAL VOC{year}</annotation>\n\t\t<image>synthetic</image>\n\t</source>\n",
        f"\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n\t\t<depth>3</depth>\n\t</size>\n",
        "\t<segmented>0</segmented>\n",
    ]
    for obj in objects:
        out.append("\t<object>\n")
        out.append(f"\t\t<name>{VOC_CLASSES[obj.label]}</name>\n\t\t<pose>{obj.pose}</pose>\n")
        out.append(f"\t\t<truncated>{obj.truncated}</truncated>\n")
        if not obj.omit_difficult:
            out.append(f"\t\t<difficult>{obj.difficult}</difficult>\n")
        out.append("\t\t<bndbox>\n" + _coords(obj.box, obj.floats, "\t\t\t") + "\t\t</bndbox>\n")
        for part, box in obj.parts:
            out.append(f"\t\t<part>\n\t\t\t<name>{part}</name>\n\t\t\t<bndbox>\n")
            out.append(_coords(box, False, "\t\t\t\t") + "\t\t\t</bndbox>\n\t\t</part>\n")
        out.append("\t</object>\n")
    out.append("</annotation>\n")
    return "".join(out)


# --------------------------------------------------------------------------- the devkit


def _plan(images: int, rng: np.random.Generator) -> List[Tuple[str, str, List[int]]]:
    """(year, image set, object labels) per image. Labels are dealt from shuffled decks of the
    20 classes (one deck for trainval, one for test) so every class gets its share of both;
    1 to 6 objects per image, a quarter of the images with one."""
    n_test = max(1, round(TEST_FRACTION * images))
    sets = ["test"] * n_test + ["trainval07", "trainval12"] * images
    sets = sets[:images]
    order = rng.permutation(images)
    decks: Dict[str, List[int]] = {"trainval": [], "test": []}  # one per side: both balanced
    plan = []
    for i in range(images):
        which = sets[order[i]]
        year, image_set = ("2012", "trainval") if which == "trainval12" else ("2007", which[:8])
        n = int(rng.choice([1, 2, 3, 4, 5, 6], p=[0.25, 0.2, 0.2, 0.15, 0.1, 0.1]))
        labels = []
        deck = decks[image_set]
        for _ in range(n):
            if not deck:
                deck.extend(rng.permutation(len(VOC_CLASSES)).tolist())
            labels.append(int(deck.pop()))
        plan.append((year, image_set, labels))
    return plan


def make_sample(out: os.PathLike, images: int = DEFAULT_IMAGES, seed: int = DEFAULT_SEED) -> Dict[str, Any]:
    """Write a synthetic devkit to ``out/VOCdevkit`` and return its counts (``out/COUNTS.json``).

    ``images`` (at least 3) is split about 10% VOC2007 test, 45% VOC2007 trainval, 45% VOC2012
    trainval. Rerunning with the same arguments on a finished ``out`` returns at once; a
    different devkit already in ``out`` is a :class:`UsageError`.
    """
    if images < 3:
        raise UsageError(f"--images must be at least 3 (one per year/split), got {images}")
    if seed < 0:
        raise UsageError(f"--seed must be >= 0, got {seed}")
    out = Path(out)
    params = {"version": SAMPLE_VERSION, "images": images, "seed": seed}
    marker = out / "sample.json"
    if marker.is_file() and (out / "COUNTS.json").is_file():
        if json.loads(marker.read_text()) == params:
            return json.loads((out / "COUNTS.json").read_text())
        raise UsageError(f"{out} already holds a sample made with {marker.read_text().strip()}; use a new folder")
    if (out / "VOCdevkit").exists() and not marker.is_file():
        raise UsageError(f"{out / 'VOCdevkit'} already exists; use a new folder for make-sample")

    rng = np.random.default_rng(seed)
    lists: Dict[Tuple[str, str], List[str]] = {split: [] for split in SPLITS}
    counts: Dict[str, Dict[str, Any]] = {}
    for i, (year, image_set, labels) in enumerate(_plan(images, rng), start=1):
        image_id = f"{i:06d}" if year == "2007" else f"2012_{i:06d}"
        image, objects = _draw_image(np.random.default_rng([seed, i]), labels)
        year_dir = out / "VOCdevkit" / f"VOC{year}"
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        write_bytes(year_dir / "JPEGImages" / f"{image_id}.jpg", buffer.getvalue())
        write_text(year_dir / "Annotations" / f"{image_id}.xml", annotation_xml(year, image_id, *image.size, objects))
        lists[(year, image_set)].append(image_id)
        entry = counts.setdefault(
            f"{year}/{image_set}",
            {
                "images": 0,
                "objects": 0,
                "non_difficult_objects": 0,
                "per_class_non_difficult": dict.fromkeys(VOC_CLASSES, 0),
            },
        )
        entry["images"] += 1
        entry["objects"] += len(objects)
        for obj in objects:
            if obj.difficult != 1:
                entry["non_difficult_objects"] += 1
                entry["per_class_non_difficult"][VOC_CLASSES[obj.label]] += 1
    for (year, image_set), ids in lists.items():
        main = out / "VOCdevkit" / f"VOC{year}" / "ImageSets" / "Main"
        write_text(main / f"{image_set}.txt", "".join(f"{i}\n" for i in ids))
    counts = {key: counts[key] for key in ("2007/trainval", "2007/test", "2012/trainval") if key in counts}
    write_json(out / "COUNTS.json", counts)
    write_json(marker, params)  # last: marks the sample as finished
    return counts


# --------------------------------------------------------------------------- an image folder

FOLDER_SAMPLE_VERSION = 1


def make_folder_sample(
    out: os.PathLike, classes: int = 10, images: int = DEFAULT_IMAGES, seed: int = DEFAULT_SEED, layout: str = "pool"
) -> Dict[str, int]:
    """Write a synthetic image folder: ``out/CLASS/NNNNNN.jpg`` (``layout="pool"``) or
    ``out/{train,val,test}/CLASS/...`` (``layout="splits"``: 80 / 10 / 10 per class), and return
    the number of pictures per class.

    Each picture is one object of the make-sample kind cropped with a margin of clutter, so
    the classes are learnable in a few epochs; ``classes`` (2 to 20) of the 20 appearances,
    spread over the hue circle, named after the VOC class that has that appearance. ``images``
    in all, dealt round-robin. Deterministic for the arguments; a finished ``out`` made with
    the same arguments is returned as it is, one made with others is a :class:`UsageError`.
    """
    if not 2 <= classes <= len(VOC_CLASSES):
        raise UsageError(f"--classes must be in [2, {len(VOC_CLASSES)}], got {classes}")
    if images < classes:
        raise UsageError(f"--images must be at least the number of classes ({classes}), got {images}")
    if layout not in ("pool", "splits"):
        raise UsageError(f"layout must be pool or splits, got {layout!r}")
    out = Path(out)
    params = {"version": FOLDER_SAMPLE_VERSION, "classes": classes, "images": images, "seed": seed, "layout": layout}
    marker = out / ".sample.json"  # hidden: never a class, ignored by prepare
    if marker.is_file():
        if json.loads(marker.read_text()) == params:
            return json.loads((out / ".counts.json").read_text())
        raise UsageError(f"{out} already holds a sample made with {marker.read_text().strip()}; use a new folder")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty; use a new folder for make-sample --image-folder")
    labels = [round(i * len(VOC_CLASSES) / classes) for i in range(classes)]
    per_class = dict.fromkeys((VOC_CLASSES[label] for label in labels), 0)
    for i in range(images):
        label = labels[i % classes]
        name = VOC_CLASSES[label]
        rng = np.random.default_rng([seed, i])
        image, objects = _draw_image(rng, [label])
        x0, y0, x1, y1 = objects[0].box
        mx, my = (x1 - x0) // 4, (y1 - y0) // 4  # some clutter around the object
        box = (max(0, x0 - 1 - mx), max(0, y0 - 1 - my), min(image.width, x1 + mx), min(image.height, y1 + my))
        crop = image.crop(box)
        k = per_class[name]
        if layout == "splits":
            split = ("val", "test", *["train"] * 8)[k % 10]
            folder = out / split / name
        else:
            folder = out / name
        buffer = io.BytesIO()
        crop.save(buffer, format="JPEG", quality=90)
        write_bytes(folder / f"{k:06d}.jpg", buffer.getvalue())
        per_class[name] += 1
    write_json(out / ".counts.json", per_class)
    write_json(marker, params)  # last: marks the sample as finished
    return per_class
