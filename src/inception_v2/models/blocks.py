"""The Inception modules, one class per figure of the papers, built from one table row each.

A row (:class:`InceptionRow`) holds the columns of the tables in docs/architecture.md: the
module's class (``block``), ``#1x1`` of the plain 1x1 branch, ``red``/``n`` of the single
branch, ``dbl_red``/``dbl`` of the double branch, the pool type and its projection. Within a
branch every convolution after the 1x1 reduction has the branch's output width (the source's
stated principle: "the factorized convolutions have the same kernel size and the same number of
filters"); the released Inception-v3 (``inception_v3_tv``) departs from it in its 17x17 modules,
which keep the reduction width until the branch's last convolution (``keep_reduction_width``).
Every module checks that the widths of its branches add up to the row's ``out`` column.

What a model sets for all its modules (the layer factory, how its pools count the padding...)
is one :class:`BlockOptions`; every module takes ``(row, in_channels, options)``. The pool
branch of every module is built in one place, :func:`pool_branch`.

A module's branches are registered in the order of concatenation (``branch_names``, also the
order of the state dict); :meth:`_Concat.forward` runs them in that order, so that
``torch.jit.script``, ``torch.fx`` and ``torch.export`` see a plain graph.
"""

from dataclasses import dataclass
from typing import List, NamedTuple, Tuple, Type

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from inception_v2.models.layers import ConvBNReLU, ConvLayer
from inception_v2.models.pooling import PoolBranch, ProjectedPoolBranch


class InceptionRow(NamedTuple):
    name: str  # "3a", "5e", "Mixed_5b", ...
    block: Type["_Concat"]  # the module's class (one per figure; docs/architecture.md)
    stride: int  # 2: grid reduction (no 1x1 branch, pass-through max pool, no projection)
    out: int  # output channels as tabulated
    n1x1: int  # plain 1x1 branch
    red: int  # single branch: 1x1 reduction (0: none, the branch starts wide) ...
    n: int  # ... then its wider convolution(s)
    dbl_red: int  # double branch: 1x1 reduction ...
    dbl: int  # ... then its stacked convolutions
    pool: str  # "avg" or "max"
    proj: int  # 1x1 projection after the pool (0: none)


@dataclass(frozen=True)
class BlockOptions:
    """What a model sets for every one of its modules (and its stem)."""

    conv: ConvLayer = ConvBNReLU  # the layer factory, e.g. partial(ConvBNReLU, eps=1e-5)
    count_include_pad: bool = False  # stride-1 average pools divide by 9 at the border too
    reduction_padding: int = 0  # padding of GridReduction3x3's stride-2 convolutions
    ceil_mode: bool = False  # max pools 3x3/2 round up (Caffe), see CeilModeMaxPool
    keep_reduction_width: bool = False  # Inception7x7: see its docstring


def _pool(kind: str, stride: int, count_include_pad: bool = False) -> nn.Module:
    """3x3 pooling: padded by 1 at stride 1 (the grid is kept), unpadded at stride 2.

    ``count_include_pad``: whether the average pool divides by 9 at the border too (the zero
    padding counts), as Caffe and torchvision's Inception-v3 do; the default averages the
    pixels that exist only."""
    padding = 1 if stride == 1 else 0
    if kind == "avg":
        return nn.AvgPool2d(3, stride, padding, count_include_pad=count_include_pad)
    if kind == "max":
        return nn.MaxPool2d(3, stride, padding)
    raise ValueError(f"pool must be 'avg' or 'max', not {kind!r}")


