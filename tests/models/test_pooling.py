"""Every pooling configuration the models use, channels_last against channels-first, forward
and backward (CPU always, CUDA with ``-m gpu``); the pool-branch formulations against the
paper's order in float64; and the probe for the upstream channels-last ``avg_pool2d``
backward bug (docs/training.md, "GPU")."""

from __future__ import annotations

import copy
from typing import Callable, Dict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inception_v2 import create_model, get_data_config, list_models
from inception_v2.models import blocks, pooling
from inception_v2.models.blocks import ceil_max_pool
from inception_v2.models.layers import ConvBNReLU, aux_pool
from inception_v2.models.pooling import (
    DEFAULT_POOL_IMPL,
    POOL_IMPLS,
    PoolBranch,
    ProjectedPoolBranch,
    avg_pool_backward_is_broken,
    pool_branches,
    set_pool_impl,
)

# name -> (pool, input side): every pool of the four networks, at a side where it does its work
POOLS: Dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "avg 3x3/1 pad 1, count_include_pad": lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=True),
    "avg 3x3/1 pad 1, exclude pad": lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False),
    "max 3x3/1 pad 1": lambda x: F.max_pool2d(x, 3, 1, 1),
    "max 3x3/2": lambda x: F.max_pool2d(x, 3, 2),
    "max 3x3/2 ceil mode": lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True),
    "max 3x3/2 ceil mode, odd side padded": ceil_max_pool,
    "aux avg 5x5/3": lambda x: aux_pool(x, 3),  # 11 -> 3: the 5x5/3 path
    "aux adaptive avg": lambda x: aux_pool(x, 4),  # 11 -> 4: the adaptive path
    "global adaptive avg": lambda x: F.adaptive_avg_pool2d(x, 1),
}
PADDED_AVG = {"avg 3x3/1 pad 1, count_include_pad", "avg 3x3/1 pad 1, exclude pad"}

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _channels_last_errors(pool: Callable, device: str, side: int = 11) -> Dict[str, float]:
    """Forward output and input gradient of ``pool`` on a channels_last float32 input on
    ``device``, against a channels-first float64 input on the CPU (relative to the largest)."""
    gen = torch.Generator().manual_seed(0)
    x64 = torch.randn(2, 16, side, side - 2, generator=gen, dtype=torch.float64)
    y64 = pool(x64)
    g64 = torch.randn(y64.shape, generator=gen, dtype=torch.float64)
    xr = x64.clone().requires_grad_(True)
    pool(xr).backward(g64)
    x = x64.float().to(device).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    y = pool(x)
    y.backward(g64.float().to(device).contiguous(memory_format=torch.channels_last))

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return ((a.detach().double().cpu() - b).abs().max() / b.abs().max()).item()

    return {"forward": rel(y, y64), "backward": rel(x.grad, xr.grad)}


def _check_raw_kernel(config: str, device: str) -> None:
    if config in PADDED_AVG and avg_pool_backward_is_broken(device):
        pytest.xfail(
            f"torch {torch.__version__} on {device}: avg_pool2d backward is wrong for channels_last inputs "
            "with padding (the raw kernel; the models' pool branches avoid it)"
        )
    errors = _channels_last_errors(POOLS[config], device)
    assert errors["forward"] < 1e-6 and errors["backward"] < 1e-6, errors


@pytest.mark.parametrize("config", list(POOLS))
def test_raw_pooling_kernel_channels_last_matches_float64(config):
    _check_raw_kernel(config, "cpu")


def _branch(kind: str, count_include_pad: bool, proj: int, impl: str, channels: int = 12) -> PoolBranch:
    torch.manual_seed(0)
    pool = nn.AvgPool2d(3, 1, 1, count_include_pad=count_include_pad) if kind == "avg" else nn.MaxPool2d(3, 1, 1)
    if proj == 0:
        return PoolBranch(pool, impl)
    return ProjectedPoolBranch(pool, ConvBNReLU(channels, proj, 1), impl)


BRANCHES = [("avg", True, 5), ("avg", False, 5), ("max", False, 5), ("avg", False, 0), ("max", False, 0)]


def _run_branch(branch: nn.Module, x: torch.Tensor, g: torch.Tensor):
    x = x.detach().requires_grad_(True)
    y = branch(x)
    y.backward(g.to(y.dtype).contiguous(memory_format=torch.channels_last) if not y.is_contiguous() else g.to(y.dtype))
    grads = [x.grad] + [p.grad for p in branch.parameters()]
    return [t.detach().double().cpu() for t in [y] + grads]


@pytest.mark.parametrize("impl", POOL_IMPLS)
@pytest.mark.parametrize("kind,cip,proj", BRANCHES)
def test_pool_branch_formulations_equal_the_papers_order_in_float64(impl, kind, cip, proj):
    """Output, input gradient and weight gradients (BatchNorm on batch statistics) of every
    formulation against ``native`` in float64: equal within rounding."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 12, 7, 6, generator=gen, dtype=torch.float64)
    y_shape = (3, proj or 12, 7, 6)
    g = torch.randn(y_shape, generator=gen, dtype=torch.float64)
    ref = _run_branch(_branch(kind, cip, proj, "native").double().train(), x, g)
    got = _run_branch(_branch(kind, cip, proj, impl).double().train(), x, g)
    for a, b in zip(got, ref):
        assert (a - b).abs().max() <= 1e-12 * max(1.0, b.abs().max().item())


@pytest.mark.parametrize("impl", [i for i in POOL_IMPLS if i != "native"])
@pytest.mark.parametrize("kind,cip,proj", BRANCHES)
def test_pool_branch_formulations_channels_last_float32_match_float64(impl, kind, cip, proj):
    """What the models run (any formulation but the raw ``native`` kernel) in the training
    layout against the paper's order in float64: correct on every build, the CPU here."""
    _check_branch_channels_last(kind, cip, proj, impl, "cpu")


