"""PASCAL VOC devkits and tar files -> per-object records (docs/data.md).

Pure functions and small readers only: this module finds the devkit (a folder or the official
uncompressed tar files), lists the images of each year/split, parses the XML annotations into
:class:`ObjectRecord` values and applies the box rules. It never writes anything; cropping and
storing are :mod:`inception_v2.data.prepare`'s job.

Annotation rules (the experiment's, see ``docs/data.md``):

* objects are the ``<object>`` children of ``<annotation>``; a person's ``<part>`` entries are not
  objects;
* a missing or empty ``<difficult>`` / ``<truncated>`` means 0;
* coordinates may be written as floats (``48.0``); they are rounded to the nearest integer
  (halves up);
* VOC boxes are 1-based and inclusive: ``xmin=1 .. xmax=10`` is the first ten pixel columns.
"""

from __future__ import annotations

import math
import os
import re
import tarfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from inception_v2.data.images import BadFileError
from inception_v2.errors import UsageError

__all__ = ["BadFileError"]  # re-exported: it lived here before image folders shared it

# The 20 classes in alphabetical order (docs/data.md); a label is an index into this tuple.
VOC_CLASSES: Tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle",
    "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person",
    "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
CLASS_INDEX: Dict[str, int] = {name: i for i, name in enumerate(VOC_CLASSES)}

# The source's table (docs/data.md): non-difficult objects per class, (train = VOC2007 trainval + VOC2012
# trainval, test = VOC2007 test). The one place this table lives; `prepare --verify-counts seed`.
SEED_COUNTS: Dict[str, Tuple[int, int]] = {
    "aeroplane": (1171, 285), "bicycle": (1064, 337), "bird": (1605, 459),
    "boat": (1140, 263), "bottle": (1764, 469), "bus": (822, 213),
    "car": (3267, 1201), "cat": (1593, 358), "chair": (3152, 756),
    "cow": (847, 244), "diningtable": (824, 206), "dog": (2025, 489),
    "horse": (1072, 348), "motorbike": (1052, 325), "person": (13256, 4528),
    "pottedplant": (1487, 480), "sheep": (1070, 242), "sofa": (814, 239),
    "train": (925, 282), "tvmonitor": (1108, 308),
}  # fmt: skip
SEED_TOTALS = (40058, 12032)  # the totals stated in the source text

YEARS = ("2007", "2012")
# The (year, image set) pairs of the experiment, in the order they are processed and stored.
SPLITS: Tuple[Tuple[str, str], ...] = (("2007", "trainval"), ("2007", "test"), ("2012", "trainval"))

EXPECTED_LAYOUT = (
    "ROOT/VOCdevkit/VOC2007/{Annotations,JPEGImages,ImageSets/Main/trainval.txt,test.txt} "
    "and/or ROOT/VOCdevkit/VOC2012/{Annotations,JPEGImages,ImageSets/Main/trainval.txt}; "
    "ROOT may also be the VOCdevkit folder itself or a VOC2007/VOC2012 folder"
)


@dataclass(frozen=True)
class ObjectRecord:
    """One ``<object>`` of an annotation, as written in the XML plus its parsed box."""

    index: int  # position among the <object> children of <annotation>, from 0
    name: str  # class name as written (may be outside VOC_CLASSES)
    box_text: Tuple[str, str, str, str]  # xmin, ymin, xmax, ymax exactly as in the XML
    box: Tuple[int, int, int, int]  # the same, rounded to integers (still 1-based, inclusive)
    difficult: int
    truncated: int


@dataclass(frozen=True)
class Annotation:
    """A parsed annotation file: the size it states (``None`` if absent) and its objects."""

    size: Optional[Tuple[int, int]]  # (width, height) from <size>
    objects: Tuple[ObjectRecord, ...]


def _flag(obj: ET.Element, tag: str, path: str) -> int:
    text = (obj.findtext(tag) or "").strip()
    if not text:
        return 0  # a missing <difficult> / <truncated> means 0
    try:
        return int(float(text))
    except ValueError:
        raise BadFileError("bad-xml", path, f"<{tag}> is not a number: {text!r}") from None


