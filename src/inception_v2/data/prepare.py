"""``inception-v2 prepare``: PASCAL VOC or an image folder -> per-split stores + manifest + counts.

Output folder (see ``docs/data.md``)::

    OUT/train.pixels  OUT/train.index.npy     # or train.jpeg (--store jpeg); likewise val.*, test.*
    OUT/manifest.csv                          # one row per annotated object / per file
    OUT/prepare.json                          # options, inputs digest, output file sizes
    OUT/counts.json                           # written last: its presence means "finished"

A source is a :class:`~inception_v2.data.plan.Plan` (:class:`~inception_v2.data.crops.VOCPlan`,
:class:`~inception_v2.data.folder.FolderPlan`). Its units are processed in chunks by a process
pool; each chunk's images and manifest rows land in the scratch folder ``OUT/.prepare-work/``
(:func:`scratch_folder`) with an atomic write, in a
file named after a digest of the chunk's own inputs (the options, the units, the fingerprints
of the files they read). A rerun therefore redoes exactly the chunks whose inputs changed (an
edited annotation, a replaced picture, another root), and says so; a killed run picks up where
it stopped. Assembly then streams the chunks twice — the split assignment from the labels,
then the stores and the manifest — writes ``prepare.json`` and ``counts.json`` in that order
and removes the scratch folder. Memory stays flat in the number of images: a chunk's pixels at a
time, plus a few dozen bytes of bookkeeping per image.

Every output is a deterministic function of the inputs and options (not of ``--workers``, nor
of interruptions). ``OUT`` is locked (:func:`inception_v2.locking.exclusive`) while ``prepare``
writes it. Pool workers die with the main process (:func:`inception_v2.procs.die_with_parent`),
and the fork server and resource tracker exit with it.

Nothing is deleted that ``prepare`` did not write: the scratch folder is created with a marker
file and a folder of that name without the marker is refused; only chunk files and this
program's temporary files (:func:`inception_v2.atomic.is_our_temp`) are removed from it, and
it is removed only when nothing else is left in it. ``OUT`` may not be, or lie inside, an input
folder (:func:`check_out_outside_input`): the output would be read as input the next time.
"""

from __future__ import annotations

import array
import contextlib
import csv
import hashlib
import json
import multiprocessing
import os
import re
import struct
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from inception_v2.atomic import atomic_open, is_our_temp, remove_stale_temps, temp_file, write_json
from inception_v2.data.counts import assign_splits, hash_key, per_split, summary_table
from inception_v2.data.crops import VOCPlan
from inception_v2.data.folder import FolderPlan
from inception_v2.data.images import BadFileError
from inception_v2.data.plan import Plan, Row, Worker
from inception_v2.data.store import SPLITS, SplitWriter, check_store, store_files
from inception_v2.data.voc import TarSource, VOCSource, find_devkit
from inception_v2.errors import UsageError
from inception_v2.locking import exclusive
from inception_v2.procs import die_with_parent, usable_cpus

FORMAT_VERSION = 3  # 2: the jpeg store, image folders, counts.json "classes", index "nbytes"; 3: links
# resolved, JPEGs the loader cannot decode re-encoded, float and 32-bit TIFFs, the pixel limit at 1x
CHUNK_IMAGES = 16  # units per work file: the granularity of resuming after a kill
DEFAULT_TEST_FRACTION = 0.1  # image folders without ROOT/test, pool layout


def output_files(store: str = "raw") -> Tuple[str, ...]:
    """The files whose sizes ``prepare.json`` records."""
    return store_files(store) + ("manifest.csv",)


OUTPUT_FILES = output_files("raw")


class BadSourceFileError(UsageError):
    """A source file that stops ``prepare`` (without ``skip_bad``): ``path`` and ``problem``."""

    def __init__(self, path: str, problem: str, reason: str = "bad-image") -> None:
        super().__init__(path, problem, reason)
        self.path, self.problem, self.reason = path, problem, reason

    def __str__(self) -> str:
        return f"{self.path}: {self.problem} (use --skip-bad to record bad files and go on)"


