"""The real PASCAL VOC sample (``shared/voc-sample`` beside the repository): prepared counts
equal the independently computed ``COUNTS.json``. Skipped when the folder is absent."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from inception_v2.data import VOC_CLASSES, VOCCrops, prepare


def test_real_sample_counts(real_voc_sample, tmp_path):
    expected = json.loads((real_voc_sample / "COUNTS.json").read_text())
    out = tmp_path / "p"
    counts = prepare(out, voc_root=real_voc_sample, val_fraction=0, workers=2, progress=False, log=lambda _: None)
    trainval_keys = [k for k in ("2007/trainval", "2012/trainval") if k in expected]
    for name in VOC_CLASSES:
        trainval = sum(expected[k]["per_class_non_difficult"][name] for k in trainval_keys)
        assert counts["trainval"]["per_class"][name] == trainval
        assert counts["test"]["per_class"][name] == expected["2007/test"]["per_class_non_difficult"][name]
    for key, entry in expected.items():
        assert counts["sources"][key] == {"images": entry["images"], "objects": entry["objects"]}
    assert counts["train"] == counts["trainval"]
    excluded = sum(e["objects"] - e["non_difficult_objects"] for e in expected.values())
    assert counts["excluded"] == {"difficult": excluded}

    # one real crop, by hand: VOC2007 000005's first object is a chair at 263,211 .. 324,339
    jpeg = real_voc_sample / "VOCdevkit" / "VOC2007" / "JPEGImages" / "000005.jpg"
    image = np.asarray(Image.open(jpeg).convert("RGB"))
    crop = VOCCrops(out, "train").crop(0).permute(1, 2, 0).numpy()
    assert crop.shape == (339 - 211 + 1, 324 - 263 + 1, 3)
    np.testing.assert_array_equal(crop, image[210:339, 262:324])
