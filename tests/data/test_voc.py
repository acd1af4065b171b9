"""Annotation rules and devkit discovery (inception_v2.data.voc): pure functions, no crops."""

from __future__ import annotations

import shutil
import tarfile

import pytest

from inception_v2.data.voc import (
    SEED_COUNTS,
    SEED_TOTALS,
    VOC_CLASSES,
    BadFileError,
    DirSource,
    TarSource,
    clamp_box,
    exclusion_reason,
    find_devkit,
    parse_annotation,
)
from inception_v2.errors import UsageError
from tests.data.devkit import annotation_xml, object_xml, official_tars


def test_classes_and_seed_table_match_spec():
    assert VOC_CLASSES == tuple(sorted(VOC_CLASSES)) and len(VOC_CLASSES) == 20
    assert list(SEED_COUNTS) == list(VOC_CLASSES)
    assert tuple(sum(c[i] for c in SEED_COUNTS.values()) for i in (0, 1)) == SEED_TOTALS == (40058, 12032)


def test_parts_are_not_objects_and_flags_default_to_zero():
    xml = annotation_xml(
        100,
        80,
        [
            object_xml(
                "person",
                ["10", "10", "50", "70"],
                parts=[("head", ["20", "10", "30", "20"]), ("hand", ["10", "40", "15", "45"])],
            ),
            object_xml("dog", ["1", "2", "3", "4"], difficult=None),
            object_xml("cat", ["5", "6", "7", "8"], difficult="1", truncated="1"),
        ],
    )
    ann = parse_annotation(xml.encode(), "x.xml")
    assert ann.size == (100, 80)
    assert [o.name for o in ann.objects] == ["person", "dog", "cat"]
    assert [o.index for o in ann.objects] == [0, 1, 2]
    assert ann.objects[1].difficult == 0  # missing <difficult> means 0
    assert (ann.objects[2].difficult, ann.objects[2].truncated) == (1, 1)


def test_float_coordinates_are_rounded_and_kept_as_written():
    xml = annotation_xml(100, 80, [object_xml("dog", ["48.0", "1.5", "10.49", "20"])])
    obj = parse_annotation(xml.encode(), "x.xml").objects[0]
    assert obj.box == (48, 2, 10, 20)
    assert obj.box_text == ("48.0", "1.5", "10.49", "20")


@pytest.mark.parametrize(
    "xml, problem",
    [
        (b"<annotation><object>", "malformed XML"),
        (b"<foo/>", "not <annotation>"),
        (annotation_xml(9, 9, ["<object><name>dog</name></object>"]).encode(), "no <bndbox>"),
        (annotation_xml(9, 9, [object_xml("dog", ["1", "x", "3", "4"])]).encode(), "bad box"),
        (annotation_xml(9, 9, [object_xml("", ["1", "2", "3", "4"])]).encode(), "no <name>"),
    ],
)
def test_malformed_annotations_name_file_and_problem(xml, problem):
    with pytest.raises(BadFileError) as info:
        parse_annotation(xml, "VOC2007/Annotations/000042.xml")
    assert info.value.reason == "bad-xml"
    assert "000042.xml" in str(info.value) and problem in str(info.value)


def test_clamp_box_is_1_based_inclusive():
    assert clamp_box((1, 1, 10, 10), 10, 10) == (1, 1, 10, 10)  # the whole image
    assert clamp_box((0, -5, 12, 10), 10, 10) == (1, 1, 10, 10)  # past the image: clamped
    assert clamp_box((10, 3, 10, 3), 10, 10) == (10, 3, 10, 3)  # one pixel is a box
    assert clamp_box((11, 1, 15, 5), 10, 10) is None  # nothing left after clamping
    assert clamp_box((5, 1, 4, 5), 10, 10) is None  # xmax < xmin


def test_exclusion_reasons():
    ann = parse_annotation(
        annotation_xml(
            9, 9, [object_xml("dog", "1234"), object_xml("unicorn", "1234"), object_xml("dog", "1234", difficult="1")]
        ).encode(),
        "x",
    )
    assert [exclusion_reason(o) for o in ann.objects] == [None, "unknown-class", "difficult"]


@pytest.mark.parametrize("layout", ["parent", "devkit", "year-parent", "year"])
def test_find_devkit_layouts(sample_devkit, tmp_path, layout):
    devkit = sample_devkit / "VOCdevkit"
    if layout == "parent":
        source = find_devkit(sample_devkit)
    elif layout == "devkit":
        source = find_devkit(devkit)
    elif layout == "year-parent":  # VOC2007 / VOC2012 folders without a VOCdevkit around them
        shutil.copytree(devkit / "VOC2012", tmp_path / "VOC2012")
        source = find_devkit(tmp_path)
    else:
        source = find_devkit(devkit / "VOC2007")
    expected = {
        "parent": [("2007", "trainval"), ("2007", "test"), ("2012", "trainval")],
        "devkit": [("2007", "trainval"), ("2007", "test"), ("2012", "trainval")],
        "year-parent": [("2012", "trainval")],
        "year": [("2007", "trainval"), ("2007", "test")],
    }[layout]
    assert source.splits() == expected


def test_missing_devkit_names_the_expected_layout(tmp_path):
    with pytest.raises(UsageError, match="VOCdevkit/VOC2007"):
        find_devkit(tmp_path)
    with pytest.raises(UsageError, match="not a folder"):
        find_devkit(tmp_path / "nope")


def test_tar_source_reads_what_the_folder_holds(sample_devkit, tmp_path):
    tars = official_tars(sample_devkit, tmp_path)
    from_tar, from_dir = TarSource(tars), find_devkit(sample_devkit)
    assert isinstance(from_dir, DirSource)
    assert from_tar.splits() == from_dir.splits()
    for year, image_set in from_dir.splits():
        ids = from_dir.image_ids(year, image_set)
        assert from_tar.image_ids(year, image_set) == ids
        for image_id in ids[:3]:
            for rel in (from_dir.annotation_path(year, image_id), from_dir.image_path(year, image_id)):
                assert from_tar.read(rel) == from_dir.read(rel)
    assert "VOCtest_06-Nov-2007.tar:VOCdevkit/VOC2007/Annotations/" in from_tar.display(
        from_dir.annotation_path("2007", from_dir.image_ids("2007", "test")[0])
    )
    with pytest.raises(FileNotFoundError):
        from_tar.read("VOC2007/JPEGImages/missing.jpg")


def test_tar_source_rejects_compressed_and_empty_archives(tmp_path):
    gz = tmp_path / "voc.tar.gz"
    with tarfile.open(gz, "w:gz"):
        pass
    with pytest.raises(UsageError, match="not an uncompressed tar"):
        TarSource([gz])
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w"):
        pass
    with pytest.raises(UsageError, match="VOCtrainval_06-Nov-2007.tar"):
        TarSource([empty])
    with pytest.raises(UsageError, match="does not exist"):
        TarSource([tmp_path / "missing.tar"])
