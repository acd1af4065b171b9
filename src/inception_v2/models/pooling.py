"""The stride-1 pool branches of the Inception modules, computed several equivalent ways, and a
behaviour probe for an upstream pooling bug (docs/training.md, "GPU").

A pool branch is ``pool 3x3/1 (padded by 1) -> [1x1 conv -> BN -> ReLU]``. Its weights and
state-dict keys never depend on how it is computed (``branch_pool.1.0.weight`` is the
projection's convolution, ``branch_pool.1.1.*`` its BatchNorm), so a trained model can switch
formulations at any time with :func:`set_pool_impl`. The formulations (``pool_impl``):

* ``native``: the paper's order with PyTorch's pooling kernels, in the input's memory layout;
* ``contiguous``: the same kernels on a channels-first copy, the result handed back in the
  input's layout (the channels-last CUDA ``avg_pool2d`` kernels are slow, and some builds'
  backward is wrong, below);
* ``depthwise``: the 3x3 average as a depthwise convolution with a kernel of ones (cuDNN's
  channels-last kernels, ordinary autograd) times a reciprocal-count map computed from the
  input's size at run time (1/9, or 1/(pixels that exist) without ``count_include_pad``);
* ``project_first`` (optionally ``+contiguous`` / ``+depthwise``): an average-pool branch runs
  its 1x1 convolution first and pools its output before the BatchNorm.
  ``BN(conv1x1(avgpool(x))) = BN(avgpool(conv1x1(x)))`` exactly in real arithmetic: both maps
  are linear, the convolution has no bias (a zero pixel stays zero, so the padding and the
  border divisors are the same) and the divisors do not depend on the channel. The pool then
  runs on the projection's 32-256 channels instead of the module's 192-2048. (Once BatchNorm
  is folded into the convolution for deployment, the bias commutes with an average that
  excludes the padding but not with one that counts it: such a branch pools first.)

Max-pool branches do not commute with the projection: ``project_first`` leaves them in the
paper's order, and ``depthwise`` has no max counterpart (they use the native kernel, or the
contiguous copy under ``contiguous``).

The upstream bug: on some CUDA builds the backward of ``avg_pool2d`` returns wrong input
gradients for ``channels_last`` inputs with ``padding > 0`` -- exactly the padded 3x3/1 pools
of these networks trained in the CUDA default layout. :func:`avg_pool_backward_is_broken`
tells by running the kernel, not by a version number. Every formulation but ``native`` avoids
that kernel (``contiguous`` runs the channels-first one, ``depthwise`` no pooling kernel at all).
"""

from __future__ import annotations

import functools
from typing import Iterator

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

POOL_IMPLS = (
    "native",
    "contiguous",
    "depthwise",
    "project_first",
    "project_first+contiguous",
    "project_first+depthwise",
)
# The default: correct on every PyTorch build (it never runs the channels-last avg_pool2d
# backward) and the fastest of those on the CPU (benchmarks/RESULTS.md, "Pool branches").
DEFAULT_POOL_IMPL = "project_first+depthwise"


def check_pool_impl(impl: str) -> str:
    if impl not in POOL_IMPLS:
        raise ValueError(f"pool_impl must be one of {', '.join(POOL_IMPLS)}, got {impl!r}")
    return impl


