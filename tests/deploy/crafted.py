"""Crafted model files that run code when opened carelessly: each writes a marker file (by
``open(marker, "w")`` from a pickle's ``__reduce__``, or ``torch.save`` from TorchScript code),
so a test asserts that nothing ran by asserting that the marker does not exist.

Each maker copies a genuine file (its metadata included: metadata proves nothing) and plants
the payload where a careless loader would run it."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Dict, Tuple

import torch

PT2_PLANTS = ("sample_inputs", "weights", "constants", "legacy_weights", "aotinductor")


class Evil:
    """Unpickling it creates ``marker`` (``builtins.open`` in write mode)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> Tuple[object, Tuple[str, str]]:
        return (open, (self.marker, "w"))


def evil_pickle(marker: Path, wrap: object = None) -> bytes:
    """``torch.save`` bytes whose unpickling creates ``marker``; ``wrap``: a container to put
    the payload in (a dict key ``"x"``), so that the outer structure looks plain."""
    buffer = io.BytesIO()
    obj = Evil(marker) if wrap is None else {**wrap, "x": Evil(marker)}  # type: ignore[dict-item]
    torch.save(obj, buffer)
    return buffer.getvalue()


def _rewrite_zip(src: Path, dst: Path, change: Dict[str, bytes]) -> None:
    """``src`` with the members named (relative to its top folder) in ``change`` replaced or added."""
    with zipfile.ZipFile(src) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    top = next(iter(members)).split("/", 1)[0]
    for name, data in change.items():
        members[f"{top}/{name}"] = data
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)


def _member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as z:
        top = z.namelist()[0].split("/", 1)[0]
        return z.read(f"{top}/{name}")


def crafted_pt2(genuine: Path, dst: Path, marker: Path, plant: str) -> Path:
    """A copy of the genuine ``.pt2`` ``genuine`` with a pickle that creates ``marker`` planted
    in ``plant`` (one of :data:`PT2_PLANTS`); its sidecar metadata is copied too."""
    change: Dict[str, bytes] = {}
    if plant == "sample_inputs":
        change["data/sample_inputs/model.pt"] = evil_pickle(marker)
    elif plant == "weights":
        config = json.loads(_member(genuine, "data/weights/model_weights_config.json"))
        first = next(iter(config["config"].values()))
        first["use_pickle"] = True
        change["data/weights/model_weights_config.json"] = json.dumps(config).encode()
        change[f"data/weights/{first['path_name']}"] = evil_pickle(marker)
    elif plant == "constants":
        config = json.loads(_member(genuine, "data/constants/model_constants_config.json"))
        config["config"]["c"] = {"path_name": "tensor_9", "is_param": False, "use_pickle": True, "tensor_meta": None}
        change["data/constants/model_constants_config.json"] = json.dumps(config).encode()
        change["data/constants/tensor_9"] = evil_pickle(marker)
    elif plant == "legacy_weights":
        change["data/weights/model.pt"] = evil_pickle(marker)
    elif plant == "aotinductor":
        change["data/aotinductor/model/model.so"] = b"\x7fELF" + bytes(64)
    else:
        raise ValueError(plant)
    _rewrite_zip(genuine, dst, change)
    sidecar = genuine.with_name(genuine.name + ".json")
    if sidecar.is_file():
        dst.with_name(dst.name + ".json").write_bytes(sidecar.read_bytes())
    return dst


class _Marker(torch.nn.Module):
    """A TorchScript module that writes ``marker + '.load'`` when loaded and ``marker`` when
    called, and otherwise answers like a classifier."""

    def __init__(self, marker: str, num_classes: int) -> None:
        super().__init__()
        self.marker = marker
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.save(x, self.marker)
        return torch.zeros(x.shape[0], self.num_classes)

    @torch.jit.export
    def __getstate__(self) -> Tuple[str, int, bool]:
        return (self.marker, self.num_classes, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[str, int, bool]) -> None:
        self.marker = state[0]
        self.num_classes = state[1]
        self.training = state[2]
        torch.save(torch.zeros(1), state[0] + ".load")


def crafted_torchscript(dst: Path, marker: Path, meta: Dict[str, object]) -> Path:
    """A TorchScript file with genuine-looking metadata ``meta`` whose code writes ``marker``
    (when called) and ``marker.load`` (when loaded)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.script(_Marker(str(marker), int(meta.get("num_classes") or 2)))
        torch.jit.save(module, str(dst), _extra_files={"meta.json": json.dumps(meta)})
    return dst


def crafted_checkpoint(dst: Path, marker: Path) -> Path:
    """A ``.pt`` that looks like a checkpoint of this project but holds a pickle creating ``marker``."""
    dst.write_bytes(evil_pickle(marker, wrap={"format": "inception_v2.checkpoint", "version": 2}))
    return dst


def crafted_release(dst: Path, marker: Path, genuine: Path) -> Path:
    """A release folder (the genuine ``config.json`` of the release ``genuine``) whose
    ``model.safetensors`` is a pickle creating ``marker``."""
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "config.json").write_bytes((genuine / "config.json").read_bytes())
    (dst / "model.safetensors").write_bytes(evil_pickle(marker))
    return dst


def markers(folder: Path) -> list:
    """Every marker file under ``folder`` (what a crafted file would have written)."""
    return sorted(p.name for p in Path(folder).rglob("MARKER*"))


def tiny_onnx(
    dst: Path,
    classes: object,
    outputs: int,
    batch: object = "batch",
    size: int = 32,
    meta_size: object = None,
    weight: float = 1.0,
) -> Path:
    """A small foreign-looking ONNX classifier: global average pool, then a ``3 x outputs``
    matrix filled with ``weight`` (NaN gives NaN logits). ``batch``: the input's batch
    dimension (a name: dynamic; an int: fixed); ``meta_size``: the metadata's image_size
    (default ``size``); ``classes``: the metadata's class names."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.full((3, outputs), weight, dtype=np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, outputs])],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {"model_name": "tiny", "classes": json.dumps(classes), "image_size": json.dumps(meta_size or size)}
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(dst))
    return dst
