"""GoogLeNet-BN, a.k.a. BN-Inception (Ioffe & Szegedy 2015, *Batch Normalization*, figure 5),
the baseline of the source's experiment. Widths follow SPEC section 3 (the released Caffe
BN-Inception). Unlike the source's own "GoogLeNet_BN", BatchNorm really follows every conv."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from inception_v2.models.blocks import GridReduction3x3, Inception3x3, InceptionRow as Row
from inception_v2.models.layers import AuxHead, ConvBNReLU
from inception_v2.models.network import StagedClassifier
from inception_v2.models.registry import DataConfig, register_model

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

DATA_CONFIG = DataConfig(input_size=224, resize_size=256, min_input_size=7)


def build_stages(modules=MODULES) -> "OrderedDict[str, nn.Module]":
    stages: "OrderedDict[str, nn.Module]" = OrderedDict()
    channels = 3
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
            stages[row.name] = Inception3x3(row, channels)
        channels = row.out
    return stages


@register_model("googlenet_bn", DATA_CONFIG)
def googlenet_bn(
    num_classes: int = 1000, aux_logits: bool = True, dropout: float = 0.4,
    aux_dropout: float = 0.7,
) -> StagedClassifier:
    """BN-Inception with GoogLeNet's two auxiliary heads (after 4a and 4d) and its 40% dropout."""
    stages = build_stages()
    aux = {}
    if aux_logits:
        for name in AUX_AFTER:
            aux[name] = AuxHead(stages[name].out_channels, num_classes, AUX_GRID, aux_dropout)
    return StagedClassifier("googlenet_bn", stages, MODULES[-1].out, num_classes, dropout, aux, DATA_CONFIG)
