"""The frame every model shares: named stages, auxiliary heads attached after named stages,
global pool -> dropout -> one linear layer, and the forward API (docs/architecture.md).

* ``forward(x)`` always returns the logits, in train and eval mode alike (the pooled features
  with ``num_classes=0``).
* ``forward_with_aux(x)`` returns :class:`ModelOutput` (``logits``, ``aux_logits``; the
  auxiliary heads exist with ``aux_logits=True`` only).
* ``forward_features(x)`` returns the last feature map; ``forward_head(features,
  pre_logits=False)`` the logits (or the pooled features).
* ``feature_info`` lists the feature maps at each grid (timm's ``num_chs``, ``reduction``,
  ``module``); :class:`FeatureListNet` (``create_model(..., features_only=True)``) returns them,
  ``forward_intermediates`` / ``prune_intermediate_layers`` select them as timm does.
* ``reset_classifier(num_classes, global_pool=None)``, ``global_pool``, ``num_features``,
  ``head_hidden_size``, ``drop_rate``, ``pretrained_cfg`` / ``default_cfg``: timm's names.
* ``set_grad_checkpointing()`` recomputes each stage's activations in the backward pass.

No ``from __future__ import annotations`` here, in ``blocks.py`` or ``layers.py``: torch.fx
copies the annotations into the code it generates, which TorchScript then has to resolve.
"""

import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.fx
from torch import nn
from torch.utils.checkpoint import checkpoint

from inception_v2.models.blocks import BlockOptions, InceptionRow
from inception_v2.models.config import DataConfig
from inception_v2.models.head import GlobalPool, check_head, feature_take_indices
from inception_v2.models.layers import (
    INPUT_SPACES,
    AuxHead,
    ConvAuxHead,
    InputTransform,
    ModelOutput,
    check_input,
    init_weights,
)
from inception_v2.models.pretrained_cfg import timm_cfg

# The input check is one opaque node of torch.fx graphs: symbolic tracing cannot branch on shapes.
torch.fx.wrap("check_input")


class FeatureInfo(list):
    """One dict per feature map, in network order: ``num_chs`` (channels), ``reduction``
    (nominal stride from the input: 2, 4, 8, 16, 32) and ``module`` (the qualified name of the
    stage that produces it, usable as a ``return_nodes`` key of torchvision's
    ``create_feature_extractor``). As timm's ``feature_info``."""

    def channels(self) -> List[int]:
        return [f["num_chs"] for f in self]

    def reduction(self) -> List[int]:
        return [f["reduction"] for f in self]

    def module_name(self) -> List[str]:
        return [f["module"] for f in self]


@contextlib.contextmanager
def _frozen_batchnorm_stats(module: nn.Module) -> Iterator[None]:
    """BatchNorm running statistics left untouched for the block: the recomputation of a
    checkpointed stage in the backward pass must not update them a second time."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(bns, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def _checkpointed(stage: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``stage(x)`` whose activations are recomputed in the backward pass instead of kept
    (``torch.utils.checkpoint``, non-reentrant). The gradients are the same; so are the
    BatchNorm running statistics, which the recomputation does not update again."""
    return checkpoint(
        stage,
        x,
        use_reentrant=False,
        context_fn=lambda: (contextlib.nullcontext(), _frozen_batchnorm_stats(stage)),
    )


def _first_conv_name(module: nn.Module) -> str:
    return next(name for name, m in module.named_modules() if isinstance(m, nn.Conv2d))


class StemRow(NamedTuple):
    """One layer of a stem table: a convolution (the model's layer factory) or a max pool."""

    name: str
    layer: str  # "conv" or "maxpool"
    out: int  # output channels (a pool keeps its input's)
    kernel: int
    stride: int
    padding: int


