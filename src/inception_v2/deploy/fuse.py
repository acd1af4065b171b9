"""BatchNorm folding for deployment: each ``Conv2d -> BatchNorm2d`` pair becomes one ``Conv2d``.

In eval mode a BatchNorm is a fixed per-channel affine map, ``y = (x - mean) / sqrt(var + eps)
* gamma + beta``, so it can be folded into the weights and bias of the convolution before it
(Ioffe & Szegedy 2015, section 3.1: "the normalization is a linear transform applied to each
activation" at inference). Every convolution of our networks is a :class:`ConvBNReLU`, i.e. an
``nn.Sequential(Conv2d, BatchNorm2d, ReLU)``; folding removes one memory pass per layer.

The arithmetic is :func:`torch.nn.utils.fusion.fuse_conv_bn_weights` (what
``fuse_conv_bn_eval`` calls), done in float64; this module only finds the pairs. A pair is two
*adjacent* children of an ``nn.Sequential`` (the only place where the order of execution is
known without tracing). Anything else is left as it is, notably the ``BatchNorm1d`` after the
first linear layer of Inception-v3's auxiliary head (the auxiliary heads never run in
``forward``; :func:`inception_v2.deploy.inference.prepare_for_inference` drops them).
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights


def _fusable(conv: nn.Module, bn: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d
        and isinstance(bn, nn.BatchNorm2d)
        and bn.running_mean is not None
        and bn.running_var is not None
        and bn.num_features == conv.out_channels
    )


def _fold_into(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Give ``conv`` (already a copy) the folded weight and bias of ``conv`` then ``bn``."""
    # Computed in float64 and rounded once to the conv's dtype: the networks are deep enough
    # that a float32 fold adds visible error to the logits.
    f64 = [
        None if t is None else t.detach().double()
        for t in (conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.weight, bn.bias)
    ]
    weight, bias = fuse_conv_bn_weights(f64[0], f64[1], f64[2], f64[3], bn.eps, f64[4], f64[5])
    dtype, grad = conv.weight.dtype, conv.weight.requires_grad
    conv.weight = nn.Parameter(weight.to(dtype), requires_grad=grad)
    conv.bias = nn.Parameter(bias.to(dtype), requires_grad=grad)


def _fuse_in_place(module: nn.Module) -> None:
    for child in module.children():
        _fuse_in_place(child)
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = module._modules[first], module._modules[second]
            if _fusable(conv, bn):
                _fold_into(conv, bn)
                module._modules[second] = nn.Identity()  # keeps the Sequential's indices


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """An eval-mode deep copy of ``model`` with every ``Conv2d`` + ``BatchNorm2d`` pair inside
    an ``nn.Sequential`` replaced by one ``Conv2d`` with a bias (the BatchNorm becomes
    ``nn.Identity``). ``model`` itself is not changed.

    The copy computes the same function as ``model.eval()`` up to float rounding; it cannot be
    trained further as a BatchNorm network. Attributes such as ``data_config``, ``name`` and
    ``classes`` come along with the deep copy.
    """
    fused = copy.deepcopy(model).eval()
    _fuse_in_place(fused)
    return fused