@dataclass(frozen=True)
class PrepareOptions:
    """The options that determine the output (``workers`` does not, so it is not here)."""

    val_fraction: float = 0.05  # stratified share held out for checkpoint selection
    max_side: int = 512  # images (VOC: crops) whose longer side exceeds this are downscaled; 0 = never
    skip_bad: bool = False  # record bad files in the manifest instead of stopping
    strict: bool = False  # VOC: an unknown class name is an error instead of an exclusion
    store: str = "raw"  # raw: lossless pixels; jpeg: JPEG bytes, decoded by the loader
    test_fraction: Optional[float] = None  # image folders in the pool layout (None for VOC)

    def __post_init__(self) -> None:
        if not 0.0 <= self.val_fraction < 1.0:
            raise UsageError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.test_fraction is not None:
            if not 0.0 <= self.test_fraction < 1.0:
                raise UsageError(f"--test-fraction must be in [0, 1), got {self.test_fraction}")
            if self.val_fraction + self.test_fraction >= 1.0:
                raise UsageError(
                    f"--val-fraction {self.val_fraction} + --test-fraction {self.test_fraction} "
                    "leave nothing to train on"
                )
        if self.max_side < 0:
            raise UsageError(f"--max-side must be >= 0 (0 = no limit), got {self.max_side}")
        check_store(self.store)

    def identity(self) -> Dict[str, Any]:
        """The options that must match for a finished folder to be reused: all but
        ``skip_bad`` (a run without it that finished had no bad file, so the output is the same)."""
        return {k: v for k, v in asdict(self).items() if k != "skip_bad"}


# --------------------------------------------------------------------------- chunks (workers)


@dataclass(frozen=True)
class _Chunk:
    group: str
    units: Tuple[Any, ...]
    path: Path  # OUT/work/<group>-<number>-<digest of its inputs>.chunk


_WORKER: Dict[str, Any] = {}  # this process's worker and options (set once per pool worker)


def _init_worker(worker: Worker, options: PrepareOptions, owner_pid: Optional[int] = None) -> None:
    if owner_pid is not None:  # a pool worker: die with the main process, not after it
        die_with_parent(owner_pid)
    _WORKER["worker"], _WORKER["options"] = worker, options


def _run_chunk(chunk: _Chunk) -> int:
    """Process a chunk's units and write ``chunk.path`` atomically; returns the unit count.

    The rows carry ``_sample = [offset, nbytes, height, width]`` into the chunk's data (the
    samples' bytes, one after another); see :func:`_write_chunk` for the file.
    """
    worker, options = _WORKER["worker"], _WORKER["options"]
    rows: List[Row] = []
    parts: List[Any] = []
    offset = 0
    for unit in chunk.units:
        try:
            unit_rows, samples = worker.process(chunk.group, unit, options)
        except BadFileError as e:
            if not options.skip_bad:
                raise BadSourceFileError(e.path, e.problem, e.reason) from None
            unit_rows, samples = worker.skipped(chunk.group, unit, e), []
        kept = iter(samples)
        for row in unit_rows:
            if row["status"] == "keep":
                data, height, width = next(kept)
                nbytes = len(data) if isinstance(data, bytes) else int(data.nbytes)
                row["_sample"] = [offset, nbytes, int(height), int(width)]
                offset += nbytes
                parts.append(data if isinstance(data, bytes) else np.ascontiguousarray(data))
        rows.extend(unit_rows)
    _write_chunk(chunk.path, rows, parts)
    return len(chunk.units)


_CHUNK_HEAD = struct.Struct("<QQ")  # bytes of the JSON rows, bytes of the data


def _write_chunk(path: Path, rows: List[Row], parts: Sequence[Any]) -> None:
    """A work file: the two lengths, the rows as JSON, the data. Written to a temporary name
    and renamed, so it is whole or absent after a kill; not fsync-ed (it is scratch: a file
    that a power cut damaged is found by its lengths, removed, and redone)."""
    records = json.dumps(rows).encode("utf-8")
    fd, name = temp_file(path)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_CHUNK_HEAD.pack(len(records), sum(memoryview(p).nbytes for p in parts)))
            f.write(records)
            for part in parts:
                f.write(memoryview(part).cast("B"))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _load_chunk(path: Path, data: bool = False) -> Tuple[List[Row], Optional[np.ndarray]]:
    try:
        with open(path, "rb") as f:
            n_records, n_data = _CHUNK_HEAD.unpack(f.read(_CHUNK_HEAD.size))
            if os.fstat(f.fileno()).st_size != _CHUNK_HEAD.size + n_records + n_data:
                raise ValueError("its size does not match its header")
            rows = json.loads(f.read(n_records).decode("utf-8"))
            return rows, (np.frombuffer(f.read(n_data), dtype=np.uint8) if data else None)
    except (OSError, ValueError, struct.error) as e:  # damaged after it was written (a power cut...)
        path.unlink(missing_ok=True)
        raise UsageError(f"work file {path} is damaged ({e}); it was removed: run prepare again") from None


