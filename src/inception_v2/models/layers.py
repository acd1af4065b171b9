"""Building blocks shared by every model: conv-BN-ReLU, the input check and input transform,
the auxiliary heads, initialization (docs/architecture.md describes each)."""

from dataclasses import dataclass
from typing import Callable, NamedTuple, Tuple, Union

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

Size2 = Union[int, Tuple[int, int]]

BN_EPS = 1e-3  # as the Inception papers' TensorFlow models


class ConvBNReLU(nn.Sequential):
    """Convolution without bias -> BatchNorm -> ReLU: every convolution of the paper's networks
    ("all convolutions are batch-normalized", Szegedy et al. 2015, section 2 and Table 1)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Size2,
        stride: Size2 = 1,
        padding: Size2 = 0,
        eps: float = BN_EPS,
    ) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False),
            nn.BatchNorm2d(out_channels, eps=eps),
            nn.ReLU(inplace=True),
        )
        self.out_channels = out_channels


# The layer factory a model passes to its blocks: (in_channels, out_channels, kernel_size,
# stride=1, padding=0) -> module, e.g. ``functools.partial(ConvBNReLU, eps=1e-5)``.
ConvLayer = Callable[..., nn.Module]


class ModelOutput(NamedTuple):
    """What ``forward_with_aux`` returns: the main logits, and one logits tensor per auxiliary
    head in network order (empty when the model was built with ``aux_logits=False``)."""

    logits: torch.Tensor
    aux_logits: Tuple[torch.Tensor, ...]


# --------------------------------------------------------------------------- input


def check_input(x: torch.Tensor, in_chans: int, min_size: int, model_name: str) -> None:
    """Raise ``ValueError`` unless ``x`` is N x ``in_chans`` x H x W with H, W >= ``min_size``.

    Eager mode raises; under ``torch.compile`` / ``torch.export`` the same conditions become
    ``torch._check`` assertions (they hold on the traced shapes, and a dynamic batch dimension
    stays dynamic); ``torch.fx`` records the call as one opaque node (see :func:`torch.fx.wrap`
    where it is called), so symbolic tracing never branches on a traced shape.
    """
    if not torch.jit.is_scripting() and torch.compiler.is_compiling():
        torch._check(x.dim() == 4)
        torch._check(x.shape[1] == in_chans)
        torch._check(x.shape[2] >= min_size)
        torch._check(x.shape[3] >= min_size)
        return
    if x.dim() != 4 or x.shape[1] != in_chans:
        what = "RGB images" if in_chans == 3 else f"{in_chans}-channel images"
        raise ValueError(
            f"{model_name} expects a batch of {what} shaped N x {in_chans} x H x W, got "
            + " x ".join([str(d) for d in x.shape])
        )
    if x.shape[2] < min_size or x.shape[3] < min_size:
        raise ValueError(
            f"{model_name} needs inputs of at least {min_size}x{min_size} pixels, got {x.shape[2]}x{x.shape[3]}"
        )


@dataclass(frozen=True)
class InputSpace:
    """The input a released network's first convolution was trained on, when it is not ours.

    Such a network is given an :class:`InputTransform` that maps our standard input (RGB in
    [0, 1], normalized with the model's ``data_config.mean/std``) to this space:
    ``(range * rgb[order] - mean) / std``.
    """

    order: Tuple[int, int, int]  # input channel c is our channel order[c]: (2, 1, 0) for BGR
    range: float  # 255 for 0-255 pixels
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]


INPUT_SPACES = {
    # The Caffe models (BN-Inception as released): BGR, 0-255, per-channel mean subtracted.
    "caffe_bgr": InputSpace(order=(2, 1, 0), range=255.0, mean=(104.0, 117.0, 128.0), std=(1.0, 1.0, 1.0)),
}


class InputTransform(nn.Module):
    """A fixed per-channel affine map (with a channel permutation) from our normalized RGB input
    to a released network's own input space (:class:`InputSpace`).

    It is a layer of its own rather than folded into the first convolution: that convolution
    pads with zeros *in its own input space*, which no change of its weights alone reproduces.
    The buffers are not persistent: they follow from the model's options, not its weights.
    """

    def __init__(self, space: InputSpace, mean: Tuple[float, ...], std: Tuple[float, ...]) -> None:
        super().__init__()
        order = list(space.order)
        weight = [space.range * std[o] / s for o, s in zip(order, space.std)]
        bias = [(space.range * mean[o] - m) / s for o, m, s in zip(order, space.mean, space.std)]
        self.register_buffer("order", torch.tensor(order, dtype=torch.long), persistent=False)
        self.register_buffer("weight", torch.tensor(weight).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("bias", torch.tensor(bias).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, self.order) * self.weight + self.bias


# --------------------------------------------------------------------------- auxiliary heads


def aux_pool(x: torch.Tensor, grid: int) -> torch.Tensor:
    """Avg pool 5x5/3 when that gives exactly ``grid x grid`` (the nominal input size), else
    adaptive average pooling to ``grid x grid`` (any other size). A leaf of ``torch.fx``
    graphs (``torch.fx.wrap`` below): the choice depends on the map's size, which symbolic
    tracing does not know."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if min(h, w) >= 5 and (h - 5) // 3 + 1 == grid and (w - 5) // 3 + 1 == grid:
        return F.avg_pool2d(x, kernel_size=5, stride=3)
    return F.adaptive_avg_pool2d(x, grid)


torch.fx.wrap("aux_pool")


class AuxHead(nn.Module):
    """Auxiliary classifier: avg pool 5x5/3 -> 1x1 conv to 128 -> flatten -> linear to 1024 ->
    (BatchNorm1d when ``batch_norm``, the paper's "BN-auxiliary") -> ReLU -> dropout -> linear.
    ``conv`` is the model's layer factory (:data:`ConvLayer`).

    At the model's nominal input size the 5x5/3 pool gives exactly ``grid x grid`` (17 -> 5 in
    Inception-v2, 14 -> 4 in GoogLeNet-BN); at any other size the map is pooled adaptively to
    that grid, so the flattened width (``128 * grid**2``) never changes.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        grid: int,
        dropout: float,
        batch_norm: bool = False,
        conv: ConvLayer = ConvBNReLU,
    ) -> None:
        super().__init__()
        self.grid = grid
        self.conv = conv(in_channels, 128, 1)
        self.fc1 = nn.Linear(128 * grid * grid, 1024)
        self.bn = nn.BatchNorm1d(1024, eps=BN_EPS) if batch_norm else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def get_classifier(self) -> nn.Linear:
        return self.fc2

    def reset_classifier(self, num_classes: int) -> None:
        """A new, freshly initialized last linear layer with ``num_classes`` outputs."""
        self.fc2 = _new_linear(self.fc2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # N x C x H x W (17 x 17 or 14 x 14 at the nominal size)
        x = aux_pool(x, self.grid)
        # N x C x grid x grid
        x = self.conv(x)
        # N x 128 x grid x grid
        x = torch.flatten(x, 1)
        # N x 128*grid*grid (3200 or 2048)
        x = F.relu(self.bn(self.fc1(x)), inplace=True)
        # N x 1024
        return self.fc2(self.dropout(x))


class ConvAuxHead(nn.Module):
    """The auxiliary classifier of the released Inception-v3 (torchvision's ``InceptionAux``):
    avg pool 5x5/3 -> 1x1 conv to 128 -> 5x5 conv to 768 -> global average pool -> linear.

    As :class:`AuxHead`, it pools 17 -> 5 at the nominal size and adaptively to 5 x 5 at any
    other; the 5x5 convolution then leaves a 1 x 1 map.
    """

    def __init__(self, in_channels: int, num_classes: int, conv: ConvLayer = ConvBNReLU) -> None:
        super().__init__()
        self.grid = 5
        self.conv0 = conv(in_channels, 128, 1)
        self.conv1 = conv(128, 768, 5)
        self.fc = nn.Linear(768, num_classes)

    def get_classifier(self) -> nn.Linear:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = _new_linear(self.fc, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # N x 768 x 17 x 17
        x = aux_pool(x, self.grid)
        # N x 768 x 5 x 5
        x = self.conv1(self.conv0(x))
        # N x 768 x 1 x 1
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        # N x 768
        return self.fc(x)


def _new_linear(old: nn.Linear, num_classes: int) -> nn.Linear:
    """A freshly initialized linear layer in place of ``old``: the same inputs, device, dtype and
    mode, ``num_classes`` outputs."""
    new = nn.Linear(old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype)
    init_weights(new)
    return new.train(old.training)


# --------------------------------------------------------------------------- initialization


def init_weights(model: nn.Module) -> None:
    """Truncated-normal weights (``torch.nn.init.trunc_normal_``, cut at two standard
    deviations): std sqrt(2 / fan_in) for convolutions, so even an untrained network in eval
    mode (BatchNorm at identity) keeps its activations near unit scale; 0.01 for linear layers,
    so initial logits are small. Zero biases; BatchNorm at identity."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            std = (2.0 / fan_in) ** 0.5
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
        elif isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.01, a=-0.02, b=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