def build_stages(
    stem: Sequence[StemRow], modules: Sequence[InceptionRow], in_chans: int, options: BlockOptions
) -> "OrderedDict[str, nn.Module]":
    """The named stages of a network: the stem's layers, then one module per table row (the
    row's ``block`` class), each reading the previous one's channels. Max pools of the stem
    round up when ``options.ceil_mode`` (Caffe)."""
    stages: "OrderedDict[str, nn.Module]" = OrderedDict()
    channels = in_chans
    for row in stem:
        if row.layer == "maxpool":
            stages[row.name] = nn.MaxPool2d(row.kernel, row.stride, row.padding, ceil_mode=options.ceil_mode)
        elif row.layer == "conv":
            stages[row.name] = options.conv(channels, row.out, row.kernel, row.stride, row.padding)
        else:
            raise ValueError(f"stem row {row.name}: layer must be 'conv' or 'maxpool', not {row.layer!r}")
        channels = row.out
    for row in modules:
        stages[row.name] = row.block(row, channels, options)
        channels = row.out
    return stages


@dataclass(frozen=True)
class ClassifierOptions:
    """What shapes a :class:`StagedClassifier` beyond its stages and auxiliary heads."""

    num_classes: int  # 0: no classifier, forward returns the pooled features
    dropout: float  # before the classifier (timm's drop_rate)
    in_chans: int = 3
    # (stage name, nominal reduction) of each feature map: the last stage at each grid
    feature_points: Sequence[Tuple[str, int]] = ()
    # a released network's own input space (INPUT_SPACES), reached from our standard input by an
    # InputTransform; None for our own networks
    input_space: Optional[str] = None
    # the keyword arguments of create_model that shape the network (recorded in checkpoints and
    # release files, so the same network is rebuilt)
    arch_options: Dict[str, Any] = field(default_factory=dict)
    global_pool: str = "avg"  # "avg" (the papers'), "max", "avgmax", "" (none; num_classes 0 only)


