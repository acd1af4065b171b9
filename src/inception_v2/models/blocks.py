"""The Inception modules, one class per figure of the papers, built from one table row each.

A row (:class:`InceptionRow`) holds the columns of SPEC's tables: ``#1x1`` of the plain 1x1
branch, ``red``/``n`` of the single branch, ``dbl_red``/``dbl`` of the double branch, the pool
type and its projection. Within a branch every convolution after the 1x1 reduction has the
branch's output width (the source's stated principle: "the factorized convolutions have the
same kernel size and the same number of filters"). Every module checks that the widths of its
branches add up to the row's ``out`` column.
"""

from __future__ import annotations

from typing import List, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from inception_v2.models.layers import ConvBNReLU


class InceptionRow(NamedTuple):
    name: str  # "3a", "5e", ...
    stride: int  # 2: grid reduction (no 1x1 branch, pass-through max pool, no projection)
    out: int  # output channels as tabulated
    n1x1: int  # plain 1x1 branch
    red: int  # single branch: 1x1 reduction ...
    n: int  # ... then its wider convolution(s)
    dbl_red: int  # double branch: 1x1 reduction ...
    dbl: int  # ... then its stacked convolutions
    pool: str  # "avg" or "max"
    proj: int  # 1x1 projection after the pool (0: none)


def _pool(kind: str, stride: int) -> nn.Module:
    padding = 1 if stride == 1 else 0
    if kind == "avg":
        return nn.AvgPool2d(3, stride, padding, count_include_pad=False)
    if kind == "max":
        return nn.MaxPool2d(3, stride, padding)
    raise ValueError(f"pool must be 'avg' or 'max', not {kind!r}")


