"""What ``prepare`` needs from a source (PASCAL VOC, an image folder): a :class:`Plan`.

A plan lists the *units* of work (a VOC image id, a file of a folder) in named groups, gives
each a fingerprint of the files it reads, and hands the pool a light, picklable
:class:`Worker` that turns a unit into manifest rows and stored images. The rest — chunks,
resuming, split assignment, stores, manifest, counts — is :mod:`inception_v2.data.prepare`'s
and the same for every source.

A row is a ``dict`` with the plan's manifest columns plus private keys (``_`` first, never
written to the manifest):

* a kept sample has ``status = "keep"``, its ``class`` name, ``_pool`` (which
  :class:`~inception_v2.data.counts.SplitRule` splits it), ``_key`` (its name for the
  stratified hash order) and ``_sample`` (set by the chunk writer: where its bytes are);
* any row may carry ``_tally``: ``[[bucket, name], ...]`` counted into ``counts.json``
  (``excluded`` objects, ``skipped_files``, ``ignored_files``... by reason);
* a skipped bad file carries ``_skipped = {"file", "reason", "problem"}``, listed in
  ``counts.json``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple, Union

import numpy as np

from inception_v2.data.counts import SplitRule
from inception_v2.data.images import BadFileError, encode_jpeg

Unit = Any  # JSON-able: it names the work in the chunk digest
Sample = Tuple[Union[bytes, np.ndarray], int, int]  # raw pixels (H x W x 3) or JPEG bytes, height, width
Row = Dict[str, Any]


def to_sample(pixels: np.ndarray, store: str) -> Sample:
    """Decoded ``H x W x 3`` pixels as a sample of ``store`` (raw: the pixels; jpeg: encoded)."""
    height, width = pixels.shape[:2]
    if store == "jpeg":
        return encode_jpeg(pixels), height, width
    return np.ascontiguousarray(pixels), height, width


class Worker:
    """Runs in the pool: one unit -> its rows and samples (in the order of its kept rows)."""

    def process(self, group: str, unit: Unit, options: Any) -> Tuple[List[Row], List[Sample]]:
        """Raises :class:`~inception_v2.data.images.BadFileError` for a file it cannot use."""
        raise NotImplementedError

    def skipped(self, group: str, unit: Unit, error: BadFileError) -> List[Row]:
        """The rows of a unit whose file is bad, under ``--skip-bad``."""
        raise NotImplementedError


class Plan:
    """A source, scanned: see the module docstring."""

    kind: str  # "voc" or "image-folder", recorded in prepare.json
    description: str  # where the input is, for messages and prepare.json
    manifest_fields: Sequence[str]
    classes: Sequence[str]  # index = label

    def groups(self) -> List[Tuple[str, List[Unit]]]:
        """The units in processing (and manifest) order, in named groups (chunks never span two)."""
        raise NotImplementedError

    def fingerprint(self, group: str, unit: Unit) -> str:
        """A digest of everything the unit's output depends on besides the options (content
        hashes of annotations, size and modification time of images)."""
        raise NotImplementedError

    def identity(self) -> Dict[str, Any]:
        """Source-wide inputs that the outputs depend on (the class list, the layout...)."""
        return {"kind": self.kind, "classes": list(self.classes)}

    def worker(self) -> Worker:
        raise NotImplementedError

    def split_rules(self, options: Any) -> Dict[str, SplitRule]:
        """The rule of each pool a kept row may name in ``_pool``."""
        raise NotImplementedError

    def check_splits(self, split_of: np.ndarray, labels: np.ndarray) -> None:
        """Refuse an assignment that leaves the data unusable (a class missing from train...)."""

    def found(self) -> List[str]:
        """Log lines saying what was found."""
        return []

    def make_counts(self, counts: Dict[str, Any], tallies: Dict[str, Dict[str, int]]) -> Dict[str, Any]:
        """``counts.json``: ``counts`` holds ``classes``, the three splits and ``skipped``
        (the list of skipped files); the plan adds its own entries from ``tallies``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release open files."""