def in_layout_of(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``y`` in ``x``'s memory layout (channels-last when ``x`` is, else as it is). A leaf of
    ``torch.fx`` graphs (``torch.fx.wrap`` below): symbolic tracing cannot ask for a layout."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return y.contiguous(memory_format=torch.channels_last)
    return y


torch.fx.wrap("in_layout_of")


def sum_pool3x3(x: torch.Tensor) -> torch.Tensor:
    """The 3x3/1 sum over each channel, zero-padded by 1: a depthwise convolution with a kernel
    of ones (built at run time in ``x``'s type: no parameter, no buffer).

    A leaf of ``torch.fx`` graphs (``torch.fx.wrap`` below); ``int()`` makes the channel count
    a constant under ``torch.jit.trace`` (the TorchScript-based ONNX exporter needs a kernel of
    known shape)."""
    channels = int(x.shape[1])
    return F.conv2d(x, x.new_ones([channels, 1, 3, 3]), None, 1, 1, 1, channels)


torch.fx.wrap("sum_pool3x3")


def avg_pool3x3_depthwise(x: torch.Tensor, count_include_pad: bool) -> torch.Tensor:
    """``F.avg_pool2d(x, 3, 1, 1, count_include_pad=...)`` as :func:`sum_pool3x3` times the
    reciprocal of each pixel's divisor: 1/9 everywhere with ``count_include_pad``, else 1 over
    the number of input pixels under the window (4 in a corner, 6 on an edge, 9 inside), counted
    by the same sum over a one-channel map of ones of the input's size."""
    total = sum_pool3x3(x)
    if count_include_pad:
        return total * (1.0 / 9.0)
    count = sum_pool3x3(torch.ones_like(x[:1, :1]))
    return total * count.reciprocal()


def _op(impl: str) -> str:
    """The pooling operation of ``impl``: native, contiguous or depthwise."""
    if impl.startswith("project_first+"):
        return impl[len("project_first+") :]
    return "native" if impl == "project_first" else impl


class PoolBranch(nn.Sequential):
    """A pool branch without projection: ``[0]`` the 3x3/1 pool (an ``nn.AvgPool2d`` or
    ``nn.MaxPool2d``, kept for its settings and its place in the state dict), computed as
    ``impl`` says (module docstring)."""

    def __init__(self, pool: nn.Module, impl: str = DEFAULT_POOL_IMPL) -> None:
        super().__init__(pool)
        self.is_avg = isinstance(pool, nn.AvgPool2d)
        self.count_include_pad = bool(getattr(pool, "count_include_pad", False))
        self.impl = check_pool_impl(impl)

    def _pool(self, x: torch.Tensor, op: str) -> torch.Tensor:
        if self.is_avg:
            if op == "depthwise":
                return avg_pool3x3_depthwise(x, self.count_include_pad)
            if op == "contiguous":
                y = F.avg_pool2d(x.contiguous(), 3, 1, 1, count_include_pad=self.count_include_pad)
                return in_layout_of(y, x)
            return F.avg_pool2d(x, 3, 1, 1, count_include_pad=self.count_include_pad)
        if op == "contiguous":
            return in_layout_of(F.max_pool2d(x.contiguous(), 3, 1, 1), x)
        return F.max_pool2d(x, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._pool(x, _op(self.impl))


class ProjectedPoolBranch(PoolBranch):
    """``pool 3x3/1 -> ConvBNReLU 1x1``: ``[0]`` the pool, ``[1]`` the projection, the modules
    and their order of a plain ``nn.Sequential(pool, ConvBNReLU(...))`` (the same state dict,
    the same initialization). Under ``project_first`` an average pool runs between the
    projection's convolution and its BatchNorm."""

    def __init__(self, pool: nn.Module, projection: nn.Sequential, impl: str = DEFAULT_POOL_IMPL) -> None:
        super().__init__(pool, impl)
        self.append(projection)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        proj = self[1]
        op = _op(self.impl)
        conv = proj[0]
        # A convolution with a bias (BatchNorm folded into it for deployment) commutes with a
        # pool that counts the zero padding only if that padding were the bias: it is not.
        commutes = conv.bias is None or not self.count_include_pad
        if self.is_avg and self.impl.startswith("project_first") and commutes:
            return proj[2](proj[1](self._pool(conv(x), op)))  # conv -> pool -> BN -> ReLU
        return proj(self._pool(x, op))


def pool_branches(model: nn.Module) -> Iterator[PoolBranch]:
    for m in model.modules():
        if isinstance(m, PoolBranch):
            yield m


def set_pool_impl(model: nn.Module, impl: str) -> nn.Module:
    """Compute every pool branch of ``model`` as ``impl`` (:data:`POOL_IMPLS`); the weights are
    untouched. Returns ``model``."""
    check_pool_impl(impl)
    for branch in pool_branches(model):
        branch.impl = impl
    return model


@functools.lru_cache(maxsize=None)
def _probe(device: str) -> bool:
    gen = torch.Generator().manual_seed(0)
    x64 = torch.randn(2, 8, 6, 5, generator=gen, dtype=torch.float64)
    g64 = torch.randn(2, 8, 6, 5, generator=gen, dtype=torch.float64)
    x = x64.float().to(device).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    F.avg_pool2d(x, 3, 1, 1).backward(g64.float().to(device).contiguous(memory_format=torch.channels_last))
    x64.requires_grad_(True)
    F.avg_pool2d(x64, 3, 1, 1).backward(g64)
    err = (x.grad.double().cpu() - x64.grad).abs().max().item()
    return not err <= 1e-5 * x64.grad.abs().max().item()


def avg_pool_backward_is_broken(device: torch.device | str = "cpu") -> bool:
    """Whether ``F.avg_pool2d`` 3x3/1 padded by 1 on ``device`` returns wrong input gradients
    for a channels-last input: one tiny float32 backward pass compared with the float64 result
    on the CPU's channels-first input (computed once per device and process)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return _probe(str(device))