class CeilModeMaxPool(nn.Module):
    """Max pool 3x3/2 in ceil mode (Caffe's rounding, as the released BN-Inception).

    Beside stride-2 convolutions padded by 1 it gives the same grid only when the grid is even
    (28 -> 14 and 14 -> 7 at 224); on an odd side ceil mode alone is one short, so that side is
    padded by 1 as well. At the nominal size nothing is padded."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # int(): under tracing (ONNX / TorchScript export) the padding is a constant of the
        # traced size, not a computed tensor, which max_pool2d's exporters cannot take.
        h, w = int(x.shape[-2]), int(x.shape[-1])
        return F.max_pool2d(x, 3, 2, padding=(h % 2, w % 2), ceil_mode=True)


class _Concat(nn.Module):
    """Runs its branches on the same input and concatenates them on channels."""

    branch_names: List[str]

    def _check(self, row: InceptionRow, widths: List[int]) -> None:
        if sum(widths) != row.out:
            raise ValueError(
                f"module {row.name}: branch widths {widths} add up to {sum(widths)}, "
                f"the table says {row.out}"
            )
        self.row = row
        self.out_channels = row.out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([getattr(self, name)(x) for name in self.branch_names], 1)


def _pool_branch(row: InceptionRow, in_channels: int) -> nn.Sequential:
    if row.proj == 0:
        return nn.Sequential(_pool(row.pool, 1))
    return nn.Sequential(_pool(row.pool, 1), ConvBNReLU(in_channels, row.proj, 1))


class Inception3x3(_Concat):
    """1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 -> 3x3 | pool -> 1x1, at stride 1.

    Inception-v2 modules 3a-3b (Szegedy et al. 2015, figure 5: the 5x5 of GoogLeNet replaced by
    two 3x3) and every stride-1 module of GoogLeNet-BN (Ioffe & Szegedy 2015, figure 5).
    """

    def __init__(self, row: InceptionRow, in_channels: int) -> None:
        super().__init__()
        assert row.stride == 1, row
        self.branch1x1 = ConvBNReLU(in_channels, row.n1x1, 1)
        self.branch3x3 = nn.Sequential(
            ConvBNReLU(in_channels, row.red, 1), ConvBNReLU(row.red, row.n, 3, padding=1)
        )
        self.branch3x3dbl = nn.Sequential(
            ConvBNReLU(in_channels, row.dbl_red, 1),
            ConvBNReLU(row.dbl_red, row.dbl, 3, padding=1),
            ConvBNReLU(row.dbl, row.dbl, 3, padding=1),
        )
        self.branch_pool = _pool_branch(row, in_channels)
        self.branch_names = ["branch1x1", "branch3x3", "branch3x3dbl", "branch_pool"]
        self._check(row, [row.n1x1, row.n, row.dbl, row.proj or in_channels])


class GridReduction3x3(_Concat):
    """1x1 -> 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | max pool 3x3/2 (all input channels pass through).

    The efficient grid-size reduction of Szegedy et al. 2015, section 5 and figure 10: stride-2
    branches in parallel with a stride-2 pool. Inception-v2 module 3c uses unpadded stride-2
    convolutions (35 -> 17); GoogLeNet-BN's 3c/4e pad them by 1 and pool in ceil mode (28 -> 14).
    """

    def __init__(
        self, row: InceptionRow, in_channels: int, padding: int = 0, ceil_mode: bool = False
    ) -> None:
        super().__init__()
        assert row.stride == 2 and row.n1x1 == 0 and row.proj == 0, row
        self.branch3x3 = nn.Sequential(
            ConvBNReLU(in_channels, row.red, 1),
            ConvBNReLU(row.red, row.n, 3, stride=2, padding=padding),
        )
        self.branch3x3dbl = nn.Sequential(
            ConvBNReLU(in_channels, row.dbl_red, 1),
            ConvBNReLU(row.dbl_red, row.dbl, 3, padding=1),
            ConvBNReLU(row.dbl, row.dbl, 3, stride=2, padding=padding),
        )
        self.branch_pool = CeilModeMaxPool() if ceil_mode else _pool(row.pool, 2)
        self.branch_names = ["branch3x3", "branch3x3dbl", "branch_pool"]
        self._check(row, [row.n, row.dbl, in_channels])


def _conv1x7(c_in: int, c_out: int) -> ConvBNReLU:
    return ConvBNReLU(c_in, c_out, (1, 7), padding=(0, 3))


def _conv7x1(c_in: int, c_out: int) -> ConvBNReLU:
    return ConvBNReLU(c_in, c_out, (7, 1), padding=(3, 0))


class Inception7x7(_Concat):
    """1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 | avg pool -> 1x1.

    Inception-v2 modules 5a-5d at the 17x17 grid (Szegedy et al. 2015, figure 6: n x n
    factorized into 1 x n and n x 1, n = 7).
    """

    def __init__(self, row: InceptionRow, in_channels: int) -> None:
        super().__init__()
        assert row.stride == 1, row
        self.branch1x1 = ConvBNReLU(in_channels, row.n1x1, 1)
        self.branch7x7 = nn.Sequential(
            ConvBNReLU(in_channels, row.red, 1), _conv1x7(row.red, row.n), _conv7x1(row.n, row.n)
        )
        self.branch7x7dbl = nn.Sequential(
            ConvBNReLU(in_channels, row.dbl_red, 1),
            _conv7x1(row.dbl_red, row.dbl),
            _conv1x7(row.dbl, row.dbl),
            _conv7x1(row.dbl, row.dbl),
            _conv1x7(row.dbl, row.dbl),
        )
        self.branch_pool = _pool_branch(row, in_channels)
        self.branch_names = ["branch1x1", "branch7x7", "branch7x7dbl", "branch_pool"]
        self._check(row, [row.n1x1, row.n, row.dbl, row.proj or in_channels])


class GridReduction7x7(_Concat):
    """1x1 -> 1x7 -> 7x1 -> 3x3/2 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 -> 3x3/2 | max pool 3x3/2.

    Inception-v2 module 5e (17 -> 8): the factorized branches of figure 6, each closed by an
    unpadded stride-2 3x3, in parallel with a stride-2 pool (section 5, figure 10).
    """

    def __init__(self, row: InceptionRow, in_channels: int) -> None:
        super().__init__()
        assert row.stride == 2 and row.n1x1 == 0 and row.proj == 0, row
        self.branch7x7 = nn.Sequential(
            ConvBNReLU(in_channels, row.red, 1),
            _conv1x7(row.red, row.n),
            _conv7x1(row.n, row.n),
            ConvBNReLU(row.n, row.n, 3, stride=2),
        )
        self.branch7x7dbl = nn.Sequential(
            ConvBNReLU(in_channels, row.dbl_red, 1),
            _conv7x1(row.dbl_red, row.dbl),
            _conv1x7(row.dbl, row.dbl),
            _conv7x1(row.dbl, row.dbl),
            _conv1x7(row.dbl, row.dbl),
            ConvBNReLU(row.dbl, row.dbl, 3, stride=2),
        )
        self.branch_pool = _pool(row.pool, 2)
        self.branch_names = ["branch7x7", "branch7x7dbl", "branch_pool"]
        self._check(row, [row.n, row.dbl, in_channels])


class _Split1x3_3x1(nn.Module):
    """The expanded filter bank: a 1x3 and a 3x1 run in parallel on the same input and are
    concatenated, so the branch is ``2 * width`` wide (Szegedy et al. 2015, figure 7)."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.conv1x3 = ConvBNReLU(in_channels, width, (1, 3), padding=(0, 1))
        self.conv3x1 = ConvBNReLU(in_channels, width, (3, 1), padding=(1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv1x3(x), self.conv3x1(x)], 1)


class InceptionExpanded(_Concat):
    """1x1 | 1x1 -> {1x3 || 3x1} | 1x1 -> 3x3 -> {1x3 || 3x1} | pool (-> 1x1).

    Inception-v2 modules 2a-2b at the 8x8 grid (Szegedy et al. 2015, figure 7: expanded filter
    bank outputs, to promote high-dimensional representations). The ``n`` and ``dbl`` columns
    are the width of *each* of the two parallel convolutions.
    """

    def __init__(self, row: InceptionRow, in_channels: int) -> None:
        super().__init__()
        assert row.stride == 1, row
        self.branch1x1 = ConvBNReLU(in_channels, row.n1x1, 1)
        self.branch3x3 = nn.Sequential(
            ConvBNReLU(in_channels, row.red, 1), _Split1x3_3x1(row.red, row.n)
        )
        self.branch3x3dbl = nn.Sequential(
            ConvBNReLU(in_channels, row.dbl_red, 1),
            ConvBNReLU(row.dbl_red, row.dbl, 3, padding=1),
            _Split1x3_3x1(row.dbl, row.dbl),
        )
        self.branch_pool = _pool_branch(row, in_channels)
        self.branch_names = ["branch1x1", "branch3x3", "branch3x3dbl", "branch_pool"]
        self._check(row, [row.n1x1, 2 * row.n, 2 * row.dbl, row.proj or in_channels])
