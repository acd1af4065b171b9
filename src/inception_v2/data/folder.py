"""Image folders as a :class:`~inception_v2.data.plan.Plan`: your own pictures, one folder per
class (see ``docs/data.md``).

Two layouts, told apart by the top-level folders of ``ROOT``:

* ``ROOT/{train,val,test}/CLASS/...`` (the ImageNet / torchvision convention) when ``ROOT``
  has a ``train`` folder and no other folders than ``val`` and ``test``. Without ``val``,
  ``--val-fraction`` of each train class is held out; without ``test`` the test split is
  empty. Every class of ``val`` / ``test`` must be a class of ``train``.
* ``ROOT/CLASS/...`` otherwise: one pool, split per class into train / val / test by
  ``--val-fraction`` and ``--test-fraction``, with at least one image of every class in every
  split whose fraction is > 0.

Classes are the class folders' names sorted as torchvision's ``ImageFolder`` sorts them
(by code point), so label ids agree with it; hidden folders (``.git``,
``.ipynb_checkpoints``...) are never classes, and a class folder's name must be text (UTF-8).
Pictures are found recursively under each class folder, in ``ImageFolder``'s order. Hidden
files, hidden folders and files whose name is not a picture's (``notes.txt``, ``Thumbs.db``)
are ignored, and listed in the manifest and counted. The pictures themselves are opened by
:func:`inception_v2.data.images.read_picture` (by content, EXIF orientation applied).

Symbolic (and hard) links are resolved to the files they reach:

* a link to a folder is followed, each folder once, except a link back to the folder that
  holds it or to any folder above it (a loop: ``link-loop``, not followed);
* a file reached more than once under the *same* class (a link, a linked folder, the same
  file in ``train/cat`` and ``test/cat``) is stored once, at its first path in the scan order
  (``train``, ``val``, ``test``; classes and files in ``ImageFolder``'s order); every later
  path is ``duplicate-file`` in the manifest, saying which path holds it. So a file never
  sits in two splits;
* a file reached under two *different* classes, two class folders that are the same folder
  (an alias), a class or split folder that is a link to ``ROOT`` or above, or two split
  folders that are the same folder are refused (:class:`UsageError` naming both paths): the
  label would be ambiguous.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from inception_v2.data.counts import SplitRule, check_classes_present
from inception_v2.data.dataset import jpeg_decoder
from inception_v2.data.images import BadFileError, encode_jpeg, is_image_name, keeps_original_bytes, read_picture
from inception_v2.data.plan import Plan, Row, Sample, Unit, Worker, to_sample
from inception_v2.errors import UsageError

SPLIT_DIRS = ("train", "val", "test")
MANIFEST_FIELDS = ("file", "class", "status", "store_index", "reason", "warnings")
EXPECTED_LAYOUT = "ROOT/CLASS/IMAGE or ROOT/train/CLASS/IMAGE (with optional ROOT/val and ROOT/test)"

# A unit: (path relative to ROOT, POSIX separators; class name, "" outside a class folder;
# why it is ignored, "" for a picture; fingerprint "size:mtime_ns" of a picture, or what the
# manifest says of an ignored entry, e.g. "same file as cat/a.jpg").
FolderUnit = Tuple[str, str, str, str]
FileId = Tuple[int, int]  # (st_dev, st_ino) of the file a path reaches: the same for every link to it


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _prepared(path: os.PathLike) -> bool:
    """Whether ``path`` is the output of ``prepare`` (its stores are never read as pictures)."""
    return os.path.isfile(os.path.join(path, "prepare.json")) and os.path.isfile(os.path.join(path, "counts.json"))


def _subdirs(path: Path) -> List[str]:
    """The names of the non-hidden folders in ``path`` (links to folders included) that are
    not ``prepare`` outputs, sorted."""
    with os.scandir(path) as it:
        return sorted(e.name for e in it if e.is_dir() and not _hidden(e.name) and not _prepared(e.path))


def detect_layout(root: os.PathLike) -> Tuple[str, List[str]]:
    """``("splits" | "pool", classes)`` of an image folder; :class:`UsageError` when ``root``
    is not a folder or holds no class folder."""
    root = Path(root)
    if not root.exists():
        raise UsageError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise UsageError(f"image folder {root} is not a folder; expected {EXPECTED_LAYOUT}")
    top = _subdirs(root)
    if "train" in top and set(top) <= set(SPLIT_DIRS):
        layout, classes = "splits", _subdirs(root / "train")
        where = root / "train"
    else:
        layout, classes, where = "pool", top, root
    if not classes:
        raise UsageError(f"no class folders in {where}; expected {EXPECTED_LAYOUT}")
    return layout, classes


def _walk(root: Path, folder: Path, cls: str) -> List[Tuple[FolderUnit, Optional[FileId]]]:
    """Every file under ``folder`` (a class folder), in ``ImageFolder``'s order (folders by
    path, files by name), as units with the identity of the file each picture path reaches;
    hidden entries, non-pictures and link loops as ignored units (identity ``None``)."""
    found: List[Tuple[str, List[Tuple[FolderUnit, Optional[FileId]]]]] = []
    seen = set()
    pending = [folder]
    while pending:
        current = pending.pop()
        st = current.stat()
        if (st.st_dev, st.st_ino) in seen:  # a folder reached again through a link: each folder once
            found.append((str(current), [((_rel(root, current) + "/", cls, "repeated-folder", ""), None)]))
            continue
        seen.add((st.st_dev, st.st_ino))
        real = os.path.realpath(current)
        units: List[Tuple[FolderUnit, Optional[FileId]]] = []
        with os.scandir(current) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = _rel(root, Path(entry.path))
            if entry.is_dir():
                if _hidden(entry.name):
                    units.append(((rel + "/", cls, "hidden-folder", ""), None))
                elif _prepared(entry.path):
                    units.append(((rel + "/", cls, "prepared-folder", ""), None))
                elif entry.is_symlink() and _is_within(real, os.path.realpath(entry.path)):
                    note = _loop_note(root, os.path.realpath(entry.path))
                    units.append(((rel + "/", cls, "link-loop", note), None))
                else:
                    pending.append(Path(entry.path))
            elif not entry.is_file():
                broken = entry.is_symlink() and not os.path.exists(entry.path)
                units.append(((rel, cls, "broken-link" if broken else "not-a-file", ""), None))
            elif _hidden(entry.name):
                units.append(((rel, cls, "hidden-file", ""), None))
            elif not is_image_name(entry.name):
                units.append(((rel, cls, "not-an-image", ""), None))
            else:
                st = entry.stat()
                if not st.st_ino:  # Windows' directory entries carry no file id: ask the file
                    st = os.stat(entry.path)
                units.append(((rel, cls, "", f"{st.st_size}:{st.st_mtime_ns}"), (st.st_dev, st.st_ino)))
        found.append((str(current), units))
    found.sort(key=lambda item: item[0])  # as sorted(os.walk(...)) orders folders
    return [unit for _, units in found for unit in units]


def _loop_note(root: Path, target: str) -> str:
    """What a looping link points to, relative to ``root`` (no machine path in the manifest)."""
    real_root = os.path.realpath(root)
    if not _is_within(target, real_root):
        return "a link to a folder above ROOT"
    rel = os.path.relpath(target, real_root)
    return "a link to ROOT" if rel == "." else f"a link to {_printable(Path(rel).as_posix())}/, a folder above it"


def _is_within(path: str, folder: str) -> bool:
    """Whether the real path ``path`` is ``folder`` or inside it."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _drop_duplicates(root: Path, walked: List[Tuple[str, List[Tuple[FolderUnit, Optional[FileId]]]]]) -> None:
    """Keep each file once (its first path in order); refuse one under two classes. ``walked``
    holds ``(group, units with identities)``; later paths become ``duplicate-file`` in place."""
    first: Dict[FileId, Tuple[str, str]] = {}
    for _, units in walked:
        for i, (unit, file_id) in enumerate(units):
            if file_id is None:
                continue
            rel, cls = unit[0], unit[1]
            if file_id not in first:
                first[file_id] = (rel, cls)
                continue
            first_rel, first_cls = first[file_id]
            if first_cls != cls:
                raise UsageError(
                    f"{root / _printable(first_rel)} (class {first_cls!r}) and {root / _printable(rel)} (class "
                    f"{cls!r}) are the same file (a symbolic or hard link): a picture must have one class; "
                    "remove one of them"
                )
            units[i] = ((rel, cls, "duplicate-file", f"same file as {_printable(first_rel)}"), None)


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _check_folders(root: Path, folders: List[Tuple[str, List[str]]]) -> None:
    """Refuse class folders that cannot be told apart: a name that is not UTF-8 (a label must
    be text), two class (or split) folders that are one folder, one that is ``root`` or above."""
    real_root = os.path.realpath(root)
    splits: Dict[str, str] = {}
    for group, classes in folders:
        base = root / group if group in SPLIT_DIRS else root
        if base != root:
            real = os.path.realpath(base)
            if real in splits or _is_within(real_root, real):
                other = f"{root / splits[real]}" if real in splits else f"{root} or a folder above it"
                raise UsageError(f"split folder {base} is the same folder as {other} (a symbolic link)")
            splits[real] = group
        seen: Dict[str, str] = {}
        for cls in classes:
            folder = base / cls
            if not _is_text(cls):
                raise UsageError(
                    f"class folder {base / _printable(cls)}: its name is not UTF-8 text (bytes shown as \\xNN); "
                    "class names are labels, printed and saved as text: rename it"
                )
            real = os.path.realpath(folder)
            if _is_within(real_root, real):
                raise UsageError(f"class folder {folder} is a symbolic link to {root} or a folder above it (a loop)")
            if real in seen:
                raise UsageError(
                    f"class folders {base / seen[real]} and {folder} are the same folder (a symbolic link): "
                    "a picture must have one class; remove the alias"
                )
            seen[real] = cls


