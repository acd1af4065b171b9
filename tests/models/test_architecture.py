"""Every stage's grid, every module's branch widths and the parameter counts, against the tables of
docs/architecture.md (typed again in spec_tables.py)."""

import pytest
import torch

from inception_v2 import create_model
from inception_v2.models.blocks import InceptionRow
from inception_v2.summary import count_params

from .cache import built
from .spec_tables import (
    BN_MODULES,
    BN_STEM,
    TV_AUX_PARAMS_1000,
    TV_PARAMS_1000,
    TV_STAGES,
    V2_MODULES,
    V2_STEM,
    bn_module_params,
    googlenet_bn_params,
    v2_module_params,
    v2_params,
)


def stage_shapes(model, size):
    """Each stage's output shape, computed on the meta device (shapes only)."""
    shapes = {}
    model = meta(model.name)
    x = torch.zeros(1, 3, size, size, device="meta")
    with torch.no_grad():
        for name, stage in model.features.named_children():
            x = stage(x)
            shapes[name] = tuple(x.shape[1:])
    return shapes


@pytest.mark.parametrize("name", ["inception_v2", "inception_v3"])
def test_inception_stage_shapes_at_299(name):
    shapes = stage_shapes(built(name).eval(), 299)
    expected = {n: (c, h, h) for n, c, h in V2_STEM}
    expected.update({n: (row[1], row[2], row[2]) for n, row in V2_MODULES.items()})
    assert shapes == expected
    assert list(shapes) == [n for n, _, _ in V2_STEM] + list(V2_MODULES)


def test_googlenet_bn_stage_shapes_at_224():
    shapes = stage_shapes(built("googlenet_bn").eval(), 224)
    expected = {n: (c, h, h) for n, c, h in BN_STEM}
    expected.update({n: (row[2], row[3], row[3]) for n, row in BN_MODULES.items()})
    assert shapes == expected


def branch_out_channels(module):
    """Output channels of each branch, measured by running it on a small input."""
    cin = next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d)).in_channels
    x = torch.zeros(1, cin, 17, 17)
    with torch.no_grad():
        return {n: getattr(module, n)(x).shape[1] for n in module.branch_names}


@pytest.mark.parametrize("name", list(V2_MODULES))
def test_inception_v2_branch_widths(name):
    stride, out, _, n1, red, n, dred, dbl, pool, proj = V2_MODULES[name]
    module = dict(built("inception_v2").features.named_children())[name]
    widths = branch_out_channels(module)
    group = name[0]
    single = "branch3x3" if group in "32" else "branch7x7"
    double = single + "dbl"
    factor = 2 if group == "2" else 1  # figure 7: the 1x3 and 3x1 outputs are both kept
    assert widths[single] == factor * n and widths[double] == factor * dbl
    assert widths.get("branch1x1", 0) == n1
    cin = module.branch_pool[-1].out_channels if proj else None
    if proj:
        assert widths["branch_pool"] == proj == cin
    assert sum(widths.values()) == out == module.out_channels
    # the reductions: the first conv of each reducing branch
    assert getattr(module, single)[0][0].out_channels == red
    assert getattr(module, double)[0][0].out_channels == dred
    pool_layer = module.branch_pool[0] if isinstance(module.branch_pool, torch.nn.Sequential) else module.branch_pool
    assert isinstance(pool_layer, torch.nn.AvgPool2d if pool == "avg" else torch.nn.MaxPool2d)
    assert pool_layer.stride in (stride, (stride, stride))


@pytest.mark.parametrize("name", list(BN_MODULES))
def test_googlenet_bn_branch_widths(name):
    stride, cin, out, _, n1, red, n, dred, dbl, pool, proj = BN_MODULES[name]
    module = dict(built("googlenet_bn").features.named_children())[name]
    widths = branch_out_channels(module)
    assert widths["branch3x3"] == n and widths["branch3x3dbl"] == dbl
    assert widths.get("branch1x1", 0) == n1
    assert widths["branch_pool"] == (proj or cin)
    assert sum(widths.values()) == out
    assert module.branch3x3[0][0].in_channels == cin


@pytest.mark.parametrize("name", list(V2_MODULES))
def test_inception_v2_module_params(name):
    module = dict(built("inception_v2").features.named_children())[name]
    cin = next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d)).in_channels
    assert count_params(module) == v2_module_params(name, cin)