class StagedClassifier(nn.Module):
    """A classifier made of named stages (``features``), auxiliary heads reading named stages,
    and a global-pool -> dropout -> linear head; ``options`` (:class:`ClassifierOptions`) says
    the rest. ``num_features`` is the last stage's width.
    """

    # dicts for timm, computed in Python: not part of a TorchScript module
    __jit_unused_properties__ = ["pretrained_cfg", "default_cfg"]

    def __init__(
        self,
        name: str,
        stages: "OrderedDict[str, nn.Module]",
        aux_heads: Dict[str, nn.Module],
        data_config: DataConfig,
        options: ClassifierOptions,
    ) -> None:
        super().__init__()
        _check_options(stages, aux_heads, options)
        self.name = name
        self.data_config = data_config
        self.num_classes = options.num_classes
        self.num_features = next(reversed(stages.values())).out_channels
        self.head_hidden_size = self.num_features  # the width forward_head(pre_logits=True) returns
        self.drop_rate = options.dropout
        self.in_chans = options.in_chans
        self.min_input_size = data_config.min_input_size
        self.arch_options: Dict[str, Any] = dict(options.arch_options)
        self.grad_checkpointing = False
        self.release = {}  # tag, url, license of published weights loaded into it (create_model)
        self._pretrained_cfg = None  # a dict assigned to pretrained_cfg
        self._pool_sizes = {}  # input side -> side of the last feature map
        if options.input_space is None:
            self.input_transform: nn.Module = nn.Identity()
        else:
            space = INPUT_SPACES[options.input_space]
            self.input_transform = InputTransform(space, data_config.mean, data_config.std)
        self.features = nn.Sequential(stages)
        # Keyed by the stage whose output feeds the head; kept in network order.
        self.aux_heads = nn.ModuleDict((k, aux_heads[k]) for k in stages if k in aux_heads)
        self.global_pool = GlobalPool(options.global_pool)
        self.dropout = nn.Dropout(options.dropout)
        self.fc = nn.Linear(self.num_features, self.num_classes) if self.num_classes else nn.Identity()
        self.feature_info = self._feature_info(options.feature_points)
        self.first_conv = "features." + _first_conv_name(self.features)
        init_weights(self)

    def _feature_info(self, points: Sequence[Tuple[str, int]]) -> FeatureInfo:
        channels, c = {}, self.in_chans
        for name, stage in self.features.named_children():
            c = getattr(stage, "out_channels", c)  # pools keep their input's channels
            channels[name] = c
        missing = [name for name, _ in points if name not in channels]
        if missing:
            raise ValueError(f"feature points name unknown stages {missing}")
        return FeatureInfo(
            {"num_chs": channels[name], "reduction": reduction, "module": f"features.{name}"}
            for name, reduction in points
        )

    @property
    def aux_logits(self) -> bool:
        return len(self.aux_heads) > 0

    # ------------------------------------------------------------------ timm's configuration

    @property
    def pretrained_cfg(self) -> Dict[str, Any]:
        """timm's ``pretrained_cfg``, derived from ``data_config`` (which ``load_model`` sets to
        the trained pipeline), so ``timm.data.resolve_data_config({}, model=model)`` gives the
        model's own preprocessing. Assigning a dict replaces it."""
        if self._pretrained_cfg is not None:
            return self._pretrained_cfg
        layers = (self.first_conv, "fc", self._pool_size(self.data_config.input_size))
        cfg = timm_cfg(self.name, self.data_config, self.in_chans, self.num_classes, layers, self.release)
        classes = getattr(self, "classes", None)
        if classes is not None:
            cfg["label_names"] = tuple(classes)
        return cfg

    @pretrained_cfg.setter
    def pretrained_cfg(self, cfg: Dict[str, Any]) -> None:
        self._pretrained_cfg = dict(cfg)

    @property
    def default_cfg(self) -> Dict[str, Any]:
        """timm's older name of :attr:`pretrained_cfg`."""
        return self.pretrained_cfg

    @default_cfg.setter
    def default_cfg(self, cfg: Dict[str, Any]) -> None:
        self.pretrained_cfg = cfg

    @torch.jit.ignore
    def _pool_size(self, size: int) -> int:
        """The side of the last feature map for ``size`` x ``size`` inputs (shapes only, on the
        meta device)."""
        if size not in self._pool_sizes:
            meta = {k: torch.empty_like(v, device="meta") for k, v in self.features.state_dict(keep_vars=True).items()}
            x = torch.empty(1, self.in_chans, size, size, device="meta")
            with torch.no_grad():
                self._pool_sizes[size] = int(torch.func.functional_call(self.features, meta, (x,)).shape[-1])
        return self._pool_sizes[size]

    # ------------------------------------------------------------------ heads

    def get_classifier(self) -> nn.Module:
        """The main classifier (the last linear layer; ``nn.Identity`` when there is none)."""
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """A new head: the main classifier *and* every auxiliary head's last layer freshly
        initialized with ``num_classes`` outputs (fine-tuning on another label set), on the
        model's device and dtype. ``num_classes=0`` removes the classifier (``forward`` returns
        the pooled features) and the auxiliary heads with it; ``global_pool``: see
        :class:`~inception_v2.models.head.GlobalPool` (None keeps the current one, except that
        a classifier after no pooling, ``""``, gets the papers' ``"avg"``)."""
        pool = self.global_pool.pool_type if global_pool is None else global_pool
        if global_pool is None and pool == "" and num_classes:
            pool = "avg"
        check_head(num_classes, pool)
        like = next(self.features.parameters())
        self.global_pool = GlobalPool(pool).train(self.training)
        if num_classes:
            self.fc = nn.Linear(self.num_features, num_classes, device=like.device, dtype=like.dtype)
            init_weights(self.fc)
        else:
            self.fc = nn.Identity()
        self.fc.train(self.training)
        if num_classes:
            for head in self.aux_heads.values():
                head.reset_classifier(num_classes)
        else:
            self.aux_heads = nn.ModuleDict().train(self.training)
        self.num_classes = num_classes

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each stage's activations during the backward pass instead of keeping them
        (``torch.utils.checkpoint``): the same gradients and BatchNorm statistics for less
        memory and about one more forward pass of compute. Only in training mode."""
        self.grad_checkpointing = bool(enable)

    # ------------------------------------------------------------------ forward

    def _run_stages(self, x: torch.Tensor, with_aux: bool) -> Tuple[torch.Tensor, Tuple[torch.Tensor, ...]]:
        check_input(x, self.in_chans, self.min_input_size, self.name)
        x = self.input_transform(x)
        ckpt = self.grad_checkpointing and self.training
        aux: List[torch.Tensor] = []
        for name, stage in self.features.named_children():
            x = _checkpointed(stage, x) if ckpt else stage(x)
            if with_aux and name in self.aux_heads:
                aux.append(self.aux_heads[name](x))
        return x, tuple(aux)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (N x num_features x h x w)."""
        if self.grad_checkpointing and self.training and not torch.jit.is_scripting():
            return self._run_stages(x, with_aux=False)[0]
        check_input(x, self.in_chans, self.min_input_size, self.name)
        return self.features(self.input_transform(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global pool -> dropout (the pooled features when ``pre_logits``) -> classifier."""
        x = self.global_pool(x)  # N x num_features (unpooled with global_pool="")
        x = self.dropout(x)
        if pre_logits:
            return x
        return self.fc(x)  # N x num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @torch.jit.ignore
    def forward_with_aux(self, x: torch.Tensor) -> ModelOutput:
        """Logits and every auxiliary head's logits (in network order; none unless the model
        was built with ``aux_logits=True``), in any mode."""
        features, aux = self._run_stages(x, with_aux=True)
        return ModelOutput(self.forward_head(features), aux)

    # ------------------------------------------------------------------ timm's intermediates

    def _feature_stages(self, indices: List[int]) -> List[str]:
        names = [f["module"][len("features.") :] for f in self.feature_info]
        kept = set(n for n, _ in self.features.named_children())
        gone = [i for i in indices if names[i] not in kept]
        if gone:
            raise ValueError(f"feature maps {gone} were pruned (prune_intermediate_layers)")
        return [names[i] for i in indices]

    @torch.jit.ignore
    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: Optional[Union[int, List[int]]] = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """The feature maps ``indices`` selects among ``feature_info`` (timm's
        ``feature_take_indices``: None all, an int the last n, a list those), in network order,
        and the last feature map. ``stop_early`` runs the stages only as far as the last wanted
        map (which then is also the "last feature map"); ``norm`` has no effect (no final
        norm); ``output_fmt`` must be ``"NCHW"``. The auxiliary heads are not run."""
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
        take, last = feature_take_indices(len(self.feature_info), indices)
        wanted = set(self._feature_stages(take))
        stop = self._feature_stages([last])[0] if stop_early else None
        check_input(x, self.in_chans, self.min_input_size, self.name)
        x = self.input_transform(x)
        ckpt = self.grad_checkpointing and self.training
        intermediates: List[torch.Tensor] = []
        for name, stage in self.features.named_children():
            x = _checkpointed(stage, x) if ckpt else stage(x)
            if name in wanted:
                intermediates.append(x)
            if name == stop:
                break
        return intermediates if intermediates_only else (x, intermediates)

    @torch.jit.ignore
    def prune_intermediate_layers(
        self, indices: Union[int, List[int]] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> List[int]:
        """Remove what the feature maps ``indices`` do not need, as timm: the stages after the
        last one, their auxiliary heads, and with ``prune_head`` (or when stages were removed)
        the head, the auxiliary heads and the global pool (``forward`` then returns the last
        kept map). ``prune_norm`` has no effect (no final norm). Returns the kept indices."""
        take, last = feature_take_indices(len(self.feature_info), indices)
        keep = self._feature_stages([last])[0]
        stages = list(self.features.named_children())
        cut = [name for name, _ in stages].index(keep) + 1
        prune_end = cut < len(stages)
        if prune_end:
            self.features = nn.Sequential(OrderedDict(stages[:cut])).train(self.training)
            self.num_features = self.head_hidden_size = self.feature_info[last]["num_chs"]
        if prune_head or prune_end:
            self.reset_classifier(0, "")
        return take


def _check_options(stages: Dict[str, nn.Module], aux_heads: Dict[str, nn.Module], options: ClassifierOptions) -> None:
    unknown = set(aux_heads) - set(stages)
    if unknown:
        raise ValueError(f"auxiliary heads attached to unknown stages {sorted(unknown)}")
    check_head(options.num_classes, options.global_pool)
    if aux_heads and options.num_classes == 0:
        raise ValueError("auxiliary heads need num_classes >= 1 (they are classifiers)")
    input_space, in_chans = options.input_space, options.in_chans
    if input_space is not None and input_space not in INPUT_SPACES:
        raise ValueError(f"unknown input_space {input_space!r}; known: {', '.join(sorted(INPUT_SPACES))}")
    if input_space is not None and in_chans != 3:
        raise ValueError(f"input_space {input_space!r} maps RGB input and needs in_chans=3, got {in_chans}")


class FeatureListNet(nn.Module):
    """The stages of a :class:`StagedClassifier` up to its last wanted feature map, returning
    the list of maps (``create_model(name, features_only=True, out_indices=...)``).

    ``out_indices`` index the model's ``feature_info`` (negative from the end); the maps come
    back in network order and ``feature_info`` describes them. The weights keep the
    classifier's names (``features.*``), so a classifier's state dict loads with
    ``strict=False`` (the heads are left out).
    """

    def __init__(self, model: StagedClassifier, out_indices: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        n = len(model.feature_info)
        if n == 0:
            raise ValueError(f"{model.name} lists no feature maps")
        indices = list(range(n)) if out_indices is None else [int(i) for i in out_indices]
        if not indices:
            raise ValueError("out_indices is empty")
        bad = [i for i in indices if not -n <= i < n]
        if bad:
            raise ValueError(f"out_indices {bad} out of range: {model.name} has {n} feature maps (0 to {n - 1})")
        indices = [i % n for i in indices]
        if len(set(indices)) != len(indices):
            raise ValueError(f"out_indices {list(out_indices or [])} repeats a feature map")
        indices = sorted(indices)
        names = [name for name, _ in model.features.named_children()]
        wanted = [names.index(model.feature_info[i]["module"][len("features.") :]) for i in indices]
        self.name = model.name
        self.data_config = model.data_config
        self.in_chans = model.in_chans
        self.min_input_size = model.min_input_size
        self.arch_options = dict(model.arch_options)
        self.out_indices: List[int] = indices
        self.grad_checkpointing = model.grad_checkpointing
        self.input_transform = model.input_transform
        self.features = nn.Sequential(OrderedDict(list(model.features.named_children())[: max(wanted) + 1]))
        self.stage_indices: List[int] = wanted
        self.feature_info = FeatureInfo(dict(model.feature_info[i]) for i in indices)
        # timm reads the input size and preprocessing of a feature extractor here too
        self.pretrained_cfg = self.default_cfg = dict(model.pretrained_cfg)

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = bool(enable)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        check_input(x, self.in_chans, self.min_input_size, self.name)
        x = self.input_transform(x)
        if self.grad_checkpointing and self.training and not torch.jit.is_scripting():
            return self._forward_checkpointed(x)
        out: List[torch.Tensor] = []
        for i, stage in enumerate(self.features):
            x = stage(x)
            if i in self.stage_indices:
                out.append(x)
        return out

    @torch.jit.ignore
    def _forward_checkpointed(self, x: torch.Tensor) -> List[torch.Tensor]:
        out: List[torch.Tensor] = []
        for i, stage in enumerate(self.features):
            x = _checkpointed(stage, x)
            if i in self.stage_indices:
                out.append(x)
        return out


def make_aux_heads(kind: str, after: Sequence[Tuple[str, int]], num_classes: int, **kwargs) -> Dict[str, nn.Module]:
    """Auxiliary heads reading the stages named in ``after`` (``(stage, channels)``): ``"fc"``
    is :class:`AuxHead` (``grid``, ``dropout``, ``batch_norm``, ``conv`` in ``kwargs``),
    ``"conv"`` is :class:`ConvAuxHead` (``conv`` in ``kwargs``)."""
    if kind == "fc":
        return {name: AuxHead(c, num_classes, **kwargs) for name, c in after}
    if kind == "conv":
        return {name: ConvAuxHead(c, num_classes, **kwargs) for name, c in after}
    raise ValueError(f"unknown auxiliary head kind {kind!r}")