def _check_branch_channels_last(kind: str, cip: bool, proj: int, impl: str, device: str) -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 12, 9, 8, generator=gen, dtype=torch.float64)
    g = torch.randn((3, proj or 12, 9, 8), generator=gen, dtype=torch.float64)
    ref = _run_branch(_branch(kind, cip, proj, "native").double().train(), x, g)
    branch = _branch(kind, cip, proj, impl).to(device).to(memory_format=torch.channels_last).train()
    got = _run_branch(branch, x.float().to(device).contiguous(memory_format=torch.channels_last), g.to(device))
    for a, b in zip(got, ref):
        assert (a - b).abs().max() <= 1e-5 * b.abs().max()


@pytest.mark.parametrize("name", list_models())
def test_every_formulation_gives_the_models_outputs_in_float64(name):
    """The whole network (aux heads on, BatchNorm on batch statistics) in float64: the logits
    of every formulation equal the paper's order within rounding."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, aux_logits=True, **_no_dropout(name)).double().train()
    size = get_data_config(name).min_input_size
    x = torch.randn(2, 3, size, size + 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    outputs = {}
    for impl in POOL_IMPLS:
        with torch.no_grad():
            out = set_pool_impl(model, impl).forward_with_aux(x)
        outputs[impl] = torch.cat([out.logits, *out.aux_logits], 1)
    ref = outputs["native"]
    for impl, y in outputs.items():
        assert (y - ref).abs().max() <= 1e-9 * ref.abs().max(), impl


def _no_dropout(name: str) -> dict:
    return {"dropout": 0.0, **({} if name == "inception_v3_tv" else {"aux_dropout": 0.0})}


_POOL_BRANCH = blocks.pool_branch


def _plain_pool_branch(row, in_channels, options):
    """The stride-1 pool branch as plain modules: ``nn.Sequential(pool[, conv])``."""
    if row.stride != 1:
        return _POOL_BRANCH(row, in_channels, options)
    pool = blocks._pool(row.pool, 1, options.count_include_pad)
    return nn.Sequential(pool) if row.proj == 0 else nn.Sequential(pool, options.conv(in_channels, row.proj, 1))


@pytest.mark.parametrize("name", list_models())
def test_state_dict_is_that_of_plain_modules_bit_for_bit(name, monkeypatch):
    """Same keys, same construction order: after the same seed the weights are bit-equal to a
    network whose pool branches are plain ``nn.Sequential``s."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, aux_logits=True)
    assert any(True for _ in pool_branches(model))
    ours = model.state_dict()
    monkeypatch.setattr(blocks, "pool_branch", _plain_pool_branch)
    torch.manual_seed(0)
    plain = create_model(name, num_classes=7, aux_logits=True).state_dict()
    assert list(ours) == list(plain)
    assert all(torch.equal(ours[k], plain[k]) for k in ours)


def test_set_pool_impl_switches_every_branch_and_refuses_unknown():
    model = create_model("googlenet_bn", num_classes=3)
    assert {b.impl for b in pool_branches(model)} == {DEFAULT_POOL_IMPL}
    set_pool_impl(model, "contiguous")
    assert {b.impl for b in pool_branches(model)} == {"contiguous"}
    with pytest.raises(ValueError, match="pool_impl must be one of"):
        set_pool_impl(model, "fast")


@pytest.mark.parametrize("impl", POOL_IMPLS)
def test_every_formulation_scripts_and_fx_traces(impl):
    branch = _branch("avg", False, 5, impl).eval()
    x = torch.randn(2, 12, 6, 5)
    expected = branch(x)
    assert torch.allclose(torch.jit.script(branch)(x), expected, atol=1e-6)
    assert torch.allclose(torch.fx.symbolic_trace(branch)(x), expected, atol=1e-6)


def test_the_probe_finds_a_wrong_channels_last_backward(monkeypatch):
    """The probe runs the kernel: a pool whose backward is wrong for channels_last inputs only
    (as the upstream bug) is reported broken; the real CPU kernel is not."""
    assert pooling._probe.__wrapped__("cpu") is False
    real = F.avg_pool2d

    class Off(torch.autograd.Function):
        @staticmethod
        def forward(ctx, y):
            return y.clone()

        @staticmethod
        def backward(ctx, g):
            return g * 1.25

    def buggy(x, *args, **kwargs):
        y = real(x, *args, **kwargs)
        channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        return Off.apply(y) if channels_last and x.requires_grad else y

    monkeypatch.setattr(pooling.F, "avg_pool2d", buggy)
    assert pooling._probe.__wrapped__("cpu") is True


# --------------------------------------------------------------------------- CUDA


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("config", list(POOLS))
def test_cuda_raw_pooling_kernel_channels_last_matches_cpu_float64(config):
    _check_raw_kernel(config, "cuda")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("impl", [i for i in POOL_IMPLS if i != "native"])
@pytest.mark.parametrize("kind,cip,proj", BRANCHES)
def test_cuda_pool_branch_formulations_match_cpu_float64(impl, kind, cip, proj):
    torch.backends.cudnn.allow_tf32, saved = False, torch.backends.cudnn.allow_tf32
    try:
        _check_branch_channels_last(kind, cip, proj, impl, "cuda")
    finally:
        torch.backends.cudnn.allow_tf32 = saved


def test_copy_keeps_the_formulation():
    model = set_pool_impl(create_model("googlenet_bn", num_classes=3), "depthwise")
    assert {b.impl for b in pool_branches(copy.deepcopy(model))} == {"depthwise"}
