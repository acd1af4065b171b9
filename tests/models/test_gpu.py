"""CUDA paths of the models: every model forward and backward under bf16 autocast in
channels_last, the memory gradient checkpointing saves, and inductor-compiled models. Run with
``pytest -m gpu`` on a machine with a GPU."""

import copy

import pytest
import torch

from inception_v2 import create_model, list_models

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("name", list_models())
def test_cuda_bf16_channels_last_training_step(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=20, aux_logits=True).cuda().to(memory_format=torch.channels_last).train()
    s = model.data_config.input_size
    x = torch.randn(4, 3, s, s, device="cuda").contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model.forward_with_aux(x)
        loss = out.logits.float().square().mean() + sum(a.float().square().mean() for a in out.aux_logits)
    loss.backward()
    assert torch.isfinite(loss) and out.logits.shape == (4, 20)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.fixture
def exact_cudnn():
    """Full float32 convolutions with deterministic algorithms for the block. By default cuDNN
    may compute float32 convolutions in TF32 (a 10-bit mantissa) and pick nondeterministic
    weight-gradient algorithms; the recomputed forward of checkpointing then gave gradients off
    by more than 1e-3 of the tensor's largest on 1 to 3 of 864 elements (up to 1.4 times that
    bound, measured on an H200), which is arithmetic noise, not what this test is about."""
    cudnn = torch.backends.cudnn
    saved = cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark
    cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = False, True, False
    try:
        yield
    finally:
        cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = saved


@pytest.mark.parametrize("name", list_models())
def test_grad_checkpointing_saves_cuda_memory_with_the_same_gradients(name, exact_cudnn):
    torch.manual_seed(0)
    plain = create_model(name, num_classes=20, dropout=0.0, aux_logits=True).cuda().train()
    ckpt = copy.deepcopy(plain)
    ckpt.set_grad_checkpointing()
    x = torch.randn(16, 3, 299, 299, device="cuda")
    peaks, grads = [], []
    for model in (plain, ckpt):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        torch.manual_seed(1)
        out = model.forward_with_aux(x)
        (out.logits.square().mean() + sum(a.square().mean() for a in out.aux_logits)).backward()
        torch.cuda.synchronize()
        peaks.append(torch.cuda.max_memory_allocated() - before)
        grads.append([p.grad.float() for p in model.parameters()])
    gib = 2**30
    assert peaks[1] < 0.75 * peaks[0], f"peak {peaks[1] / gib:.2f} GiB with checkpointing, {peaks[0] / gib:.2f} without"
    for g0, g1 in zip(*grads):  # relative to the largest gradient of each tensor
        torch.testing.assert_close(g0, g1, rtol=1e-3, atol=1e-3 * g0.abs().max().item())


@pytest.mark.slow  # an inductor compile per model: minutes (the training tests compile one on CUDA too)
@pytest.mark.parametrize("name", list_models())
def test_inductor_compiled_model_on_cuda(name):
    torch._dynamo.reset()
    model = create_model(name, num_classes=20).cuda().eval()
    compiled = torch.compile(model, fullgraph=True)
    s = model.data_config.input_size
    x = torch.randn(2, 3, s, s, device="cuda")
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(compiled(x), expected, rtol=1e-3, atol=1e-3 * expected.abs().max().item())
    torch._dynamo.reset()
