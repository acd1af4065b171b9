"""Opening model files that may be hostile: the checks made before any of their content runs.

A model file is data from whoever sent it, and "crafted files are refused" must hold for every
kind ``evaluate``, ``predict`` and :func:`~inception_v2.deploy.runners.load_classifier` take:

* A ``.pt2`` archive (``torch.export``) is mostly JSON and raw tensor bytes, but
  ``torch.export.load`` unpickles some of its members with ``weights_only=False`` (the sample
  inputs when their safe load fails, weights and constants marked as pickled, legacy weight
  files, custom objects) and loads AOTInductor members as compiled code; a crafted pickle there
  runs arbitrary code, and torch has no switch to forbid it. :func:`check_pt2_archive` reads the
  archive itself first and refuses it unless every member is one it knows to be inert and every
  pickled member loads with ``torch.load(weights_only=True)``; the checked bytes (never the file
  again, which could have changed meanwhile) are then handed to ``torch.export.load``.
* A TorchScript file *is* code: loading runs its ``__setstate__`` methods and calling it runs
  its ``forward``, which can read and write files or loop forever. Nothing in the file can
  prove who wrote it (its metadata can be copied from a genuine export), so it is refused
  unless the caller says it trusts the file (:func:`refuse_untrusted_code`; ``--trust-file``,
  ``trust_file=True``).

Checkpoints and ``--pretrained`` weights are read with ``torch.load(weights_only=True)``
(:mod:`inception_v2.deploy.load`), ONNX files by ONNX Runtime, release folders as JSON and
safetensors: none of these can run code from the file. See ``docs/deployment.md``.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Dict, Set, Tuple

import torch

from inception_v2.errors import UsageError, first_line
from inception_v2.paths import PathLike

TRUST_HINT = "pass --trust-file (trust_file=True) only if you trust whoever wrote it"

# Members of a torch.export archive (relative to its top folder) read as text or JSON only.
_PT2_TEXT = {"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"}
_PT2_JSON_DIRS = ("models/", "data/weights/", "data/constants/")
_PT2_PAYLOAD_DIRS = ("data/weights/", "data/constants/")  # raw tensor bytes, or pickles to check
_PT2_TENSOR_CONSTANT = "tensor_"  # constants of any other kind (custom or opaque objects) are pickles


def _refuse(path: PathLike, why: str) -> UsageError:
    return UsageError(f"refused to load {path}: {why} (not a file written by `inception-v2 export`, or crafted)")


def _members(data: bytes, path: PathLike) -> Dict[str, bytes]:
    """The archive's members by name relative to its one top folder; :class:`UsageError` when
    it is no zip archive, names a member twice, or has members outside one top folder (two zip
    readers could disagree on which of two same-named members is meant)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = [i for i in z.infolist() if not i.is_dir()]
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                raise _refuse(path, "its archive names a member twice")
            if sum(i.file_size for i in infos) > len(data):  # torch stores members uncompressed
                raise _refuse(path, "its members unpack to more bytes than the archive holds (a zip bomb?)")
            tops = {n.split("/", 1)[0] for n in names}
            if len(tops) != 1 or any("/" not in n for n in names):
                raise _refuse(path, "its members are not all in one top folder, as torch.export.save writes them")
            return {n.split("/", 1)[1]: z.read(i) for n, i in zip(names, infos)}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
        if isinstance(e, UsageError):
            raise
        raise UsageError(f"{path} is not a readable torch.export program (not a zip archive: {e})") from None