def _pool_context() -> multiprocessing.context.BaseContext:
    # Not plain fork: the calling process may run threads (PyTorch's, tqdm's, a test runner's)
    # whose locks a forked child would inherit held, and the children would inherit the output
    # folder's lock. forkserver forks each worker from a clean single-threaded server that has
    # imported this module once (workers start in milliseconds) and that dies with this process
    # (inception_v2.data.poolserver); spawn where there is no forkserver.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["inception_v2.data.poolserver"])  # no effect once the server runs
        return ctx
    return multiprocessing.get_context("spawn")


def _run_chunks(
    todo: Sequence[_Chunk], total: int, worker: Worker, options: PrepareOptions, workers: int, progress: bool
) -> None:
    """Run the chunks ``todo`` in ``workers`` processes (in this one for 1)."""
    done = total - sum(len(c.units) for c in todo)
    bar = tqdm(
        total=total, initial=done, unit="img", desc="prepare", disable=None if progress else True, dynamic_ncols=True
    )
    try:
        if workers <= 1 or len(todo) <= 1:
            _init_worker(worker, options)
            for chunk in todo:
                bar.update(_run_chunk(chunk))
            return
        # A worker that dies (killed, out of memory) breaks the executor and raises here,
        # where a multiprocessing.Pool would wait for it forever.
        pool = ProcessPoolExecutor(
            min(workers, len(todo)), _pool_context(), _init_worker, (worker, options, os.getpid())
        )
        try:
            pending = {pool.submit(_run_chunk, c) for c in todo}
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in finished:
                    bar.update(future.result())  # the first error stops the run at once
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()
        _WORKER.clear()


# --------------------------------------------------------------------------- assembly


def _assemble(out: Path, plan: Plan, chunks: Sequence[_Chunk], options: PrepareOptions) -> Dict[str, Any]:
    """The split assignment, the stores and the manifest from the finished chunks; returns the
    counts (written by the caller, last). Streams: one chunk in memory at a time."""
    class_index = {name: i for i, name in enumerate(plan.classes)}
    rules = plan.split_rules(options)
    pool_index = {name: i for i, name in enumerate(rules)}
    labels, pools, keys = array.array("q"), array.array("q"), array.array("Q")  # 24 bytes per sample
    tallies: Dict[str, Dict[str, int]] = {}
    skipped: List[Dict[str, str]] = []
    for chunk in chunks:  # pass 1: labels, pools and hash keys of the kept samples; tallies
        rows, _ = _load_chunk(chunk.path)
        for row in rows:
            if row["status"] == "keep":
                labels.append(class_index[row["class"]])
                pools.append(pool_index[row["_pool"]])
                keys.append(hash_key(row["_key"]))
            for bucket, name in row.get("_tally", ()):
                tallies.setdefault(bucket, {})[name] = tallies.setdefault(bucket, {}).get(name, 0) + 1
            if "_skipped" in row:
                skipped.append(row["_skipped"])
    label_arr = np.frombuffer(labels, dtype=np.int64)
    split_of = assign_splits(
        np.frombuffer(pools, dtype=np.int64),
        label_arr,
        np.frombuffer(keys, dtype=np.uint64),
        list(rules.values()),
        plan.classes,
    )
    del pools, keys
    plan.check_splits(split_of, label_arr)
    store_index = np.zeros(len(split_of), dtype=np.int64)
    for i in range(len(SPLITS)):
        members = np.flatnonzero(split_of == i)
        store_index[members] = np.arange(len(members))

    with contextlib.ExitStack() as stack:  # pass 2: the stores and the manifest
        writers = [stack.enter_context(SplitWriter(out, split, options.store)) for split in SPLITS]
        manifest = stack.enter_context(atomic_open(out / "manifest.csv", "w"))
        table = csv.DictWriter(manifest, fieldnames=plan.manifest_fields, extrasaction="ignore", lineterminator="\n")
        table.writeheader()
        k = 0
        for chunk in chunks:
            rows, data = _load_chunk(chunk.path, data=True)
            for row in rows:
                if row["status"] == "keep":
                    split = int(split_of[k])
                    offset, nbytes, height, width = row["_sample"]
                    writers[split].append(data[offset : offset + nbytes], height, width, int(label_arr[k]))
                    row["status"], row["store_index"] = SPLITS[split], int(store_index[k])
                    k += 1
                table.writerow(row)
    counts = per_split(split_of, label_arr, plan.classes)
    counts.update(classes=list(plan.classes), skipped=skipped)
    return plan.make_counts(counts, tallies)


