"""Which split each kept object goes to, and how many there are: ``counts.json`` and the
summary table of ``prepare``, and the check against SPEC.md's table (``--verify-counts seed``).

Rows are manifest rows (:data:`inception_v2.data.crops.MANIFEST_FIELDS`); kept objects arrive
with ``status == "keep"`` and a ``label``.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Dict, List, Tuple

from inception_v2.data.store import SPLITS
from inception_v2.data.voc import SEED_COUNTS, VOC_CLASSES


def _val_key(row: Dict[str, Any]) -> str:
    key = f"{row['year']}/{row['image_id']}/{row['object_index']}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def assign_splits(rows: List[Dict[str, Any]], val_fraction: float) -> None:
    """Set ``status`` (train / val / test) and ``store_index`` of every kept row, in place.

    ``val`` holds out ``round(val_fraction * n)`` (halves up) of each class's trainval objects,
    those first in the order of a SHA-1 hash of ``year/image_id/object_index``: deterministic,
    stratified, and independent of the order the images were processed in.
    """
    by_class: Dict[int, List[Dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "keep" and row["image_set"] == "trainval":
            by_class.setdefault(row["label"], []).append(row)
    val_ids = set()
    for members in by_class.values():
        k = math.floor(val_fraction * len(members) + 0.5)
        val_ids.update(id(r) for r in sorted(members, key=_val_key)[:k])
    next_index = dict.fromkeys(SPLITS, 0)
    for row in rows:
        if row["status"] != "keep":
            continue
        split = "test" if row["image_set"] == "test" else ("val" if id(row) in val_ids else "train")
        row["status"], row["store_index"] = split, next_index[split]
        next_index[split] += 1


def _per_class(rows: List[Dict[str, Any]], statuses: Tuple[str, ...]) -> Dict[str, Any]:
    per_class = dict.fromkeys(VOC_CLASSES, 0)
    for row in rows:
        if row["status"] in statuses:
            per_class[VOC_CLASSES[row["label"]]] += 1
    return {"total": sum(per_class.values()), "per_class": per_class}


def make_counts(rows: List[Dict[str, Any]], sources: Dict[str, Dict[str, int]]) -> Dict[str, Any]:
    """The content of ``counts.json`` from the assigned manifest rows."""
    excluded: Dict[str, int] = {}
    skipped: Dict[str, int] = {}
    for row in rows:
        if row["status"] == "excluded":
            bucket = excluded if row["object_index"] != "" else skipped
            bucket[row["reason"]] = bucket.get(row["reason"], 0) + 1
    return {
        "trainval": _per_class(rows, ("train", "val")),
        "train": _per_class(rows, ("train",)),
        "val": _per_class(rows, ("val",)),
        "test": _per_class(rows, ("test",)),
        "excluded": dict(sorted(excluded.items())),  # objects, by reason
        "skipped_files": dict(sorted(skipped.items())),  # whole files (--skip-bad), by reason
        "sources": sources,  # images and annotated objects per year/image set found
    }


def summary_table(counts: Dict[str, Any]) -> str:
    """The per-class table printed at the end of ``prepare``."""
    lines = [f"{'class':<12} {'train':>7} {'val':>6} {'test':>7} {'trainval':>9}"]
    for name in VOC_CLASSES:
        cells = [counts[s]["per_class"][name] for s in ("train", "val", "test", "trainval")]
        lines.append(f"{name:<12} {cells[0]:>7} {cells[1]:>6} {cells[2]:>7} {cells[3]:>9}")
    totals = [counts[s]["total"] for s in ("train", "val", "test", "trainval")]
    lines.append(f"{'total':<12} {totals[0]:>7} {totals[1]:>6} {totals[2]:>7} {totals[3]:>9}")
    excluded = ", ".join(f"{k} {v}" for k, v in counts["excluded"].items()) or "none"
    lines.append(f"excluded objects: {excluded}")
    if counts.get("skipped_files"):
        lines.append("skipped files: " + ", ".join(f"{k} {v}" for k, v in counts["skipped_files"].items()))
    return "\n".join(lines)


def compare_with_seed(counts: Dict[str, Any]) -> List[str]:
    """Differences between ``counts`` and SPEC.md's table (train = VOC07+12 trainval, test =
    VOC07 test), one line per differing class; empty when they match."""
    diffs = []
    for name, (train, test) in SEED_COUNTS.items():
        got = counts["trainval"]["per_class"][name], counts["test"]["per_class"][name]
        if got != (train, test):
            diffs.append(
                f"{name:<12} train {got[0]} (SPEC {train}, {got[0] - train:+d})  "
                f"test {got[1]} (SPEC {test}, {got[1] - test:+d})"
            )
    return diffs