def ceil_max_pool(x: torch.Tensor) -> torch.Tensor:
    """Max pool 3x3/2 in ceil mode, an odd side padded by 1 (see :class:`CeilModeMaxPool`).

    A leaf of ``torch.fx`` graphs (``torch.fx.wrap`` below): the padding depends on the map's
    size, which symbolic tracing does not know. ``int()`` makes it a constant of the traced size
    under ``torch.jit.trace`` (the ONNX and TorchScript exporters need a constant)."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    return F.max_pool2d(x, 3, 2, padding=(h % 2, w % 2), ceil_mode=True)


torch.fx.wrap("ceil_max_pool")


class CeilModeMaxPool(nn.Module):
    """Max pool 3x3/2 in ceil mode (Caffe's rounding, as the released BN-Inception).

    Beside stride-2 convolutions padded by 1 it gives the same grid only when the grid is even
    (28 -> 14 and 14 -> 7 at 224); on an odd side ceil mode alone is one short, so that side is
    padded by 1 as well. At the nominal size nothing is padded."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ceil_max_pool(x)


def pool_branch(row: InceptionRow, in_channels: int, options: BlockOptions) -> nn.Module:
    """The pool branch of any module: at stride 1 the row's 3x3 pool, padded, then its 1x1
    projection when ``proj`` is set; at stride 2 a 3x3/2 max pool whose input channels all pass
    through (in ceil mode when the model says so)."""
    if row.stride == 2:
        return CeilModeMaxPool() if options.ceil_mode else _pool(row.pool, 2)
    # how the pool is computed is chosen at run time (inception_v2.models.pooling.set_pool_impl);
    # the modules are those of nn.Sequential(pool[, conv]), so the state dict is unchanged
    if row.proj == 0:
        return PoolBranch(_pool(row.pool, 1, options.count_include_pad))
    return ProjectedPoolBranch(_pool(row.pool, 1, options.count_include_pad), options.conv(in_channels, row.proj, 1))


class _Concat(nn.Module):
    """Runs its branches on the same input and concatenates them on channels."""

    branch_names: Tuple[str, ...] = ()  # in the order of concatenation (and of the state dict)

    def _check(self, row: InceptionRow, widths: List[int]) -> None:
        if sum(widths) != row.out:
            raise ValueError(
                f"module {row.name}: branch widths {widths} add up to {sum(widths)}, the table says {row.out}"
            )
        names = tuple(name for name, _ in self.named_children())
        assert names == self.branch_names, (names, self.branch_names)
        self.row = row
        self.out_channels = row.out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.children()], 1)


