"""Building blocks shared by every model: conv-BN-ReLU, the auxiliary heads, initialization."""

from __future__ import annotations

from typing import NamedTuple, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

Size2 = Union[int, Tuple[int, int]]

BN_EPS = 1e-3  # as the Inception papers' TensorFlow models


class ConvBNReLU(nn.Sequential):
    """Convolution without bias -> BatchNorm -> ReLU: every convolution of the paper's networks
    ("all convolutions are batch-normalized", Szegedy et al. 2015, section 2 and Table 1)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Size2, stride: Size2 = 1,
        padding: Size2 = 0,
    ) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False),
            nn.BatchNorm2d(out_channels, eps=BN_EPS),
            nn.ReLU(inplace=True),
        )
        self.out_channels = out_channels


def same_padding(kernel_size: Tuple[int, int]) -> Tuple[int, int]:
    """Padding that keeps the grid of a stride-1 convolution with an odd kernel."""
    return (kernel_size[0] // 2, kernel_size[1] // 2)


class ModelOutput(NamedTuple):
    """What ``forward_with_aux`` returns: the main logits, and one logits tensor per auxiliary
    head in network order (empty when the model was built with ``aux_logits=False``)."""

    logits: torch.Tensor
    aux_logits: Tuple[torch.Tensor, ...]


class AuxHead(nn.Module):
    """Auxiliary classifier: avg pool 5x5/3 -> 1x1 conv to 128 -> flatten -> linear to 1024 ->
    (BatchNorm1d when ``batch_norm``, the paper's "BN-auxiliary") -> ReLU -> dropout -> linear.

    At the model's nominal input size the 5x5/3 pool gives exactly ``grid x grid`` (17 -> 5 in
    Inception-v2, 14 -> 4 in GoogLeNet-BN); at any other size the map is pooled adaptively to
    that grid, so the flattened width (``128 * grid**2``) never changes.
    """

    def __init__(
        self, in_channels: int, num_classes: int, grid: int, dropout: float,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.grid = grid
        self.conv = ConvBNReLU(in_channels, 128, 1)
        self.fc1 = nn.Linear(128 * grid * grid, 1024)
        self.bn = nn.BatchNorm1d(1024, eps=BN_EPS) if batch_norm else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """A new, freshly initialized last linear layer with ``num_classes`` outputs."""
        self.fc2 = nn.Linear(self.fc2.in_features, num_classes)
        init_weights(self.fc2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # N x C x H x W (17 x 17 or 14 x 14 at the nominal size)
        h, w = x.shape[-2:]
        if (h - 5) // 3 + 1 == self.grid and (w - 5) // 3 + 1 == self.grid and min(h, w) >= 5:
            x = F.avg_pool2d(x, kernel_size=5, stride=3)
        else:
            x = F.adaptive_avg_pool2d(x, self.grid)
        # N x C x grid x grid
        x = self.conv(x)
        # N x 128 x grid x grid
        x = torch.flatten(x, 1)
        # N x 128*grid*grid (3200 or 2048)
        x = F.relu(self.bn(self.fc1(x)), inplace=True)
        # N x 1024
        return self.fc2(self.dropout(x))


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


def check_input(x: torch.Tensor, min_size: int, model_name: str) -> None:
    """Raise ``ValueError`` unless ``x`` is N x 3 x H x W with H, W >= ``min_size``."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(
            f"{model_name} expects a batch of RGB images shaped N x 3 x H x W, got {tuple(x.shape)}"
        )
    if x.shape[2] < min_size or x.shape[3] < min_size:
        raise ValueError(
            f"{model_name} needs inputs of at least {min_size}x{min_size} pixels, "
            f"got {x.shape[2]}x{x.shape[3]}"
        )
