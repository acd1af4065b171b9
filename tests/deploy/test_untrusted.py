"""The checks made before a model file's content runs (``inception_v2.formats.untrusted``), on
a small ``torch.export`` program: a genuine archive passes and loads; every way of planting a
pickle or code in one is refused, with nothing run."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch

from inception_v2.deploy.export import read_pt2
from inception_v2.errors import UsageError
from inception_v2.formats.untrusted import check_pt2_archive, is_torchscript
from tests.deploy.crafted import PT2_PLANTS, crafted_pt2, evil_pickle, markers


class Small(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        self.register_buffer("offset", torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + self.offset


@pytest.fixture(scope="module")
def genuine(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pt2") / "small.pt2"
    program = torch.export.export(Small().eval(), (torch.randn(2, 4),))
    torch.export.save(program, str(path), extra_files={"meta.json": json.dumps({"image_size": 4})})
    return path


def _members(path: Path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def _write(path: Path, members) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members:
            z.writestr(name, data)
    return path


def test_a_genuine_program_passes_and_loads(genuine):
    check_pt2_archive(genuine.read_bytes(), genuine)
    program, meta = read_pt2(genuine)
    x = torch.randn(2, 4)
    assert meta == {"image_size": 4} and program.module()(x).shape == (2, 3)


@pytest.mark.parametrize("plant", PT2_PLANTS)
def test_a_planted_payload_is_refused_before_it_runs(plant, genuine, tmp_path):
    f = crafted_pt2(genuine, tmp_path / "x.pt2", tmp_path / "MARKER", plant)
    with pytest.raises(UsageError, match="refused to load .*x.pt2"):
        read_pt2(f)
    assert markers(tmp_path) == []


def test_a_member_named_twice_is_refused(genuine, tmp_path):
    members = _members(genuine)
    sample = next(n for n, _ in members if n.endswith("data/sample_inputs/model.pt"))
    with pytest.warns(UserWarning):  # zipfile's "Duplicate name"
        f = _write(tmp_path / "x.pt2", members + [(sample, evil_pickle(tmp_path / "MARKER"))])
    with pytest.raises(UsageError, match="names a member twice"):
        read_pt2(f)
    assert markers(tmp_path) == []


def test_members_outside_one_top_folder_are_refused(genuine, tmp_path):
    f = _write(tmp_path / "x.pt2", _members(genuine) + [("version", b"1")])  # torch's legacy fallback reads it
    with pytest.raises(UsageError, match="one top folder"):
        read_pt2(f)


@pytest.mark.parametrize("path_name", ["custom_obj_0", "opaque_obj_0", "../sample_inputs/model.pt", "a/b"])
def test_a_constant_that_is_no_tensor_or_leaves_its_folder_is_refused(path_name, genuine, tmp_path):
    members = dict(_members(genuine))
    top = next(iter(members)).split("/", 1)[0]
    config = {"config": {"c": {"path_name": path_name, "is_param": False, "use_pickle": True, "tensor_meta": None}}}
    members[f"{top}/data/constants/model_constants_config.json"] = json.dumps(config).encode()
    members[f"{top}/data/constants/{path_name.replace('/', '_')}"] = evil_pickle(tmp_path / "MARKER")
    f = _write(tmp_path / "x.pt2", list(members.items()))
    with pytest.raises(UsageError, match="Python object|outside its folder"):
        read_pt2(f)
    assert markers(tmp_path) == []


def test_other_archives_named_pt2_are_refused(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "checkpoint.pt2")
    scripted = torch.jit.script(Small())
    torch.jit.save(scripted, str(tmp_path / "script.pt2"))
    assert is_torchscript(tmp_path / "script.pt2") and not is_torchscript(tmp_path / "checkpoint.pt2")
    for name in ("checkpoint.pt2", "script.pt2"):
        with pytest.raises(UsageError, match="not part of a plain torch.export program"):
            read_pt2(tmp_path / name)
    (tmp_path / "junk.pt2").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(UsageError, match="junk.pt2"):
        check_pt2_archive((tmp_path / "junk.pt2").read_bytes(), tmp_path / "junk.pt2")
    with pytest.raises(UsageError, match="junk.pt2"):
        check_pt2_archive(io.BytesIO(b"").getvalue(), tmp_path / "junk.pt2")


def test_a_compressed_bomb_is_refused_unread(genuine, tmp_path):
    members = _members(genuine)
    with zipfile.ZipFile(tmp_path / "x.pt2", "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
        z.writestr(members[0][0].split("/", 1)[0] + "/extra/big.txt", b"0" * 50_000_000)
    assert (tmp_path / "x.pt2").stat().st_size < 1_000_000
    with pytest.raises(UsageError, match="zip bomb"):
        read_pt2(tmp_path / "x.pt2")
