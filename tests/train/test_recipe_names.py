"""The recipe of the blog post this project started from is ``blog`` (docs/source.md); its
earlier name ``seed`` keeps working: as ``--recipe``, in old ``config.json`` files and
checkpoints (a resumed run sees no change), and as ``prepare --verify-counts``."""

import gzip
import json
from pathlib import Path

import pytest

from inception_v2.cli import build_parser
from inception_v2.cli.train import config_from_args
from inception_v2.train.config import TrainConfig, load_config_file, resolve_config
from inception_v2.train.resume import _same_settings

BASE = dict(model="googlenet_bn", data="d", out="o")
OLD = Path(__file__).resolve().parents[1] / "fixtures" / "old_formats"


def test_seed_is_the_earlier_name_of_blog():
    assert resolve_config("seed", **BASE) == resolve_config("blog", **BASE) == resolve_config(**BASE)
    assert resolve_config("seed", **BASE).recipe == "blog"
    assert TrainConfig.from_dict({**resolve_config(**BASE).to_dict(), "recipe": "seed"}).recipe == "blog"
    with pytest.raises(ValueError, match="unknown recipe 'sead'"):
        resolve_config("sead", **BASE)


def test_the_flag_and_config_files_accept_the_earlier_name(tmp_path):
    args = build_parser("train").parse_args(
        ["train", "--recipe", "seed", "--model", "googlenet_bn", "--data", "d", "--out", "o"]
    )
    assert config_from_args(args).recipe == "blog"
    (tmp_path / "config.json").write_text(json.dumps({**resolve_config(**BASE).to_dict(), "recipe": "seed"}))
    assert TrainConfig(**load_config_file(tmp_path / "config.json")).recipe == "blog"


def test_a_checkpoint_of_the_seed_recipe_resumes_as_blog(tmp_path):
    """The old checkpoint's config says ``recipe: seed``; the same run asked for today is no change."""
    import torch

    with gzip.open(OLD / "checkpoint-v2.pt.gz", "rb") as f:
        (tmp_path / "c.pt").write_bytes(f.read())
    config = torch.load(tmp_path / "c.pt", weights_only=True)["config"]
    assert config["recipe"] == "seed"
    now = resolve_config(
        "blog",
        **{k: config[k] for k in ("model", "data", "out", "image_size", "batch_size", "epochs")},
        ema_decay=config["ema_decay"],
    )
    assert TrainConfig.from_dict(config).recipe == "blog"
    _same_settings(TrainConfig.from_dict(config), now, tmp_path / "c.pt")  # no UsageError: nothing changed


@pytest.mark.parametrize("name", ["blog", "seed"])
def test_prepare_verifies_counts_against_the_blog_table_under_both_names(name):
    args = build_parser("prepare").parse_args(["prepare", "--voc-root", "v", "--out", "o", "--verify-counts", name])
    assert args.verify_counts == name
