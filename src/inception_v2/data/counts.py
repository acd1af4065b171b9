"""Which split each kept image goes to, and how many there are: the split assignment of
``prepare``, ``counts.json``, the summary table, and the check against the source's table (docs/data.md)
(``--verify-counts seed``).

Kept samples arrive in *pools* (VOC: ``trainval`` and ``test``; image folders: ``train``,
``val``, ``test`` or one ``pool``); a :class:`SplitRule` per pool says which shares of each
class are held out for which split. The held-out samples of a class are those first in the
order of a SHA-1 hash of their name (``year/image_id/object_index``, or the file's path):
deterministic, stratified, and independent of the order the images were processed in.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from inception_v2.data.store import SPLITS
from inception_v2.data.voc import SEED_COUNTS, VOC_CLASSES
from inception_v2.errors import UsageError

SUMMARY_MAX_CLASSES = 40  # larger class lists are summarized (counts.json has them all)


@dataclass(frozen=True)
class SplitRule:
    """How a pool's samples are split: for each class, ``held_out`` shares (split, fraction)
    in order, the rest to ``rest``. ``round(fraction * n)`` (halves up) per class; with
    ``at_least_one``, at least one for every fraction > 0, and at least one left for ``rest``."""

    held_out: Tuple[Tuple[str, float], ...] = ()
    rest: str = "train"
    at_least_one: bool = False
    description: str = ""  # names the pool in errors ("ROOT/train")


def hash_key(name: str) -> int:
    """The sort key of a sample: the first 8 bytes of the SHA-1 of its name."""
    return int.from_bytes(hashlib.sha1(name.encode("utf-8", "surrogateescape")).digest()[:8], "big")


def _held_out_sizes(rule: SplitRule, n: int) -> List[int]:
    sizes = []
    for _, fraction in rule.held_out:
        k = math.floor(fraction * n + 0.5)
        if rule.at_least_one and fraction > 0:
            k = max(k, 1)
        sizes.append(k)
    return sizes


def assign_splits(
    pools: np.ndarray, labels: np.ndarray, keys: np.ndarray, rules: Sequence[SplitRule], classes: Sequence[str]
) -> np.ndarray:
    """The split (an index into :data:`SPLITS`) of every kept sample, given its pool (an index
    into ``rules``), label and :func:`hash_key`. Raises :class:`UsageError` when a rule with
    ``at_least_one`` cannot be met for a class."""
    n = len(pools)
    split_of = np.empty(n, dtype=np.int8)
    order = np.lexsort((np.arange(n), keys, labels, pools))  # by pool, class, hash; ties by position
    if n == 0:
        return split_of
    sorted_pools, sorted_labels = pools[order], labels[order]
    starts = np.flatnonzero(np.r_[True, (np.diff(sorted_pools) != 0) | (np.diff(sorted_labels) != 0)])
    ends = np.r_[starts[1:], n]
    for start, end in zip(starts.tolist(), ends.tolist()):
        rule, label, size = rules[int(sorted_pools[start])], int(sorted_labels[start]), end - start
        sizes = _held_out_sizes(rule, size)
        if rule.at_least_one and size - sum(sizes) < 1:
            wanted = [s for (s, f) in rule.held_out if f > 0] + [rule.rest]
            raise UsageError(
                f"class {classes[label]!r} has {size} usable image(s) in {rule.description}, too few to put at "
                f"least one in each of {', '.join(wanted)}; add images or lower "
                + " / ".join(f"--{s}-fraction" for s in wanted[:-1])
            )
        position = start
        for (split, _), k in zip(rule.held_out, sizes):
            split_of[order[position : position + k]] = SPLITS.index(split)
            position += k
        split_of[order[position:end]] = SPLITS.index(rule.rest)
    return split_of


def check_classes_present(
    split_of: np.ndarray, labels: np.ndarray, classes: Sequence[str], split: str, where: str
) -> None:
    """Raise :class:`UsageError` when a class has no sample in ``split`` (``where`` names it)."""
    present = np.bincount(labels[split_of == SPLITS.index(split)], minlength=len(classes))
    missing = [classes[i] for i in np.flatnonzero(present == 0)]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UsageError(
            f"class{'es' if len(missing) > 1 else ''} {shown} {'have' if len(missing) > 1 else 'has'} "
            f"no usable image in {where}"
        )


def per_split(split_of: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """``{split: {"total": n, "per_class": {class: n}}}`` for the three splits."""
    out = {}
    for i, split in enumerate(SPLITS):
        counts = np.bincount(labels[split_of == i], minlength=len(classes)).tolist()
        out[split] = {"total": int(sum(counts)), "per_class": dict(zip(classes, counts))}
    return out


def summary_table(counts: Dict[str, Any]) -> str:
    """The per-class table printed at the end of ``prepare`` (any prepared folder)."""
    classes = counts.get("classes", list(VOC_CLASSES))
    columns = [s for s in ("train", "val", "test", "trainval") if s in counts]
    width = max([12] + [len(c) for c in classes[:SUMMARY_MAX_CLASSES]])
    lines = [f"{'class':<{width}} " + " ".join(f"{c:>9}" for c in columns)]
    shown = classes if len(classes) <= SUMMARY_MAX_CLASSES else []
    for name in shown:
        lines.append(f"{name:<{width}} " + " ".join(f"{counts[s]['per_class'][name]:>9}" for s in columns))
    if not shown:
        for split in ("train", "val", "test"):
            values = list(counts[split]["per_class"].values())
            if values:
                lines.append(
                    f"{split}: {len(classes)} classes, {min(values)} to {max(values)} images per class "
                    "(counts.json has every class)"
                )
    lines.append(f"{'total':<{width}} " + " ".join(f"{counts[s]['total']:>9}" for s in columns))
    if "excluded" in counts:
        excluded = ", ".join(f"{k} {v}" for k, v in counts["excluded"].items()) or "none"
        lines.append(f"excluded objects: {excluded}")
    if counts.get("skipped_files"):
        lines.append("skipped files: " + ", ".join(f"{k} {v}" for k, v in counts["skipped_files"].items()))
    if counts.get("ignored_files"):
        lines.append("ignored files: " + ", ".join(f"{k} {v}" for k, v in counts["ignored_files"].items()))
    return "\n".join(lines)


def compare_with_seed(counts: Dict[str, Any]) -> List[str]:
    """Differences between ``counts`` and the source's table (train = VOC07+12 trainval, test =
    VOC07 test), one line per differing class; empty when they match."""
    if "trainval" not in counts:
        raise UsageError("--verify-counts seed compares PASCAL VOC counts; this folder is not VOC")
    diffs = []
    for name, (train, test) in SEED_COUNTS.items():
        got = counts["trainval"]["per_class"][name], counts["test"]["per_class"][name]
        if got != (train, test):
            diffs.append(
                f"{name:<12} train {got[0]} (source {train}, {got[0] - train:+d})  "
                f"test {got[1]} (source {test}, {got[1] - test:+d})"
            )
    return diffs
