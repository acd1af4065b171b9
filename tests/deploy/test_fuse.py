"""BatchNorm folding (``inception_v2.deploy.fuse``): the fused copy computes what the model computes."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from inception_v2 import create_model, list_models
from inception_v2.deploy.export import parity_tolerance
from inception_v2.deploy.fuse import fuse_conv_bn

SIZES = {"googlenet_bn": 64, "inception_v2": 75, "inception_v3": 75, "inception_v3_tv": 75}  # small inputs


@functools.lru_cache(maxsize=None)
def calibrated(name: str, num_classes: int = 3) -> nn.Module:
    """A model as training leaves it, in eval mode: BatchNorm affine parameters away from 1 / 0
    and running statistics measured on one batch (so that a wrong fold shows, and the logits
    are of order 1 instead of the ~1e4 of untrained running statistics). Shared: do not modify."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=num_classes, aux_logits=True)
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    with torch.no_grad():
        for bn in bns:
            bn.momentum = None  # running stats = the plain average over the calibration batch
            bn.reset_running_stats()
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
        size = SIZES[name]
        model.train().forward_with_aux(torch.rand(8, 3, size, size) * 2 - 1)
    for bn in bns:
        bn.momentum = 0.1
    return model.eval()


def batch(name: str, n: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    size = SIZES[name]
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


@pytest.mark.parametrize("name", list_models())
def test_fused_model_matches_the_unfused_one(name):
    model = calibrated(name)
    fused = fuse_conv_bn(model)
    x = batch(name, 3)
    with torch.inference_mode():
        ref = model(x)
        got = fused(x)
        truth = copy.deepcopy(model).double()(x.double())  # the same network in float64
    assert got.shape == ref.shape == (3, 3)
    fp32_error = float((ref.double() - truth).abs().max())
    assert float((got - ref).abs().max()) <= parity_tolerance(ref, fp32_error)  # the export's bound
    # the fused copy is as far from exact arithmetic as float32 itself is (same order)
    assert float((got.double() - truth).abs().max()) <= 5 * fp32_error + 1e-6


@pytest.mark.parametrize("name", list_models())
def test_every_batchnorm2d_is_folded_and_the_original_is_untouched(name):
    model = calibrated(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    fused = fuse_conv_bn(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    convs = [m for m in fused.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == n_bn and all(c.bias is not None for c in convs)
    assert not fused.training
    assert fused.data_config == model.data_config and fused.name == model.name
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == n_bn


def test_inception_v3_auxiliary_batchnorm1d_is_left_and_still_correct():
    model = calibrated("inception_v3")
    fused = fuse_conv_bn(model)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in fused.modules()) == 1  # its BN-auxiliary
    x = batch("inception_v3", 2)
    with torch.inference_mode():
        ref, got = model.forward_with_aux(x), fused.forward_with_aux(x)
    assert len(got.aux_logits) == len(ref.aux_logits) == 1
    assert float((got.aux_logits[0] - ref.aux_logits[0]).abs().max()) <= 1e-3 * max(
        1.0, float(ref.aux_logits[0].abs().max())
    )


def test_fold_of_a_plain_sequential_is_exact_to_float_rounding():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=True),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, groups=3, bias=False),
        nn.BatchNorm2d(6),
        nn.BatchNorm2d(6),  # not after a conv: stays
        nn.Conv2d(6, 2, 1),
        nn.Tanh(),  # no BatchNorm after it: stays as it is
    )
    with torch.no_grad():
        for bn in net.modules():
            if isinstance(bn, nn.BatchNorm2d):
                bn.running_mean.uniform_(-1, 1)
                bn.running_var.uniform_(0.5, 2)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.5, 0.5)
    fused = fuse_conv_bn(net)
    assert [type(m).__name__ for m in fused] == [
        "Conv2d",
        "Identity",
        "ReLU",
        "Conv2d",
        "Identity",
        "BatchNorm2d",
        "Conv2d",
        "Tanh",
    ]
    assert fused[3].groups == 3 and fused[0].stride == (2, 2)
    x = torch.randn(2, 4, 9, 9)
    with torch.inference_mode():
        torch.testing.assert_close(fused(x), net.eval()(x), atol=1e-5, rtol=1e-5)
