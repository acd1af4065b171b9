"""The Inception-v3 that was released with ImageNet weights (TensorFlow's, as torchvision's
``inception_v3`` ships it: 27.2 M parameters with its auxiliary head), written as tables in
this package's style (docs/architecture.md, "Inception-v3 as released").

It differs from the paper's Table 3 network (our ``inception_v3``): the stem keeps a 1x1 then
an unpadded 3x3 before the second pool (73 -> 71 -> 35) instead of the 3x3/2 and padded 3x3;
the 35x35 modules keep GoogLeNet's 5x5 branch (figure 4); the first reduction has no 1x1 before
its 3x3/2; the 17x17 modules keep the reduction width ``c7`` through the factorized
convolutions; the second reduction is a 3x3 and one factorized 7x7 branch; the average pools
count the zero padding; the auxiliary head is two convolutions (1x1 to 128, 5x5 to 768) and a
linear layer.

Stage names are torchvision's (``Conv2d_1a_3x3``, ``Mixed_5b``...), so its state dict converts
by renaming alone (:func:`inception_v2.models.weights.convert_torchvision_inception_v3`).
torchvision's ``transform_input=True`` turns ImageNet-normalized input into input normalized
with mean = std = 0.5, which is this model's own ``data_config``: fed our standard input, it
gives torchvision's outputs without any transform.
"""

from inception_v2.models.blocks import (
    BlockOptions,
    GridReduction3x3,
    GridReduction7x7x3,
    Inception5x5,
    Inception7x7,
    InceptionExpanded,
    InceptionRow as Row,
)
from inception_v2.models.config import DataConfig
from inception_v2.models.network import (
    ClassifierOptions,
    StagedClassifier,
    StemRow as Stem,
    build_stages,
    make_aux_heads,
)
from inception_v2.models.registry import register_model

# The stem: name, layer, out channels, kernel, stride, padding.
STEM = (
    Stem("Conv2d_1a_3x3", "conv", 32, 3, 2, 0),  # N x 32 x 149 x 149
    Stem("Conv2d_2a_3x3", "conv", 32, 3, 1, 0),  # N x 32 x 147 x 147
    Stem("Conv2d_2b_3x3", "conv", 64, 3, 1, 1),  # N x 64 x 147 x 147
    Stem("maxpool1", "maxpool", 64, 3, 2, 0),  # N x 64 x 73 x 73
    Stem("Conv2d_3b_1x1", "conv", 80, 1, 1, 0),  # N x 80 x 73 x 73
    Stem("Conv2d_4a_3x3", "conv", 192, 3, 1, 0),  # N x 192 x 71 x 71
    Stem("maxpool2", "maxpool", 192, 3, 2, 0),  # N x 192 x 35 x 35
)

# Columns as in inception_v2.py. Mixed_6a: no 1x1 before its 3x3/2 (red 0). Mixed_6b-e: "red"
# is torchvision's c7, kept until each branch's last convolution (keep_reduction_width).
#    name        block                stride  out #1x1 #red  #n #dblred #dbl pool proj
MODULES = (
    Row("Mixed_5b", Inception5x5, 1, 256, 64, 48, 64, 64, 96, "avg", 32),  # N x 256 x 35 x 35
    Row("Mixed_5c", Inception5x5, 1, 288, 64, 48, 64, 64, 96, "avg", 64),  # N x 288 x 35 x 35
    Row("Mixed_5d", Inception5x5, 1, 288, 64, 48, 64, 64, 96, "avg", 64),  # N x 288 x 35 x 35
    Row("Mixed_6a", GridReduction3x3, 2, 768, 0, 0, 384, 64, 96, "max", 0),  # N x 768 x 17 x 17
    Row("Mixed_6b", Inception7x7, 1, 768, 192, 128, 192, 128, 192, "avg", 192),  # N x 768 x 17 x 17
    Row("Mixed_6c", Inception7x7, 1, 768, 192, 160, 192, 160, 192, "avg", 192),
    Row("Mixed_6d", Inception7x7, 1, 768, 192, 160, 192, 160, 192, "avg", 192),
    Row("Mixed_6e", Inception7x7, 1, 768, 192, 192, 192, 192, 192, "avg", 192),  # N x 768 x 17 x 17 -> aux head
    Row("Mixed_7a", GridReduction7x7x3, 2, 1280, 0, 192, 320, 192, 192, "max", 0),  # N x 1280 x 8 x 8
    Row("Mixed_7b", InceptionExpanded, 1, 2048, 320, 384, 384, 448, 384, "avg", 192),  # N x 2048 x 8 x 8
    Row("Mixed_7c", InceptionExpanded, 1, 2048, 320, 384, 384, 448, 384, "avg", 192),  # N x 2048 x 8 x 8
)

# torchvision's average pools count the zero padding; its 17x17 modules keep the width c7.
BLOCK_OPTIONS = BlockOptions(count_include_pad=True, keep_reduction_width=True)

AUX_AFTER = "Mixed_6e"

# The last stage at each grid (147, 73, 35, 17, 8 at 299), and its nominal reduction.
FEATURES = (("Conv2d_2b_3x3", 2), ("Conv2d_3b_1x1", 4), ("Mixed_5d", 8), ("Mixed_6e", 16), ("Mixed_7c", 32))

# torchvision's evaluation preset: resize 342, centre crop 299, bilinear.
DATA_CONFIG = DataConfig(input_size=299, resize_size=342, min_input_size=75)


@register_model("inception_v3_tv", DATA_CONFIG)
def inception_v3_tv(
    num_classes: int = 1000,
    in_chans: int = 3,
    aux_logits: bool = False,
    dropout: float = 0.5,
    global_pool: str = "avg",
) -> StagedClassifier:
    """The released Inception-v3 graph (torchvision's ``inception_v3``); ``aux_logits=True`` adds
    its auxiliary head on ``Mixed_6e``; ``pretrained=True`` loads torchvision's ImageNet weights."""
    stages = build_stages(STEM, MODULES, in_chans, BLOCK_OPTIONS)
    aux = make_aux_heads("conv", [(AUX_AFTER, 768)], num_classes) if aux_logits else {}
    options = ClassifierOptions(num_classes, dropout, in_chans, feature_points=FEATURES, global_pool=global_pool)
    return StagedClassifier("inception_v3_tv", stages, aux, DATA_CONFIG, options)
