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

from functools import partial
from typing import Optional

from inception_v2.models.blocks import BlockOptions, GridReduction3x3, Inception3x3, InceptionRow as Row
from inception_v2.models.config import DataConfig
from inception_v2.models.layers import BN_EPS, ConvBNReLU
from inception_v2.models.network import (
    ClassifierOptions,
    StagedClassifier,
    StemRow as Stem,
    build_stages,
    make_aux_heads,
)
from inception_v2.models.registry import register_model

# name, layer, out channels, kernel, stride, padding; the max pools round up (ceil mode).
STEM = (
    Stem("conv1", "conv", 64, 7, 2, 3),  # N x 64 x 112 x 112
    Stem("pool1", "maxpool", 64, 3, 2, 0),  # N x 64 x 56 x 56
    Stem("conv2", "conv", 64, 1, 1, 0),  # N x 64 x 56 x 56
    Stem("conv3", "conv", 192, 3, 1, 1),  # N x 192 x 56 x 56
    Stem("pool2", "maxpool", 192, 3, 2, 0),  # N x 192 x 28 x 28
)

# The stride-2 modules pad their stride-2 convolutions by 1 and pool in ceil mode (28 -> 14).
#    name  block             stride  out #1x1 #red  #n #dblred #dbl pool proj
MODULES = (
    Row("3a", Inception3x3, 1, 256, 64, 64, 64, 64, 96, "avg", 32),  # N x 256 x 28 x 28
    Row("3b", Inception3x3, 1, 320, 64, 64, 96, 64, 96, "avg", 64),  # N x 320 x 28 x 28
    Row("3c", GridReduction3x3, 2, 576, 0, 128, 160, 64, 96, "max", 0),  # N x 576 x 14 x 14
    Row("4a", Inception3x3, 1, 576, 224, 64, 96, 96, 128, "avg", 128),  # N x 576 x 14 x 14 -> aux head 1
    Row("4b", Inception3x3, 1, 576, 192, 96, 128, 96, 128, "avg", 128),
    Row("4c", Inception3x3, 1, 608, 160, 128, 160, 128, 160, "avg", 128),  # N x 608 x 14 x 14
    Row("4d", Inception3x3, 1, 608, 96, 128, 192, 160, 192, "avg", 128),  # N x 608 x 14 x 14 -> aux head 2
    Row("4e", GridReduction3x3, 2, 1056, 0, 128, 192, 192, 256, "max", 0),  # N x 1056 x 7 x 7
    Row("5a", Inception3x3, 1, 1024, 352, 192, 320, 160, 224, "avg", 128),  # N x 1024 x 7 x 7
    Row("5b", Inception3x3, 1, 1024, 352, 192, 320, 192, 224, "max", 128),  # N x 1024 x 7 x 7
)

AUX_AFTER = ("4a", "4d")  # as GoogLeNet's two auxiliary classifiers
AUX_GRID = 4  # 14 -> 4 with the 5x5/3 pool; 4 * 4 * 128 = 2048 inputs to its first linear

# The last stage at each grid, and its nominal reduction (input side / grid side).
FEATURES = (("conv1", 2), ("conv3", 4), ("3b", 8), ("4d", 16), ("5b", 32))

DATA_CONFIG = DataConfig(input_size=224, resize_size=256, min_input_size=7)


@register_model("googlenet_bn", DATA_CONFIG)
def googlenet_bn(
    num_classes: int = 1000,
    in_chans: int = 3,
    aux_logits: bool = False,
    dropout: float = 0.4,
    aux_dropout: float = 0.7,
    bn_eps: float = BN_EPS,
    count_include_pad: bool = False,
    input_space: Optional[str] = None,
    global_pool: str = "avg",
) -> StagedClassifier:
    """BN-Inception with GoogLeNet's 40% dropout; ``aux_logits=True`` adds GoogLeNet's two
    auxiliary heads (after 4a and 4d).

    ``bn_eps``, ``count_include_pad``, ``input_space``: see the module docstring (the released
    Caffe network: 1e-5, True, ``"caffe_bgr"``)."""
    conv = partial(ConvBNReLU, eps=bn_eps)
    blocks = BlockOptions(conv=conv, count_include_pad=count_include_pad, reduction_padding=1, ceil_mode=True)
    stages = build_stages(STEM, MODULES, in_chans, blocks)
    aux = {}
    if aux_logits:
        after = [(name, stages[name].out_channels) for name in AUX_AFTER]
        aux = make_aux_heads("fc", after, num_classes, grid=AUX_GRID, dropout=aux_dropout, conv=conv)
    arch = {"bn_eps": bn_eps, "count_include_pad": count_include_pad, "input_space": input_space}
    options = ClassifierOptions(
        num_classes,
        dropout,
        in_chans,
        feature_points=FEATURES,
        input_space=input_space,
        arch_options=arch,
        global_pool=global_pool,
    )
    return StagedClassifier("googlenet_bn", stages, aux, DATA_CONFIG, options)