def _loose_files(root: Path, folder: Path) -> List[FolderUnit]:
    """Files (and hidden folders) directly in ``folder``, outside any class folder: ignored."""
    units = []
    with os.scandir(folder) as it:
        for entry in sorted(it, key=lambda e: e.name):
            rel = _rel(root, Path(entry.path))
            if entry.is_dir():
                if _hidden(entry.name):
                    units.append((rel + "/", "", "hidden-folder", ""))
                elif _prepared(entry.path):
                    units.append((rel + "/", "", "prepared-folder", ""))
            else:
                units.append((rel, "", "hidden-file" if _hidden(entry.name) else "outside-class-folder", ""))
    return units


def _printable(relpath: str) -> str:
    """A file name as text: the bytes of a name that is not UTF-8 are shown as ``\\xNN``."""
    return relpath.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _is_text(name: str) -> bool:
    """Whether a file name is valid UTF-8 (Python keeps other bytes as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class FolderWorker(Worker):
    def __init__(self, root: Path) -> None:
        self.root = root

    def process(self, group: str, unit: Unit, options: Any) -> Tuple[List[Row], List[Sample]]:
        relpath, cls, ignored, note = unit
        row: Row = {"file": _printable(relpath), "class": cls}
        if ignored:
            row.update(status="ignored", reason=ignored, warnings=note, _tally=[["ignored_files", ignored]])
            return [row], []
        path = self.root / relpath
        data, decoded = read_picture(path, max_side=options.max_side, name=str(self.root / _printable(relpath)))
        notes = [decoded.changes()] if decoded.changes() else []
        if not _is_text(relpath):
            notes.append("file name is not UTF-8 (its other bytes shown as \\xNN)")
        if options.store == "jpeg" and keeps_original_bytes(decoded):
            height, width = decoded.pixels.shape[:2]
            problem = _loader_problem(data, height, width)
            if problem:  # the loader could not read the file's own bytes: store what Pillow decoded
                notes.append(f"re-encoded: the loader's JPEG decoder cannot read the file ({problem})")
                sample: Sample = (encode_jpeg(decoded.pixels), height, width)
            else:
                sample = (data, height, width)  # the file's own bytes: nothing had to change
        else:
            sample = to_sample(decoded.pixels, options.store)
        row.update(status="keep", warnings="; ".join(notes), _pool=group, _key=relpath)
        return [row], [sample]

    def skipped(self, group: str, unit: Unit, error: BadFileError) -> List[Row]:
        relpath, cls = _printable(unit[0]), unit[1]
        return [
            {
                "file": relpath,
                "class": cls,
                "status": "skipped",
                "reason": error.reason,
                "warnings": error.problem,
                "_tally": [["skipped_files", error.reason]],
                "_skipped": {"file": relpath, "reason": error.reason, "problem": error.problem},
            }
        ]


def _loader_problem(data: bytes, height: int, width: int) -> str:
    """Why the training loader's JPEG decoder (:func:`inception_v2.data.dataset.jpeg_decoder`)
    cannot read ``data`` as the ``height x width`` picture Pillow read; "" when it can."""
    try:
        image = jpeg_decoder()(np.frombuffer(data, dtype=np.uint8).copy())
    except (RuntimeError, ValueError, OSError) as e:
        return str(e).strip().splitlines()[-1].rsplit(", ", 1)[-1] if str(e).strip() else type(e).__name__
    if tuple(image.shape) != (3, height, width):
        return f"it decodes to {tuple(image.shape)}, not 3 x {height} x {width}"
    return ""


class FolderPlan(Plan):
    """An image folder, scanned (every file listed and fingerprinted; nothing decoded yet)."""

    kind = "image-folder"
    manifest_fields = MANIFEST_FIELDS

    def __init__(self, root: os.PathLike, progress: bool = False) -> None:
        self.root = Path(root)
        self.description = str(self.root)
        self.layout, self.classes = detect_layout(self.root)
        self._groups: List[Tuple[str, List[Unit]]] = []
        folders = self._class_folders()
        _check_folders(self.root, folders)
        walked = []
        for group, classes in folders:
            base = self.root / group if self.layout == "splits" else self.root
            units = [(u, None) for u in _loose_files(self.root, base)]
            for cls in classes:
                units += _walk(self.root, base / cls, cls)
            walked.append((group, units))
        _drop_duplicates(self.root, walked)
        self._groups = [(group, [u for u, _ in units]) for group, units in walked]
        self.has_val = self.layout == "splits" and any(g == "val" for g, _ in folders)
        pictures: Dict[str, int] = {}
        for group, units in self._groups:
            for _, cls, ignored, _ in units:
                if not ignored and (group in ("train", "pool")):
                    pictures[cls] = pictures.get(cls, 0) + 1
        empty = [c for c in self.classes if c not in pictures]
        if empty:
            where = self.root / "train" if self.layout == "splits" else self.root
            raise UsageError(
                f"class folder(s) {', '.join(repr(c) for c in empty[:5])} in {where} hold no picture files "
                f"(by name: {', '.join(sorted({'.jpg', '.png', '.bmp', '.webp', '.gif', '.tif'}))}, ...)"
            )

    def _class_folders(self) -> List[Tuple[str, List[str]]]:
        """``(group, class folder names)`` in scan order: each split present, or the pool."""
        if self.layout == "pool":
            return [("pool", list(self.classes))]
        present = [s for s in SPLIT_DIRS if (self.root / s).is_dir()]
        known = set(self.classes)
        for split in present[1:]:
            extra = [c for c in _subdirs(self.root / split) if c not in known]
            if extra:
                raise UsageError(
                    f"class folder(s) {', '.join(repr(_printable(c)) for c in extra[:5])} of {self.root / split} "
                    f"have no counterpart in {self.root / 'train'}; every {split} class must be a train class"
                )
        return [(split, _subdirs(self.root / split)) for split in present]

    def groups(self) -> List[Tuple[str, List[Unit]]]:
        return self._groups

    def fingerprint(self, group: str, unit: Unit) -> str:
        return unit[3]

    def identity(self) -> Dict[str, Any]:
        return dict(super().identity(), layout=self.layout)

    def worker(self) -> Worker:
        return FolderWorker(self.root)

    def split_rules(self, options: Any) -> Dict[str, SplitRule]:
        if self.layout == "pool":
            held = (("val", options.val_fraction), ("test", options.test_fraction))
            return {"pool": SplitRule(held, "train", at_least_one=True, description=str(self.root))}
        held_val = () if self.has_val else (("val", options.val_fraction),)
        return {
            "train": SplitRule(held_val, "train", at_least_one=True, description=str(self.root / "train")),
            "val": SplitRule((), "val", description=str(self.root / "val")),
            "test": SplitRule((), "test", description=str(self.root / "test")),
        }

    def check_splits(self, split_of: np.ndarray, labels: np.ndarray) -> None:
        where = self.root / "train" if self.layout == "splits" else self.root
        check_classes_present(split_of, labels, self.classes, "train", f"{where} (all its files were skipped)")

    def found(self) -> List[str]:
        layout = "ROOT/CLASS"
        if self.layout == "splits":
            layout = "ROOT/{" + ",".join(g for g, _ in self._groups) + "}/CLASS"
        shown = ", ".join(self.classes[:8]) + (f", ... ({len(self.classes)} in all)" if len(self.classes) > 8 else "")
        lines = [f"found an image folder ({layout}/...) in {self.root}: {len(self.classes)} classes ({shown})"]
        for group, units in self._groups:
            pictures = sum(1 for u in units if not u[2])
            lines.append(f"  {group}: {pictures} picture files, {len(units) - pictures} other entries ignored")
        if self.layout == "splits" and self.has_val:
            lines.append("  val comes from ROOT/val (--val-fraction is not used)")
        return lines

    def make_counts(self, counts: Dict[str, Any], tallies: Dict[str, Dict[str, int]]) -> Dict[str, Any]:
        return {
            "classes": list(self.classes),
            "layout": self.layout,
            "train": counts["train"],
            "val": counts["val"],
            "test": counts["test"],
            "skipped_files": dict(sorted(tallies.get("skipped_files", {}).items())),
            "skipped": counts["skipped"],
            "ignored_files": dict(sorted(tallies.get("ignored_files", {}).items())),
            "sources": {
                group: {"pictures": sum(1 for u in units if not u[2]), "ignored": sum(1 for u in units if u[2])}
                for group, units in self._groups
            },
        }