def _coordinate(text: str) -> int:
    """Round a coordinate written as an integer or a float to the nearest integer, halves up."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return math.floor(value + 0.5)


def parse_annotation(data: bytes, path: str) -> Annotation:
    """Parse one VOC XML annotation; ``path`` only names the file in errors.

    Raises :class:`BadFileError` (reason ``bad-xml``) for XML that does not parse or an object
    without a name or with a missing / non-numeric box coordinate.
    """
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise BadFileError("bad-xml", path, f"malformed XML ({e})") from None
    if root.tag != "annotation":
        raise BadFileError("bad-xml", path, f"root element is <{root.tag}>, not <annotation>")
    size = None
    size_el = root.find("size")
    if size_el is not None:
        try:
            size = (int(float(size_el.findtext("width"))), int(float(size_el.findtext("height"))))
        except (TypeError, ValueError):
            size = None  # an unreadable <size> is ignored: the image's own size is what counts
    objects = []
    for index, obj in enumerate(root.findall("object")):  # direct children only: no <part>s
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise BadFileError("bad-xml", path, f"object {index} has no <name>")
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise BadFileError("bad-xml", path, f"object {index} ({name}) has no <bndbox>")
        texts = tuple((bndbox.findtext(k) or "").strip() for k in ("xmin", "ymin", "xmax", "ymax"))
        try:
            box = tuple(_coordinate(t) for t in texts)
        except ValueError:
            raise BadFileError("bad-xml", path, f"object {index} ({name}) has a bad box {list(texts)}") from None
        objects.append(
            ObjectRecord(
                index=index,
                name=name,
                box_text=texts,  # type: ignore[arg-type]
                box=box,  # type: ignore[arg-type]
                difficult=_flag(obj, "difficult", path),
                truncated=_flag(obj, "truncated", path),
            )
        )
    return Annotation(size=size, objects=tuple(objects))


def clamp_box(box: Tuple[int, int, int, int], width: int, height: int) -> Optional[Tuple[int, int, int, int]]:
    """Clamp a 1-based inclusive box to a ``width`` x ``height`` image.

    Returns the clamped box, or ``None`` when nothing is left (``xmax < xmin`` or
    ``ymax < ymin`` after clamping: the object is excluded as ``degenerate-box``).
    """
    xmin, ymin, xmax, ymax = box
    xmin, ymin = max(xmin, 1), max(ymin, 1)
    xmax, ymax = min(xmax, width), min(ymax, height)
    if xmax < xmin or ymax < ymin:
        return None
    return xmin, ymin, xmax, ymax


def exclusion_reason(obj: ObjectRecord) -> Optional[str]:
    """Why an object is not a sample before looking at the image: ``unknown-class`` for a name
    outside the 20 classes, ``difficult`` for ``difficult == 1``; ``None`` if it is kept."""
    if obj.name not in CLASS_INDEX:
        return "unknown-class"
    if obj.difficult == 1:
        return "difficult"
    return None


# --------------------------------------------------------------------------- sources


def read_id_list(data: bytes, name: str = "image list") -> List[str]:
    """Image ids of an ``ImageSets/Main/<set>.txt`` file (``name`` in errors), in order, without
    duplicates: the first field of each non-blank line.

    An id must be a plain file stem: ``.``, ``..`` or one holding ``/``, ``\\`` or a control
    character is refused with a :class:`UsageError` naming the list (it would name a file
    outside ``Annotations/`` or ``JPEGImages/``), before any file is read.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{name} is not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    ids: Dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        image_id = fields[0]
        if image_id in (".", "..") or _BAD_ID_CHARS.search(image_id):
            raise UsageError(
                f"{name}, line {number}: {image_id!r} is not a plain image id (a file stem without "
                "'/', '\\' or '..'); refusing to read it"
            )
        ids.setdefault(image_id, None)
    return list(ids)


_BAD_ID_CHARS = re.compile(r"[/\\\x00-\x1f\x7f]")


class VOCSource:
    """Where the VOC files are. Subclasses read files by their path relative to a year folder
    (``VOC2007/Annotations/000001.xml``); instances are picklable so workers can use them."""

    description: str

    def read(self, relpath: str) -> bytes:
        """The bytes of ``relpath``; raises ``FileNotFoundError`` if it is not there."""
        raise NotImplementedError

    def exists(self, relpath: str) -> bool:
        raise NotImplementedError

    def display(self, relpath: str) -> str:
        """How to name ``relpath`` in messages (a real path, or ``archive.tar:member``)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release open files (a no-op for folders)."""

    def splits(self) -> List[Tuple[str, str]]:
        """The (year, image set) pairs of :data:`SPLITS` whose image list exists."""
        return [
            (year, image_set) for year, image_set in SPLITS if self.exists(f"VOC{year}/ImageSets/Main/{image_set}.txt")
        ]

    def image_ids(self, year: str, image_set: str) -> List[str]:
        relpath = f"VOC{year}/ImageSets/Main/{image_set}.txt"
        return read_id_list(self.read(relpath), self.display(relpath))

    def stat(self, relpath: str) -> str:
        """A fingerprint of a file's state without reading it (size and modification time), or
        ``"missing"``; prepare redoes an image whose fingerprint changed."""
        raise NotImplementedError

    def annotation_path(self, year: str, image_id: str) -> str:
        return f"VOC{year}/Annotations/{image_id}.xml"

    def image_path(self, year: str, image_id: str) -> str:
        return f"VOC{year}/JPEGImages/{image_id}.jpg"


