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
``.ipynb_checkpoints``...) are never classes. Pictures are found recursively under each class
folder (symbolic links followed, each folder once), in ``ImageFolder``'s order. Hidden files,
hidden folders and files whose name is not a picture's (``notes.txt``, ``Thumbs.db``) are
ignored, and listed in the manifest and counted. The pictures themselves are decoded by
content (:mod:`inception_v2.data.images`) with their EXIF orientation applied.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

from inception_v2.data.counts import SplitRule, check_classes_present
from inception_v2.data.images import BadFileError, decode, is_image_name, keeps_original_bytes
from inception_v2.data.plan import Plan, Row, Sample, Unit, Worker, to_sample
from inception_v2.errors import UsageError

SPLIT_DIRS = ("train", "val", "test")
MANIFEST_FIELDS = ("file", "class", "status", "store_index", "reason", "warnings")
EXPECTED_LAYOUT = "ROOT/CLASS/IMAGE or ROOT/train/CLASS/IMAGE (with optional ROOT/val and ROOT/test)"

# A unit: (path relative to ROOT, POSIX separators; class name, "" outside a class folder;
# why it is ignored, "" for a picture; fingerprint "size:mtime_ns" of a picture).
FolderUnit = Tuple[str, str, str, str]


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


def _walk(root: Path, folder: Path, cls: str) -> List[FolderUnit]:
    """Every file under ``folder`` (a class folder), in ``ImageFolder``'s order (folders by
    path, files by name), as units; hidden entries and non-pictures as ignored units."""
    found: List[Tuple[str, List[FolderUnit]]] = []
    seen = set()
    pending = [folder]
    while pending:
        current = pending.pop()
        st = current.stat()
        if (st.st_dev, st.st_ino) in seen:  # a link back up the tree: each folder once
            found.append((str(current), [(_rel(root, current) + "/", cls, "repeated-folder", "")]))
            continue
        seen.add((st.st_dev, st.st_ino))
        units: List[FolderUnit] = []
        with os.scandir(current) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = _rel(root, Path(entry.path))
            if entry.is_dir():
                if _hidden(entry.name):
                    units.append((rel + "/", cls, "hidden-folder", ""))
                elif _prepared(entry.path):
                    units.append((rel + "/", cls, "prepared-folder", ""))
                else:
                    pending.append(Path(entry.path))
            elif not entry.is_file():
                units.append((rel, cls, "not-a-file", ""))
            elif _hidden(entry.name):
                units.append((rel, cls, "hidden-file", ""))
            elif not is_image_name(entry.name):
                units.append((rel, cls, "not-an-image", ""))
            else:
                st = entry.stat()
                units.append((rel, cls, "", f"{st.st_size}:{st.st_mtime_ns}"))
        found.append((str(current), units))
    found.sort(key=lambda item: item[0])  # as sorted(os.walk(...)) orders folders
    return [unit for _, units in found for unit in units]


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


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
    """A file name as text (a name that is not UTF-8 gets replacement characters)."""
    return relpath.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class FolderWorker(Worker):
    def __init__(self, root: Path) -> None:
        self.root = root

    def process(self, group: str, unit: Unit, options: Any) -> Tuple[List[Row], List[Sample]]:
        relpath, cls, ignored, _ = unit
        row: Row = {"file": _printable(relpath), "class": cls}
        if ignored:
            row.update(status="ignored", reason=ignored, _tally=[["ignored_files", ignored]])
            return [row], []
        path = self.root / relpath
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BadFileError("missing-file", str(path), "file not found (removed while preparing?)") from None
        except OSError as e:
            raise BadFileError("unreadable", str(path), f"cannot read file ({e.strerror or e})") from None
        decoded = decode(data, str(path), exif=True, max_side=options.max_side)
        if options.store == "jpeg" and keeps_original_bytes(decoded):
            height, width = decoded.pixels.shape[:2]
            sample: Sample = (data, height, width)  # the file's own bytes: nothing had to change
        else:
            sample = to_sample(decoded.pixels, options.store)
        row.update(status="keep", warnings=decoded.changes(), _pool=group, _key=relpath)
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


class FolderPlan(Plan):
    """An image folder, scanned (every file listed and fingerprinted; nothing decoded yet)."""

    kind = "image-folder"
    manifest_fields = MANIFEST_FIELDS

    def __init__(self, root: os.PathLike, progress: bool = False) -> None:
        self.root = Path(root)
        self.description = str(self.root)
        self.layout, self.classes = detect_layout(self.root)
        self._groups: List[Tuple[str, List[Unit]]] = []
        if self.layout == "splits":
            present = [s for s in SPLIT_DIRS if (self.root / s).is_dir()]
            known = set(self.classes)
            for split in present[1:]:
                extra = [c for c in _subdirs(self.root / split) if c not in known]
                if extra:
                    raise UsageError(
                        f"class folder(s) {', '.join(repr(c) for c in extra[:5])} of {self.root / split} have no "
                        f"counterpart in {self.root / 'train'}; every {split} class must be a train class"
                    )
            for split in present:
                units = _loose_files(self.root, self.root / split)
                for cls in _subdirs(self.root / split):
                    units += _walk(self.root, self.root / split / cls, cls)
                self._groups.append((split, units))
            self.has_val = "val" in present
        else:
            units = _loose_files(self.root, self.root)
            for cls in self.classes:
                units += _walk(self.root, self.root / cls, cls)
            self._groups.append(("pool", units))
            self.has_val = False
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
