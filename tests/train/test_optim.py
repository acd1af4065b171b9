import math

import pytest
import torch
from torch import nn

from inception_v2.train import RMSpropTF, resolve_config
from inception_v2.train.optim import build_ema, build_optimizer, build_scheduler


def test_rmsprop_tf_puts_epsilon_inside_the_square_root():
    p = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = RMSpropTF([p], lr=0.1, decay=0.9, eps=1.0)
    ms, want = torch.ones(2), p.detach().clone()  # TensorFlow starts the mean square at 1
    for g in (torch.tensor([0.5, 3.0]), torch.tensor([-1.0, 0.2])):
        p.grad = g.clone()
        opt.step()
        ms = 0.9 * ms + 0.1 * g**2
        want = want - 0.1 * g / torch.sqrt(ms + 1.0)
    assert torch.allclose(p.detach(), want, atol=1e-7)
    # torch.optim.RMSprop (eps outside the sqrt, ms from 0) takes another step
    q = nn.Parameter(torch.tensor([1.0, -2.0]))
    torch_opt = torch.optim.RMSprop([q], lr=0.1, alpha=0.9, eps=1.0)
    q.grad = torch.tensor([0.5, 3.0])
    torch_opt.step()
    p2 = nn.Parameter(torch.tensor([1.0, -2.0]))
    tf_opt = RMSpropTF([p2], lr=0.1)
    p2.grad = torch.tensor([0.5, 3.0])
    tf_opt.step()
    assert not torch.allclose(q.detach(), p2.detach())


def test_rmsprop_tf_momentum():
    p = nn.Parameter(torch.tensor([1.0]))
    opt = RMSpropTF([p], lr=0.1, momentum=0.9)
    p.grad = torch.tensor([2.0])
    opt.step()
    step1 = 0.1 * 2.0 / math.sqrt(0.9 + 0.1 * 4 + 1.0)
    assert p.item() == pytest.approx(1.0 - step1, abs=1e-6)
    p.grad = torch.tensor([0.0])
    opt.step()  # momentum keeps moving it
    assert p.item() == pytest.approx(1.0 - step1 - 0.9 * step1, abs=1e-6)


def test_optimizers_and_step_schedule_of_the_recipes():
    model = nn.Linear(3, 2)
    seed = resolve_config("seed", model="googlenet_bn", data="d", out="o")
    paper = resolve_config("paper", model="googlenet_bn", data="d", out="o", batch_size=32)
    assert isinstance(build_optimizer(model, seed), torch.optim.Adam)
    opt = build_optimizer(model, paper)
    assert isinstance(opt, RMSpropTF) and opt.param_groups[0]["lr"] == pytest.approx(0.045)
    sched = build_scheduler(opt, paper)
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.045, 0.045, 0.045 * 0.94, 0.045 * 0.94, 0.045 * 0.94**2])


def test_ema_follows_tensorflow_warm_up_and_averages_buffers():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.BatchNorm1d(2))
    ema = build_ema(model, 0.9999)
    with torch.no_grad():
        model[0].weight.fill_(0.0)
    ema.update_parameters(model)  # first update copies
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[1].running_mean.fill_(1.0)
    ema.update_parameters(model)  # n = 1: decay min(0.9999, 2/11)
    d = 2 / 11
    assert torch.allclose(ema.module[0].weight, torch.full((2, 2), 1 - d))
    assert torch.allclose(ema.module[1].running_mean, torch.full((2,), 1 - d))
    assert build_ema(model, None) is None
