"""Weights for ``create_model(..., pretrained=...)``: published releases, their conversion to
our layout, and loading a state dict whose class count may differ from the model's.

Two families were published with ImageNet weights (docs/architecture.md, "Published weights"):

* ``googlenet_bn.caffe_in1k``: BN-Inception, the Caffe model as ported to PyTorch by the
  ``pretrainedmodels`` package. :func:`convert_bninception` renames its layers, folds each
  convolution's bias into the BatchNorm that follows it (``running_mean - bias``), and the
  release sets three options of our ``googlenet_bn``: ``bn_eps=1e-5``,
  ``count_include_pad=True`` and ``input_space="caffe_bgr"``.
* ``inception_v3_tv.tv_in1k``: torchvision's ``inception_v3`` ImageNet weights, which
  :func:`convert_torchvision_inception_v3` renames into ``inception_v3_tv``.

A downloaded release is checked against the hash in its file name
(``torch.hub.load_state_dict_from_url(check_hash=True)``) and cached in ``torch.hub``'s folder.

:func:`load_pretrained` loads a state dict into a model built with the wanted class count: the
classifiers (the main one and each auxiliary head's last layer) are left freshly initialized
when their shapes differ, with a one-line note; the first convolution is adapted when the model
takes another number of input channels; everything else must match exactly.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import nn

from inception_v2.errors import CheckFailedError, UsageError
from inception_v2.formats.pretrained import read_pretrained
from inception_v2.formats.state_dict import StateDict, model_name, state_dict_mismatch

_logger = logging.getLogger(__name__)


def _note(msg: str) -> None:
    _logger.warning("note: %s", msg)


# --------------------------------------------------------------------------- conversions


def _bn_defaults(out: StateDict) -> StateDict:
    """``num_batches_tracked`` (absent from files saved before PyTorch 0.4.1) for every
    BatchNorm in ``out``."""
    for key in [k for k in out if k.endswith(".running_var")]:
        out.setdefault(key[: -len("running_var")] + "num_batches_tracked", torch.tensor(0, dtype=torch.long))
    return out


# pretrainedmodels' BNInception: layer "inception_3a_double_3x3_1" -> our branch path.
_BN_STEM = {"conv1_7x7_s2": "features.conv1", "conv2_3x3_reduce": "features.conv2", "conv2_3x3": "features.conv3"}
_BN_BRANCHES = {
    "1x1": "branch1x1",
    "3x3_reduce": "branch3x3.0",
    "3x3": "branch3x3.1",
    "double_3x3_reduce": "branch3x3dbl.0",
    "double_3x3_1": "branch3x3dbl.1",
    "double_3x3_2": "branch3x3dbl.2",
    "pool_proj": "branch_pool.1",
}
_BN_LAYER = re.compile(r"inception_(\d[a-e])_(.+)")


def _bninception_path(layer: str) -> str:
    if layer in _BN_STEM:
        return _BN_STEM[layer]
    m = _BN_LAYER.fullmatch(layer)
    if m is None or m.group(2) not in _BN_BRANCHES:
        raise UsageError(f"not a BN-Inception state dict: unknown layer {layer!r}")
    return f"features.{m.group(1)}.{_BN_BRANCHES[m.group(2)]}"


def convert_bninception(theirs: StateDict) -> StateDict:
    """The state dict of ``pretrainedmodels.models.bninception.BNInception`` as our
    ``googlenet_bn``'s (without auxiliary heads). Each ``conv`` + ``conv_bn`` pair becomes
    ``ConvBNReLU`` weights, the convolution's bias folded into the BatchNorm's running mean
    (``BN(Wx + b) = BN'(Wx)`` with ``mean' = mean - b``); ``last_linear`` becomes ``fc``."""
    out: StateDict = {}
    used = set()
    for key, value in theirs.items():
        if not key.endswith(".weight") or value.dim() != 4:
            continue
        layer = key[: -len(".weight")]
        path = _bninception_path(layer)
        bn = f"{layer}_bn"
        bias = theirs.get(f"{layer}.bias")
        out[f"{path}.0.weight"] = value
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            if f"{bn}.{name}" in theirs:
                out[f"{path}.1.{name}"] = theirs[f"{bn}.{name}"]
                used.add(f"{bn}.{name}")
        if bias is not None:
            out[f"{path}.1.running_mean"] = out[f"{path}.1.running_mean"] - bias
            used.add(f"{layer}.bias")
        used.add(key)
    for name in ("weight", "bias"):
        out[f"fc.{name}"] = theirs[f"last_linear.{name}"]
        used.add(f"last_linear.{name}")
    left = [k for k in theirs if k not in used]
    if left:
        raise UsageError(f"not a BN-Inception state dict: {len(left)} keys left unconverted (e.g. {left[0]})")
    return _bn_defaults(out)


# torchvision's Inception3: "Mixed_7b.branch3x3dbl_3a.conv.weight" -> our path.
_TV_BARE = {"branch1x1": "branch1x1", "branch_pool": "branch_pool.1", "branch3x3": "branch3x3.0"}
_TV_BRANCH = re.compile(r"(branch[0-9a-z]+?)_(\d)([ab]?)")


def _tv_path(module: str, branch: str) -> str:
    if branch in _TV_BARE:
        return f"{_TV_BARE[branch]}"
    m = _TV_BRANCH.fullmatch(branch)
    if m is None:
        raise UsageError(f"not a torchvision Inception-v3 state dict: unknown layer {module}.{branch}")
    name, index, split = m.group(1), int(m.group(2)) - 1, m.group(3)
    path = f"{name}.{index}"
    return path + {"": "", "a": ".conv1x3", "b": ".conv3x1"}[split]


def convert_torchvision_inception_v3(theirs: StateDict) -> StateDict:
    """The state dict of torchvision's ``inception_v3`` as our ``inception_v3_tv``'s: a renaming
    (``BasicConv2d``'s ``conv``/``bn`` are our ``ConvBNReLU``'s ``0``/``1``; ``AuxLogits`` is the
    auxiliary head on ``Mixed_6e``)."""
    out: StateDict = {}
    for key, value in theirs.items():
        parts = key.split(".")
        if parts[0] == "fc":
            out[key] = value
            continue
        if parts[0] == "AuxLogits":
            if parts[1] == "fc":
                out["aux_heads.Mixed_6e.fc." + parts[-1]] = value
            else:  # conv0 / conv1, BasicConv2d
                out[f"aux_heads.Mixed_6e.{parts[1]}.{_tv_basic(parts[2], key)}.{parts[3]}"] = value
            continue
        if parts[0].startswith("Conv2d_"):
            out[f"features.{parts[0]}.{_tv_basic(parts[1], key)}.{parts[2]}"] = value
            continue
        if parts[0].startswith("Mixed_") and len(parts) == 4:
            path = _tv_path(parts[0], parts[1])
            out[f"features.{parts[0]}.{path}.{_tv_basic(parts[2], key)}.{parts[3]}"] = value
            continue
        raise UsageError(f"not a torchvision Inception-v3 state dict: unexpected key {key}")
    return _bn_defaults(out)


def _tv_basic(part: str, key: str) -> str:
    if part == "conv":
        return "0"
    if part == "bn":
        return "1"
    raise UsageError(f"not a torchvision Inception-v3 state dict: unexpected key {key}")


# --------------------------------------------------------------------------- published releases


@dataclass(frozen=True)
class Release:
    """Published weights: where they are, which of our models they load into, and how."""

    model: str
    tag: str
    url: str  # the file name carries the first hex digits of its SHA-256 (checked)
    convert: Callable[[StateDict], StateDict]
    detect_key: str  # a key only this release's own state dict has
    description: str
    arch_options: Dict[str, Any] = field(default_factory=dict)
    num_classes: int = 1000
    license: str = ""  # that of the package the weights are distributed with

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"


RELEASES: Dict[str, Release] = {
    r.name: r
    for r in (
        Release(
            model="googlenet_bn",
            tag="caffe_in1k",
            url="http://data.lip6.fr/cadene/pretrainedmodels/bn_inception-52deb4733.pth",
            convert=convert_bninception,
            detect_key="conv1_7x7_s2.weight",
            description="BN-Inception ImageNet-1k weights (the Caffe model, as ported by pretrainedmodels)",
            arch_options={"bn_eps": 1e-5, "count_include_pad": True, "input_space": "caffe_bgr"},
            license="bsd-3-clause",
        ),
        Release(
            model="inception_v3_tv",
            tag="tv_in1k",
            url="https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
            convert=convert_torchvision_inception_v3,
            detect_key="Conv2d_1a_3x3.conv.weight",
            description="Inception-v3 ImageNet-1k weights (torchvision's IMAGENET1K_V1, from TensorFlow)",
            license="bsd-3-clause",
        ),
    )
}
DEFAULT_RELEASES = {"googlenet_bn": "googlenet_bn.caffe_in1k", "inception_v3_tv": "inception_v3_tv.tv_in1k"}


def list_releases(model: Optional[str] = None) -> List[str]:
    """Names (``model.tag``) of the published releases, of ``model`` only when given."""
    return sorted(n for n, r in RELEASES.items() if model is None or r.model == model)


def _release_named(model: str, name: str) -> Optional[Release]:
    """The release ``name`` (``model.tag`` or just ``tag``) of ``model``, if there is one."""
    full = name if "." in name else f"{model}.{name}"
    return RELEASES.get(full)


def detect_release(weights: StateDict) -> Optional[Release]:
    """The published release whose own layout ``weights`` has (None for our layout)."""
    return next((r for r in RELEASES.values() if r.detect_key in weights), None)


def download_release(release: Release) -> StateDict:
    """The release's state dict: downloaded once into ``torch.hub``'s cache, its SHA-256
    checked against the prefix in its file name. Offline, a one-line :class:`UsageError` says
    which file to fetch and where to pass it."""
    hub_dir = Path(torch.hub.get_dir()) / "checkpoints"
    try:
        return torch.hub.load_state_dict_from_url(
            release.url, map_location="cpu", progress=True, check_hash=True, weights_only=True
        )
    except RuntimeError as e:
        if "invalid hash value" in str(e):
            raise CheckFailedError(
                f"the downloaded {release.name} weights do not match the hash in {release.url}: "
                f"delete {hub_dir / os.path.basename(release.url)} and retry"
            ) from None
        raise
    except (OSError, ValueError) as e:  # URLError, HTTPError, timeouts, refused connections
        reason = str(getattr(e, "reason", "") or e).strip().splitlines()
        raise UsageError(
            f"cannot download the {release.name} weights ({reason[0] if reason else type(e).__name__}): "
            f"fetch {release.url} on a machine that is online and pass the file as "
            f"pretrained='PATH' (or put it in {hub_dir})"
        ) from None


# --------------------------------------------------------------------------- resolving `pretrained`


@dataclass
class Pretrained:
    """Weights in our layout, where they came from, and the architecture options they need."""

    state_dict: StateDict
    description: str
    arch_options: Dict[str, Any] = field(default_factory=dict)
    release: Optional[Release] = None  # the published release they are, if any


def resolve_pretrained(model: str, pretrained: Any) -> Pretrained:
    """What ``create_model(model, pretrained=...)`` loads (see its docstring)."""
    if pretrained is True:
        if model not in DEFAULT_RELEASES:
            raise UsageError(
                f"no published weights for {model}; models with published weights: "
                f"{', '.join(sorted(DEFAULT_RELEASES))} (or pass a checkpoint, .safetensors file or release folder)"
            )
        release = RELEASES[DEFAULT_RELEASES[model]]
        return _from_release(model, release, download_release(release), release.name)
    if isinstance(pretrained, dict):
        return _own_or_release(model, pretrained, "the given state dict", {})
    if isinstance(pretrained, str) and not os.path.exists(pretrained):
        release = _release_named(model, pretrained)
        if release is not None and release.model == model:
            return _from_release(model, release, download_release(release), release.name)
        a_path = "/" in pretrained or os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".safetensors"))
        if not a_path:
            releases = list_releases(model)
            raise UsageError(
                f"pretrained={pretrained!r} is neither a file nor a published release of {model} "
                f"({'releases: ' + ', '.join(releases) if releases else 'it has none'})"
            )
    if not isinstance(pretrained, (str, os.PathLike)):
        raise UsageError(
            f"pretrained must be True, a release name, a path or a state dict, not a {type(pretrained).__name__}"
        )
    weights, meta = read_pretrained(pretrained)
    theirs = meta.get("model_name")
    if theirs is not None and theirs != model:
        raise UsageError(f"{pretrained} holds {theirs} weights, not {model} weights: build a {theirs} to load it")
    return _own_or_release(model, weights, str(pretrained), dict(meta.get("arch_options") or {}))


def _own_or_release(model: str, weights: StateDict, source: str, options: Dict[str, Any]) -> Pretrained:
    release = detect_release(weights)
    if release is None:
        return Pretrained(weights, source, options)
    return _from_release(model, release, weights, f"{source} ({release.name})")


def _from_release(model: str, release: Release, weights: StateDict, source: str) -> Pretrained:
    if release.model != model:
        raise UsageError(f"{source} holds the {release.name} weights, which load into {release.model}, not {model}")
    return Pretrained(release.convert(weights), source, dict(release.arch_options), release)


# --------------------------------------------------------------------------- loading


def classifier_keys(model: nn.Module) -> List[str]:
    """The state-dict keys of the layers that ``reset_classifier`` replaces."""
    names = {id(m): n for n, m in model.named_modules()}
    heads = [model.get_classifier()] + [h.get_classifier() for h in getattr(model, "aux_heads", {}).values()]
    return [f"{names[id(h)]}.{k}" for h in heads for k in h.state_dict()]


def adapt_input_conv(in_chans: int, weight: torch.Tensor) -> torch.Tensor:
    """A first-convolution weight trained on 3 channels, for ``in_chans`` channels: summed over
    the channels for 1 (a grey image gives the response of the same grey in RGB), else repeated
    and scaled by ``3 / in_chans`` (as timm's ``adapt_input_conv``)."""
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    repeat = math.ceil(in_chans / weight.shape[1])
    return weight.repeat(1, repeat, 1, 1)[:, :in_chans] * (weight.shape[1] / in_chans)


def load_pretrained(model: nn.Module, weights: StateDict, source: str, note: Callable[[str], None] = _note) -> None:
    """Load ``weights`` into ``model`` (built with the wanted class count and input channels).

    When the classifier shapes differ, the classifier layers keep their fresh initialization
    (``note`` says so); auxiliary heads absent from ``weights`` (a release without them) keep
    theirs too, and a model without auxiliary heads (or without a classifier) drops those in
    ``weights``; each case gets a one-line ``note``. A 3-channel
    first convolution is adapted to the model's ``in_chans`` (:func:`adapt_input_conv`). Any
    other missing, unexpected or misshapen key is a :class:`UsageError`.
    """
    own = model.state_dict()
    weights = dict(weights)
    first = f"{getattr(model, 'first_conv', '')}.weight"
    if first in weights and first in own and weights[first].shape[1] != own[first].shape[1]:
        if weights[first].shape[1] != 3:
            raise UsageError(
                f"{source}: the first convolution takes {weights[first].shape[1]} channels, "
                f"the model {own[first].shape[1]}; only 3-channel weights are adapted"
            )
        weights[first] = adapt_input_conv(own[first].shape[1], weights[first])
    heads = set(classifier_keys(model))
    if any(k in weights and weights[k].shape != own[k].shape for k in heads):
        theirs = weights["fc.weight"].shape[0] if "fc.weight" in weights else "another number of"
        note(f"{source} has {theirs} classes, the model {model.num_classes}: classifier re-initialized")
        for k in heads:
            weights.pop(k, None)
    if not heads and getattr(model, "num_classes", None) == 0:  # built without a classifier
        dropped = [k for k in weights if k.startswith("fc.")]
        if dropped:
            note(f"{source} has a classifier, the model none (num_classes=0): fc dropped")
            weights = {k: v for k, v in weights.items() if not k.startswith("fc.")}
    skip = set(heads) - set(weights)
    aux = [k for k in own if k.startswith("aux_heads.")]
    theirs_aux = sorted({k.split(".")[1] for k in weights if k.startswith("aux_heads.")})
    if not aux and theirs_aux:
        note(
            f"{source} has auxiliary heads (after {', '.join(theirs_aux)}), the model none "
            "(aux_logits=False): their weights dropped"
        )
        weights = {k: v for k, v in weights.items() if not k.startswith("aux_heads.")}
    if aux and not any(k.startswith("aux_heads.") for k in weights):
        note(f"{source} has no auxiliary heads: they keep their fresh initialization")
        skip |= set(aux)
    skip |= {k for k in own if k.endswith(".num_batches_tracked")}  # absent from old files; 0 then
    detail = state_dict_mismatch(own, weights, skip)
    if detail:
        raise UsageError(f"{source}: the weights do not fit {model_name(model)}: {detail}")
    model.load_state_dict(weights, strict=False)
