"""Every model through PyTorch's compilers and tracers: ``torch.jit.script``, ``torch.fx``
(torchvision's feature extraction), ``torch.export`` with a dynamic batch and
``torch.compile(fullgraph=True)``, at the smallest input, with the same outputs as eager mode."""

import warnings

import pytest
import torch
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from inception_v2 import get_data_config, list_models
from inception_v2.models import FeatureListNet

from .cache import built

MODELS = list_models()


def batch(name, n=2, size=None):
    s = size or get_data_config(name).min_input_size
    return torch.randn(n, 3, s, s, generator=torch.Generator().manual_seed(n))


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script's deprecation notice
        yield


@pytest.mark.parametrize("name", MODELS)
def test_torch_jit_script(name):
    model = built(name).eval()
    scripted = torch.jit.script(model)
    x = batch(name)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x), rtol=0, atol=0)
    with pytest.raises(Exception, match="N x 3 x H x W"):  # the check survives, as a TorchScript error
        scripted(torch.randn(1, 1, 80, 80))
    features = torch.jit.script(FeatureListNet(model, out_indices=(0, 2)))
    assert [m.shape[1] for m in features(x)] == [f["num_chs"] for f in built(name).feature_info[::2][:2]]


@pytest.mark.parametrize("name", MODELS)
def test_fx_graphs_can_be_scripted(name):
    """The graph of ``create_feature_extractor`` compiles with ``torch.jit.script``: the model
    modules' annotations are real types, which FX copies into its generated code."""
    model = built(name).eval()
    nodes = {model.feature_info[1]["module"]: "mid", "fc": "logits"}
    scripted = torch.jit.script(create_feature_extractor(model, return_nodes=nodes))
    x = batch(name)
    with torch.no_grad():
        out = scripted(x)
        torch.testing.assert_close(out["logits"], model(x), rtol=0, atol=0)
        assert out["mid"].shape[1] == model.feature_info[1]["num_chs"]


@pytest.mark.parametrize("name", MODELS)
def test_fx_feature_extraction(name):
    model = built(name).eval()
    _, eval_nodes = get_graph_node_names(model)
    assert any("check_input" in n for n in eval_nodes)  # one opaque node, not traced through
    info = model.feature_info
    extractor = create_feature_extractor(model, return_nodes={f["module"]: str(i) for i, f in enumerate(info)})
    x = batch(name)
    features = FeatureListNet(model)  # the same stages
    with torch.no_grad():
        traced, direct = extractor(x), features(x)
    assert list(traced) == [str(i) for i in range(len(info))]
    for i, expected in enumerate(direct):
        torch.testing.assert_close(traced[str(i)], expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", MODELS)
def test_fx_traces_the_shape_dependent_auxiliary_pooling(name):
    """The auxiliary heads choose their pooling from the map's size: traced once, the graph
    still picks the 5x5/3 pool at the nominal grid and adaptive pooling at any other."""
    key, head = next(iter(built(name).aux_heads.items()))
    head = head.eval()
    graph = torch.fx.symbolic_trace(head)
    channels = dict(built(name).named_modules())[f"features.{key}"].out_channels
    nominal = {"googlenet_bn": 14}.get(name, 17)
    with torch.no_grad():
        for grid in (nominal, 3):
            x = torch.randn(2, channels, grid, grid)
            torch.testing.assert_close(graph(x), head(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", MODELS)
def test_torch_export_with_a_dynamic_batch(name):
    model = built(name).eval()
    batch_dim = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (batch(name, 2),), dynamic_shapes={"x": {0: batch_dim}})
    exported = program.module()
    with torch.no_grad():
        for n in (1, 3):
            x = batch(name, n)
            torch.testing.assert_close(exported(x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_torch_compile_fullgraph(name):
    """``fullgraph=True`` fails on any graph break; the ``eager`` backend runs the captured graph
    without generating code, which keeps the test fast (inductor: see the slow test)."""
    torch._dynamo.reset()
    model = built(name).eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x = batch(name)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=0, atol=0)
    torch._dynamo.reset()


def test_torch_compile_keeps_the_input_check():
    torch._dynamo.reset()
    compiled = torch.compile(built("googlenet_bn").eval(), fullgraph=True, backend="eager")
    with pytest.raises(Exception, match="shape|3"):  # torch._check fails on the wrong channel count
        compiled(torch.randn(2, 1, 80, 80))
    torch._dynamo.reset()


@pytest.mark.slow
def test_torch_compile_inductor():
    torch._dynamo.reset()
    model = built("googlenet_bn").eval()
    compiled = torch.compile(model, fullgraph=True)
    x = batch("googlenet_bn")
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-4)
    torch._dynamo.reset()
