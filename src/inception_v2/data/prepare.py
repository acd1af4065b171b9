"""``inception-v2 prepare``: VOC devkit -> lossless crop stores + manifest + counts (SPEC.md §4).

Output folder (see ``docs/data.md``)::

    OUT/train.pixels  OUT/train.index.npy     # likewise val.* and test.* (inception_v2.data.store)
    OUT/manifest.csv                          # one row per annotated object (and skipped file)
    OUT/prepare.json                          # options, inputs digest, output file sizes
    OUT/counts.json                           # written last: its presence means "finished"

The images are processed in chunks by a process pool (:mod:`inception_v2.data.crops` does one
image); each chunk's crops and manifest rows land in ``OUT/work/`` with an atomic write, so a
killed run picks up where it stopped. Assembly then assigns the splits, writes the stores, the
manifest, ``prepare.json`` and ``counts.json``, in that order, and removes ``OUT/work/``.
Every output is a deterministic function of the inputs and options (not of ``--workers``, nor
of interruptions). A rerun on a finished folder checks it and returns.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from inception_v2.atomic import atomic_open, write_json, write_text
from inception_v2.data.counts import assign_splits, make_counts, summary_table
from inception_v2.data.crops import MANIFEST_FIELDS, process_image, skipped_rows
from inception_v2.data.store import SPLITS, SplitWriter, store_files
from inception_v2.data.voc import BadFileError, TarSource, VOCSource, find_devkit
from inception_v2.errors import UsageError

FORMAT_VERSION = 1
CHUNK_IMAGES = 16  # images per work unit: the granularity of resuming after a kill
OUTPUT_FILES = store_files() + ("manifest.csv",)  # sizes recorded in prepare.json


@dataclass(frozen=True)
class PrepareOptions:
    """The options that determine the output (``workers`` does not, so it is not here)."""

    val_fraction: float = 0.05  # stratified share of trainval held out for checkpoint selection
    max_side: int = 512  # crops whose longer side exceeds this are downscaled; 0 = never
    skip_bad: bool = False  # record bad files in the manifest instead of stopping
    strict: bool = False  # an unknown class name is an error instead of an exclusion

    def __post_init__(self) -> None:
        if not 0.0 <= self.val_fraction < 1.0:
            raise UsageError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.max_side < 0:
            raise UsageError(f"--max-side must be >= 0 (0 = no limit), got {self.max_side}")


# --------------------------------------------------------------------------- chunks (workers)


@dataclass(frozen=True)
class _Chunk:
    year: str
    image_set: str
    image_ids: Tuple[str, ...]
    path: Path  # OUT/work/<year>-<set>-<number>-<digest of options and ids>.npz


_WORKER: Dict[str, Any] = {}  # this process's source and options (set once per pool worker)


def _init_worker(source: VOCSource, options: PrepareOptions) -> None:
    _WORKER["source"], _WORKER["options"] = source, options


def _run_chunk(chunk: _Chunk) -> int:
    """Process a chunk's images and write ``chunk.path`` atomically; returns the image count.

    The file holds ``records`` (the manifest rows as JSON; a kept row has ``crop = [offset,
    height, width]`` into ``pixels``) and ``pixels`` (the kept crops, flat, one after another).
    """
    source, options = _WORKER["source"], _WORKER["options"]
    rows: List[Dict[str, Any]] = []
    crops: List[np.ndarray] = []
    offset = 0
    for image_id in chunk.image_ids:
        try:
            image_rows, image_crops = process_image(
                source, chunk.year, chunk.image_set, image_id, max_side=options.max_side, strict=options.strict
            )
        except BadFileError as e:
            if not options.skip_bad:
                raise UsageError(f"{e} (use --skip-bad to record bad files and go on)") from None
            image_rows, image_crops = skipped_rows(source, chunk.year, chunk.image_set, image_id, e), []
        kept = iter(image_crops)
        for row in image_rows:
            if row["status"] == "keep":
                crop = next(kept)
                row["crop"] = [offset, crop.shape[0], crop.shape[1]]
                offset += crop.nbytes
                crops.append(crop)
        rows.extend(image_rows)
    pixels = np.concatenate([c.reshape(-1) for c in crops]) if crops else np.zeros(0, np.uint8)
    records = np.frombuffer(json.dumps(rows).encode("utf-8"), dtype=np.uint8)
    with atomic_open(chunk.path, "wb") as f:
        np.savez(f, pixels=pixels, records=records)
    return len(chunk.image_ids)


def _load_chunk(path: Path, pixels: bool = False) -> Tuple[List[Dict[str, Any]], Optional[np.ndarray]]:
    with np.load(path) as z:
        rows = json.loads(z["records"].tobytes().decode("utf-8"))
        return rows, (z["pixels"] if pixels else None)


def _pool_context() -> multiprocessing.context.BaseContext:
    # Not plain fork: the calling process may run threads (PyTorch's, a DataLoader's, a test
    # runner's) whose locks a forked child would inherit held, and hang on. forkserver forks
    # from a clean single-threaded server; spawn where there is none.
    if "forkserver" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def _run_chunks(
    chunks: Sequence[_Chunk], source: VOCSource, options: PrepareOptions, workers: int, progress: bool
) -> None:
    """Run the chunks not done yet, in ``workers`` processes (in this one for 1)."""
    todo = [c for c in chunks if not c.path.exists()]
    total = sum(len(c.image_ids) for c in chunks)
    done = total - sum(len(c.image_ids) for c in todo)
    bar = tqdm(total=total, initial=done, unit="img", desc="prepare", disable=None if progress else True)
    try:
        if workers <= 1 or len(todo) <= 1:
            _init_worker(source, options)
            for chunk in todo:
                bar.update(_run_chunk(chunk))
        else:
            # A worker that dies (killed, out of memory) breaks the executor and raises here,
            # where a multiprocessing.Pool would wait for it forever.
            with ProcessPoolExecutor(
                min(workers, len(todo)), _pool_context(), _init_worker, (source, options)
            ) as pool:
                for future in as_completed([pool.submit(_run_chunk, c) for c in todo]):
                    bar.update(future.result())
    finally:
        bar.close()
        _WORKER.clear()


# --------------------------------------------------------------------------- assembly


def _assemble(
    out: Path, chunks: Sequence[_Chunk], lists: Dict[str, List[str]], val_fraction: float
) -> Dict[str, Any]:
    """Split assignment, the stores and the manifest from the finished chunks; returns the
    counts (written by the caller, last)."""
    rows_by_chunk = [_load_chunk(c.path)[0] for c in chunks]
    rows = [row for chunk_rows in rows_by_chunk for row in chunk_rows]
    assign_splits(rows, val_fraction)
    with contextlib.ExitStack() as stack:
        writers = {split: stack.enter_context(SplitWriter(out, split)) for split in SPLITS}
        for chunk, chunk_rows in zip(chunks, rows_by_chunk):
            _, pixels = _load_chunk(chunk.path, pixels=True)
            for row in chunk_rows:
                if row["status"] in writers:
                    start, h, w = row["crop"]
                    writers[row["status"]].append(pixels[start : start + h * w * 3].reshape(h, w, 3), row["label"])
    _write_manifest(out / "manifest.csv", rows)
    sources = {key: {"images": len(ids), "objects": 0} for key, ids in lists.items()}
    for row in rows:
        if row["object_index"] != "":
            sources[f"{row['year']}/{row['image_set']}"]["objects"] += 1
    return make_counts(rows, sources)


def _write_manifest(path: Path, rows: List[Dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


# --------------------------------------------------------------------------- prepare


def open_source(
    voc_root: Optional[os.PathLike] = None, voc_tars: Optional[Sequence[os.PathLike]] = None
) -> VOCSource:
    """A devkit folder (``voc_root``) or the official tar files (``voc_tars``); exactly one."""
    if (voc_root is None) == (not voc_tars):
        raise UsageError("give exactly one of --voc-root ROOT or --voc-tar FILE...")
    return find_devkit(voc_root) if voc_root is not None else TarSource(voc_tars)


def prepare(
    out: os.PathLike,
    voc_root: Optional[os.PathLike] = None,
    voc_tars: Optional[Sequence[os.PathLike]] = None,
    val_fraction: float = 0.05,
    max_side: int = 512,
    workers: Optional[int] = None,
    skip_bad: bool = False,
    strict: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Dict[str, Any]:
    """Prepare the crop stores of a VOC devkit (``voc_root``) or tar files (``voc_tars``) in
    ``out`` and return the content of ``counts.json``.

    Resumes an interrupted run. On a finished ``out`` with the same options and inputs it only
    checks the recorded files and returns; one made with other options or inputs is a
    :class:`UsageError` (use a new folder or delete it). A bad file (corrupt image, malformed
    XML, missing file) is a :class:`UsageError` naming it unless ``skip_bad``. ``workers``
    defaults to the number of usable cores; it does not change the output.
    """
    options = PrepareOptions(val_fraction=val_fraction, max_side=max_side, skip_bad=skip_bad, strict=strict)
    workers = workers if workers is not None else _default_workers()
    if workers < 1:
        raise UsageError(f"--workers must be >= 1, got {workers}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    source = open_source(voc_root, voc_tars)
    try:
        return _prepare(out, source, options, workers, progress, log)
    finally:
        source.close()


def _prepare(
    out: Path, source: VOCSource, options: PrepareOptions, workers: int, progress: bool, log: Callable[[str], None]
) -> Dict[str, Any]:
    splits = source.splits()
    lists = {f"{y}/{s}": source.image_ids(y, s) for y, s in splits}
    log(f"found {_describe(splits)} in {source.description}")
    for key, ids in lists.items():
        log(f"  VOC{key.replace('/', ' ')}: {len(ids)} images")
    expected = {"format": FORMAT_VERSION, "options": asdict(options), "inputs": _inputs_digest(lists)}

    if (out / "counts.json").is_file():
        damage = _check_finished(out, expected)
        if damage is None:
            counts = json.loads((out / "counts.json").read_text())
            shutil.rmtree(out / "work", ignore_errors=True)
            log(f"{out} is already prepared with these options and inputs (verified); nothing to do")
            log(summary_table(counts))
            return counts
        log(f"{out} looks finished but {damage}; preparing it again")
        (out / "counts.json").unlink()

    work = out / "work"
    _reset_work(out, work, expected)
    chunks = []
    for (year, image_set), ids in zip(splits, lists.values()):
        for number, start in enumerate(range(0, len(ids), CHUNK_IMAGES)):
            chunk_ids = tuple(ids[start : start + CHUNK_IMAGES])
            digest = hashlib.sha1(json.dumps([expected["options"], chunk_ids]).encode()).hexdigest()[:12]
            chunks.append(_Chunk(year, image_set, chunk_ids, work / f"{year}-{image_set}-{number:05d}-{digest}.npz"))
    _run_chunks(chunks, source, options, workers, progress)
    counts = _assemble(out, chunks, lists, options.val_fraction)
    sizes = {name: (out / name).stat().st_size for name in OUTPUT_FILES}
    write_json(out / "prepare.json", dict(expected, source=source.description, files=sizes))
    write_json(out / "counts.json", counts)  # last: marks the output as finished
    shutil.rmtree(work, ignore_errors=True)
    log(summary_table(counts))
    return counts


def _inputs_digest(lists: Dict[str, List[str]]) -> str:
    return hashlib.sha256(json.dumps(lists, sort_keys=True).encode("utf-8")).hexdigest()


def _check_finished(out: Path, expected: Dict[str, Any]) -> Optional[str]:
    """Check a finished ``out`` (one with ``counts.json``) against this run.

    Returns ``None`` when it matches and its files have their recorded sizes, or what is
    damaged (the caller prepares it again). Raises :class:`UsageError` when it was made
    with other options or inputs: it is someone's finished data set, not to be overwritten.
    """
    try:
        recorded = json.loads((out / "prepare.json").read_text())
    except (OSError, ValueError):
        return "prepare.json is missing or unreadable"
    for key in ("format", "options", "inputs"):
        if recorded.get(key) != expected[key]:
            raise UsageError(
                f"{out} was prepared with other {key} ({recorded.get(key)}, now {expected[key]}); "
                "use a new --out folder or delete it"
            )
    for name, size in recorded.get("files", {}).items():
        path = out / name
        if not path.is_file() or path.stat().st_size != size:
            return f"{name} is missing or does not have its recorded size {size}"
    return None


def _reset_work(out: Path, work: Path, expected: Dict[str, Any]) -> None:
    """Keep ``work`` from an interrupted run with the same options and inputs; else empty it.
    Also removes the temporary files a killed run left next to the outputs."""
    for name in OUTPUT_FILES + ("prepare.json", "counts.json"):
        for tmp in out.glob(f".{name}.*.tmp"):
            tmp.unlink()
    marker = work / "options.json"
    if work.is_dir():
        try:
            same = json.loads(marker.read_text()) == expected
        except (OSError, ValueError):
            same = False
        if same:
            for tmp in work.glob(".*.tmp"):
                tmp.unlink()
            return
        shutil.rmtree(work)
    write_json(marker, expected)


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _describe(splits: Sequence[Tuple[str, str]]) -> str:
    by_year: Dict[str, List[str]] = {}
    for year, image_set in splits:
        by_year.setdefault(year, []).append(image_set)
    return "; ".join(f"VOC{y} {' + '.join(s)}" for y, s in by_year.items())