class DirSource(VOCSource):
    """An extracted devkit: ``years`` maps each year found to its ``VOC<year>`` folder."""

    def __init__(self, years: Dict[str, Path]) -> None:
        self.years = {y: Path(p) for y, p in years.items()}
        self.description = ", ".join(str(p) for p in self.years.values())

    def _path(self, relpath: str) -> Path:
        year_dir, _, rest = relpath.partition("/")
        base = self.years.get(year_dir[3:])
        if base is None:
            raise FileNotFoundError(relpath)
        return base / rest

    def read(self, relpath: str) -> bytes:
        return self._path(relpath).read_bytes()

    def exists(self, relpath: str) -> bool:
        try:
            return self._path(relpath).is_file()
        except FileNotFoundError:
            return False

    def display(self, relpath: str) -> str:
        try:
            return str(self._path(relpath))
        except FileNotFoundError:
            return relpath

    def stat(self, relpath: str) -> str:
        try:
            st = self._path(relpath).stat()
        except OSError:
            return "missing"
        return f"{st.st_size}:{st.st_mtime_ns}"


def _is_year_dir(path: Path) -> bool:
    return (path / "Annotations").is_dir() and (path / "ImageSets" / "Main").is_dir()


def find_devkit(root: os.PathLike) -> DirSource:
    """Find VOC2007 and/or VOC2012 under ``root``: a folder holding ``VOCdevkit/``, the
    ``VOCdevkit`` folder itself, a folder holding ``VOC2007``/``VOC2012``, or one of those.

    Raises :class:`UsageError` naming the expected layout when neither year is there.
    """
    root = Path(root)
    if root.is_file() and tarfile.is_tarfile(root):
        raise UsageError(f"{root} is a tar file; pass it with --voc-tar, not --voc-root")
    if not root.is_dir():
        raise UsageError(f"VOC root {root} is not a folder; expected {EXPECTED_LAYOUT}")
    years: Dict[str, Path] = {}
    match = re.fullmatch(r"VOC(2007|2012)", root.name)
    if match and _is_year_dir(root):
        years[match.group(1)] = root
    else:
        for base in (root / "VOCdevkit", root):
            for year in YEARS:
                if year not in years and _is_year_dir(base / f"VOC{year}"):
                    years[year] = base / f"VOC{year}"
    source = DirSource(years)
    if not years or not source.splits():
        raise UsageError(f"no VOC2007 or VOC2012 image lists found under {root}; expected {EXPECTED_LAYOUT}")
    return source


_MEMBER_RE = re.compile(r"(?:^|/)(VOC(?:2007|2012)/(?:Annotations|JPEGImages|ImageSets/Main)/[^/]+)$")


class TarSource(VOCSource):
    """The official uncompressed tar files, read in place (no extraction).

    The member index (name -> archive, data offset, size) is built once when the source is
    created; reads then seek straight to a member's bytes, so each worker process only opens
    the archives, it never rescans them.
    """

    def __init__(self, tars: Sequence[os.PathLike]) -> None:
        self.tars = [Path(t) for t in tars]
        self.description = ", ".join(str(t) for t in self.tars)
        self.members: Dict[str, Tuple[int, int, int]] = {}
        for i, path in enumerate(self.tars):
            if not path.is_file():
                raise UsageError(f"VOC tar file {path} does not exist")
            try:
                with tarfile.open(path, "r:") as tar:
                    for info in tar:
                        if not info.isreg():
                            continue
                        m = _MEMBER_RE.search(info.name)
                        if m:
                            self.members[m.group(1)] = (i, info.offset_data, info.size)
            except tarfile.ReadError as e:
                raise UsageError(
                    f"{path} is not an uncompressed tar archive ({e}); the official VOC tar files are plain .tar"
                ) from None
        self._files: Dict[int, object] = {}  # open archives of this process
        self._pid = os.getpid()
        self._archive_stats = [f"{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in self.tars]
        if not self.splits():
            raise UsageError(
                f"no VOC2007 or VOC2012 image lists found in {self.description}; expected the "
                "official tar files (VOCtrainval_06-Nov-2007.tar, VOCtest_06-Nov-2007.tar, "
                "VOCtrainval_11-May-2012.tar) holding VOCdevkit/VOC<year>/..."
            )

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_files"] = {}  # open file handles stay in the process that opened them
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()

    def read(self, relpath: str) -> bytes:
        try:
            archive, offset, size = self.members[relpath]
        except KeyError:
            raise FileNotFoundError(relpath) from None
        if self._pid != os.getpid():  # a forked worker must not share the parent's file offsets
            self._files, self._pid = {}, os.getpid()
        f = self._files.get(archive)
        if f is None:
            f = self._files[archive] = open(self.tars[archive], "rb")
        f.seek(offset)  # type: ignore[attr-defined]
        return f.read(size)  # type: ignore[attr-defined]

    def exists(self, relpath: str) -> bool:
        return relpath in self.members

    def stat(self, relpath: str) -> str:
        entry = self.members.get(relpath)
        if entry is None:
            return "missing"
        archive, offset, size = entry
        return f"{size}@{offset}:{self._archive_stats[archive]}"

    def close(self) -> None:
        for f in self._files.values():
            f.close()  # type: ignore[attr-defined]
        self._files = {}

    def display(self, relpath: str) -> str:
        entry = self.members.get(relpath)
        archive = self.tars[entry[0]] if entry else self.description
        return f"{archive}:VOCdevkit/{relpath}"