def _payloads(members: Dict[str, bytes], path: PathLike) -> Tuple[Set[str], Set[str]]:
    """The weight and constant members that the archive's own configs name, as two sets: raw
    tensor bytes (``use_pickle: false``, which torch reads with ``torch.frombuffer``) and
    pickles (which torch unpickles unchecked). A constant of another kind than a tensor (a
    custom or opaque object) is refused, and so is a name that leaves its folder."""
    raw: Set[str] = set()
    pickled: Set[str] = set()
    for name, blob in members.items():
        if not (name.startswith(_PT2_PAYLOAD_DIRS) and name.endswith("_config.json")):
            continue
        folder = name.rsplit("/", 1)[0] + "/"
        try:
            for fqn, meta in json.loads(blob.decode("utf-8"))["config"].items():
                target = str(meta["path_name"])
                if "/" in target or "\\" in target or target.startswith("."):
                    raise _refuse(path, f"its member {name} points outside its folder ({target!r})")
                if folder == "data/constants/" and not target.startswith(_PT2_TENSOR_CONSTANT):
                    raise _refuse(path, f"its constant {fqn!r} is a Python object, which torch unpickles unchecked")
                (raw if meta.get("use_pickle") is False else pickled).add(folder + target)
        except UsageError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise _refuse(path, f"its member {name} is not a valid payload config ({type(e).__name__})") from None
    return raw - pickled, pickled


def _check_pickle(blob: bytes, name: str, path: PathLike) -> None:
    """A pickled member must load with ``weights_only=True`` (tensors and plain containers)."""
    try:
        torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure of the safe load means the unsafe one is not tried
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        detail = first_line(e)[:160]
        why = f"a pickle that would call {found.group(1)}" if found else f"not plain tensor data ({detail})"
        raise _refuse(path, f"its member {name} is {why}") from None


def check_pt2_archive(data: bytes, path: PathLike) -> None:
    """Refuse (:class:`UsageError` naming ``path``) a ``.pt2`` archive, given as its bytes,
    that ``torch.export.load`` could not load without running code from it: a member that
    is neither text, JSON, raw tensor bytes nor a pickle that loads with ``weights_only=True``
    (AOTInductor's compiled code, custom objects, anything torch might add)."""
    members = _members(data, path)
    raw, pickled = _payloads(members, path)
    for name, blob in members.items():
        if name in pickled:
            _check_pickle(blob, name, path)
            continue
        if name in _PT2_TEXT or name.startswith("extra/") or name in raw:
            continue
        if name.startswith(_PT2_JSON_DIRS) and name.endswith(".json"):
            continue
        if name.startswith("data/sample_inputs/") or name.startswith(_PT2_PAYLOAD_DIRS):
            _check_pickle(blob, name, path)
            continue
        raise _refuse(path, f"it holds {name}, which is not part of a plain torch.export program")


def is_torchscript(path: PathLike) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip with ``constants.pkl``, what
    ``torch.load`` itself looks for), as opposed to a ``torch.save`` checkpoint (a zip with
    ``data.pkl`` only), whatever its suffix."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n == "constants.pkl" or n.endswith("/constants.pkl") for n in names)


def refuse_torchscript(path: PathLike) -> None:
    """:class:`UsageError` when ``path`` is a TorchScript file: code, never weights
    (``torch.load`` would hand it to ``torch.jit.load``)."""
    if is_torchscript(path):
        raise UsageError(
            f"{path} is a TorchScript file (a program), not a checkpoint or weights; it is never loaded here"
        )


def refuse_untrusted_code(path: PathLike, trust_file: bool) -> None:
    """:class:`UsageError` unless ``trust_file``: ``path`` is a TorchScript file, which runs its
    own code when loaded and called."""
    if not trust_file:
        raise UsageError(
            f"refused to load {path}: it is a TorchScript file, which runs its own code when loaded; {TRUST_HINT}"
        )


def read_model_file(path: PathLike) -> bytes:
    """The bytes of a model file, once (the checks and the load then see the same bytes):
    :class:`UsageError` for a missing file, a folder, or something that is not a regular file
    (a FIFO or a device would block or never end)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a folder, not a model file")
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    if not path.is_file():
        raise UsageError(f"{path} is not a regular file (a pipe, socket or device)")
    with open(path, "rb") as f:
        return f.read()
