"""PASCAL VOC as a :class:`~inception_v2.data.plan.Plan`: one image -> its manifest rows and
crops, the per-image work of ``prepare``.

Applies the box rules of :mod:`inception_v2.data.voc` to the decoded image: the image's own
size is trusted over the XML's (with a warning), boxes are clamped to it, an object whose box is
empty after clamping is excluded as ``degenerate-box``. A crop is the exact pixels of its
1-based inclusive box, downscaled with PIL's LANCZOS filter (``reducing_gap`` off: exact, no
JPEG-draft shortcut) only when its longer side exceeds ``max_side``. Images are used as stored
(no EXIF rotation): that is what the boxes refer to.

An image listed in both VOC2007 trainval and VOC2007 test is a leak: its trainval objects are
excluded with the reason ``also-in-test`` (the test split is untouched).
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict, List, Tuple

import numpy as np

from inception_v2.data.counts import SplitRule
from inception_v2.data.images import BadFileError, decode, downscale
from inception_v2.data.plan import Plan, Row, Sample, Unit, Worker, to_sample
from inception_v2.data.voc import (
    CLASS_INDEX,
    VOC_CLASSES,
    ObjectRecord,
    VOCSource,
    clamp_box,
    exclusion_reason,
    parse_annotation,
)
from inception_v2.errors import UsageError

__all__ = ["MANIFEST_FIELDS", "VOCPlan", "downscale", "process_image", "skipped_rows"]

# Columns of manifest.csv. Object rows have an object_index; a file skipped with --skip-bad has
# a row of its own with an empty object_index. status: train / val / test (with store_index)
# or excluded (with reason); `keep` only inside prepare, before the split assignment.
MANIFEST_FIELDS = (
    "year", "image_set", "image_id", "object_index", "class",
    "xmin", "ymin", "xmax", "ymax", "difficult", "truncated",
    "status", "store_index", "reason", "file", "warnings",
)  # fmt: skip
ALSO_IN_TEST = "also-in-test"


def _decode(data: bytes, path: str) -> np.ndarray:
    """Image bytes -> ``H x W x 3`` uint8 RGB as stored (no EXIF rotation), or :class:`BadFileError`."""
    return decode(data, path).pixels


def manifest_row(year: str, image_set: str, image_id: str, **fields: Any) -> Dict[str, Any]:
    """A manifest row with every column of :data:`MANIFEST_FIELDS` (empty unless given)."""
    row = {k: "" for k in MANIFEST_FIELDS}
    row.update(year=year, image_set=image_set, image_id=image_id, **fields)
    return row


def _object_row(year: str, image_set: str, image_id: str, obj: ObjectRecord, **fields: Any) -> Dict[str, Any]:
    return manifest_row(
        year,
        image_set,
        image_id,
        object_index=obj.index,
        **{"class": obj.name},
        xmin=obj.box_text[0],
        ymin=obj.box_text[1],
        xmax=obj.box_text[2],
        ymax=obj.box_text[3],
        difficult=obj.difficult,
        truncated=obj.truncated,
        **fields,
    )


def _read(source: VOCSource, relpath: str, what: str) -> bytes:
    try:
        return source.read(relpath)
    except FileNotFoundError:
        raise BadFileError("missing-file", source.display(relpath), f"{what} file not found") from None
    except OSError as e:
        problem = f"cannot read {what} file ({e.strerror or e})"
        raise BadFileError("unreadable", source.display(relpath), problem) from None


def process_image(
    source: VOCSource,
    year: str,
    image_set: str,
    image_id: str,
    max_side: int = 512,
    strict: bool = False,
    exclusion: str = "",
) -> Tuple[List[Dict[str, Any]], List[np.ndarray]]:
    """Crop every kept object of one image.

    Returns the manifest rows of its objects (``status`` is ``keep`` for a crop, with
    ``label``, or ``excluded`` with a reason) and the crops of the kept ones, in order.
    ``exclusion`` (e.g. ``also-in-test``) excludes every object with that reason, without
    reading the image. Raises :class:`BadFileError` for a missing or unreadable file and
    :class:`UsageError` for an unknown class under ``strict``.
    """
    xml_rel, img_rel = source.annotation_path(year, image_id), source.image_path(year, image_id)
    xml = _read(source, xml_rel, "annotation")
    annotation = parse_annotation(xml, source.display(xml_rel))
    if strict:
        for obj in annotation.objects:
            if obj.name not in CLASS_INDEX:
                raise UsageError(
                    f"{source.display(xml_rel)}: object {obj.index} has unknown class "
                    f"{obj.name!r} (--strict); the classes are {', '.join(VOC_CLASSES)}"
                )
    if exclusion:
        return [
            _object_row(year, image_set, image_id, obj, file=img_rel, status="excluded", reason=exclusion)
            for obj in annotation.objects
        ], []
    pixels = _decode(_read(source, img_rel, "image"), source.display(img_rel))
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


# --------------------------------------------------------------------------- the plan


class VOCWorker(Worker):
    def __init__(self, source: VOCSource) -> None:
        self.source = source

    def process(self, group: str, unit: Unit, options: Any) -> Tuple[List[Row], List[Sample]]:
        year, image_set = group.split("-")
        image_id, exclusion = unit
        rows, crops = process_image(
            self.source,
            year,
            image_set,
            image_id,
            max_side=options.max_side,
            strict=options.strict,
            exclusion=exclusion,
        )
        for row in rows:
            _tally_object(row, f"{year}/{image_set}")
            if row["status"] == "keep":
                row.update(_pool=image_set, _key=f"{year}/{image_id}/{row['object_index']}")
        return rows, [to_sample(crop, options.store) for crop in crops]

    def skipped(self, group: str, unit: Unit, error: BadFileError) -> List[Row]:
        year, image_set = group.split("-")
        rows = skipped_rows(self.source, year, image_set, unit[0], error)
        for row in rows:
            if row["object_index"] == "":
                row.update(
                    _tally=[["skipped_files", row["reason"]]],
                    _skipped={"file": row["file"], "reason": error.reason, "problem": error.problem},
                )
            else:
                _tally_object(row, f"{year}/{image_set}")
        return rows


def _tally_object(row: Row, source_key: str) -> None:
    tally = [["objects", source_key]]
    if row["status"] == "excluded":
        tally.append(["excluded", row["reason"]])
    row["_tally"] = tally


class VOCPlan(Plan):
    """The VOC2007 trainval/test and VOC2012 trainval image lists of a devkit or tar files."""

    kind = "voc"
    manifest_fields = MANIFEST_FIELDS
    classes = VOC_CLASSES

    def __init__(self, source: VOCSource) -> None:
        self.source = source
        self.description = source.description
        self.splits = source.splits()
        self.lists = {f"{y}/{s}": source.image_ids(y, s) for y, s in self.splits}
        test = set(self.lists.get("2007/test", ()))
        self.also_in_test = [i for i in self.lists.get("2007/trainval", ()) if i in test]

    def groups(self) -> List[Tuple[str, List[Unit]]]:
        leaks = set(self.also_in_test)
        out = []
        for (year, image_set), ids in zip(self.splits, self.lists.values()):
            check = year == "2007" and image_set == "trainval"
            out.append((f"{year}-{image_set}", [[i, ALSO_IN_TEST if check and i in leaks else ""] for i in ids]))
        return out

    def fingerprint(self, group: str, unit: Unit) -> str:
        year = group.split("-")[0]
        xml = self.source.annotation_path(year, unit[0])
        try:
            xml_hash = hashlib.sha1(self.source.read(xml)).hexdigest()
        except OSError:
            xml_hash = "missing"
        return f"{xml_hash}|{self.source.stat(self.source.image_path(year, unit[0]))}"

    def worker(self) -> Worker:
        return VOCWorker(self.source)

    def split_rules(self, options: Any) -> Dict[str, SplitRule]:
        return {
            "trainval": SplitRule((("val", options.val_fraction),), rest="train", description="trainval"),
            "test": SplitRule((), rest="test", description="test"),
        }

    def found(self) -> List[str]:
        by_year: Dict[str, List[str]] = {}
        for year, image_set in self.splits:
            by_year.setdefault(year, []).append(image_set)
        found = "; ".join(f"VOC{y} {' + '.join(s)}" for y, s in by_year.items())
        lines = [f"found {found} in {self.description}"]
        lines += [f"  VOC{key.replace('/', ' ')}: {len(ids)} images" for key, ids in self.lists.items()]
        if self.also_in_test:
            shown = ", ".join(self.also_in_test[:5]) + (" ..." if len(self.also_in_test) > 5 else "")
            lines.append(
                f"  {len(self.also_in_test)} VOC2007 trainval image(s) are also listed in test ({shown}): "
                f"their objects are excluded from train and val ({ALSO_IN_TEST})"
            )
        return lines

    def make_counts(self, counts: Dict[str, Any], tallies: Dict[str, Dict[str, int]]) -> Dict[str, Any]:
        trainval = {name: counts["train"]["per_class"][name] + counts["val"]["per_class"][name] for name in VOC_CLASSES}
        objects = tallies.get("objects", {})
        return {
            "classes": list(VOC_CLASSES),
            "trainval": {"total": sum(trainval.values()), "per_class": trainval},
            "train": counts["train"],
            "val": counts["val"],
            "test": counts["test"],
            "excluded": dict(sorted(tallies.get("excluded", {}).items())),  # objects, by reason
            "skipped_files": dict(sorted(tallies.get("skipped_files", {}).items())),  # whole files, by reason
            "skipped": counts["skipped"],  # each skipped file: file, reason, problem
            "sources": {key: {"images": len(ids), "objects": objects.get(key, 0)} for key, ids in self.lists.items()},
        }

    def close(self) -> None:
        self.source.close()
