"""GoogLeNet-BN, a.k.a. BN-Inception (Ioffe & Szegedy 2015, *Batch Normalization*, figure 5),
the baseline of the source's experiment. Widths follow the released Caffe BN-Inception
(docs/architecture.md, "GoogLeNet-BN"). Unlike the source's own "GoogLeNet_BN", BatchNorm
really follows every conv.

Three options reproduce the released Caffe network exactly (``create_model("googlenet_bn",
pretrained=True)`` sets them; the defaults are the paper's network as trained here):
``bn_eps`` (Caffe's 1e-5), ``count_include_pad`` (Caffe's average pooling counts the zero
padding) and ``input_space="caffe_bgr"`` (the first convolution sees BGR 0-255 pixels minus the
mean 104/117/128, reached from our normalized RGB input by a fixed affine layer).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Optional

from torch import nn

from inception_v2.models.blocks import GridReduction3x3, Inception3x3, InceptionRow as Row
from inception_v2.models.config import DataConfig
from inception_v2.models.layers import BN_EPS, ConvBNReLU
from inception_v2.models.network import StagedClassifier, make_aux_heads
from inception_v2.models.registry import register_model

# name, out channels, kernel, stride, padding; "pool" = max 3x3/2 in ceil mode.
STEM = (
    ("conv1", 64, 7, 2, 3),  # N x 64 x 112 x 112
    ("pool1", 64, 3, 2, 0),  # N x 64 x 56 x 56
    ("conv2", 64, 1, 1, 0),  # N x 64 x 56 x 56
    ("conv3", 192, 3, 1, 1),  # N x 192 x 56 x 56
    ("pool2", 192, 3, 2, 0),  # N x 192 x 28 x 28
)

#    name stride  out  #1x1 #red   #n #dblred #dbl pool  proj
MODULES = (
    Row("3a", 1, 256, 64, 64, 64, 64, 96, "avg", 32),  # N x 256 x 28 x 28
    Row("3b", 1, 320, 64, 64, 96, 64, 96, "avg", 64),  # N x 320 x 28 x 28
    Row("3c", 2, 576, 0, 128, 160, 64, 96, "max", 0),  # N x 576 x 14 x 14
    Row("4a", 1, 576, 224, 64, 96, 96, 128, "avg", 128),  # N x 576 x 14 x 14 -> aux head 1
    Row("4b", 1, 576, 192, 96, 128, 96, 128, "avg", 128),
    Row("4c", 1, 608, 160, 128, 160, 128, 160, "avg", 128),  # N x 608 x 14 x 14
    Row("4d", 1, 608, 96, 128, 192, 160, 192, "avg", 128),  # N x 608 x 14 x 14 -> aux head 2
    Row("4e", 2, 1056, 0, 128, 192, 192, 256, "max", 0),  # N x 1056 x 7 x 7
    Row("5a", 1, 1024, 352, 192, 320, 160, 224, "avg", 128),  # N x 1024 x 7 x 7
    Row("5b", 1, 1024, 352, 192, 320, 192, 224, "max", 128),  # N x 1024 x 7 x 7
)

AUX_AFTER = ("4a", "4d")  # as GoogLeNet's two auxiliary classifiers
AUX_GRID = 4  # 14 -> 4 with the 5x5/3 pool; 4 * 4 * 128 = 2048 inputs to its first linear

# The last stage at each grid, and its nominal reduction (input side / grid side).
FEATURES = (("conv1", 2), ("conv3", 4), ("3b", 8), ("4d", 16), ("5b", 32))

DATA_CONFIG = DataConfig(input_size=224, resize_size=256, min_input_size=7)


def build_stages(modules=MODULES, in_chans: int = 3, count_include_pad: bool = False) -> "OrderedDict[str, nn.Module]":
    stages: "OrderedDict[str, nn.Module]" = OrderedDict()
    channels = in_chans
    for name, out, kernel, stride, padding in STEM:
        if name.startswith("pool"):
            stages[name] = nn.MaxPool2d(kernel, stride, padding, ceil_mode=True)
        else:
            stages[name] = ConvBNReLU(channels, out, kernel, stride, padding)
        channels = out
    for row in modules:
        if row.stride == 2:
            stages[row.name] = GridReduction3x3(row, channels, padding=1, ceil_mode=True)
        else:
            stages[row.name] = Inception3x3(row, channels, count_include_pad)
        channels = row.out
    return stages


def set_bn_eps(model: nn.Module, eps: float) -> None:
    """Give every BatchNorm layer of ``model`` the epsilon ``eps``."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eps = eps


@register_model("googlenet_bn", DATA_CONFIG)
def googlenet_bn(
    num_classes: int = 1000,
    in_chans: int = 3,
    aux_logits: bool = True,
    dropout: float = 0.4,
    aux_dropout: float = 0.7,
    bn_eps: float = BN_EPS,
    count_include_pad: bool = False,
    input_space: Optional[str] = None,
) -> StagedClassifier:
    """BN-Inception with GoogLeNet's two auxiliary heads (after 4a and 4d) and its 40% dropout.

    ``bn_eps``, ``count_include_pad``, ``input_space``: see the module docstring (the released
    Caffe network: 1e-5, True, ``"caffe_bgr"``)."""
    stages = build_stages(in_chans=in_chans, count_include_pad=count_include_pad)
    aux = {}
    if aux_logits:
        after = [(name, stages[name].out_channels) for name in AUX_AFTER]
        aux = make_aux_heads("fc", after, num_classes, grid=AUX_GRID, dropout=aux_dropout)
    options = {"bn_eps": bn_eps, "count_include_pad": count_include_pad, "input_space": input_space}
    model = StagedClassifier(
        "googlenet_bn",
        stages,
        MODULES[-1].out,
        num_classes,
        dropout,
        aux,
        DATA_CONFIG,
        feature_points=FEATURES,
        in_chans=in_chans,
        input_space=input_space,
        arch_options=options,
    )
    set_bn_eps(model, bn_eps)
    return model