@pytest.mark.parametrize("name", list(BN_MODULES))
def test_googlenet_bn_module_params(name):
    module = dict(built("googlenet_bn").features.named_children())[name]
    assert count_params(module) == bn_module_params(name)


def meta(name, **kwargs):
    with torch.device("meta"):  # the structure without weights: milliseconds
        return create_model(name, **kwargs).eval()


@pytest.mark.parametrize("classes", [1000, 20])
def test_total_params_equal_what_the_tables_imply(classes):
    assert count_params(meta("inception_v2", num_classes=classes, aux_logits=True)) == v2_params(classes)
    v3 = meta("inception_v3", num_classes=classes, aux_logits=True)
    assert count_params(v3) == v2_params(classes, bn_aux=True)
    assert count_params(meta("googlenet_bn", num_classes=classes, aux_logits=True)) == googlenet_bn_params(classes)
    no_aux = meta("inception_v2", num_classes=classes)  # the default
    assert count_params(no_aux) == v2_params(classes, aux=False)
    no_aux = meta("googlenet_bn", num_classes=classes)
    assert count_params(no_aux) == googlenet_bn_params(classes, aux=False)


def test_inception_v2_aux_head_layers():
    model = built("inception_v2")
    ((key, head),) = model.aux_heads.items()
    assert key == "5d"
    assert head.conv[0].in_channels == 768 and head.conv[0].out_channels == 128
    assert (head.fc1.in_features, head.fc1.out_features) == (3200, 1024)
    assert (head.fc2.in_features, head.fc2.out_features) == (1024, 20)
    assert isinstance(head.bn, torch.nn.Identity)
    v3_head = built("inception_v3").aux_heads["5d"]
    assert isinstance(v3_head.bn, torch.nn.BatchNorm1d) and v3_head.bn.num_features == 1024


def test_googlenet_bn_aux_heads_layers():
    model = built("googlenet_bn")
    assert list(model.aux_heads) == ["4a", "4d"]
    for key, cin in (("4a", 576), ("4d", 608)):
        head = model.aux_heads[key]
        assert head.conv[0].in_channels == cin and head.conv[0].out_channels == 128
        assert (head.fc1.in_features, head.fc1.out_features) == (2048, 1024)
        assert head.dropout.p == 0.7


def test_aux_pool_is_5x5_stride_3_at_the_nominal_size():
    """At 299 the 17x17 map is pooled 5x5/3 to 5x5 exactly (not adaptively)."""
    head = built("inception_v2").aux_heads["5d"].eval()  # shared: the hook is removed below
    x = torch.randn(2, 768, 17, 17)
    pooled = {}
    hook = head.conv.register_forward_hook(lambda m, i, o: pooled.update({"in": i[0]}))
    try:
        with torch.no_grad():
            head(x)
        torch.testing.assert_close(pooled["in"], torch.nn.functional.avg_pool2d(x, 5, 3))
        assert pooled["in"].shape[-2:] == (5, 5)
        with torch.no_grad():  # any other grid is pooled adaptively to 5 x 5
            head(torch.randn(2, 768, 9, 11))
        assert pooled["in"].shape[-2:] == (5, 5)
    finally:
        hook.remove()


def test_a_row_whose_branches_do_not_add_up_is_refused():
    """Every module checks its branch widths against the table's ``out`` column."""
    from inception_v2.models.blocks import Inception3x3

    row = InceptionRow("3a", Inception3x3, 1, 288, 64, 64, 64, 64, 96, "avg", 64)
    assert Inception3x3(row, 192).out_channels == 288
    with pytest.raises(ValueError, match="add up to 288, the table says 300"):
        Inception3x3(row._replace(out=300), 192)


def test_inception_v3_tv_stage_shapes_at_299():
    shapes = stage_shapes(built("inception_v3_tv").eval(), 299)
    assert shapes == {n: (c, h, h) for n, c, h in TV_STAGES}
    assert list(shapes) == [n for n, _, _ in TV_STAGES]


def test_inception_v3_tv_has_torchvisions_parameter_count():
    model = meta("inception_v3_tv", aux_logits=True)
    assert count_params(model) == TV_PARAMS_1000
    assert count_params(model.aux_heads) == TV_AUX_PARAMS_1000
    # the 17x17 modules keep the reduction width c7 until each branch's last convolution
    widths = [m.out_channels for m in model.features.Mixed_6b.branch7x7dbl]
    assert widths == [128, 128, 128, 128, 192]