# --------------------------------------------------------------------------- prepare


def open_source(voc_root: Optional[os.PathLike] = None, voc_tars: Optional[Sequence[os.PathLike]] = None) -> VOCSource:
    """A devkit folder (``voc_root``) or the official tar files (``voc_tars``); exactly one."""
    if (voc_root is None) == (not voc_tars):
        raise UsageError("give exactly one of --voc-root ROOT or --voc-tar FILE...")
    return find_devkit(voc_root) if voc_root is not None else TarSource(voc_tars)


def prepare(
    out: os.PathLike,
    voc_root: Optional[os.PathLike] = None,
    voc_tars: Optional[Sequence[os.PathLike]] = None,
    *,
    image_folder: Optional[os.PathLike] = None,
    options: Optional[PrepareOptions] = None,
    workers: Optional[int] = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    **given: Any,
) -> Dict[str, Any]:
    """Prepare the stores of a VOC devkit (``voc_root``), the VOC tar files (``voc_tars``) or
    an image folder (``image_folder``) in ``out`` and return the content of ``counts.json``.
    What the output holds is set by ``options`` (:class:`PrepareOptions`), or by its fields
    given as keywords (``val_fraction=0.2, skip_bad=True``).

    Resumes an interrupted run. On a finished ``out`` with the same options and inputs it only
    checks the recorded files and returns; one whose inputs changed since (an edited
    annotation, a replaced image, another root) is prepared again, saying so; one made with
    other options is a :class:`UsageError` (use a new folder or delete it). A bad file
    (corrupt image, malformed XML, missing file) is a :class:`BadSourceFileError` naming it
    unless ``skip_bad``. ``workers`` defaults to the number of usable cores; it does not
    change the output. ``out`` is locked while this runs (:class:`~inception_v2.errors.LockedError`
    if another process holds it).
    """
    if sum(x is not None and x != [] for x in (voc_root, voc_tars, image_folder)) != 1:
        raise UsageError("give exactly one of --voc-root ROOT, --voc-tar FILE... or --image-folder ROOT")
    options = _options(options, given, image_folder is not None)
    workers = workers if workers is not None else usable_cpus()
    if workers < 1:
        raise UsageError(f"--workers must be >= 1, got {workers}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    check_out_outside_input(out, [Path(p) for p in (voc_root, image_folder) if p is not None])
    plan: Plan = FolderPlan(image_folder) if image_folder is not None else VOCPlan(open_source(voc_root, voc_tars))
    try:
        with exclusive(out, "prepare output"):
            return _prepare(out, plan, options, workers, progress, log)
    finally:
        plan.close()


def _options(options: Optional[PrepareOptions], given: Dict[str, Any], folder: bool) -> PrepareOptions:
    """``options``, or one made of the ``given`` fields, checked against the kind of source."""
    if options is not None and given:
        raise TypeError("give prepare() options or their fields as keywords, not both")
    unknown = sorted(set(given) - set(PrepareOptions.__dataclass_fields__))
    if unknown:
        raise TypeError(f"prepare() got unexpected keyword arguments {unknown}")
    test_fraction = options.test_fraction if options is not None else given.get("test_fraction")
    if not folder:
        if test_fraction is not None:
            raise UsageError("--test-fraction applies to --image-folder (VOC has its own test split)")
    elif options.strict if options is not None else given.get("strict", False):
        raise UsageError("--strict applies to VOC (an image folder's classes are its folders)")
    elif test_fraction is None:
        given = dict(given, test_fraction=DEFAULT_TEST_FRACTION)
        options = replace(options, test_fraction=DEFAULT_TEST_FRACTION) if options is not None else None
    return options if options is not None else PrepareOptions(**given)


def _chunks(plan: Plan, options: PrepareOptions, work: Path) -> List[_Chunk]:
    """The chunks of ``plan``, each named after a digest of its own inputs."""
    chunks = []
    key = json.dumps([FORMAT_VERSION, plan.kind, options.identity()])
    for group, units in plan.groups():
        for number, start in enumerate(range(0, len(units), CHUNK_IMAGES)):
            chunk_units = tuple(units[start : start + CHUNK_IMAGES])
            fingerprints = [plan.fingerprint(group, u) for u in chunk_units]
            digest = hashlib.sha1(json.dumps([key, group, chunk_units, fingerprints]).encode()).hexdigest()[:16]
            chunks.append(_Chunk(group, chunk_units, work / f"{group}-{number:06d}-{digest}.chunk"))
    return chunks


def _inputs_digest(plan: Plan, chunks: Sequence[_Chunk]) -> str:
    h = hashlib.sha256(json.dumps(plan.identity(), sort_keys=True).encode("utf-8"))
    for chunk in chunks:
        h.update(chunk.path.name.encode("utf-8"))
    return h.hexdigest()


def _prepare(
    out: Path, plan: Plan, options: PrepareOptions, workers: int, progress: bool, log: Callable[[str], None]
) -> Dict[str, Any]:
    for line in plan.found():
        log(line)
    work = out / SCRATCH
    chunks = _chunks(plan, options, work)
    expected = {
        "format": FORMAT_VERSION,
        "kind": plan.kind,
        "options": asdict(options),
        "inputs": _inputs_digest(plan, chunks),
    }

    if (out / "counts.json").is_file():
        damage = _check_finished(out, expected, plan.description)
        if damage is None:
            counts = json.loads((out / "counts.json").read_text())
            remove_scratch(work, log)
            log(f"{out} is already prepared with these options and inputs (verified); nothing to do")
            source = json.loads((out / "prepare.json").read_text()).get("source")
            if source != plan.description:
                log(f"(it was prepared from {source}, whose files are the same as those of {plan.description})")
            log(summary_table(counts))
            return counts
        log(f"{out} looks finished but {damage}: preparing it again")
        (out / "counts.json").unlink()

    _clean_leftovers(out, work, chunks, log)
    todo = [c for c in chunks if not c.path.exists()]
    total = sum(len(c.units) for c in chunks)
    if len(todo) < len(chunks):
        log(f"resuming: {len(chunks) - len(todo)} of {len(chunks)} chunks already done")
    _run_chunks(todo, total, plan.worker(), options, workers, progress)
    counts = _assemble(out, plan, chunks, options)
    sizes = {name: (out / name).stat().st_size for name in output_files(options.store)}
    write_json(out / "prepare.json", dict(expected, source=plan.description, files=sizes))
    write_json(out / "counts.json", counts)  # last: marks the output as finished
    remove_scratch(work, log)
    log(summary_table(counts))
    return counts


def _check_finished(out: Path, expected: Dict[str, Any], description: str) -> Optional[str]:
    """Check a finished ``out`` (one with ``counts.json``) against this run.

    Returns ``None`` when it matches and its files have their recorded sizes, or why it must be
    prepared again (damaged files, changed inputs). Raises :class:`UsageError` when it was
    made with other options: it is someone's finished data set, not to be overwritten.
    """
    try:
        recorded = json.loads((out / "prepare.json").read_text())
    except (OSError, ValueError):
        return "prepare.json is missing or unreadable"
    if not isinstance(recorded, dict):
        return "prepare.json is damaged"
    if recorded.get("kind", "voc") != expected["kind"]:
        raise UsageError(
            f"{out} was prepared from another kind of source ({recorded.get('kind', 'voc')}, now "
            f"{expected['kind']}); use a new --out folder or delete it"
        )
    options = PrepareOptions(**expected["options"]).identity()
    try:
        old = PrepareOptions(**recorded.get("options", {})).identity()
    except (TypeError, UsageError):
        old = recorded.get("options")
    if old != options:
        changed = (
            ", ".join(f"{k} {old.get(k)!r} -> {v!r}" for k, v in options.items() if old.get(k) != v)
            if isinstance(old, dict)
            else str(old)
        )
        raise UsageError(f"{out} was prepared with other options ({changed}); use a new --out folder or delete it")
    if recorded.get("format") != expected["format"]:
        return f"it was prepared by another version of this program (format {recorded.get('format')})"
    if recorded.get("inputs") != expected["inputs"]:
        before = recorded.get("source")
        where = f" (source was {before}, now {description})" if before != description else ""
        return f"its inputs changed since it was prepared{where}: annotations, image files or lists differ"
    for name, size in recorded.get("files", {}).items():
        path = out / name
        if not path.is_file() or path.stat().st_size != size:
            return f"{name} is missing or does not have its recorded size {size}"
    return None


SCRATCH = ".prepare-work"  # OUT/.prepare-work/: the chunks of an unfinished run
SCRATCH_MARKER = ".inception-v2-scratch"  # in it: proves the folder is ours
_CHUNK_NAME = re.compile(r"^[A-Za-z0-9_./-]+-\d{6}-[0-9a-f]{16}\.chunk$")


def scratch_folder(work: Path) -> Path:
    """``work``, created with its marker file, or an earlier run's (marker present);
    :class:`UsageError` when a folder of that name exists without the marker."""
    if work.exists() or work.is_symlink():
        if work.is_symlink() or not work.is_dir() or not (work / SCRATCH_MARKER).is_file():
            raise UsageError(
                f"{work} exists but was not made by prepare (no {SCRATCH_MARKER} in it); "
                "move it away or use another --out"
            )
        return work
    work.mkdir(parents=True)
    (work / SCRATCH_MARKER).write_text("scratch space of inception-v2 prepare; removed when it finishes\n")
    return work


def _ours(path: Path) -> bool:
    """A file this program wrote in a scratch folder: a chunk or a temporary file."""
    return path.is_file() and not path.is_symlink() and (_CHUNK_NAME.match(path.name) or is_our_temp(path.name))


def remove_scratch(work: Path, log: Callable[[str], None]) -> None:
    """Remove the chunks and temporary files of the scratch folder ``work`` (if it carries its
    marker), then the folder itself when nothing else is left in it."""
    if work.is_symlink() or not (work / SCRATCH_MARKER).is_file():
        return
    for path in work.iterdir():
        if _ours(path):
            path.unlink(missing_ok=True)
    others = [p.name for p in work.iterdir() if p.name != SCRATCH_MARKER]
    if others:
        log(f"left {work} in place: it holds files prepare did not write ({', '.join(sorted(others)[:3])})")
        return
    (work / SCRATCH_MARKER).unlink(missing_ok=True)
    work.rmdir()


def _clean_leftovers(out: Path, work: Path, chunks: Sequence[_Chunk], log: Callable[[str], None]) -> None:
    """Remove what an interrupted or killed run left that this run cannot use: this program's
    temporary files next to the outputs and in the scratch folder, and chunks whose inputs
    changed since. Nothing else is touched."""
    remove_stale_temps(out)
    scratch_folder(work)
    remove_stale_temps(work)
    wanted = {c.path.name for c in chunks}
    stale = [p for p in work.iterdir() if p.name not in wanted and _CHUNK_NAME.match(p.name) and _ours(p)]
    for path in stale:
        path.unlink()
    if stale:
        log(
            f"{len(stale)} finished chunk(s) in {work} no longer match their inputs or the options "
            "(files changed since the interrupted run): redoing them"
        )


def check_out_outside_input(out: Path, inputs: Sequence[Path], flag: str = "--out") -> None:
    """:class:`UsageError` when ``out`` is one of the folders ``inputs`` or lies inside one:
    its files would be read as input (pictures, annotations) the next time, and scratch
    space there could meet the user's own folders."""
    target = Path(os.path.realpath(out))
    for folder in inputs:
        root = Path(os.path.realpath(folder))
        if target == root or root in target.parents:
            raise UsageError(f"{flag} {out} is inside the input folder {folder}; choose a folder outside it")
