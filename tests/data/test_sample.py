"""make-sample: layout, determinism, counts, the quirks of the real annotations, learnability."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inception_v2.data import VOC_CLASSES, VOCCrops, make_sample
from inception_v2.data.sample import SHAPES, TEXTURES, _unit_mask
from inception_v2.errors import UsageError


def all_files(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_official_layout(sample_devkit):
    devkit = sample_devkit / "VOCdevkit"
    for year, sets in (("2007", ("trainval", "test")), ("2012", ("trainval",))):
        for image_set in sets:
            ids = (devkit / f"VOC{year}" / "ImageSets" / "Main" / f"{image_set}.txt").read_text().split()
            assert ids
            for image_id in ids:
                assert (devkit / f"VOC{year}" / "Annotations" / f"{image_id}.xml").is_file()
                with Image.open(devkit / f"VOC{year}" / "JPEGImages" / f"{image_id}.jpg") as im:
                    assert im.format == "JPEG" and im.mode == "RGB"
                    assert 160 <= min(im.size) and max(im.size) <= 320


def test_deterministic_for_a_seed(tmp_path):
    make_sample(tmp_path / "a", images=6, seed=5)
    make_sample(tmp_path / "b", images=6, seed=5)
    make_sample(tmp_path / "c", images=6, seed=6)
    assert all_files(tmp_path / "a") == all_files(tmp_path / "b")
    assert all_files(tmp_path / "a") != all_files(tmp_path / "c")


def test_rerun_and_bad_arguments(tmp_path):
    counts = make_sample(tmp_path / "a", images=4, seed=1)
    assert make_sample(tmp_path / "a", images=4, seed=1) == counts  # finished: returned as is
    with pytest.raises(UsageError, match="already holds a sample"):
        make_sample(tmp_path / "a", images=5, seed=1)
    with pytest.raises(UsageError, match="at least 3"):
        make_sample(tmp_path / "b", images=2)
    with pytest.raises(UsageError, match="seed"):
        make_sample(tmp_path / "b", images=3, seed=-1)


def parse_all(devkit: Path) -> list:
    """(year, image_set, root element) of every listed image, read independently of the package."""
    out = []
    for year, image_set in (("2007", "trainval"), ("2007", "test"), ("2012", "trainval")):
        for image_id in (devkit / f"VOC{year}" / "ImageSets" / "Main" / f"{image_set}.txt").read_text().split():
            xml = devkit / f"VOC{year}" / "Annotations" / f"{image_id}.xml"
            out.append((year, image_set, ET.parse(xml).getroot()))
    return out


def test_counts_file_matches_the_annotations(sample_devkit):
    counts = json.loads((sample_devkit / "COUNTS.json").read_text())
    expected: dict = {}
    for year, image_set, root in parse_all(sample_devkit / "VOCdevkit"):
        entry = expected.setdefault(f"{year}/{image_set}", {"images": 0, "objects": 0, "per_class": {}})
        entry["images"] += 1
        for obj in root.findall("object"):
            entry["objects"] += 1
            if (obj.findtext("difficult") or "0") != "1":
                entry["per_class"][obj.findtext("name")] = entry["per_class"].get(obj.findtext("name"), 0) + 1
    for key, entry in expected.items():
        assert counts[key]["images"] == entry["images"] and counts[key]["objects"] == entry["objects"]
        assert {k: v for k, v in counts[key]["per_class_non_difficult"].items() if v} == entry["per_class"]
        assert counts[key]["non_difficult_objects"] == sum(entry["per_class"].values())


def test_has_the_quirks_of_the_real_annotations(sample_devkit):
    seen = dict.fromkeys(["difficult", "truncated", "border", "one-object", "parts", "floats", "no-difficult"], 0)
    classes = set()
    for _, _, root in parse_all(sample_devkit / "VOCdevkit"):
        width, height = int(root.findtext("size/width")), int(root.findtext("size/height"))
        objects = root.findall("object")
        seen["one-object"] += len(objects) == 1
        for obj in objects:
            classes.add(obj.findtext("name"))
            box = [obj.findtext(f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")]
            seen["floats"] += "." in box[0]
            x0, y0, x1, y1 = (int(float(v)) for v in box)
            assert 1 <= x0 <= x1 <= width and 1 <= y0 <= y1 <= height  # 1-based, inside the image
            seen["border"] += x0 == 1 or y0 == 1 or x1 == width or y1 == height
            seen["difficult"] += obj.findtext("difficult") == "1"
            seen["no-difficult"] += obj.find("difficult") is None
            seen["truncated"] += obj.findtext("truncated") == "1"
            if obj.findall("part"):
                assert obj.findtext("name") == "person"
                assert {p.findtext("name") for p in obj.findall("part")} == {"head", "hand", "foot"}
                seen["parts"] += 1
    assert all(n > 0 for n in seen.values()), seen
    assert classes == set(VOC_CLASSES)


def test_every_class_has_a_shape_and_texture():
    assert len(SHAPES) == len(set(SHAPES)) == len(VOC_CLASSES)
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        mask = np.asarray(_unit_mask(shape, 30, 20, rng))
        assert 0.25 < (mask > 0).mean() < 1.0 or shape == "square"
        rows, cols = np.nonzero(mask)
        assert (rows.min(), rows.max(), cols.min(), cols.max()) == (0, 19, 0, 29), shape  # tight box
    assert len(TEXTURES) >= 5


def _hue_features(image) -> np.ndarray:
    """Mean hue (as a unit vector) of the saturated pixels of a 3 x H x W uint8 crop."""
    rgb = image.permute(1, 2, 0).reshape(-1, 3).numpy().astype(float) / 255
    mx, mn = rgb.max(1), rgb.min(1)
    keep = (mx - mn) > 0.4 * np.maximum(mx, 1e-6)
    rgb, mx, mn = (rgb[keep], mx[keep], mn[keep]) if keep.any() else (rgb, mx, mn)
    r, g, b = rgb.T
    d = np.maximum(mx - mn, 1e-6)
    hue = np.where(mx == r, (g - b) / d, np.where(mx == g, 2 + (b - r) / d, 4 + (r - g) / d)) / 6
    angle = 2 * np.pi * hue
    return np.array([np.cos(angle).mean(), np.sin(angle).mean()])


def test_colour_alone_nearly_identifies_the_class(prepared_sample):
    """The classes must be learnable: a nearest-centroid rule on mean hue, fitted on train,
    already gets most held-out crops right (a CNN also sees shape and texture)."""
    train, held_out = VOCCrops(prepared_sample, "train"), [VOCCrops(prepared_sample, s) for s in ("val", "test")]
    x = np.stack([_hue_features(train.crop(i)) for i in range(len(train))])
    y = np.array(train.targets)
    centroids = np.stack([x[y == k].mean(0) for k in range(len(VOC_CLASSES))])
    correct = total = 0
    for ds in held_out:
        for i in range(len(ds)):
            prediction = ((centroids - _hue_features(ds.crop(i))) ** 2).sum(1).argmin()
            correct += prediction == ds.targets[i]
            total += 1
    assert total > 40 and correct / total > 0.7