class InceptionNxN(_Concat):
    """1x1 | 1x1 -> n x n | 1x1 -> 3x3 -> 3x3 | pool -> 1x1, at stride 1; ``kernel`` is n.

    The tables name it by its kernel: :class:`Inception3x3` and :class:`Inception5x5`.
    """

    kernel = 3
    branch_names = ("branch1x1", "branch3x3", "branch3x3dbl", "branch_pool")

    def __init__(self, row: InceptionRow, in_channels: int, options: BlockOptions = BlockOptions()) -> None:
        super().__init__()
        assert row.stride == 1, row
        conv, k = options.conv, self.kernel
        self.branch1x1 = conv(in_channels, row.n1x1, 1)
        single = nn.Sequential(conv(in_channels, row.red, 1), conv(row.red, row.n, k, padding=k // 2))
        self.add_module(f"branch{k}x{k}", single)
        self.branch3x3dbl = nn.Sequential(
            conv(in_channels, row.dbl_red, 1),
            conv(row.dbl_red, row.dbl, 3, padding=1),
            conv(row.dbl, row.dbl, 3, padding=1),
        )
        self.branch_pool = pool_branch(row, in_channels, options)
        self._check(row, [row.n1x1, row.n, row.dbl, row.proj or in_channels])


class Inception3x3(InceptionNxN):
    """Inception-v2 modules 3a-3b (Szegedy et al. 2015, figure 5: the 5x5 of GoogLeNet replaced
    by two 3x3) and every stride-1 module of GoogLeNet-BN (Ioffe & Szegedy 2015, figure 5)."""

    kernel = 3


class Inception5x5(InceptionNxN):
    """The 35x35 modules of the released Inception-v3 (torchvision's ``InceptionA``), which keep
    GoogLeNet's 5x5 branch (Szegedy et al. 2015, figure 4) next to the factorized double 3x3;
    its average pools count the padding."""

    kernel = 5
    branch_names = ("branch1x1", "branch5x5", "branch3x3dbl", "branch_pool")


class GridReduction3x3(_Concat):
    """1x1 -> 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | max pool 3x3/2 (all input channels pass through).

    The efficient grid-size reduction of Szegedy et al. 2015, section 5 and figure 10: stride-2
    branches in parallel with a stride-2 pool. Inception-v2 module 3c uses unpadded stride-2
    convolutions (35 -> 17); GoogLeNet-BN's 3c/4e pad them by 1 and pool in ceil mode (28 -> 14)
    (``options.reduction_padding``, ``options.ceil_mode``). A row with ``red`` 0 has no
    reduction before the single 3x3/2 (the released Inception-v3's ``Mixed_6a``).
    """

    branch_names = ("branch3x3", "branch3x3dbl", "branch_pool")

    def __init__(self, row: InceptionRow, in_channels: int, options: BlockOptions = BlockOptions()) -> None:
        super().__init__()
        assert row.stride == 2 and row.n1x1 == 0 and row.proj == 0, row
        conv, padding = options.conv, options.reduction_padding
        if row.red:
            self.branch3x3 = nn.Sequential(
                conv(in_channels, row.red, 1),
                conv(row.red, row.n, 3, stride=2, padding=padding),
            )
        else:
            self.branch3x3 = nn.Sequential(conv(in_channels, row.n, 3, stride=2, padding=padding))
        self.branch3x3dbl = nn.Sequential(
            conv(in_channels, row.dbl_red, 1),
            conv(row.dbl_red, row.dbl, 3, padding=1),
            conv(row.dbl, row.dbl, 3, stride=2, padding=padding),
        )
        self.branch_pool = pool_branch(row, in_channels, options)
        self._check(row, [row.n, row.dbl, in_channels])


def _conv1x7(conv: ConvLayer, c_in: int, c_out: int) -> nn.Module:
    return conv(c_in, c_out, (1, 7), padding=(0, 3))


def _conv7x1(conv: ConvLayer, c_in: int, c_out: int) -> nn.Module:
    return conv(c_in, c_out, (7, 1), padding=(3, 0))


class Inception7x7(_Concat):
    """1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 | avg pool -> 1x1.

    Inception-v2 modules 5a-5d at the 17x17 grid (Szegedy et al. 2015, figure 6: n x n
    factorized into 1 x n and n x 1, n = 7). ``options.keep_reduction_width``: the factorized
    convolutions keep the reduction's width and only the last one of each branch widens to
    ``n`` / ``dbl`` (the released Inception-v3's ``InceptionC``).
    """

    branch_names = ("branch1x1", "branch7x7", "branch7x7dbl", "branch_pool")

    def __init__(self, row: InceptionRow, in_channels: int, options: BlockOptions = BlockOptions()) -> None:
        super().__init__()
        assert row.stride == 1, row
        conv = options.conv
        mid = row.red if options.keep_reduction_width else row.n
        dmid = row.dbl_red if options.keep_reduction_width else row.dbl
        self.branch1x1 = conv(in_channels, row.n1x1, 1)
        self.branch7x7 = nn.Sequential(
            conv(in_channels, row.red, 1), _conv1x7(conv, row.red, mid), _conv7x1(conv, mid, row.n)
        )
        self.branch7x7dbl = nn.Sequential(
            conv(in_channels, row.dbl_red, 1),
            _conv7x1(conv, row.dbl_red, dmid),
            _conv1x7(conv, dmid, dmid),
            _conv7x1(conv, dmid, dmid),
            _conv1x7(conv, dmid, row.dbl),
        )
        self.branch_pool = pool_branch(row, in_channels, options)
        self._check(row, [row.n1x1, row.n, row.dbl, row.proj or in_channels])


class GridReduction7x7(_Concat):
    """1x1 -> 1x7 -> 7x1 -> 3x3/2 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 -> 3x3/2 | max pool 3x3/2.

    Inception-v2 module 5e (17 -> 8): the factorized branches of figure 6, each closed by an
    unpadded stride-2 3x3, in parallel with a stride-2 pool (section 5, figure 10).
    """

    branch_names = ("branch7x7", "branch7x7dbl", "branch_pool")

    def __init__(self, row: InceptionRow, in_channels: int, options: BlockOptions = BlockOptions()) -> None:
        super().__init__()
        assert row.stride == 2 and row.n1x1 == 0 and row.proj == 0, row
        conv = options.conv
        self.branch7x7 = nn.Sequential(
            conv(in_channels, row.red, 1),
            _conv1x7(conv, row.red, row.n),
            _conv7x1(conv, row.n, row.n),
            conv(row.n, row.n, 3, stride=2),
        )
        self.branch7x7dbl = nn.Sequential(
            conv(in_channels, row.dbl_red, 1),
            _conv7x1(conv, row.dbl_red, row.dbl),
            _conv1x7(conv, row.dbl, row.dbl),
            _conv7x1(conv, row.dbl, row.dbl),
            _conv1x7(conv, row.dbl, row.dbl),
            conv(row.dbl, row.dbl, 3, stride=2),
        )
        self.branch_pool = pool_branch(row, in_channels, options)
        self._check(row, [row.n, row.dbl, in_channels])


class GridReduction7x7x3(_Concat):
    """1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 | max pool 3x3/2.

    The 17 -> 8 reduction of the released Inception-v3 (torchvision's ``InceptionD``): a plain
    3x3 branch and one factorized 7x7 branch (width ``dbl`` throughout) beside the pool.
    """

    branch_names = ("branch3x3", "branch7x7x3", "branch_pool")

    def __init__(self, row: InceptionRow, in_channels: int, options: BlockOptions = BlockOptions()) -> None:
        super().__init__()
        assert row.stride == 2 and row.n1x1 == 0 and row.proj == 0, row
        conv = options.conv
        self.branch3x3 = nn.Sequential(conv(in_channels, row.red, 1), conv(row.red, row.n, 3, stride=2))
        self.branch7x7x3 = nn.Sequential(
            conv(in_channels, row.dbl_red, 1),
            _conv1x7(conv, row.dbl_red, row.dbl),
            _conv7x1(conv, row.dbl, row.dbl),
            conv(row.dbl, row.dbl, 3, stride=2),
        )
        self.branch_pool = pool_branch(row, in_channels, options)
        self._check(row, [row.n, row.dbl, in_channels])


class _Split1x3_3x1(nn.Module):
    """The expanded filter bank: a 1x3 and a 3x1 run in parallel on the same input and are
    concatenated, so the branch is ``2 * width`` wide (Szegedy et al. 2015, figure 7)."""

    def __init__(self, conv: ConvLayer, in_channels: int, width: int) -> None:
        super().__init__()
        self.conv1x3 = conv(in_channels, width, (1, 3), padding=(0, 1))
        self.conv3x1 = conv(in_channels, width, (3, 1), padding=(1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv1x3(x), self.conv3x1(x)], 1)


class InceptionExpanded(_Concat):
    """1x1 | 1x1 -> {1x3 || 3x1} | 1x1 -> 3x3 -> {1x3 || 3x1} | pool (-> 1x1).

    Inception-v2 modules 2a-2b at the 8x8 grid (Szegedy et al. 2015, figure 7: expanded filter
    bank outputs, to promote high-dimensional representations), and the released Inception-v3's
    ``InceptionE``. The ``n`` and ``dbl`` columns are the width of *each* of the two parallel
    convolutions.
    """

    branch_names = ("branch1x1", "branch3x3", "branch3x3dbl", "branch_pool")

    def __init__(self, row: InceptionRow, in_channels: int, options: BlockOptions = BlockOptions()) -> None:
        super().__init__()
        assert row.stride == 1, row
        conv = options.conv
        self.branch1x1 = conv(in_channels, row.n1x1, 1)
        self.branch3x3 = nn.Sequential(conv(in_channels, row.red, 1), _Split1x3_3x1(conv, row.red, row.n))
        self.branch3x3dbl = nn.Sequential(
            conv(in_channels, row.dbl_red, 1),
            conv(row.dbl_red, row.dbl, 3, padding=1),
            _Split1x3_3x1(conv, row.dbl, row.dbl),
        )
        self.branch_pool = pool_branch(row, in_channels, options)
        self._check(row, [row.n1x1, 2 * row.n, 2 * row.dbl, row.proj or in_channels])
