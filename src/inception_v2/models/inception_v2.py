"""Inception-v2 (Szegedy et al. 2015, *Rethinking the Inception Architecture*, Table 1) and
its final form Inception-v3 (Table 3, last row: Inception-v2 with a batch-normalized auxiliary
classifier). Widths follow the source's tables, restated in docs/architecture.md
("Inception-v2")."""

from inception_v2.models.blocks import (
    BlockOptions,
    GridReduction3x3,
    GridReduction7x7,
    Inception3x3,
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

# The stem (Table 1, top rows): name, layer, out channels, kernel, stride, padding.
STEM = (
    Stem("conv1", "conv", 32, 3, 2, 0),  # N x 32 x 149 x 149
    Stem("conv2", "conv", 32, 3, 1, 0),  # N x 32 x 147 x 147
    Stem("conv3", "conv", 64, 3, 1, 1),  # N x 64 x 147 x 147
    Stem("pool1", "maxpool", 64, 3, 2, 0),  # N x 64 x 73 x 73
    Stem("conv4", "conv", 80, 3, 1, 0),  # N x 80 x 71 x 71
    Stem("conv5", "conv", 192, 3, 2, 0),  # N x 192 x 35 x 35
    Stem("conv6", "conv", 288, 3, 1, 1),  # N x 288 x 35 x 35
)

# The Inception groups, as the tables of docs/architecture.md: figure 5 at 35x35, figure 6 at
# 17x17, figure 7 at 8x8; stride 2 reduces the grid (figure 10).
#    name  block              stride  out #1x1 #red  #n #dblred #dbl pool proj
MODULES = (
    Row("3a", Inception3x3, 1, 288, 64, 64, 64, 64, 96, "avg", 64),  # N x 288 x 35 x 35
    Row("3b", Inception3x3, 1, 288, 64, 64, 96, 64, 96, "avg", 32),  # N x 288 x 35 x 35
    Row("3c", GridReduction3x3, 2, 768, 0, 128, 320, 64, 160, "max", 0),  # N x 768 x 17 x 17
    Row("5a", Inception7x7, 1, 768, 192, 96, 160, 96, 160, "avg", 256),  # N x 768 x 17 x 17
    Row("5b", Inception7x7, 1, 768, 192, 96, 160, 96, 160, "avg", 256),
    Row("5c", Inception7x7, 1, 768, 192, 96, 160, 96, 160, "avg", 256),
    Row("5d", Inception7x7, 1, 768, 192, 96, 160, 96, 160, "avg", 256),  # N x 768 x 17 x 17 -> aux head
    Row("5e", GridReduction7x7, 2, 1280, 0, 128, 192, 128, 320, "max", 0),  # N x 1280 x 8 x 8
    Row("2a", InceptionExpanded, 1, 1280, 256, 128, 160, 128, 240, "avg", 224),  # N x 1280 x 8 x 8
    Row("2b", InceptionExpanded, 1, 2048, 256, 96, 96, 96, 160, "max", 0),  # N x 2048 x 8 x 8
)

AUX_AFTER = "5d"  # the auxiliary classifier reads the 17 x 17 x 768 map
AUX_GRID = 5  # 17 -> 5 with the 5x5/3 pool; 5 * 5 * 128 = 3200 inputs to its first linear

# The last stage at each grid (147, 73, 35, 17, 8 at 299), and its nominal reduction.
FEATURES = (("conv3", 2), ("pool1", 4), ("3b", 8), ("5d", 16), ("2b", 32))

DATA_CONFIG = DataConfig(input_size=299, resize_size=384, min_input_size=75)


def _inception(name: str, options: ClassifierOptions, aux_logits: bool, aux_dropout: float, bn_aux: bool):
    aux = {}
    if aux_logits:
        aux = make_aux_heads(
            "fc", [(AUX_AFTER, 768)], options.num_classes, grid=AUX_GRID, dropout=aux_dropout, batch_norm=bn_aux
        )
    stages = build_stages(STEM, MODULES, options.in_chans, BlockOptions())
    return StagedClassifier(name, stages, aux, DATA_CONFIG, options)


@register_model("inception_v2", DATA_CONFIG)
def inception_v2(
    num_classes: int = 1000,
    in_chans: int = 3,
    aux_logits: bool = False,
    dropout: float = 0.5,
    aux_dropout: float = 0.7,
    global_pool: str = "avg",
) -> StagedClassifier:
    """Inception-v2 (Table 1); ``aux_logits=True`` adds the plain auxiliary classifier on 5d's
    output."""
    options = ClassifierOptions(num_classes, dropout, in_chans, feature_points=FEATURES, global_pool=global_pool)
    return _inception("inception_v2", options, aux_logits, aux_dropout, bn_aux=False)


@register_model("inception_v3", DATA_CONFIG)
def inception_v3(
    num_classes: int = 1000,
    in_chans: int = 3,
    aux_logits: bool = False,
    dropout: float = 0.5,
    aux_dropout: float = 0.7,
    global_pool: str = "avg",
) -> StagedClassifier:
    """Inception-v3 (Table 3, last row): Inception-v2 with the BN-auxiliary classifier
    (BatchNorm after its 3200 -> 1024 linear layer; ``aux_logits=True`` adds it). Train it with the ``paper`` recipe
    (RMSProp, label smoothing) to match the paper's final model."""
    options = ClassifierOptions(num_classes, dropout, in_chans, feature_points=FEATURES, global_pool=global_pool)
    return _inception("inception_v3", options, aux_logits, aux_dropout, bn_aux=True)
